"""The emulator's catalog: credentials, projects, clusters and their target images, loaded from JSON.

Keys may be written in snake_case or in the API's camelCase (`sub_version` or `subVersion`). Unknown
keys are rejected, so that a typo in a catalog file fails loudly instead of being ignored. The file
format is described in docs/emulator.md.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

UpgradeType = Literal["same", "cross", "cross-engine"]
UPGRADE_TYPES: tuple[str, ...] = ("same", "cross", "cross-engine")
DatastoreType = Literal["elasticsearch", "opensearch", "logstash"]
Outcome = Literal["SUCCESS", "FAILED", "PARTIAL_FAILED"]

DEFAULT_PROJECT_ID = "6204a5bd270343b5885144cf9c8c158d"
DEFAULT_REGION = "ap-southeast-1"
DEFAULT_ACCESS_KEY = "EMULATORAK000000000000"
DEFAULT_SECRET_KEY = "emulator-secret-key-do-not-use"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE)
_PROJECT_ID = re.compile(r"[0-9a-f]{32}", re.ASCII | re.IGNORECASE)
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", re.ASCII)

# Accepted as input for the older spelling of the cross-engine upgrade type.
_TYPE_SPELLINGS = {"crossEngine": "cross-engine"}


class CatalogError(ValueError):
    """A catalog file or object that cannot be used; the message names the file and the field."""


class CatalogModel(BaseModel):
    """Base of the catalog models: snake_case or camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Credential(CatalogModel):
    """An AK/SK pair the emulator accepts; with `security_token`, a temporary credential.

    `projects` limits the projects the credential may call; None allows every project of the catalog.
    """

    ak: str = Field(min_length=1, pattern=r"^[A-Za-z0-9]+$")
    sk: str = Field(min_length=1, repr=False)
    security_token: str | None = Field(default=None, min_length=1, repr=False)
    projects: tuple[str, ...] | None = None

    @field_validator("projects")
    @classmethod
    def _lower_project_ids(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(_project_id(item) for item in value)


class Image(CatalogModel):
    """A target image, in the shape of a ListImages item (`GetTargetImageIdDetail`)."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$")
    display_name: str = Field(min_length=1)
    image_desc: str = ""
    datastore_type: DatastoreType
    datastore_version: str = Field(pattern=r"^\d+(\.\d+)*$")
    priority: int

    def to_api(self) -> dict[str, object]:
        """Return the image as the API sends it (camelCase keys)."""
        return {
            "id": self.id,
            "displayName": self.display_name,
            "imageDesc": self.image_desc,
            "datastoreType": self.datastore_type,
            "datastoreVersion": self.datastore_version,
            "priority": self.priority,
        }


class Datastore(CatalogModel):
    """A cluster's engine: type, version and current image (`subVersion`)."""

    type: DatastoreType
    version: str = Field(pattern=r"^\d+(\.\d+)*$")
    sub_version: str | None = None
    is_eos_cluster: bool = False


class FailedReason(CatalogModel):
    """Error code and message of a failed cluster (`failedReason` in the cluster details)."""

    error_code: str
    error_msg: str


class UpgradeBehaviour(CatalogModel):
    """How the cluster's upgrade tasks end.

    A task reports RUNNING on the first `polls_before_end` UpgradeDetail calls after it starts (or is
    retried) and its outcome on the next call. Attempt n of the cluster (first run and every retry,
    counted across tasks) ends with `outcomes[n]`. Once the list is used up, its last entry repeats.
    """

    polls_before_end: int = Field(default=1, ge=0, le=1000)
    outcomes: tuple[Outcome, ...] = Field(default=("SUCCESS",), min_length=1)
    fail_message: str = "Failed to upgrade node: the node did not rejoin the cluster within the timeout."

    def outcome_of(self, attempt: int) -> str:
        """Return the outcome of attempt number `attempt` (0 for the first)."""
        return self.outcomes[min(attempt, len(self.outcomes) - 1)]


class ClusterSpec(CatalogModel):
    """A cluster of the catalog: what ShowClusterDetail returns plus the emulator's behaviour settings.

    `images` maps an upgrade type to its target images, each an Image or the ID or display name of an
    image of the catalog's shared `images` list. A cluster that is `deleted` is left out of the cluster list and
    every call about it fails as for an unknown cluster.
    """

    id: str
    name: str = Field(min_length=1, max_length=64)
    status: str = Field(default="200", pattern=r"^\d{3}$")
    datastore: Datastore
    actions: tuple[str, ...] = ()
    created: str = "2024-01-15T08:00:00"
    updated: str | None = None
    node_count: int = Field(default=3, ge=1, le=200)
    failed_reason: FailedReason | None = None
    images: dict[UpgradeType, tuple[Image | str, ...]] = Field(default_factory=dict)
    need_upload_upgrade_plugin: dict[UpgradeType, bool] = Field(default_factory=dict)
    unsupported_types: tuple[UpgradeType, ...] = ()
    deleted: bool = False
    upgrade: UpgradeBehaviour = Field(default_factory=UpgradeBehaviour)

    @field_validator("id")
    @classmethod
    def _cluster_id(cls, value: str) -> str:
        if not _UUID.fullmatch(value):
            raise ValueError(f"cluster id {value!r} is not a UUID (8-4-4-4-12 hexadecimal digits)")
        return value.lower()

    @field_validator("created", "updated")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        if value is not None and not _TIMESTAMP.fullmatch(value):
            raise ValueError(f"timestamp {value!r} is not in the form 2024-01-15T08:00:00")
        return value

    @field_validator("images", "need_upload_upgrade_plugin", mode="before")
    @classmethod
    def _canonical_type_keys(cls, value: object) -> object:
        if isinstance(value, dict):
            return {_TYPE_SPELLINGS.get(key, key): item for key, item in value.items()}
        return value

    @field_validator("unsupported_types", mode="before")
    @classmethod
    def _canonical_type_names(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            return [_TYPE_SPELLINGS.get(item, item) if isinstance(item, str) else item for item in value]
        return value


class Project(CatalogModel):
    """A project (32 hexadecimal digits) and its clusters."""

    id: str
    clusters: tuple[ClusterSpec, ...] = ()

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _project_id(value)


class Catalog(CatalogModel):
    """Everything the emulator serves: credentials, shared images and projects with clusters."""

    region: str = DEFAULT_REGION
    credentials: tuple[Credential, ...]
    images: tuple[Image, ...] = ()
    projects: tuple[Project, ...]

    @model_validator(mode="after")
    def _check_references(self) -> "Catalog":
        if not self.credentials:
            raise ValueError("credentials must list at least one access key")
        if not self.projects:
            raise ValueError("projects must list at least one project")
        _check_unique("access key", [credential.ak for credential in self.credentials])
        _check_unique("image id", [image.id for image in self.images])
        _check_unique("project id", [project.id for project in self.projects])
        _check_unique("cluster id", [cluster.id for project in self.projects for cluster in project.clusters])

        known_projects = {project.id for project in self.projects}
        for credential in self.credentials:
            for project_id in credential.projects or ():
                if project_id not in known_projects:
                    raise ValueError(f"credential {credential.ak} names unknown project {project_id}")

        _check_unique("image display name", [image.display_name for image in self.images])
        shared = self.shared_images()
        for project in self.projects:
            for cluster in project.clusters:
                for upgrade_type, entries in cluster.images.items():
                    for entry in entries:
                        if isinstance(entry, str) and entry not in shared:
                            raise ValueError(
                                f"cluster {cluster.id} lists unknown image {entry!r} for upgrade type {upgrade_type}: "
                                "expected an image object, or the id or displayName of an image in the catalog's images"
                            )
        return self

    def shared_images(self) -> dict[str, Image]:
        """Return the catalog's shared images by ID and by display name."""
        by_reference = {image.display_name: image for image in self.images}
        by_reference.update({image.id: image for image in self.images})
        return by_reference

    def target_images(self, cluster: ClusterSpec, upgrade_type: str) -> list[Image]:
        """Return a cluster's target images of one upgrade type, with references to shared images resolved."""
        shared = self.shared_images()
        return [shared[entry] if isinstance(entry, str) else entry for entry in cluster.images.get(upgrade_type, ())]

    def project_of(self, cluster_id: str) -> str | None:
        """Return the project ID that contains a cluster, or None."""
        for project in self.projects:
            for cluster in project.clusters:
                if cluster.id == cluster_id:
                    return project.id
        return None

    def cluster(self, cluster_id: str) -> ClusterSpec:
        """Return the catalog entry of a cluster; raise KeyError when there is none."""
        for project in self.projects:
            for cluster in project.clusters:
                if cluster.id == cluster_id.lower():
                    return cluster
        raise KeyError(cluster_id)


def load_catalog(source: str | Path | dict) -> Catalog:
    """Build a catalog from a JSON file path or an already decoded object; raise CatalogError when invalid."""
    if isinstance(source, dict):
        data, origin = source, "catalog"
    else:
        origin = f"catalog file {source}"
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except OSError as error:
            raise CatalogError(f"cannot read {origin}: {error.strerror}") from None
        except ValueError as error:
            raise CatalogError(f"{origin} is not valid JSON: {error}") from None

    try:
        return Catalog.model_validate(data)
    except ValidationError as error:
        raise CatalogError(f"invalid {origin}: {describe_validation_error(error)}") from None


def describe_validation_error(error: ValidationError) -> str:
    """Summarise a pydantic error as `field.path: message` items, leaving out the input values.

    Pydantic's own text repeats the input, which for a catalog includes secret keys.
    """
    items = []
    for detail in error.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in detail["loc"]) or "catalog"
        items.append(f"{location}: {detail['msg']}")
    return "; ".join(items)


def default_catalog() -> Catalog:
    """Return the catalog shipped with the emulator (default_catalog.json)."""
    text = resources.files(__package__).joinpath("default_catalog.json").read_text(encoding="utf-8")
    return load_catalog(json.loads(text))


def _project_id(value: str) -> str:
    if not isinstance(value, str) or not _PROJECT_ID.fullmatch(value):
        raise ValueError(f"project id {value!r} is not 32 hexadecimal digits")
    return value.lower()


def _check_unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


# -- Generated fleets --------------------------------------------------------------------------------

# Image release stamps `<YY.M.P>_<MMDD>`, oldest first. A version line uses the newest few of them.
_RELEASES = (
    "23.1.0_0217",
    "23.6.0_0808",
    "24.1.0_0226",
    "24.3.0_0827",
    "24.3.4_0109",
    "25.3.0_0610",
    "25.9.0_1209",
)

# Engine version lines of a generated fleet, oldest first per engine, with how many releases each has.
_VERSION_LINES: dict[str, tuple[tuple[str, int], ...]] = {
    "elasticsearch": (("6.8.23", 3), ("7.6.2", 4), ("7.9.3", 4), ("7.10.2", 7)),
    "opensearch": (("1.3.6", 4), ("2.11.0", 4), ("2.19.0", 3)),
}
_LOGSTASH_VERSIONS = ("7.10.0", "8.8.1")
_IMAGE_NAMESPACE = uuid.UUID("0b5cbd5e-3f0c-4b8e-9a53-6d1c2f7a9e41")


def generate_catalog(n_clusters: int, seed: int, project_id: str = DEFAULT_PROJECT_ID) -> Catalog:
    """Build a catalog of `n_clusters` clusters in one project, the same for the same arguments.

    Most clusters are available Elasticsearch or OpenSearch clusters with same and cross targets. About
    3 % are unavailable (status 303), 3 % are busy (SNAPSHOTTING), 2 % are Logstash clusters whose
    every upgrade type is unsupported, and a few need a plugin upload. No cluster is deleted, so the
    cluster list's totalSize equals `n_clusters`. Clusters are created one hour apart, newest first.
    """
    if n_clusters < 0:
        raise ValueError(f"n_clusters must be 0 or more, got {n_clusters}")
    rng = random.Random(seed)
    lines = _generated_lines()
    shared = [image for line in lines.values() for image in line]

    clusters = []
    for index in range(n_clusters):
        clusters.append(_generated_cluster(rng, index, n_clusters, lines))

    return Catalog(
        region=DEFAULT_REGION,
        credentials=(Credential(ak=DEFAULT_ACCESS_KEY, sk=DEFAULT_SECRET_KEY),),
        images=tuple(shared),
        projects=(Project(id=project_id, clusters=tuple(clusters)),),
    )


def _generated_lines() -> dict[tuple[str, str], list[Image]]:
    lines: dict[tuple[str, str], list[Image]] = {}
    for engine, versions in _VERSION_LINES.items():
        for rank, (version, count) in enumerate(versions):
            images = []
            for offset, release in enumerate(_RELEASES[-count:]):
                name = f"{version}_{release}"
                images.append(
                    Image(
                        id=str(uuid.uuid5(_IMAGE_NAMESPACE, name)),
                        display_name=name,
                        image_desc=f"Image {name} of {engine} {version}, release {release.split('_')[0]}.",
                        datastore_type=engine,
                        datastore_version=version,
                        priority=rank * 10 + offset + 1,
                    )
                )
            lines[(engine, version)] = images
    return lines


def _generated_cluster(
    rng: random.Random,
    index: int,
    n_clusters: int,
    lines: dict[tuple[str, str], list[Image]],
) -> ClusterSpec:
    cluster_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    # Creation times one hour apart, so that index 0 is the newest cluster.
    created = _timestamp_hours_before("2026-11-30T12:00:00", index)
    name = f"fleet-{n_clusters - index:05d}"

    roll = rng.random()
    if roll < 0.02:
        version = rng.choice(_LOGSTASH_VERSIONS)
        return ClusterSpec(
            id=cluster_id,
            name=name,
            created=created,
            datastore=Datastore(type="logstash", version=version, sub_version=f"{version}_24.3.0_0827"),
            unsupported_types=("same", "cross", "cross-engine"),
        )

    engine = "elasticsearch" if rng.random() < 0.7 else "opensearch"
    versions = [version for version, _ in _VERSION_LINES[engine]]
    version = rng.choice(versions)
    line = lines[(engine, version)]
    current = rng.randrange(len(line))

    images: dict[str, tuple[str, ...]] = {
        "same": tuple(image.id for image in line[current + 1 :]),
        "cross": tuple(
            image.id for newer in versions[versions.index(version) + 1 :] for image in lines[(engine, newer)][-2:]
        ),
    }
    status = "303" if roll < 0.05 else "200"
    actions = ("SNAPSHOTTING",) if 0.05 <= roll < 0.08 else ()
    plugin = 0.08 <= roll < 0.10
    return ClusterSpec(
        id=cluster_id,
        name=name,
        status=status,
        created=created,
        actions=actions,
        node_count=rng.choice((3, 3, 3, 5, 6, 9)),
        datastore=Datastore(type=engine, version=version, sub_version=line[current].display_name),
        failed_reason=FailedReason(error_code="CSS.6000", error_msg="Cluster nodes are unreachable.") if status == "303" else None,
        images=images,
        need_upload_upgrade_plugin={"cross": True} if plugin else {},
        unsupported_types=("cross-engine",),
    )


def _timestamp_hours_before(start: str, hours: int) -> str:
    moment = datetime.fromisoformat(start) - timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
