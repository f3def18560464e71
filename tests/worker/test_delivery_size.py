"""Size limits: a cluster with thousands of target images still fits SNS's and EventBridge's 256 KiB.

The candidate list is cut, lowest priority first, `candidates_omitted` counts what was cut, and the
chosen image always stays.
"""

from __future__ import annotations

import json
import uuid

from handler import worker
from handler.core.events import Event
from handler.delivery.publish import sns_message
from handler.local.emulator.catalog import Catalog, ClusterSpec, Datastore, Image, Project, default_catalog
from tests.worker.delivery_support import PROJECT, bus_deliveries, create_bus, reconfigure, received_events, running_sandbox

SIZE_LIMIT = 256 * 1024
CROWDED = "7d3c1e0a-5b2f-4c8d-9e6a-1f2b3c4d5e6f"

# ListImages allows offsets up to 1000, so with pages of 1000 the client reads at most 2,000 images.
IMAGE_COUNT = 2000
# The best image sits in the middle of the list, so keeping it is not an accident of list order.
BEST_POSITION = 1234


def crowded_catalog() -> Catalog:
    """The default catalog plus one Elasticsearch cluster with IMAGE_COUNT `same` target images."""
    images = []
    for index in range(IMAGE_COUNT):
        priority = IMAGE_COUNT + 1 if index == BEST_POSITION else index + 1
        images.append(
            Image(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"crowded-image-{index}")),
                display_name=f"7.10.2_24.{index // 100}.{index % 100}_0109",
                image_desc=f"Crowded test image number {index}.",
                datastore_type="elasticsearch",
                datastore_version="7.10.2",
                priority=priority,
            )
        )
    cluster = ClusterSpec(
        id=CROWDED,
        name="crowded-search",
        datastore=Datastore(type="elasticsearch", version="7.10.2", sub_version="7.10.2_22.5.1_1214"),
        images={"same": tuple(images)},
    )
    base = default_catalog()
    [project] = [project for project in base.projects if project.id == PROJECT]
    crowded = Project(id=PROJECT, clusters=project.clusters + (cluster,))
    others = tuple(project for project in base.projects if project.id != PROJECT)
    return Catalog(region=base.region, credentials=base.credentials, images=base.images, projects=(crowded, *others))


def test_thousands_of_images_fit_both_targets():
    catalog = crowded_catalog()
    best = catalog.target_images(catalog.cluster(CROWDED), "same")[BEST_POSITION]
    with running_sandbox(catalog) as sandbox:
        bus, _, queue_url = create_bus(sandbox)
        reconfigure(sandbox, NOTIFY_EVENT_BUS=bus)
        sandbox.send([CROWDED])

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert delivery.response == {"batchItemFailures": []}
        [received] = received_events(sandbox)
        [envelope] = bus_deliveries(sandbox, queue_url)

    sns_event = {key: value for key, value in received.items() if key != "_attributes"}
    bus_event = envelope["detail"]
    for event in (sns_event, bus_event):
        assert event["target_image"]["id"] == best.id
        assert event["candidates_omitted"] > 0
        assert len(event["candidates"]) + event["candidates_omitted"] == IMAGE_COUNT
        [selected] = [candidate for candidate in event["candidates"] if candidate["selected"]]
        assert selected["id"] == best.id
        kept = [candidate["priority"] for candidate in event["candidates"] if not candidate["selected"]]
        assert min(kept) > IMAGE_COUNT - len(event["candidates"])  # the lowest priorities were cut

    # The whole SNS message (event JSON plus its e-mail text) fits; moto also rejects a longer one.
    published = sns_message(Event.model_validate(sns_event))
    assert len(published.encode("utf-8")) < SIZE_LIMIT
    # EventBridge counts Source, DetailType and Detail; moto checks no size, so this test does.
    detail = json.dumps(bus_event, separators=(",", ":"))
    entry_size = len(envelope["source"]) + len(envelope["detail-type"]) + len(detail.encode("utf-8"))
    assert entry_size < SIZE_LIMIT
    assert detail == Event.model_validate(bus_event).to_json()
