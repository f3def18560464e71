"""Property-based tests of `choose` over random images, upgrade types, clusters and policies.

The helper `expected_policy_reason` restates the policy rules independently of the code under
test, so that a rule broken in `choose` shows up as a disagreement.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from handler.core.models import REJECTION_REASONS, Cluster, TargetImage
from handler.core.policy import Decision, Offer, Policy, choose, parse_policy
from handler.core.versions import build_date, parse_range

TYPES = ["same", "cross", "cross-engine"]
IDS = [f"{index:08x}-d641-45d9-9dcb-ab2236bcd07e" for index in range(6)]
VERSIONS = ["7.6.2", "7.9.3", "7.10", "7.10.2", "8.1.0", "1.3.6", "2.11.0", "2.19.0", "7.10.2-beta"]
RANGES = [">=7.10,<8", ">=7.10", "<8", "==7.10.2", "!=7.9.3", ">=2.11", ">1.3.6,<=2.19"]
PATTERNS = ["7.10.2_*", "*_24.3.3_*", "7.?.*", "1.3.6_25.[0-9].*", IDS[0], IDS[1].upper()]
PROPERTY_SETTINGS = settings(max_examples=250, deadline=None)


def dated_names() -> st.SearchStrategy[str]:
    return st.builds(
        lambda version, year, month, day, build: f"{version}_{year}.3.{build}_{month:02d}{day:02d}",
        st.sampled_from(["7.6.2", "7.10.2", "2.11.0", "1.3.6"]),
        st.integers(min_value=23, max_value=27),
        st.integers(min_value=0, max_value=13),
        st.integers(min_value=0, max_value=32),
        st.integers(min_value=1, max_value=12),
    )


NAMES = st.one_of(dated_names(), st.sampled_from(["7.10.2-custom", "", "opensearch-2.11", "7.6.2_24.3.3_1224"]))

IMAGES = st.builds(
    TargetImage,
    id=st.sampled_from(IDS),
    display_name=NAMES,
    datastore_type=st.sampled_from(["elasticsearch", "opensearch", "Elasticsearch", None]),
    datastore_version=st.one_of(st.none(), st.sampled_from(VERSIONS)),
    priority=st.integers(min_value=-1, max_value=4),
)

CLUSTERS = st.builds(
    lambda engine, status, actions, current: Cluster.model_validate(
        {
            "id": "ea244205-d641-45d9-9dcb-ab2236bcd07e",
            "status": status,
            "actions": actions,
            "datastore": {"type": engine, "subVersion": current},
        }
    ),
    engine=st.sampled_from(["elasticsearch", "opensearch", "OpenSearch", "elasticsearch", "logstash", None]),
    status=st.sampled_from(["200", "200", "200", "303", None]),
    actions=st.sampled_from([[], [], ["GROWING"]]),
    current=st.one_of(st.none(), NAMES),
)

POLICY_DATA = st.fixed_dictionaries(
    {},
    optional={
        "allow_cross_engine": st.booleans(),
        "versions": st.dictionaries(st.sampled_from(["elasticsearch", "opensearch"]), st.sampled_from(RANGES)),
        "deny_images": st.lists(st.sampled_from(PATTERNS), max_size=3),
        "min_age_days": st.dictionaries(st.sampled_from(TYPES), st.integers(min_value=0, max_value=400)),
        "unknown_age": st.sampled_from(["allow", "reject"]),
        "plugin_upload": st.sampled_from(["block", "allow"]),
    },
)


@dataclass(frozen=True)
class Scenario:
    cluster: Cluster
    offers: list[Offer]
    unsupported: list[str]
    policy: Policy
    today: date


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    queried = draw(st.permutations(TYPES))[: draw(st.integers(min_value=0, max_value=3))]
    unsupported = [name for name in queried if draw(st.booleans()) and draw(st.booleans())]
    offers = [
        Offer(name, draw(st.booleans()), draw(st.lists(IMAGES, max_size=6)))
        for name in queried
        if name not in unsupported
    ]
    data: dict[str, Any] = draw(POLICY_DATA)
    # The operator's order of types, as the CLI's --type sets it, so that "last type tried" is defined.
    policy = parse_policy(data).with_upgrade_types(queried or ["same"])
    today = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)))
    return Scenario(draw(CLUSTERS), offers, unsupported, policy, today)


def decide(scenario: Scenario) -> Decision:
    return choose(scenario.cluster, scenario.offers, scenario.unsupported, scenario.policy, scenario.today)


def expected_policy_reason(image: TargetImage, upgrade_type: str, scenario: Scenario) -> str | None:
    """Restate the policy rules: the first rule that rejects the image, or None if it is eligible."""
    policy = scenario.policy
    cluster_engine = (scenario.cluster.datastore.type or "").lower()
    image_engine = (image.datastore_type or "").lower()

    if scenario.cluster.current_image and image.display_name == scenario.cluster.current_image:
        return "current_image"
    if any(p.lower() == image.id.lower() or fnmatch.fnmatchcase(image.display_name, p) for p in policy.deny_images):
        return "denied"
    if image_engine != cluster_engine and not policy.allow_cross_engine:
        return "engine_change_not_allowed"
    if policy.versions and not _version_allowed(image, image_engine, policy.versions):
        return "version_not_allowed"

    minimum = policy.min_age_days.get(upgrade_type, 0)
    built = build_date(image.display_name, scenario.today)
    if minimum > 0 and built is not None and (scenario.today - built).days < minimum:
        return "too_new"
    if minimum > 0 and built is None and policy.unknown_age == "reject":
        return "unknown_age"
    return None


def _version_allowed(image: TargetImage, image_engine: str, versions: dict[str, str]) -> bool:
    if not image_engine:
        return False
    if image_engine not in versions:
        return True
    try:
        return parse_range(versions[image_engine]).contains(image.datastore_version or "")
    except ValueError:
        return False


def supported(scenario: Scenario) -> bool:
    return (scenario.cluster.datastore.type or "").lower() in ("elasticsearch", "opensearch")


@given(scenarios())
@PROPERTY_SETTINGS
def test_every_image_listed(scenario: Scenario) -> None:
    decision = decide(scenario)

    if supported(scenario):
        assert len(decision.candidates) == sum(len(offer.images) for offer in scenario.offers)
    else:
        assert decision.candidates == []
        assert decision.reason == "unsupported_engine"


@given(scenarios())
@PROPERTY_SETTINGS
def test_reasons_exactly_one(scenario: Scenario) -> None:
    decision = decide(scenario)

    selected = [candidate for candidate in decision.candidates if candidate.selected]
    assert len(selected) <= 1
    for candidate in decision.candidates:
        if candidate.selected:
            assert candidate.rejected_reason is None
        else:
            assert candidate.rejected_reason in REJECTION_REASONS


@given(scenarios())
@PROPERTY_SETTINGS
def test_chosen_is_candidate(scenario: Scenario) -> None:
    decision = decide(scenario)

    if decision.chosen is None:
        assert not any(candidate.selected for candidate in decision.candidates)
        assert decision.event_type == "upgrade.none"
    else:
        assert decision.chosen in decision.candidates
        assert decision.chosen.selected
        assert decision.upgrade_type == decision.chosen.upgrade_type
        assert decision.event_type in ("upgrade.ready", "upgrade.blocked")


@given(scenarios())
@PROPERTY_SETTINGS
def test_chosen_breaks_no_rule(scenario: Scenario) -> None:
    decision = decide(scenario)

    if decision.chosen is not None:
        image = decision.chosen.image
        policy = scenario.policy
        assert image.display_name != scenario.cluster.current_image or not image.display_name
        assert not any(fnmatch.fnmatchcase(image.display_name, pattern) for pattern in policy.deny_images)
        assert image.id.lower() not in [pattern.lower() for pattern in policy.deny_images]
        if not policy.allow_cross_engine:
            assert (image.datastore_type or "").lower() == (scenario.cluster.datastore.type or "").lower()
        engine = (image.datastore_type or "").lower()
        if engine in policy.versions:
            assert parse_range(policy.versions[engine]).contains(image.datastore_version or "")
        minimum = policy.min_age_days.get(decision.chosen.upgrade_type, 0)
        built = build_date(image.display_name, scenario.today)
        if minimum > 0 and built is not None:
            assert (scenario.today - built).days >= minimum


@given(scenarios())
@PROPERTY_SETTINGS
def test_policy_reason_first(scenario: Scenario) -> None:
    decision = decide(scenario)

    for candidate in decision.candidates:
        expected = expected_policy_reason(candidate.image, candidate.upgrade_type, scenario)
        if expected is not None:
            assert candidate.rejected_reason == expected
        else:
            assert candidate.rejected_reason in (None, "earlier_type_chosen", "lower_priority", "lost_tie_break")


@given(scenarios())
@PROPERTY_SETTINGS
def test_ranking_reasons(scenario: Scenario) -> None:
    decision = decide(scenario)
    order = [offer.upgrade_type for offer in scenario.offers]

    for candidate in decision.candidates:
        reason = candidate.rejected_reason
        if reason in ("earlier_type_chosen", "lower_priority", "lost_tie_break"):
            assert decision.chosen is not None
            chosen = decision.chosen
        if reason == "earlier_type_chosen":
            assert order.index(candidate.upgrade_type) > order.index(chosen.upgrade_type)
        if reason == "lower_priority":
            assert candidate.upgrade_type == chosen.upgrade_type
            assert candidate.image.priority < chosen.image.priority
        if reason == "lost_tie_break":
            assert candidate.upgrade_type == chosen.upgrade_type
            assert candidate.image.priority == chosen.image.priority


@given(scenarios())
@PROPERTY_SETTINGS
def test_first_eligible_type_wins(scenario: Scenario) -> None:
    decision = decide(scenario)
    eligible_types = [
        offer.upgrade_type
        for offer in scenario.offers
        if any(expected_policy_reason(image, offer.upgrade_type, scenario) is None for image in offer.images)
    ]

    if not supported(scenario):
        return
    if eligible_types:
        assert decision.upgrade_type == eligible_types[0]
    else:
        assert decision.chosen is None


@given(scenarios())
@PROPERTY_SETTINGS
def test_event_reason_codes(scenario: Scenario) -> None:
    decision = decide(scenario)

    if decision.event_type == "upgrade.ready":
        assert decision.reason is None
    elif decision.event_type == "upgrade.blocked":
        assert decision.reason in ("cluster_not_available", "operation_in_progress", "plugin_upload_required")
    elif decision.candidates:
        assert decision.reason == "all_rejected_by_policy"
    else:
        assert decision.reason in ("no_target_images", "unsupported_engine")


@given(scenarios())
@PROPERTY_SETTINGS
def test_candidates_in_type_order(scenario: Scenario) -> None:
    decision = decide(scenario)
    order = [offer.upgrade_type for offer in scenario.offers]

    positions = [order.index(candidate.upgrade_type) for candidate in decision.candidates]
    assert positions == sorted(positions)


@given(scenarios(), st.randoms(use_true_random=False))
@PROPERTY_SETTINGS
def test_shuffle_same_decision(scenario: Scenario, shuffler: random.Random) -> None:
    shuffled_offers = []
    for offer in scenario.offers:
        images = list(offer.images)
        shuffler.shuffle(images)
        shuffled_offers.append(Offer(offer.upgrade_type, offer.need_upload_upgrade_plugin, images))
    shuffled = Scenario(scenario.cluster, shuffled_offers, scenario.unsupported, scenario.policy, scenario.today)

    assert decide(shuffled) == decide(scenario)


@given(scenarios())
@PROPERTY_SETTINGS
def test_same_input_same_result(scenario: Scenario) -> None:
    assert decide(scenario) == decide(scenario)


@given(scenarios())
@PROPERTY_SETTINGS
def test_detail_one_sentence(scenario: Scenario) -> None:
    detail = decide(scenario).detail

    assert detail.endswith(".")
    assert ". " not in detail
    assert "\n" not in detail
