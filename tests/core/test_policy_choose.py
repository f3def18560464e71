"""Tests of `choose`: every rejection reason, the ranking, type order, event types and detail sentences."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import pytest

from handler.core import ids
from handler.core.models import Cluster, TargetImage, TargetImages
from handler.core.policy import Decision, Offer, Policy, choose, parse_policy

TODAY = date(2026, 12, 4)
CURRENT = "7.6.2_24.3.3_1224"


def make_cluster(
    engine: str | None = "elasticsearch",
    status: str | None = "200",
    actions: list[str] | None = None,
    current: str | None = CURRENT,
) -> Cluster:
    return Cluster.model_validate(
        {
            "id": "ea244205-d641-45d9-9dcb-ab2236bcd07e",
            "name": "logs-prod",
            "status": status,
            "actions": actions or [],
            "datastore": {"type": engine, "version": "7.6.2", "subVersion": current},
        }
    )


def make_image(
    name: str,
    priority: int = 10,
    version: str | None = "",
    engine: str | None = "elasticsearch",
    image_id: str | None = None,
) -> TargetImage:
    """Build an image; the version defaults to the name's prefix and the ID to a UUID derived from the name."""
    if version == "":
        version = name.split("_")[0]
    if image_id is None:
        image_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    return TargetImage(
        id=image_id, display_name=name, datastore_type=engine, datastore_version=version, priority=priority
    )


def decide(
    images: list[TargetImage],
    policy: dict[str, Any] | Policy | None = None,
    cluster: Cluster | None = None,
    upgrade_type: str = "same",
    plugin: bool = False,
) -> Decision:
    chosen_policy = policy if isinstance(policy, Policy) else parse_policy(policy or {})
    return choose(cluster or make_cluster(), [Offer(upgrade_type, plugin, images)], [], chosen_policy, TODAY)


def reasons(decision: Decision) -> dict[str, str | None]:
    return {candidate.image.display_name: candidate.rejected_reason for candidate in decision.candidates}


# --- Rejection reasons of a single image ---------------------------------------------------------

DENY_ID = "bcdb711c-a7f0-4007-b8ee-9f13c05f8326"

SINGLE_IMAGE_CASES = [
    # (case, image, policy, expected reason or None for eligible)
    ("current image", make_image(CURRENT), {}, "current_image"),
    ("current image also denied", make_image(CURRENT), {"deny_images": ["7.6.2_*"]}, "current_image"),
    ("denied by ID", make_image("7.10.2_24.3.4_0109", image_id=DENY_ID), {"deny_images": [DENY_ID]}, "denied"),
    ("denied by upper-case ID", make_image("7.10.2_24.3.4_0109", image_id=DENY_ID), {"deny_images": [DENY_ID.upper()]}, "denied"),
    ("denied by glob", make_image("7.10.2_24.3.3_0102"), {"deny_images": ["7.10.2_24.3.3_*"]}, "denied"),
    ("denied by ?", make_image("7.10.2_24.3.3_0102"), {"deny_images": ["7.10.2_24.3.?_0102"]}, "denied"),
    ("denied by class", make_image("7.10.2_24.3.3_0102"), {"deny_images": ["7.10.2_24.3.[0-3]_*"]}, "denied"),
    ("denied by exact name", make_image("7.10.2_24.3.3_0102"), {"deny_images": ["7.10.2_24.3.3_0102"]}, "denied"),
    ("glob is case-sensitive", make_image("7.10.2_24.3.3_0102"), {"deny_images": ["7.10.2_24.3.3_*X"]}, None),
    ("glob other line", make_image("7.10.2_24.3.4_0109"), {"deny_images": ["7.10.2_24.3.3_*"]}, None),
    ("glob does not match ID", make_image("x_1", image_id=DENY_ID), {"deny_images": ["bcdb711c-*"]}, None),
    ("denied before engine", make_image("2.11.0_24.3.4_0109", engine="opensearch"), {"deny_images": ["2.11.0_*"]}, "denied"),
    ("engine change", make_image("2.11.0_24.3.4_0109", engine="opensearch"), {}, "engine_change_not_allowed"),
    ("engine unknown", make_image("7.10.2_24.3.4_0109", engine=None), {}, "engine_change_not_allowed"),
    ("engine case ignored", make_image("7.10.2_24.3.4_0109", engine="Elasticsearch"), {}, None),
    ("engine change allowed", make_image("2.11.0_24.3.4_0109", engine="opensearch"), {"allow_cross_engine": True}, None),
    (
        "engine before version",
        make_image("1.3.6_24.3.4_0109", engine="opensearch"),
        {"versions": {"opensearch": ">=2.11"}},
        "engine_change_not_allowed",
    ),
    ("version below range", make_image("7.9.3_24.3.4_0109"), {"versions": {"elasticsearch": ">=7.10,<8"}}, "version_not_allowed"),
    ("version above range", make_image("8.1.0_24.3.4_0109"), {"versions": {"elasticsearch": ">=7.10,<8"}}, "version_not_allowed"),
    ("version in range", make_image("7.10.2_24.3.4_0109"), {"versions": {"elasticsearch": ">=7.10,<8"}}, None),
    ("version missing", make_image("7.10.2_24.3.4_0109", version=None), {"versions": {"elasticsearch": ">=7"}}, "version_not_allowed"),
    ("version malformed", make_image("7.10.2_24.3.4_0109", version="7.10.2-beta"), {"versions": {"elasticsearch": ">=7"}}, "version_not_allowed"),
    ("version missing, no range", make_image("7.10.2_24.3.4_0109", version=None), {}, None),
    ("range of other engine only", make_image("7.9.3_24.3.4_0109"), {"versions": {"opensearch": ">=2.11"}}, None),
    (
        "range of image engine",
        make_image("1.3.6_24.3.4_0109", engine="opensearch"),
        {"allow_cross_engine": True, "versions": {"opensearch": ">=2.11", "elasticsearch": ">=1"}},
        "version_not_allowed",
    ),
    (
        "range of image engine met",
        make_image("2.11.0_24.3.4_0109", engine="opensearch"),
        {"allow_cross_engine": True, "versions": {"opensearch": ">=2.11", "elasticsearch": ">=7.10"}},
        None,
    ),
    (
        "unknown engine, ranges set",
        make_image("7.10.2_24.3.4_0109", engine=None),
        {"allow_cross_engine": True, "versions": {"opensearch": ">=2.11"}},
        "version_not_allowed",
    ),
    (
        "version before age",
        make_image("7.9.3_24.3.4_1203"),
        {"versions": {"elasticsearch": ">=7.10"}, "min_age_days": {"same": 7}},
        "version_not_allowed",
    ),
    ("too new", make_image("7.10.2_26.3.4_1130"), {"min_age_days": {"same": 7}}, "too_new"),
    ("built today", make_image("7.10.2_26.3.4_1204"), {"min_age_days": {"same": 1}}, "too_new"),
    ("exactly minimum age", make_image("7.10.2_26.3.4_1127"), {"min_age_days": {"same": 7}}, None),
    ("one day short", make_image("7.10.2_26.3.4_1128"), {"min_age_days": {"same": 7}}, "too_new"),
    ("minimum zero", make_image("7.10.2_26.3.4_1204"), {"min_age_days": {"same": 0}}, None),
    ("minimum of other type", make_image("7.10.2_26.3.4_1204"), {"min_age_days": {"cross": 30}}, None),
    # Line 25 built 0109: 2026-01-09 is the later past date, so the image is 329 days old.
    ("year after line", make_image("7.10.2_25.3.4_0109"), {"min_age_days": {"same": 330}}, "too_new"),
    ("year after line old enough", make_image("7.10.2_25.3.4_0109"), {"min_age_days": {"same": 329}}, None),
    ("unknown age rejected", make_image("7.10.2-custom"), {"min_age_days": {"same": 7}, "unknown_age": "reject"}, "unknown_age"),
    ("invalid day rejected", make_image("7.10.2_24.3.4_0230"), {"min_age_days": {"same": 7}, "unknown_age": "reject"}, "unknown_age"),
    ("unknown age allowed", make_image("7.10.2-custom"), {"min_age_days": {"same": 7}, "unknown_age": "allow"}, None),
    ("unknown age, no minimum", make_image("7.10.2-custom"), {"unknown_age": "reject"}, None),
    ("unknown age, minimum zero", make_image("7.10.2-custom"), {"min_age_days": {"same": 0}, "unknown_age": "reject"}, None),
    ("future date is unknown", make_image("7.10.2_26.3.4_1225"), {"min_age_days": {"same": 7}, "unknown_age": "reject"}, "unknown_age"),
]


@pytest.mark.parametrize(
    ("image", "policy", "expected"),
    [case[1:] for case in SINGLE_IMAGE_CASES],
    ids=[case[0] for case in SINGLE_IMAGE_CASES],
)
def test_single_image_reason(image: TargetImage, policy: dict[str, Any], expected: str | None) -> None:
    decision = decide([image], policy)

    assert len(decision.candidates) == 1
    candidate = decision.candidates[0]
    assert candidate.rejected_reason == expected
    assert candidate.selected is (expected is None)
    assert decision.event_type == ("upgrade.ready" if expected is None else "upgrade.none")
    assert decision.reason == (None if expected is None else "all_rejected_by_policy")


def test_current_image_unknown() -> None:
    decision = decide([make_image("7.10.2_24.3.4_0109")], cluster=make_cluster(current=None))

    assert decision.candidates[0].selected


def test_current_image_empty_name() -> None:
    image = make_image("", version="7.10.2")

    decision = decide([image], cluster=make_cluster(current=""))

    assert decision.candidates[0].rejected_reason is None


def test_age_uses_upgrade_type() -> None:
    image = make_image("7.10.2_26.3.4_1120")
    policy = {"min_age_days": {"same": 7, "cross": 30}}

    assert decide([image], policy, upgrade_type="same").candidates[0].selected
    assert decide([image], policy, upgrade_type="cross").candidates[0].rejected_reason == "too_new"


# --- Ranking among eligible images ---------------------------------------------------------------

RANKING_CASES = [
    (
        "priority first",
        [make_image("7.9.3_24.3.4_0109", 16), make_image("7.10.2_24.3.4_0109", 15)],
        "7.9.3_24.3.4_0109",
        {"7.10.2_24.3.4_0109": "lower_priority"},
    ),
    (
        "version as numbers",
        [make_image("7.9.3_24.3.4_0109", 16), make_image("7.10.2_24.3.4_0109", 16)],
        "7.10.2_24.3.4_0109",
        {"7.9.3_24.3.4_0109": "lost_tie_break"},
    ),
    (
        "version across engines",
        [make_image("1.3.6_x", 16, engine="opensearch"), make_image("2.11.0_x", 16, engine="opensearch")],
        "2.11.0_x",
        {"1.3.6_x": "lost_tie_break"},
    ),
    (
        "version beats malformed",
        [make_image("a", 16, version="7.10.2-beta"), make_image("b", 16, version="7.9.3")],
        "b",
        {"a": "lost_tie_break"},
    ),
    (
        "version beats missing",
        [make_image("a", 16, version=None), make_image("b", 16, version="1")],
        "b",
        {"a": "lost_tie_break"},
    ),
    (
        "name as numbers",
        [make_image("7.10.2_24.3.4_0109", 16), make_image("7.10.2_24.3.10_0109", 16)],
        "7.10.2_24.3.10_0109",
        {"7.10.2_24.3.4_0109": "lost_tie_break"},
    ),
    (
        "name by build day",
        [make_image("7.10.2_24.3.4_0110", 16), make_image("7.10.2_24.3.4_0109", 16)],
        "7.10.2_24.3.4_0110",
        {"7.10.2_24.3.4_0109": "lost_tie_break"},
    ),
    (
        "three ranks",
        [
            make_image("7.10.2_24.3.4_0109", 16),
            make_image("7.10.2_24.3.3_0102", 15),
            make_image("7.10.2_24.3.5_0110", 16),
            make_image("7.10.2_24.3.2_0101", 3),
        ],
        "7.10.2_24.3.5_0110",
        {"7.10.2_24.3.4_0109": "lost_tie_break", "7.10.2_24.3.3_0102": "lower_priority", "7.10.2_24.3.2_0101": "lower_priority"},
    ),
    (
        "negative priority",
        [make_image("7.10.2_24.3.4_0109", -1), make_image("7.10.2_24.3.3_0102", 0)],
        "7.10.2_24.3.3_0102",
        {"7.10.2_24.3.4_0109": "lower_priority"},
    ),
]


@pytest.mark.parametrize(
    ("images", "winner", "others"),
    [case[1:] for case in RANKING_CASES],
    ids=[case[0] for case in RANKING_CASES],
)
def test_ranking(images: list[TargetImage], winner: str, others: dict[str, str]) -> None:
    decision = decide(images, {"allow_cross_engine": True})

    assert decision.chosen is not None
    assert decision.chosen.image.display_name == winner
    for name, reason in others.items():
        assert reasons(decision)[name] == reason


def test_ranking_smaller_id() -> None:
    first = make_image("7.10.2_24.3.4_0109", 16, image_id="b0000000-0000-0000-0000-000000000000")
    second = make_image("7.10.2_24.3.4_0109", 16, image_id="a0000000-0000-0000-0000-000000000000")

    decision = decide([first, second])

    assert decision.chosen is not None
    assert decision.chosen.image.id == second.id
    assert decision.candidates[1].image.id == first.id
    assert decision.candidates[1].rejected_reason == "lost_tie_break"


def test_near_duplicates_input_order() -> None:
    # Same ID, name, priority and version: only the engine's spelling and the description differ.
    first = make_image("7.10.2_24.3.4_0109", 16, engine="elasticsearch")
    second = first.model_copy(update={"datastore_type": "Elasticsearch", "image_desc": "rebuilt"})

    forward = decide([first, second])
    backward = decide([second, first])

    assert forward == backward
    assert forward.candidates[1].rejected_reason == "lost_tie_break"


def test_too_new_never_chosen() -> None:
    images = [make_image("7.10.2_26.3.4_1130", 99), make_image("7.10.2_24.3.4_0109", 1)]

    decision = decide(images, {"min_age_days": {"same": 7}})

    assert decision.chosen is not None
    assert decision.chosen.image.display_name == "7.10.2_24.3.4_0109"
    assert reasons(decision)["7.10.2_26.3.4_1130"] == "too_new"


def test_candidates_eligible_first() -> None:
    images = [
        make_image("7.10.2_24.3.1_0101", 1),
        make_image("7.10.2_26.3.4_1130", 99),
        make_image("7.10.2_24.3.4_0109", 16),
        make_image("7.10.2_26.3.4_1201", 50),
        make_image("7.10.2_24.3.3_0102", 15),
    ]

    decision = decide(images, {"min_age_days": {"same": 7}})

    assert [c.image.display_name for c in decision.candidates] == [
        "7.10.2_24.3.4_0109",
        "7.10.2_24.3.3_0102",
        "7.10.2_24.3.1_0101",
        "7.10.2_26.3.4_1130",
        "7.10.2_26.3.4_1201",
    ]


# --- Several upgrade types ------------------------------------------------------------------------


def offers_of(**types: list[TargetImage]) -> list[Offer]:
    return [Offer(name.replace("_", "-"), False, images) for name, images in types.items()]


def test_first_type_wins() -> None:
    offers = offers_of(same=[make_image("7.6.2_24.3.4_0109", 1)], cross=[make_image("7.10.2_24.3.4_0109", 99)])

    decision = choose(make_cluster(), offers, [], Policy(), TODAY)

    assert decision.upgrade_type == "same"
    assert decision.chosen is not None
    assert decision.chosen.image.display_name == "7.6.2_24.3.4_0109"
    assert reasons(decision)["7.10.2_24.3.4_0109"] == "earlier_type_chosen"


def test_offer_order_decides() -> None:
    offers = offers_of(cross=[make_image("7.10.2_24.3.4_0109", 1)], same=[make_image("7.6.2_24.3.4_0109", 99)])

    decision = choose(make_cluster(), offers, [], Policy(), TODAY)

    assert decision.upgrade_type == "cross"
    assert reasons(decision)["7.6.2_24.3.4_0109"] == "earlier_type_chosen"


def test_later_type_when_first_rejected() -> None:
    offers = offers_of(
        same=[make_image("7.6.2_26.3.4_1203", 5), make_image(CURRENT, 4)],
        cross=[make_image("7.10.2_24.3.4_0109", 3), make_image("7.10.2_24.3.3_0102", 2)],
    )
    policy = parse_policy({"min_age_days": {"same": 7}})

    decision = choose(make_cluster(), offers, [], policy, TODAY)

    assert decision.upgrade_type == "cross"
    assert reasons(decision) == {
        "7.6.2_26.3.4_1203": "too_new",
        CURRENT: "current_image",
        "7.10.2_24.3.4_0109": None,
        "7.10.2_24.3.3_0102": "lower_priority",
    }


def test_later_type_keeps_policy_reason() -> None:
    offers = offers_of(
        same=[make_image("7.6.2_24.3.4_0109")],
        cross=[make_image("7.10.2_24.3.4_0109"), make_image("2.11.0_24.3.4_0109", engine="opensearch")],
    )

    decision = choose(make_cluster(), offers, [], Policy(), TODAY)

    assert reasons(decision)["7.10.2_24.3.4_0109"] == "earlier_type_chosen"
    assert reasons(decision)["2.11.0_24.3.4_0109"] == "engine_change_not_allowed"


def test_candidates_in_type_order() -> None:
    offers = offers_of(
        same=[make_image("7.6.2_24.3.4_0109")],
        cross=[make_image("7.10.2_24.3.4_0109", 50)],
        cross_engine=[make_image("2.11.0_24.3.4_0109", 90, engine="opensearch")],
    )

    decision = choose(make_cluster(), offers, [], Policy(), TODAY)

    assert [c.upgrade_type for c in decision.candidates] == ["same", "cross", "cross-engine"]


def test_chosen_flag_of_chosen_type() -> None:
    offers = [Offer("same", True, []), Offer("cross", False, [make_image("7.10.2_24.3.4_0109")])]

    decision = choose(make_cluster(), offers, [], Policy(), TODAY)

    assert decision.event_type == "upgrade.ready"
    assert decision.need_upload_upgrade_plugin is False


# --- --type cross-engine under the default policy ------------------------------------------------


def test_override_cross_engine_rejected() -> None:
    policy = Policy().with_upgrade_types(["cross-engine"])
    offers = [Offer("cross-engine", False, [make_image("2.11.0_24.3.4_0109", engine="opensearch")])]

    decision = choose(make_cluster(), offers, [], policy, TODAY)

    assert decision.event_type == "upgrade.none"
    assert decision.reason == "all_rejected_by_policy"
    assert decision.upgrade_type == "cross-engine"
    assert decision.candidates[0].rejected_reason == "engine_change_not_allowed"


# --- Event types and reason codes ----------------------------------------------------------------

EVENT_CASES = [
    # (case, cluster, plugin needed, policy, event type, reason)
    ("ready", make_cluster(), False, {}, "upgrade.ready", None),
    ("not available", make_cluster(status="303"), False, {}, "upgrade.blocked", "cluster_not_available"),
    ("busy status", make_cluster(status="100"), False, {}, "upgrade.blocked", "cluster_not_available"),
    ("status unknown", make_cluster(status=None), False, {}, "upgrade.blocked", "cluster_not_available"),
    ("status first", make_cluster(status="303", actions=["REBOOTING"]), True, {}, "upgrade.blocked", "cluster_not_available"),
    ("operation", make_cluster(actions=["GROWING"]), False, {}, "upgrade.blocked", "operation_in_progress"),
    ("operation before plugin", make_cluster(actions=["UPGRADING"]), True, {}, "upgrade.blocked", "operation_in_progress"),
    ("plugin blocked", make_cluster(), True, {}, "upgrade.blocked", "plugin_upload_required"),
    ("plugin allowed", make_cluster(), True, {"plugin_upload": "allow"}, "upgrade.ready", None),
]


@pytest.mark.parametrize(
    ("cluster", "plugin", "policy", "event_type", "reason"),
    [case[1:] for case in EVENT_CASES],
    ids=[case[0] for case in EVENT_CASES],
)
def test_event_type(cluster: Cluster, plugin: bool, policy: dict[str, Any], event_type: str, reason: str | None) -> None:
    decision = decide([make_image("7.10.2_24.3.4_0109", 16)], policy, cluster=cluster, plugin=plugin)

    assert decision.event_type == event_type
    assert decision.reason == reason
    assert decision.chosen is not None
    assert decision.chosen.selected
    assert decision.target_image == decision.chosen.image
    assert decision.need_upload_upgrade_plugin is plugin


NONE_CASES = [
    # (case, cluster, offers, unsupported types, reason, upgrade type)
    ("no offers", make_cluster(), [], [], "no_target_images", None),
    ("empty offers", make_cluster(), [Offer("same", False, []), Offer("cross", False, [])], [], "no_target_images", "cross"),
    ("all unsupported", make_cluster(), [], ["same", "cross"], "no_target_images", "cross"),
    ("empty and unsupported", make_cluster(), [Offer("same", False, [])], ["cross"], "no_target_images", "cross"),
    ("all rejected", make_cluster(), [Offer("same", False, [make_image(CURRENT)])], [], "all_rejected_by_policy", "same"),
    (
        "rejected and unsupported",
        make_cluster(),
        [Offer("same", False, [make_image(CURRENT)])],
        ["cross"],
        "all_rejected_by_policy",
        "cross",
    ),
    ("logstash", make_cluster(engine="logstash"), [Offer("same", False, [make_image("7.10.2_24.3.4_0109")])], [], "unsupported_engine", "same"),
    ("engine unknown", make_cluster(engine=None), [], [], "unsupported_engine", None),
    ("engine upper case", make_cluster(engine="OpenSearch"), [], [], "no_target_images", None),
]


@pytest.mark.parametrize(
    ("cluster", "offers", "unsupported", "reason", "upgrade_type"),
    [case[1:] for case in NONE_CASES],
    ids=[case[0] for case in NONE_CASES],
)
def test_event_none(
    cluster: Cluster, offers: list[Offer], unsupported: list[str], reason: str, upgrade_type: str | None
) -> None:
    decision = choose(cluster, offers, unsupported, Policy(), TODAY)

    assert decision.event_type == "upgrade.none"
    assert decision.reason == reason
    assert decision.chosen is None
    assert decision.target_image is None
    assert decision.upgrade_type == upgrade_type
    assert decision.need_upload_upgrade_plugin is False
    assert decision.unsupported_types == unsupported


def test_unsupported_engine_lists_nothing() -> None:
    decision = choose(make_cluster(engine="logstash"), [Offer("same", False, [make_image("x")])], [], Policy(), TODAY)

    assert decision.candidates == []


def test_last_type_in_policy_order() -> None:
    # cross-engine was queried after same and cross, so it is the last type tried.
    policy = parse_policy({"upgrade_types": ["same", "cross", "cross-engine"], "allow_cross_engine": True})

    decision = choose(make_cluster(), [Offer("same", False, []), Offer("cross-engine", False, [])], ["cross"], policy, TODAY)

    assert decision.upgrade_type == "cross-engine"


def test_unsupported_older_spelling() -> None:
    decision = choose(make_cluster(), [Offer("same", False, [])], ["crossEngine"], Policy(), TODAY)

    assert decision.unsupported_types == ["cross-engine"]


# --- Offers and arguments -------------------------------------------------------------------------


def test_offer_canonical_type() -> None:
    assert Offer("crossEngine", False, []).upgrade_type == "cross-engine"


def test_offer_rejects_unknown_type() -> None:
    with pytest.raises(ids.InvalidValue):
        Offer("upgrade", False, [])


def test_offer_from_target_images() -> None:
    target = TargetImages(upgrade_type="cross", need_upload_upgrade_plugin=True, images=[make_image("7.10.2_24.3.4_0109")])

    offer = Offer.from_target_images(target)

    assert offer.upgrade_type == "cross"
    assert offer.need_upload_upgrade_plugin is True
    assert offer.images == (target.images[0],)


@pytest.mark.parametrize(
    ("offers", "unsupported"),
    [
        ([Offer("same", False, []), Offer("same", False, [])], []),
        ([Offer("cross", False, [])], ["cross"]),
        ([], ["same", "same"]),
    ],
)
def test_repeated_type_rejected(offers: list[Offer], unsupported: list[str]) -> None:
    with pytest.raises(ValueError, match="appears twice"):
        choose(make_cluster(), offers, unsupported, Policy(), TODAY)


def test_today_as_datetime() -> None:
    image = make_image("7.10.2_26.3.4_1130")
    policy = parse_policy({"min_age_days": {"same": 7}})

    decision = choose(make_cluster(), [Offer("same", False, [image])], [], policy, datetime(2026, 12, 7, 23, 59))

    assert decision.candidates[0].selected


# --- Detail sentences -----------------------------------------------------------------------------


def test_detail_example() -> None:
    images = [
        make_image("7.10.2_24.3.4_0109", 16),
        make_image("7.10.2_24.3.3_0102", 15),
        make_image("7.10.2_24.3.2_0101", 14),
        make_image("7.10.2_26.3.5_1130", 20),
    ]

    decision = decide(images, {"min_age_days": {"same": 7}})

    assert decision.detail == (
        "7.10.2_24.3.4_0109 has the highest priority 16 among 3 eligible same-version images;"
        " 1 rejected as too new (built 2026-11-30, same-version minimum age 7 days)."
    )


DETAIL_CASES = [
    # (case, images, policy, cluster, expected fragments)
    ("only image", [make_image("7.10.2_24.3.4_0109")], {}, make_cluster(), ["7.10.2_24.3.4_0109 is the only eligible same-version image."]),
    (
        "tie by version",
        [make_image("7.10.2_24.3.4_0109", 16), make_image("7.9.3_24.3.4_0109", 16)],
        {},
        make_cluster(),
        ["wins the tie with 1 other image of that priority by its higher datastore version 7.10.2"],
    ),
    (
        "tie by name",
        [make_image("7.10.2_24.3.10_0109", 16), make_image("7.10.2_24.3.4_0109", 16), make_image("7.10.2_24.3.5_0109", 16)],
        {},
        make_cluster(),
        ["wins the tie with 2 other images of that priority by its later image name"],
    ),
    (
        "tie by ID",
        [make_image("a", 16, "7", image_id="1"), make_image("a", 16, "7", image_id="2")],
        {},
        make_cluster(current=None),
        ["by its smaller image ID"],
    ),
    (
        "rejections listed",
        [
            make_image("7.10.2_24.3.4_0109", 16),
            make_image(CURRENT),
            make_image("7.10.2_24.3.3_0102"),
            make_image("2.11.0_24.3.4_0109", engine="opensearch"),
            make_image("7.9.3_24.3.4_0109"),
            make_image("7.10.2_26.3.9_1201"),
            make_image("7.10.2_26.3.9_1128"),
            make_image("7.10.2-custom", version="7.10.2"),
        ],
        {
            "deny_images": ["7.10.2_24.3.3_*"],
            "versions": {"elasticsearch": ">=7.10"},
            "min_age_days": {"same": 7},
            "unknown_age": "reject",
        },
        make_cluster(),
        [
            "1 rejected as the current image, 1 denied by deny_images,"
            " 1 rejected as an engine change (allow_cross_engine is false),"
            " 1 rejected as outside the allowed versions (elasticsearch >=7.10),"
            " 2 rejected as too new (built 2026-11-28 to 2026-12-01, same-version minimum age 7 days),"
            " 1 rejected as of unknown age (same-version minimum age 7 days, unknown_age is reject)."
        ],
    ),
    (
        "not available",
        [make_image("7.10.2_24.3.4_0109")],
        {},
        make_cluster(status="303"),
        ["is the only eligible same-version image, but the cluster status is '303', not '200' (available)."],
    ),
    (
        "operation",
        [make_image("7.10.2_24.3.4_0109")],
        {},
        make_cluster(actions=["GROWING"]),
        ["but the cluster has an operation in progress ('GROWING')."],
    ),
    (
        "all rejected",
        [make_image(CURRENT), make_image("7.10.2_26.3.9_1201")],
        {"min_age_days": {"same": 7}},
        make_cluster(),
        ["None of the 2 target images is eligible: 1 rejected as the current image, 1 rejected as too new"],
    ),
    ("nothing offered", [], {}, make_cluster(), ["CSS offers no same-version target image."]),
    ("engine", [], {}, make_cluster(engine="logstash"), ["engine 'logstash' is not supported"]),
]


@pytest.mark.parametrize(
    ("images", "policy", "cluster", "fragments"),
    [case[1:] for case in DETAIL_CASES],
    ids=[case[0] for case in DETAIL_CASES],
)
def test_detail(images: list[TargetImage], policy: dict[str, Any], cluster: Cluster, fragments: list[str]) -> None:
    decision = decide(images, policy, cluster=cluster)

    for fragment in fragments:
        assert fragment in decision.detail


def test_detail_plugin() -> None:
    decision = decide([make_image("7.10.2_24.3.4_0109")], plugin=True)

    assert decision.detail.endswith("but the target needs an upgrade plugin uploaded first and plugin_upload is block.")


def test_detail_later_type() -> None:
    offers = offers_of(same=[], cross=[make_image("7.10.2_24.3.4_0109")], cross_engine=[make_image("7.10.2_24.3.5_0109")])
    policy = parse_policy({"upgrade_types": ["same", "cross", "cross-engine"], "allow_cross_engine": True})

    decision = choose(make_cluster(), offers, [], policy, TODAY)

    assert decision.detail == (
        "7.10.2_24.3.4_0109 is the only eligible cross-version image, CSS offering no same-version image;"
        " 1 eligible cross-engine image left aside because an earlier upgrade type has one."
    )


def test_detail_unsupported() -> None:
    decision = choose(make_cluster(), [Offer("same", False, [])], ["cross"], Policy(), TODAY)

    assert decision.detail == "CSS offers no same-version target image and returned 'invalid request' for cross."


def test_detail_one_sentence() -> None:
    decision = decide([make_image("7.10.2_24.3.4_0109", 16), make_image("7.9.3_24.3.4_0109", 16)])

    assert decision.detail.endswith(".")
    assert ". " not in decision.detail
