"""Pydantic models of the CSS API responses that css-upgrade-scout reads.

Field names are the snake_case form of the API's camelCase names, which stay accepted as aliases.
Unknown fields are ignored and optional ones may be missing, because the API grows fields over time
(`totalSize` arrived in 2025, `subVersion` and `isEosCluster` in 2025). Fields that a decision
depends on (`imageInfoList`, an image's `id` and `priority`) are required: a body without them is
malformed, and the client reports it as a server error instead of reading it as "no images".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of every response model: camelCase aliases, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class TargetImage(ApiModel):
    """One image a cluster can be upgraded to (`GetTargetImageIdDetail`)."""

    id: str = Field(min_length=1)
    display_name: str = ""
    image_desc: str | None = None
    datastore_type: str | None = None
    datastore_version: str | None = None
    priority: int


class TargetImagePage(ApiModel):
    """One page of ListImages (`GET .../target/{upgrade_type}/images`)."""

    need_upload_upgrade_plugin: bool = False
    image_info_list: list[TargetImage]
    total_size: int | None = None


class TargetImages(ApiModel):
    """Every target image of one upgrade type, read across all pages."""

    upgrade_type: str
    need_upload_upgrade_plugin: bool
    images: list[TargetImage]


class Datastore(ApiModel):
    """The engine of a cluster (`datastore` in the cluster details)."""

    type: str | None = None
    version: str | None = None
    sub_version: str | None = None
    is_eos_cluster: bool | None = None


class FailedReason(ApiModel):
    """The error code and message of a cluster in a failed state."""

    error_code: str | None = None
    error_msg: str | None = None


class Cluster(ApiModel):
    """A cluster as ShowClusterDetail and ListClustersDetails return it.

    `status` is a string in the API (`"100"` creating or busy, `"200"` available, `"300"` unavailable,
    `"303"` failed); a number is accepted and turned into its string.
    """

    id: str = Field(min_length=1)
    name: str | None = None
    status: str | None = None
    datastore: Datastore = Field(default_factory=Datastore)
    actions: list[str] = Field(default_factory=list)
    action_progress: dict[str, Any] = Field(default_factory=dict)
    failed_reason: FailedReason | None = None
    created: str | None = None
    updated: str | None = None
    enterprise_project_id: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_as_text(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("actions", mode="before")
    @classmethod
    def _actions_never_null(cls, value: object) -> object:
        return [] if value is None else value

    @property
    def is_available(self) -> bool:
        return self.status == "200"

    @property
    def current_image(self) -> str | None:
        return self.datastore.sub_version


class ClusterPage(ApiModel):
    """One page of ListClustersDetails (`GET /v1.0/{project_id}/clusters`)."""

    total_size: int | None = None
    clusters: list[Cluster]


class UpgradeTask(ApiModel):
    """One upgrade task from UpgradeDetail (`GetUpgradeDetailInfo`).

    `total_nodes` and `completed_nodes` are comma-separated node names in the API; `execute_times`
    is the number of attempts, sent as a string.
    """

    id: str = Field(min_length=1)
    start_time: str | None = None
    end_time: str | None = None
    status: str
    agency_name: str | None = None
    image_info: TargetImage | None = None
    total_nodes: str | None = None
    completed_nodes: str | None = None
    current_node_name: str | None = None
    execute_times: str | None = None
    fail_message: str | None = None

    @field_validator("execute_times", mode="before")
    @classmethod
    def _execute_times_as_text(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @property
    def total_node_names(self) -> list[str]:
        return _split_names(self.total_nodes)

    @property
    def completed_node_names(self) -> list[str]:
        return _split_names(self.completed_nodes)


class UpgradeTaskPage(ApiModel):
    """One page of UpgradeDetail (`GET .../upgrade/detail`)."""

    total_size: int | None = None
    detail_list: list[UpgradeTask]


def _split_names(value: str | None) -> list[str]:
    if not value:
        return []
    return [name.strip() for name in value.split(",") if name.strip()]


# Why a candidate image was not chosen: the closed list of the event schema, in the order in which
# the policy tests them (the first that applies is reported).
REJECTION_REASONS = (
    "current_image",
    "denied",
    "engine_change_not_allowed",
    "version_not_allowed",
    "too_new",
    "unknown_age",
    "earlier_type_chosen",
    "lower_priority",
    "lost_tie_break",
)


class Candidate(BaseModel):
    """A target image as the policy judged it: chosen, or rejected with one reason code."""

    model_config = ConfigDict(frozen=True)

    image: TargetImage
    upgrade_type: str
    selected: bool = False
    rejected_reason: str | None = None
