"""The selection policy: which target image a cluster should move to, and a sentence saying why.

`load_policy` reads the policy (inline JSON, or a JSON or YAML file) and is the only function here
that does I/O. `Policy.effective` applies a profile and a work message's upgrade types, and `choose`
judges every offered image and returns a `Decision`. The result depends only on the arguments, never
on the order of the images or on the clock.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from handler.core import ids
from handler.core.ids import shown
from handler.core.models import Candidate, Cluster, TargetImage, TargetImages
from handler.core.versions import VersionRange, build_date, image_name_key, parse_range, parse_version

# Engines whose clusters this tool can upgrade, as CSS spells `datastore.type` (compared in lower case).
ENGINES: Final = ("elasticsearch", "opensearch")

EventType = Literal["upgrade.ready", "upgrade.blocked", "upgrade.none"]

_PROFILE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)

# The dedupe store adds this many days to the current time. Ten years is far beyond any useful
# quiet period and far below the year 9999 at which datetime arithmetic overflows.
_MAX_RENOTIFY_DAYS: Final = 3650

_POLICY_FILE_SUFFIXES: Final = (".json", ".yaml", ".yml")

_TYPE_LABELS: Final = {"same": "same-version", "cross": "cross-version", "cross-engine": "cross-engine"}


class PolicyError(ValueError):
    """An invalid policy. Carries the key (dotted path such as `min_age_days.same`) and the value."""

    def __init__(self, key: str, value: object, problem: str, origin: str | None = None) -> None:
        self.key = key
        self.value = value
        self.problem = problem
        self.origin = origin
        where = f" in {origin}" if origin else ""
        super().__init__(f"invalid policy{where}: {key} = {shown(value)}: {problem}")

    def under(self, prefix: str) -> PolicyError:
        """Return the same error with its key placed under `prefix` (a profile's path)."""
        return PolicyError(f"{prefix}.{self.key}", self.value, self.problem, self.origin)

    def in_origin(self, origin: str | None) -> PolicyError:
        """Return the same error naming the file it was found in."""
        return PolicyError(self.key, self.value, self.problem, origin)


class Policy(BaseModel):
    """A validated selection policy. Every key is optional; unknown keys are an error.

    Listing `cross-engine` in `upgrade_types` while `allow_cross_engine` is false is invalid in a
    policy file, but this model does not check it: `parse_policy` and `load_policy` do. That way
    an operator's `--type` override (`with_upgrade_types`) can still request cross-engine targets
    and see them rejected as `engine_change_not_allowed`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # Types to try, in order. The first type with an eligible image wins.
    upgrade_types: list[str] = Field(default_factory=lambda: ["same", "cross"])
    # Whether a target may run another engine than the cluster (elasticsearch to opensearch).
    allow_cross_engine: bool = False
    # Allowed target versions per engine, as range strings such as ">=7.10,<8".
    versions: dict[str, str] = Field(default_factory=dict)
    # Image IDs, or glob patterns matched case-sensitively against image names.
    deny_images: list[str] = Field(default_factory=list)
    # Minimum whole days since an image's build day, per upgrade type.
    min_age_days: dict[str, int] = Field(default_factory=dict)
    # What to do with an image of unknown age when a minimum age applies to its type.
    unknown_age: Literal["allow", "reject"] = "allow"
    # Whether an image whose type needs an upgrade plugin uploaded blocks automation.
    plugin_upload: Literal["block", "allow"] = "block"
    # Days an announced event_id stays quiet before it is broadcast again.
    renotify_after_days: int = 7
    # Named partial policies. Each stores only the keys it names, already validated.
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: object) -> object:
        if not isinstance(data, Mapping):
            raise PolicyError("policy", data, "expected an object such as {\"upgrade_types\": [\"same\"]}")
        for key, value in data.items():
            if key not in cls.model_fields:
                raise PolicyError(str(key), value, f"unknown key, expected one of {', '.join(cls.model_fields)}")
        return data

    @field_validator("upgrade_types", mode="before")
    @classmethod
    def _check_upgrade_types(cls, value: object) -> list[str]:
        try:
            return _upgrade_type_list(value, "upgrade_types")
        except ids.InvalidValue as error:
            raise PolicyError(error.field, error.value, f"expected {error.expected}") from None

    @field_validator("allow_cross_engine", mode="before")
    @classmethod
    def _check_allow_cross_engine(cls, value: object) -> bool:
        if not isinstance(value, bool):
            raise PolicyError("allow_cross_engine", value, "expected true or false")
        return value

    @field_validator("versions", mode="before")
    @classmethod
    def _check_versions(cls, value: object) -> dict[str, str]:
        mapping = _mapping(value, "versions")
        ranges: dict[str, str] = {}
        for engine, text in mapping.items():
            key = f"versions.{engine}"
            if not isinstance(engine, str) or engine.lower() not in ENGINES:
                raise PolicyError(key, text, f"unknown engine {shown(engine)}, expected one of {', '.join(ENGINES)}")
            if engine.lower() in ranges:
                raise PolicyError(key, text, f"engine {engine.lower()} is listed twice")
            if not isinstance(text, str):
                raise PolicyError(key, text, "expected a quoted range string such as \">=7.10,<8\"")
            try:
                parse_range(text)
            except ValueError as error:
                raise PolicyError(key, text, f"expected a version range such as \">=7.10,<8\" ({error})") from None
            ranges[engine.lower()] = text
        return ranges

    @field_validator("deny_images", mode="before")
    @classmethod
    def _check_deny_images(cls, value: object) -> list[str]:
        if not isinstance(value, list):
            raise PolicyError("deny_images", value, "expected a list of image IDs or image-name patterns")
        for index, entry in enumerate(value):
            if not isinstance(entry, str) or not entry or entry != entry.strip():
                expected = "expected a non-empty image ID or name pattern without surrounding spaces"
                raise PolicyError(f"deny_images[{index}]", entry, expected)
        return list(value)

    @field_validator("min_age_days", mode="before")
    @classmethod
    def _check_min_age_days(cls, value: object) -> dict[str, int]:
        mapping = _mapping(value, "min_age_days")
        ages: dict[str, int] = {}
        for name, days in mapping.items():
            key = f"min_age_days.{name}"
            try:
                upgrade_type = ids.upgrade_type(name, key)
            except ids.InvalidValue:
                expected = f"unknown upgrade type {shown(name)}, expected one of same, cross, cross-engine"
                raise PolicyError(key, days, expected) from None
            if upgrade_type in ages:
                raise PolicyError(key, days, f"upgrade type {upgrade_type} is listed twice")
            ages[upgrade_type] = _whole_number(days, key, minimum=0, unit="days")
        return ages

    @field_validator("unknown_age", mode="before")
    @classmethod
    def _check_unknown_age(cls, value: object) -> str:
        return _choice(value, "unknown_age", ("allow", "reject"))

    @field_validator("plugin_upload", mode="before")
    @classmethod
    def _check_plugin_upload(cls, value: object) -> str:
        return _choice(value, "plugin_upload", ("block", "allow"))

    @field_validator("renotify_after_days", mode="before")
    @classmethod
    def _check_renotify_after_days(cls, value: object) -> int:
        return _whole_number(value, "renotify_after_days", minimum=1, maximum=_MAX_RENOTIFY_DAYS, unit="days")

    @field_validator("profiles", mode="before")
    @classmethod
    def _check_profiles(cls, value: object, info: ValidationInfo) -> dict[str, dict[str, Any]]:
        # `profiles` is the last field, so info.data contains every other key, already validated.
        mapping = _mapping(value, "profiles")
        profiles: dict[str, dict[str, Any]] = {}
        for name, partial in mapping.items():
            if not isinstance(name, str) or not _PROFILE_NAME.fullmatch(name):
                raise PolicyError(
                    "profiles", name, "expected profile names of letters, digits, '.', '_' or '-' (at most 64)"
                )
            key = f"profiles.{name}"
            if not isinstance(partial, Mapping):
                raise PolicyError(key, partial, "expected an object of policy keys")
            if "profiles" in partial:
                raise PolicyError(f"{key}.profiles", partial["profiles"], "expected no profiles inside a profile")

            try:
                merged = Policy.model_validate({**info.data, **partial})
            except ValidationError as error:
                raise _policy_error(error).under(key) from None
            profiles[name] = {field: getattr(merged, field) for field in partial}
        return profiles

    def effective(self, profile: str | None = None, upgrade_types: Sequence[str] | None = None) -> Policy:
        """Return the policy for one check: the profile applied, then the types narrowed.

        A profile replaces each top-level key it names (no deep merge). `upgrade_types` narrows the
        list to a subset in the caller's own order, and can never add a type. The result has no
        profiles. Raises `ids.InvalidValue` for `policy_profile` (no such profile) or
        `upgrade_types` (unknown type, a type the effective list lacks, a repeat, an empty list).
        """
        policy = self._with_profile(profile)
        types = policy.upgrade_types if upgrade_types is None else _narrowed_types(policy.upgrade_types, upgrade_types)
        return policy.model_copy(update={"upgrade_types": types, "profiles": {}})

    def with_upgrade_types(self, upgrade_types: Sequence[str]) -> Policy:
        """Return the policy with `upgrade_types` replaced by the operator's list (the CLI's `--type`).

        Unlike `effective`, this may add types, including `cross-engine` while `allow_cross_engine`
        is false: such targets are then listed and rejected as `engine_change_not_allowed`.
        Profiles stay as they are. Raises `ids.InvalidValue` for an unknown, repeated or empty list.
        """
        types = _upgrade_type_list(upgrade_types, "upgrade_types")
        return self.model_copy(update={"upgrade_types": types})

    def _with_profile(self, profile: str | None) -> Policy:
        if profile is None:
            return self
        if not isinstance(profile, str) or profile not in self.profiles:
            configured = ", ".join(sorted(self.profiles))
            if configured:
                expected = f"one of the configured profiles: {configured}"
            else:
                expected = "a profile of the selection policy (UPGRADE_POLICY), which configures none"
            raise ids.InvalidValue("policy_profile", profile, expected)

        base = self.model_dump(exclude={"profiles"})
        return Policy.model_validate({**base, **self.profiles[profile]})


def parse_policy(data: object, origin: str | None = None) -> Policy:
    """Validate a decoded policy object (a dict from JSON or YAML) and return the Policy.

    Besides the per-key checks of `Policy`, this applies the file rule that `cross-engine` may be
    listed in `upgrade_types` only while `allow_cross_engine` is true, at the top level and in every
    profile's merged result. Raises PolicyError naming the key and the value, and `origin` if given.
    """
    try:
        policy = Policy.model_validate(data)
    except ValidationError as error:
        raise _policy_error(error).in_origin(origin) from None

    _check_cross_engine_listing(policy, key="upgrade_types", origin=origin)
    for name, partial in policy.profiles.items():
        profile_key = "upgrade_types" if "upgrade_types" in partial else "allow_cross_engine"
        _check_cross_engine_listing(policy.effective(profile=name), key=f"profiles.{name}.{profile_key}", origin=origin)
    return policy


def load_policy(value: str | None, *, source: str = "UPGRADE_POLICY") -> Policy:
    """Load the policy from the setting's value: empty for the default, inline JSON, or a file path.

    A value starting with `{` is inline JSON. Anything else is the path of a `.json`, `.yaml` or
    `.yml` file, read with a YAML safe loader. `source` names the setting in errors. Raises
    PolicyError when the file is missing or unreadable, does not parse, does not contain an object,
    or contains an invalid policy. A repeated key is an error, because JSON and YAML loaders would
    silently keep the last value.
    """
    text = (value or "").strip()
    if not text:
        return Policy()

    if text.startswith("{"):
        return parse_policy(_decode_json(text, source, value), origin=None)

    path = Path(text)
    if path.suffix.lower() not in _POLICY_FILE_SUFFIXES:
        expected = "expected inline JSON starting with '{' or the path of a .json, .yaml or .yml file"
        raise PolicyError(source, value, expected)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(source, value, "policy file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        problem = f"failed to read the policy file ({error.__class__.__name__}: {error})"
        raise PolicyError(source, value, problem) from None

    if path.suffix.lower() == ".json":
        data = _decode_json(content, source, value)
    else:
        data = _decode_yaml(content, source, value)
    if not isinstance(data, Mapping):
        raise PolicyError(source, value, f"expected the file to contain an object, found {type(data).__name__}")
    return parse_policy(data, origin=text)


@dataclass(frozen=True)
class Offer:
    """The target images CSS offers for one upgrade type that was queried."""

    upgrade_type: str
    need_upload_upgrade_plugin: bool
    images: Sequence[TargetImage]

    def __post_init__(self) -> None:
        object.__setattr__(self, "upgrade_type", ids.upgrade_type(self.upgrade_type))
        object.__setattr__(self, "images", tuple(self.images))

    @classmethod
    def from_target_images(cls, target: TargetImages) -> Offer:
        return cls(target.upgrade_type, target.need_upload_upgrade_plugin, target.images)


class Decision(BaseModel):
    """The outcome of `choose`: the event type, its reason code, the judged candidates and why."""

    model_config = ConfigDict(frozen=True)

    event_type: EventType
    # A code of the event schema, or None for upgrade.ready.
    reason: str | None
    chosen: Candidate | None
    # Every image of every offered type: type order, then eligible before rejected, best first.
    candidates: list[Candidate]
    # The chosen image's type. Without a choice, the last type tried, or None when none was tried.
    upgrade_type: str | None
    # The chosen type's flag. False when nothing was chosen.
    need_upload_upgrade_plugin: bool
    unsupported_types: list[str]
    detail: str

    @property
    def target_image(self) -> TargetImage | None:
        return self.chosen.image if self.chosen is not None else None


@dataclass(frozen=True)
class _Judgement:
    """One image with its verdict: chosen, or the first rejection reason that applies.

    Before ranking, `reason` is None for every eligible image. Ranking then marks the winner as
    selected and gives the other eligible images their ranking reason.
    """

    image: TargetImage
    upgrade_type: str
    reason: str | None
    built: date | None
    engine: str | None
    selected: bool = False


def choose(
    cluster: Cluster,
    offers: Sequence[Offer],
    unsupported_types: Sequence[str],
    policy: Policy,
    today: date,
) -> Decision:
    """Judge every offered image against the policy and choose the target image, if any.

    `offers` are the types that were queried, in the order they were queried, and
    `unsupported_types` the types for which CSS returned "invalid request". Each image gets the
    first rejection reason that applies, or is eligible. Among the eligible images of the first
    type that has any, the best wins by priority, then datastore version, then image name, then
    the smaller ID. A chosen image is blocked when the cluster is not available, is busy, or needs
    a plugin upload that the policy blocks.
    """
    if isinstance(today, datetime):
        today = today.date()
    unsupported = [ids.upgrade_type(name, "unsupported_types") for name in unsupported_types]
    _check_distinct_types(offers, unsupported)
    tried = _types_tried(offers, unsupported, policy)
    last_tried = tried[-1] if tried else None

    engine = (cluster.datastore.type or "").lower()
    if engine not in ENGINES:
        return Decision(
            event_type="upgrade.none",
            reason="unsupported_engine",
            chosen=None,
            candidates=[],
            upgrade_type=last_tried,
            need_upload_upgrade_plugin=False,
            unsupported_types=unsupported,
            detail=_unsupported_engine_detail(cluster.datastore.type),
        )

    ranges = {name: parse_range(text) for name, text in policy.versions.items()}
    judged = [
        [_judge(image, offer.upgrade_type, cluster, engine, policy, ranges, today) for image in offer.images]
        for offer in offers
    ]
    ranked, chosen_offer = _rank(offers, judged)
    candidates = [_candidate(judgement) for judgement in ranked]
    winner = next((judgement for judgement in ranked if judgement.selected), None)

    if winner is None or chosen_offer is None:
        return Decision(
            event_type="upgrade.none",
            reason="all_rejected_by_policy" if ranked else "no_target_images",
            chosen=None,
            candidates=candidates,
            upgrade_type=last_tried,
            need_upload_upgrade_plugin=False,
            unsupported_types=unsupported,
            detail=_none_detail(offers, unsupported, ranked, policy),
        )

    detail = _choice_detail(winner, ranked, offers, policy)
    block_reason, block_phrase = _block(cluster, chosen_offer, policy)
    if block_reason is not None:
        detail = f"{detail}, but {block_phrase}"
    return Decision(
        event_type="upgrade.ready" if block_reason is None else "upgrade.blocked",
        reason=block_reason,
        chosen=candidates[ranked.index(winner)],
        candidates=candidates,
        upgrade_type=chosen_offer.upgrade_type,
        need_upload_upgrade_plugin=chosen_offer.need_upload_upgrade_plugin,
        unsupported_types=unsupported,
        detail=f"{detail}.",
    )


# --- Judging one image -------------------------------------------------------------------------


def _judge(
    image: TargetImage,
    upgrade_type: str,
    cluster: Cluster,
    cluster_engine: str,
    policy: Policy,
    ranges: Mapping[str, VersionRange],
    today: date,
) -> _Judgement:
    image_engine = (image.datastore_type or "").lower() or None
    built = build_date(image.display_name, today)
    reason = _rejection_reason(image, upgrade_type, cluster, cluster_engine, image_engine, built, policy, ranges, today)
    return _Judgement(image=image, upgrade_type=upgrade_type, reason=reason, built=built, engine=image_engine)


def _rejection_reason(
    image: TargetImage,
    upgrade_type: str,
    cluster: Cluster,
    cluster_engine: str,
    image_engine: str | None,
    built: date | None,
    policy: Policy,
    ranges: Mapping[str, VersionRange],
    today: date,
) -> str | None:
    """Return the first policy rule that rejects the image, in the order of REJECTION_REASONS."""
    if cluster.current_image and image.display_name == cluster.current_image:
        return "current_image"

    if _is_denied(image, policy.deny_images):
        return "denied"

    # An image of unknown engine counts as an engine change: it cannot be shown to keep the engine.
    if image_engine != cluster_engine and not policy.allow_cross_engine:
        return "engine_change_not_allowed"

    if not _version_allowed(image, image_engine, ranges):
        return "version_not_allowed"

    minimum_age = policy.min_age_days.get(upgrade_type, 0)
    if minimum_age > 0 and built is not None and (today - built).days < minimum_age:
        return "too_new"
    if minimum_age > 0 and built is None and policy.unknown_age == "reject":
        return "unknown_age"
    return None


def _is_denied(image: TargetImage, patterns: Sequence[str]) -> bool:
    # IDs are UUIDs, which are case-insensitive. Name patterns are case-sensitive globs.
    image_id = image.id.lower()
    return any(pattern.lower() == image_id or fnmatch.fnmatchcase(image.display_name, pattern) for pattern in patterns)


def _version_allowed(image: TargetImage, image_engine: str | None, ranges: Mapping[str, VersionRange]) -> bool:
    if not ranges:
        return True
    if image_engine is None:
        # With ranges configured, an image of unknown engine cannot be matched to one of them.
        return False

    allowed = ranges.get(image_engine)
    if allowed is None:
        return True
    if image.datastore_version is None:
        return False
    try:
        return allowed.contains(image.datastore_version)
    except ValueError:
        return False


# --- Ranking -----------------------------------------------------------------------------------


def _rank(offers: Sequence[Offer], judged: Sequence[Sequence[_Judgement]]) -> tuple[list[_Judgement], Offer | None]:
    """Choose the winner and give every other eligible image its ranking reason.

    Returns the judgements in candidate order (type order, then eligible before rejected, best
    first) and the offer of the winner, or None when no image is eligible.
    """
    ranked: list[_Judgement] = []
    chosen_offer: Offer | None = None
    winner: TargetImage | None = None

    for offer, judgements in zip(offers, judged):
        eligible = sorted((j for j in judgements if j.reason is None), key=_best_first)
        rejected = sorted((j for j in judgements if j.reason is not None), key=_best_first)

        for judgement in eligible:
            if winner is None:
                winner = judgement.image
                chosen_offer = offer
                ranked.append(replace(judgement, selected=True))
            elif offer is not chosen_offer:
                ranked.append(replace(judgement, reason="earlier_type_chosen"))
            elif judgement.image.priority < winner.priority:
                ranked.append(replace(judgement, reason="lower_priority"))
            else:
                ranked.append(replace(judgement, reason="lost_tie_break"))

        ranked.extend(rejected)

    return ranked, chosen_offer


def _candidate(judgement: _Judgement) -> Candidate:
    return Candidate(
        image=judgement.image,
        upgrade_type=judgement.upgrade_type,
        selected=judgement.selected,
        rejected_reason=judgement.reason,
    )


def _deciding_step(first: TargetImage, second: TargetImage) -> tuple[str, int]:
    """Compare two images in the tie-break order and return the step that separates them.

    The sign is negative when `first` ranks ahead. The last step compares the remaining fields
    only so that the order is total and never depends on the input order.
    """
    steps = (
        ("priority", _compare(second.priority, first.priority)),
        ("datastore version", _compare(_version_rank(second), _version_rank(first))),
        ("image name", _compare(image_name_key(second.display_name), image_name_key(first.display_name))),
        ("image ID", _compare(first.id, second.id)),
        ("remaining fields", _compare(_remaining_fields(first), _remaining_fields(second))),
    )
    for step, sign in steps:
        if sign != 0:
            return step, sign
    return "none", 0


def _compare_judgements(first: _Judgement, second: _Judgement) -> int:
    return _deciding_step(first.image, second.image)[1]


_best_first = functools.cmp_to_key(_compare_judgements)


def _compare(first: Any, second: Any) -> int:
    return (first > second) - (first < second)


def _version_rank(image: TargetImage) -> tuple[int, tuple[int, ...]]:
    """Rank a datastore version: parseable versions in version order, above missing or malformed ones."""
    if image.datastore_version is None:
        return (0, ())
    try:
        return (1, parse_version(image.datastore_version))
    except ValueError:
        return (0, ())


def _remaining_fields(image: TargetImage) -> tuple[tuple[bool, str], ...]:
    fields = (image.datastore_version, image.datastore_type, image.image_desc)
    return tuple((field is not None, field or "") for field in fields)


# --- Blocking ----------------------------------------------------------------------------------


def _block(cluster: Cluster, offer: Offer, policy: Policy) -> tuple[str | None, str]:
    """Return the first reason that stops automation now, with a phrase for the detail, or (None, "")."""
    if cluster.status != "200":
        status = shown(cluster.status) if cluster.status is not None else "unknown"
        return "cluster_not_available", f"the cluster status is {status}, not '200' (available)"

    if cluster.actions:
        actions = shown(", ".join(cluster.actions))
        return "operation_in_progress", f"the cluster has an operation in progress ({actions})"

    if offer.need_upload_upgrade_plugin and policy.plugin_upload == "block":
        return "plugin_upload_required", "the target needs an upgrade plugin uploaded first and plugin_upload is block"
    return None, ""


# --- Detail sentences --------------------------------------------------------------------------


def _choice_detail(winner: _Judgement, ranked: Sequence[_Judgement], offers: Sequence[Offer], policy: Policy) -> str:
    """Say why the winner won, then summarise the images the policy or the type order set aside."""
    label = _TYPE_LABELS[winner.upgrade_type]
    image = winner.image
    name = image.display_name or image.id
    rivals = [j.image for j in ranked if j.reason in ("lower_priority", "lost_tie_break")]

    if not rivals:
        text = f"{name} is the only eligible {label} image"
    else:
        text = f"{name} has the highest priority {image.priority} among {len(rivals) + 1} eligible {label} images"
        tied = [rival for rival in rivals if rival.priority == image.priority]
        if tied:
            # `ranked` lists the eligible images best first, so the first tied rival is the runner-up.
            step = _deciding_step(image, tied[0])[0]
            others = _count(len(tied), "other image")
            text += f" and wins the tie with {others} of that priority by {_TIE_BREAK_PHRASES[step](image)}"

    earlier = offers[: _offer_index(offers, winner.upgrade_type)]
    empty_earlier = [_TYPE_LABELS[offer.upgrade_type] for offer in earlier if not offer.images]
    if empty_earlier:
        text += f", CSS offering no {' or '.join(empty_earlier)} image"

    set_aside = _set_aside_summary(ranked, offers, policy)
    return f"{text}; {set_aside}" if set_aside else text


_TIE_BREAK_PHRASES: Final = {
    "datastore version": lambda image: f"its higher datastore version {image.datastore_version}",
    "image name": lambda image: "its later image name",
    "image ID": lambda image: "its smaller image ID",
    "remaining fields": lambda image: "a stable order of its remaining fields",
    "none": lambda image: "being listed first among identical images",
}


def _none_detail(
    offers: Sequence[Offer], unsupported: Sequence[str], judgements: Sequence[_Judgement], policy: Policy
) -> str:
    if judgements:
        summary = _set_aside_summary(judgements, offers, policy)
        return f"None of the {_count(len(judgements), 'target image')} is eligible: {summary}."

    offered = " or ".join(_TYPE_LABELS[offer.upgrade_type] for offer in offers)
    refused = ", ".join(unsupported)
    if offered and refused:
        return f"CSS offers no {offered} target image and returned 'invalid request' for {refused}."
    if offered:
        return f"CSS offers no {offered} target image."
    if refused:
        return f"CSS returned 'invalid request' for every upgrade type tried ({refused})."
    return "No upgrade type was tried, so there is no target image."


def _unsupported_engine_detail(engine: str | None) -> str:
    supported = " and ".join(ENGINES)
    if not engine:
        return f"The cluster's engine is unknown, and only {supported} clusters can be upgraded."
    return f"The cluster's engine {shown(engine)} is not supported: only {supported} clusters can be upgraded."


def _set_aside_summary(judgements: Sequence[_Judgement], offers: Sequence[Offer], policy: Policy) -> str:
    """Count the images rejected by a policy rule or left for an earlier type, grouped by reason."""
    type_order = {offer.upgrade_type: index for index, offer in enumerate(offers)}
    groups: dict[tuple[str, str], list[_Judgement]] = {}
    for judgement in judgements:
        reason = judgement.reason
        if reason not in _REASON_ORDER:
            continue  # the winner, and its eligible rivals, which the first clause counts
        groups.setdefault((reason, _group_of(judgement, reason)), []).append(judgement)

    def order(group: tuple[str, str]) -> tuple[int, int, str]:
        reason, detail = group
        return (_REASON_ORDER.index(reason), type_order.get(detail, -1), detail)

    ordered = sorted(groups, key=order)
    return ", ".join(_phrase(reason, detail, groups[(reason, detail)], policy) for reason, detail in ordered)


# Reasons that the detail sentence counts, in the order it lists them. It leaves out lower_priority
# and lost_tie_break, because its first clause already counts those images as eligible.
_REASON_ORDER: Final = (
    "current_image",
    "denied",
    "engine_change_not_allowed",
    "version_not_allowed",
    "too_new",
    "unknown_age",
    "earlier_type_chosen",
)


def _group_of(judgement: _Judgement, reason: str) -> str:
    if reason in ("too_new", "unknown_age", "earlier_type_chosen"):
        return judgement.upgrade_type
    if reason == "version_not_allowed":
        return judgement.engine or ""
    return ""


def _phrase(reason: str, group: str, judgements: Sequence[_Judgement], policy: Policy) -> str:
    count = len(judgements)
    if reason == "current_image":
        return f"{count} rejected as the current image"
    if reason == "denied":
        return f"{count} denied by deny_images"
    if reason == "engine_change_not_allowed":
        return f"{count} rejected as an engine change (allow_cross_engine is false)"
    if reason == "version_not_allowed":
        allowed = policy.versions.get(group)
        where = f"{group} {allowed}" if group and allowed else "engine unknown, versions restricted"
        return f"{count} rejected as outside the allowed versions ({where})"
    if reason == "too_new":
        built = sorted(j.built for j in judgements if j.built is not None)
        days = f"{built[0]}" if built[0] == built[-1] else f"{built[0]} to {built[-1]}"
        minimum = policy.min_age_days.get(group, 0)
        return f"{count} rejected as too new (built {days}, {_TYPE_LABELS[group]} minimum age {_count(minimum, 'day')})"
    if reason == "unknown_age":
        minimum = policy.min_age_days.get(group, 0)
        rule = f"{_TYPE_LABELS[group]} minimum age {_count(minimum, 'day')}, unknown_age is reject"
        return f"{count} rejected as of unknown age ({rule})"
    # earlier_type_chosen
    noun = f"eligible {_TYPE_LABELS[group]} image"
    return f"{_count(count, noun)} left aside because an earlier upgrade type has one"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# --- Helpers for types, validation and loading -------------------------------------------------


def _upgrade_type_list(value: object, field: str) -> list[str]:
    """Return a non-empty list of canonical upgrade types without repeats, or raise ids.InvalidValue."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ids.InvalidValue(field, value, "a non-empty list of upgrade types (same, cross, cross-engine)")

    types: list[str] = []
    for index, item in enumerate(value):
        upgrade_type = ids.upgrade_type(item, f"{field}[{index}]")
        if upgrade_type in types:
            raise ids.InvalidValue(field, value, f"each upgrade type at most once, but {upgrade_type} is repeated")
        types.append(upgrade_type)
    return types


def _narrowed_types(allowed: Sequence[str], requested: object) -> list[str]:
    """Return the requested subset of `allowed`, in the requested order, or raise ids.InvalidValue."""
    choices = ", ".join(allowed)
    if not isinstance(requested, (list, tuple)) or not requested:
        raise ids.InvalidValue("upgrade_types", requested, f"a non-empty list of types the policy allows ({choices})")

    types: list[str] = []
    for item in requested:
        upgrade_type = ids.upgrade_type(item, "upgrade_types")
        if upgrade_type not in allowed:
            raise ids.InvalidValue("upgrade_types", item, f"one of the types the policy allows ({choices})")
        if upgrade_type in types:
            expected = f"each upgrade type at most once, but {upgrade_type} is repeated"
            raise ids.InvalidValue("upgrade_types", requested, expected)
        types.append(upgrade_type)
    return types


def _mapping(value: object, key: str) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise PolicyError(key, value, "expected an object")
    return value


def _whole_number(value: object, key: str, minimum: int, unit: str, maximum: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise PolicyError(key, value, f"expected a whole number of {unit} {bound}")
    return value


def _choice(value: object, key: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise PolicyError(key, value, f"expected one of {', '.join(choices)}")
    return value


def _policy_error(error: ValidationError) -> PolicyError:
    """Return the PolicyError behind a pydantic ValidationError, or build one from its first entry."""
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, PolicyError):
        return cause
    key = ".".join(str(part) for part in first["loc"]) or "policy"
    return PolicyError(key, first.get("input"), first["msg"])


def _check_cross_engine_listing(policy: Policy, key: str, origin: str | None) -> None:
    if "cross-engine" in policy.upgrade_types and not policy.allow_cross_engine:
        value = policy.allow_cross_engine if key.endswith("allow_cross_engine") else policy.upgrade_types
        raise PolicyError(
            key,
            value,
            "expected no cross-engine in upgrade_types while allow_cross_engine is false"
            " (set allow_cross_engine to true to allow engine changes)",
            origin,
        )


def _check_distinct_types(offers: Sequence[Offer], unsupported: Sequence[str]) -> None:
    seen: set[str] = set()
    for upgrade_type in [offer.upgrade_type for offer in offers] + list(unsupported):
        if upgrade_type in seen:
            raise ValueError(f"upgrade type {upgrade_type} appears twice among the offers and unsupported types")
        seen.add(upgrade_type)


def _types_tried(offers: Sequence[Offer], unsupported: Sequence[str], policy: Policy) -> list[str]:
    """Return every type tried, offered or unsupported, in the policy's order (unknown ones last)."""
    tried = [offer.upgrade_type for offer in offers] + list(unsupported)
    position = {upgrade_type: index for index, upgrade_type in enumerate(policy.upgrade_types)}
    return sorted(tried, key=lambda upgrade_type: position.get(upgrade_type, len(position)))


def _offer_index(offers: Sequence[Offer], upgrade_type: str) -> int:
    return next(index for index, offer in enumerate(offers) if offer.upgrade_type == upgrade_type)


@functools.cache
def _unique_key_loader() -> type:
    """Return a PyYAML safe loader class that rejects a key repeated in one mapping instead of keeping the last.

    PyYAML is imported only here and in `_decode_yaml`, because only a YAML policy file needs it.
    Importing it with this module cost every function's cold start 10 to 15 ms (measured with
    `python -X importtime`, Python 3.11, 2 vCPU).
    """
    import yaml

    class UniqueKeySafeLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[object] = set()
            for key_node, _ in node.value:
                # Merge keys (`<<: *base`) may legitimately be overridden by explicit keys.
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    repeated = key in seen
                except TypeError:
                    continue  # an unhashable key, which the base class rejects with its own error
                if repeated:
                    problem = f"key {shown(key)} is repeated"
                    raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeySafeLoader


def _decode_json(text: str, source: str, value: object) -> object:
    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, item in pairs:
            if key in result:
                raise ValueError(f"key {shown(key)} is repeated")
            result[key] = item
        return result

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except ValueError as error:
        raise PolicyError(source, value, f"not valid JSON ({error})") from None


def _decode_yaml(text: str, source: str, value: object) -> object:
    import yaml

    try:
        return yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise PolicyError(source, value, f"not valid YAML ({error})") from None
