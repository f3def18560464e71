"""Tests of the policy model: validation, errors, loading, profiles, narrowing and the `--type` override."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from handler.core import ids
from handler.core.policy import Policy, PolicyError, load_policy, parse_policy

FULL_POLICY: dict[str, Any] = {
    "upgrade_types": ["same", "cross"],
    "allow_cross_engine": False,
    "versions": {"elasticsearch": ">=7.10,<8", "opensearch": ">=2.11"},
    "deny_images": ["7.10.2_24.3.3_*", "bcdb711c-a7f0-4007-b8ee-9f13c05f8326"],
    "min_age_days": {"same": 7, "cross": 30},
    "unknown_age": "reject",
    "plugin_upload": "allow",
    "renotify_after_days": 3,
    "profiles": {"conservative": {"upgrade_types": ["same"], "min_age_days": {"same": 30}}},
}


def test_default_policy() -> None:
    policy = Policy()

    assert policy.upgrade_types == ["same", "cross"]
    assert policy.allow_cross_engine is False
    assert policy.versions == {}
    assert policy.deny_images == []
    assert policy.min_age_days == {}
    assert policy.unknown_age == "allow"
    assert policy.plugin_upload == "block"
    assert policy.renotify_after_days == 7
    assert policy.profiles == {}


def test_full_policy_values() -> None:
    policy = parse_policy(FULL_POLICY)

    assert policy.upgrade_types == ["same", "cross"]
    assert policy.versions == {"elasticsearch": ">=7.10,<8", "opensearch": ">=2.11"}
    assert policy.deny_images == FULL_POLICY["deny_images"]
    assert policy.min_age_days == {"same": 7, "cross": 30}
    assert policy.unknown_age == "reject"
    assert policy.plugin_upload == "allow"
    assert policy.renotify_after_days == 3
    assert policy.profiles == {"conservative": {"upgrade_types": ["same"], "min_age_days": {"same": 30}}}


@pytest.mark.parametrize(
    ("data", "key", "value"),
    [
        ([], "policy", []),
        ({"min_age": 7}, "min_age", 7),
        ({"profile": {}}, "profile", {}),
        ({"upgrade_types": "same"}, "upgrade_types", "same"),
        ({"upgrade_types": []}, "upgrade_types", []),
        ({"upgrade_types": ["same", "bogus"]}, "upgrade_types[1]", "bogus"),
        ({"upgrade_types": ["Same"]}, "upgrade_types[0]", "Same"),
        ({"upgrade_types": [1]}, "upgrade_types[0]", 1),
        ({"upgrade_types": ["same", "same"]}, "upgrade_types", ["same", "same"]),
        (
            {"upgrade_types": ["cross-engine", "crossEngine"], "allow_cross_engine": True},
            "upgrade_types",
            ["cross-engine", "crossEngine"],
        ),
        ({"allow_cross_engine": "true"}, "allow_cross_engine", "true"),
        ({"allow_cross_engine": 1}, "allow_cross_engine", 1),
        ({"allow_cross_engine": None}, "allow_cross_engine", None),
        ({"versions": [">=7"]}, "versions", [">=7"]),
        ({"versions": {"elastic": ">=7"}}, "versions.elastic", ">=7"),
        ({"versions": {"logstash": ">=7"}}, "versions.logstash", ">=7"),
        ({"versions": {"elasticsearch": ">=7", "Elasticsearch": ">=8"}}, "versions.Elasticsearch", ">=8"),
        ({"versions": {"elasticsearch": 7.10}}, "versions.elasticsearch", 7.10),
        ({"versions": {"elasticsearch": ">=7.10,<8x"}}, "versions.elasticsearch", ">=7.10,<8x"),
        ({"versions": {"opensearch": "2.11"}}, "versions.opensearch", "2.11"),
        ({"versions": {"opensearch": ""}}, "versions.opensearch", ""),
        ({"deny_images": "7.10.2_*"}, "deny_images", "7.10.2_*"),
        ({"deny_images": ["ok", ""]}, "deny_images[1]", ""),
        ({"deny_images": [" 7.10.2_*"]}, "deny_images[0]", " 7.10.2_*"),
        ({"deny_images": [None]}, "deny_images[0]", None),
        ({"min_age_days": 7}, "min_age_days", 7),
        ({"min_age_days": {"same": -1}}, "min_age_days.same", -1),
        ({"min_age_days": {"same": 1.5}}, "min_age_days.same", 1.5),
        ({"min_age_days": {"same": 7.0}}, "min_age_days.same", 7.0),
        ({"min_age_days": {"same": True}}, "min_age_days.same", True),
        ({"min_age_days": {"same": "7"}}, "min_age_days.same", "7"),
        ({"min_age_days": {"samee": 7}}, "min_age_days.samee", 7),
        ({"min_age_days": {"cross-engine": 7, "crossEngine": 9}}, "min_age_days.crossEngine", 9),
        ({"unknown_age": "maybe"}, "unknown_age", "maybe"),
        ({"unknown_age": None}, "unknown_age", None),
        ({"plugin_upload": "skip"}, "plugin_upload", "skip"),
        ({"plugin_upload": True}, "plugin_upload", True),
        ({"renotify_after_days": 0}, "renotify_after_days", 0),
        ({"renotify_after_days": -3}, "renotify_after_days", -3),
        ({"renotify_after_days": 3651}, "renotify_after_days", 3651),
        ({"renotify_after_days": True}, "renotify_after_days", True),
        ({"renotify_after_days": 7.0}, "renotify_after_days", 7.0),
        ({"renotify_after_days": "7"}, "renotify_after_days", "7"),
        ({"profiles": ["conservative"]}, "profiles", ["conservative"]),
        ({"profiles": {"": {}}}, "profiles", ""),
        ({"profiles": {"two words": {}}}, "profiles", "two words"),
        ({"profiles": {1: {}}}, "profiles", 1),
        ({"profiles": {"quiet": ["same"]}}, "profiles.quiet", ["same"]),
        ({"profiles": {"quiet": {"profiles": {}}}}, "profiles.quiet.profiles", {}),
        ({"profiles": {"quiet": {"min_age": 3}}}, "profiles.quiet.min_age", 3),
        ({"profiles": {"quiet": {"min_age_days": {"same": -1}}}}, "profiles.quiet.min_age_days.same", -1),
        ({"profiles": {"quiet": {"upgrade_types": []}}}, "profiles.quiet.upgrade_types", []),
        ({"profiles": {"quiet": {"unknown_age": "no"}}}, "profiles.quiet.unknown_age", "no"),
        # With several faults, the first key in the documented order is named.
        ({"upgrade_types": ["bogus"], "profiles": {"quiet": {"unknown_age": "no"}}}, "upgrade_types[0]", "bogus"),
        ({"renotify_after_days": 0, "unknown_age": "no"}, "unknown_age", "no"),
    ],
)
def test_policy_error_names_key(data: object, key: str, value: object) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    error = caught.value
    assert error.key == key
    assert error.value == value
    assert type(error.value) is type(value)
    assert str(error).startswith(f"invalid policy: {key} = {value!r}: ")


def test_policy_error_message_form() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({"min_age_days": {"same": -1}})
    assert str(caught.value) == "invalid policy: min_age_days.same = -1: expected a whole number of days >= 0"


def test_policy_error_is_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


def test_policy_error_unknown_key_lists_keys() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({"min_age": 7})
    assert "unknown key" in str(caught.value)
    assert "min_age_days" in str(caught.value)


def test_policy_error_range_names_clause() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({"versions": {"elasticsearch": ">=7.10,=<8"}})
    assert "'=<8'" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "key", "value"),
    [
        ({"upgrade_types": ["same", "cross-engine"]}, "upgrade_types", ["same", "cross-engine"]),
        ({"upgrade_types": ["crossEngine"]}, "upgrade_types", ["cross-engine"]),
        ({"profiles": {"wide": {"upgrade_types": ["cross-engine"]}}}, "profiles.wide.upgrade_types", ["cross-engine"]),
        (
            {
                "upgrade_types": ["cross-engine"],
                "allow_cross_engine": True,
                "profiles": {"strict": {"allow_cross_engine": False}},
            },
            "profiles.strict.allow_cross_engine",
            False,
        ),
    ],
)
def test_cross_engine_rule(data: dict[str, Any], key: str, value: object) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    assert caught.value.key == key
    assert caught.value.value == value
    assert "allow_cross_engine is false" in str(caught.value)


def test_cross_engine_allowed() -> None:
    policy = parse_policy({"upgrade_types": ["same", "crossEngine"], "allow_cross_engine": True})

    assert policy.upgrade_types == ["same", "cross-engine"]


def test_cross_engine_profile_allows() -> None:
    data = {"profiles": {"wide": {"upgrade_types": ["cross-engine"], "allow_cross_engine": True}}}

    assert parse_policy(data).effective("wide").upgrade_types == ["cross-engine"]


def test_versions_engine_lower_case() -> None:
    assert parse_policy({"versions": {"OpenSearch": ">=2.11"}}).versions == {"opensearch": ">=2.11"}


def test_min_age_days_older_spelling() -> None:
    policy = parse_policy({"min_age_days": {"crossEngine": 14, "same": 0}})

    assert policy.min_age_days == {"cross-engine": 14, "same": 0}


def test_renotify_bounds_accepted() -> None:
    assert parse_policy({"renotify_after_days": 1}).renotify_after_days == 1
    assert parse_policy({"renotify_after_days": 3650}).renotify_after_days == 3650


def test_policy_is_frozen() -> None:
    with pytest.raises(ValueError):
        Policy().renotify_after_days = 3  # type: ignore[misc]


# --- load_policy ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, "", "   \n"])
def test_load_default(value: str | None) -> None:
    assert load_policy(value) == Policy()


def test_load_inline_json() -> None:
    policy = load_policy('{"upgrade_types": ["same"], "min_age_days": {"same": 3}}')

    assert policy.upgrade_types == ["same"]
    assert policy.min_age_days == {"same": 3}


def test_load_inline_json_leading_space() -> None:
    assert load_policy('  {"renotify_after_days": 2}').renotify_after_days == 2


def test_load_json_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(FULL_POLICY), encoding="utf-8")

    assert load_policy(str(path)) == parse_policy(FULL_POLICY)


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_load_yaml_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"policy{suffix}"
    path.write_text(
        "# a comment\n"
        "upgrade_types: [same, cross]\n"
        "versions:\n"
        '  elasticsearch: ">=7.10,<8"\n'
        "deny_images:\n"
        '  - "7.10.2_24.3.3_*"\n'
        "min_age_days: {same: 7, cross: 30}\n"
        "profiles:\n"
        "  conservative:\n"
        "    upgrade_types: [same]\n",
        encoding="utf-8",
    )

    policy = load_policy(str(path))

    assert policy.versions == {"elasticsearch": ">=7.10,<8"}
    assert policy.deny_images == ["7.10.2_24.3.3_*"]
    assert policy.min_age_days == {"same": 7, "cross": 30}
    assert policy.profiles == {"conservative": {"upgrade_types": ["same"]}}


def test_load_yaml_merge_key(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "profiles:\n"
        "  base: &base {min_age_days: {same: 7}, unknown_age: reject}\n"
        "  stricter:\n"
        "    <<: *base\n"
        "    min_age_days: {same: 30}\n",
        encoding="utf-8",
    )

    policy = load_policy(str(path))

    assert policy.profiles["stricter"] == {"min_age_days": {"same": 30}, "unknown_age": "reject"}


def _load_error(value: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load_policy(value)
    return caught.value


def test_load_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yaml")

    error = _load_error(path)

    assert error.key == "UPGRADE_POLICY"
    assert error.value == path
    assert "not found" in str(error)


def test_load_source_name(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(str(tmp_path / "absent.json"), source="--policy")
    assert caught.value.key == "--policy"


def test_load_unreadable_directory(tmp_path: Path) -> None:
    path = tmp_path / "folder.json"
    path.mkdir()

    error = _load_error(str(path))

    assert error.value == str(path)
    assert "failed to read the policy file" in str(error)


def test_load_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"unknown_age: \xff\xfe\n")

    assert "failed to read the policy file" in str(_load_error(str(path)))


@pytest.mark.parametrize("name", ["policy.txt", "policy", "policy.json5"])
def test_load_unknown_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("{}", encoding="utf-8")

    error = _load_error(str(path))

    assert error.value == str(path)
    assert ".json, .yaml or .yml" in str(error)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("policy.json", "{", "not valid JSON"),
        ("policy.json", '{"unknown_age": "allow", "unknown_age": "reject"}', "'unknown_age' is repeated"),
        ("policy.json", "[]", "found list"),
        ("policy.json", "null", "found NoneType"),
        ("policy.yaml", "upgrade_types: [same\n", "not valid YAML"),
        ("policy.yaml", "unknown_age: allow\nunknown_age: reject\n", "'unknown_age' is repeated"),
        ("policy.yaml", "min_age_days:\n  same: 1\n  same: 2\n", "'same' is repeated"),
        ("policy.yaml", "- same\n- cross\n", "found list"),
        ("policy.yaml", "", "found NoneType"),
        ("policy.yaml", "# only a comment\n", "found NoneType"),
        ("policy.yml", "just text\n", "found str"),
        ("policy.yaml", "!!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_load_bad_content(tmp_path: Path, name: str, content: str, problem: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    error = _load_error(str(path))

    assert error.key == "UPGRADE_POLICY"
    assert error.value == str(path)
    assert problem in str(error)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{", "not valid JSON"),
        ('{"plugin_upload": "block", "plugin_upload": "allow"}', "'plugin_upload' is repeated"),
        ("{'unknown_age': 'allow'}", "not valid JSON"),
    ],
)
def test_load_bad_inline_json(value: str, problem: str) -> None:
    error = _load_error(value)

    assert error.value == value
    assert problem in str(error)


def test_load_invalid_file_names_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("min_age_days:\n  same: -1\n", encoding="utf-8")

    error = _load_error(str(path))

    assert error.key == "min_age_days.same"
    assert error.value == -1
    assert error.origin == str(path)
    assert str(error) == f"invalid policy in {path}: min_age_days.same = -1: expected a whole number of days >= 0"


def test_load_inline_invalid_key() -> None:
    error = _load_error('{"renotify_after_days": 0}')

    assert error.key == "renotify_after_days"
    assert error.value == 0
    assert error.origin is None


def test_load_unquoted_yaml_range(tmp_path: Path) -> None:
    # YAML reads an unquoted 2.11 as a number, which is never a range.
    path = tmp_path / "policy.yaml"
    path.write_text("versions:\n  opensearch: 2.11\n", encoding="utf-8")

    error = _load_error(str(path))

    assert error.key == "versions.opensearch"
    assert error.value == 2.11


# --- profiles and effective ---------------------------------------------------------------------

PROFILED: dict[str, Any] = {
    "upgrade_types": ["same", "cross"],
    "min_age_days": {"same": 7, "cross": 30},
    "deny_images": ["7.10.2_24.3.3_*"],
    "profiles": {
        "conservative": {"upgrade_types": ["same"], "min_age_days": {"same": 30}},
        "fast": {"min_age_days": {}},
        "empty": {},
    },
}


def test_profile_replaces_keys() -> None:
    policy = parse_policy(PROFILED).effective("conservative")

    assert policy.upgrade_types == ["same"]
    assert policy.min_age_days == {"same": 30}


def test_profile_no_deep_merge() -> None:
    # `cross: 30` of the base is gone: the profile's dict replaces the whole key.
    policy = parse_policy(PROFILED).effective("conservative")

    assert "cross" not in policy.min_age_days


def test_profile_keeps_other_keys() -> None:
    policy = parse_policy(PROFILED).effective("conservative")

    assert policy.deny_images == ["7.10.2_24.3.3_*"]


def test_profile_empty_dict_replaces() -> None:
    assert parse_policy(PROFILED).effective("fast").min_age_days == {}


def test_profile_empty_is_base() -> None:
    base = parse_policy(PROFILED)

    assert base.effective("empty") == base.effective()


def test_effective_drops_profiles() -> None:
    assert parse_policy(PROFILED).effective("conservative").profiles == {}


def test_effective_without_arguments() -> None:
    policy = parse_policy(PROFILED).effective()

    assert policy.upgrade_types == ["same", "cross"]
    assert policy.min_age_days == {"same": 7, "cross": 30}


def test_profile_values_normalised() -> None:
    data = {
        "upgrade_types": ["same", "crossEngine"],
        "allow_cross_engine": True,
        "profiles": {"only-engine": {"upgrade_types": ["crossEngine"]}},
    }

    assert parse_policy(data).profiles == {"only-engine": {"upgrade_types": ["cross-engine"]}}


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("careful", "one of the configured profiles: conservative, empty, fast"),
        ("Conservative", "one of the configured profiles"),
        ("", "one of the configured profiles"),
    ],
)
def test_unknown_profile(profile: str, expected: str) -> None:
    with pytest.raises(ids.InvalidValue) as caught:
        parse_policy(PROFILED).effective(profile)
    assert caught.value.field == "policy_profile"
    assert caught.value.value == profile
    assert expected in str(caught.value)


def test_profile_none_configured() -> None:
    with pytest.raises(ids.InvalidValue) as caught:
        Policy().effective("conservative")
    assert caught.value.field == "policy_profile"
    assert "which configures none" in str(caught.value)


@pytest.mark.parametrize(
    ("profile", "requested", "expected"),
    [
        (None, ["cross"], ["cross"]),
        (None, ["cross", "same"], ["cross", "same"]),
        (None, ["same"], ["same"]),
        ("conservative", ["same"], ["same"]),
        ("fast", ["cross", "same"], ["cross", "same"]),
    ],
)
def test_narrow_types(profile: str | None, requested: list[str], expected: list[str]) -> None:
    assert parse_policy(PROFILED).effective(profile, requested).upgrade_types == expected


def test_narrow_older_spelling() -> None:
    policy = parse_policy({"upgrade_types": ["cross-engine", "same"], "allow_cross_engine": True})

    assert policy.effective(upgrade_types=["crossEngine"]).upgrade_types == ["cross-engine"]


@pytest.mark.parametrize(
    ("profile", "requested", "value", "expected"),
    [
        (None, ["cross-engine"], "cross-engine", "one of the types the policy allows (same, cross)"),
        ("conservative", ["cross"], "cross", "one of the types the policy allows (same)"),
        ("conservative", ["same", "cross"], "cross", "(same)"),
        (None, ["bogus"], "bogus", "one of same, cross, cross-engine"),
        (None, [], [], "a non-empty list"),
        (None, "same", "same", "a non-empty list"),
        (None, ["same", "same"], ["same", "same"], "at most once"),
        (None, [None], None, "one of same, cross, cross-engine"),
    ],
)
def test_narrow_errors(profile: str | None, requested: Any, value: object, expected: str) -> None:
    with pytest.raises(ids.InvalidValue) as caught:
        parse_policy(PROFILED).effective(profile, requested)
    assert caught.value.field == "upgrade_types"
    assert caught.value.value == value
    assert expected in str(caught.value)


def test_narrow_after_profile() -> None:
    # The message's list is checked against the profile's list, not the base list.
    with pytest.raises(ids.InvalidValue):
        parse_policy(PROFILED).effective("conservative", ["cross"])
    assert parse_policy(PROFILED).effective(None, ["cross"]).upgrade_types == ["cross"]


# --- with_upgrade_types (the CLI's --type) ---------------------------------------------------------

@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (["cross-engine"], ["cross-engine"]),
        (["crossEngine", "same"], ["cross-engine", "same"]),
        (["cross"], ["cross"]),
        (("same", "cross", "cross-engine"), ["same", "cross", "cross-engine"]),
    ],
)
def test_override_replaces(requested: list[str], expected: list[str]) -> None:
    policy = Policy().with_upgrade_types(requested)

    assert policy.upgrade_types == expected
    assert policy.allow_cross_engine is False


def test_override_adds_type() -> None:
    # Unlike a message's list, the operator's list may name types the policy does not list.
    policy = parse_policy({"upgrade_types": ["same"]}).with_upgrade_types(["cross"])

    assert policy.upgrade_types == ["cross"]


def test_override_keeps_other_keys() -> None:
    policy = parse_policy(PROFILED).with_upgrade_types(["cross"])

    assert policy.min_age_days == {"same": 7, "cross": 30}
    assert policy.profiles == parse_policy(PROFILED).profiles


def test_override_then_effective() -> None:
    policy = Policy().with_upgrade_types(["cross-engine"]).effective()

    assert policy.upgrade_types == ["cross-engine"]


@pytest.mark.parametrize(
    ("requested", "field", "value"),
    [
        ([], "upgrade_types", []),
        ("cross", "upgrade_types", "cross"),
        (["cross", "bogus"], "upgrade_types[1]", "bogus"),
        (["cross", "cross"], "upgrade_types", ["cross", "cross"]),
    ],
)
def test_override_errors(requested: Any, field: str, value: object) -> None:
    with pytest.raises(ids.InvalidValue) as caught:
        Policy().with_upgrade_types(requested)
    assert caught.value.field == field
    assert caught.value.value == value


# --- Example policy files -------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "policies"


@pytest.mark.parametrize("name", ["example-policy.yaml", "example-policy.json"])
def test_example_uses_every_key(name: str) -> None:
    raw = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))

    assert set(raw) == set(Policy.model_fields)
    assert load_policy(str(EXAMPLES / name)) != Policy()


def test_examples_agree() -> None:
    assert load_policy(str(EXAMPLES / "example-policy.yaml")) == load_policy(str(EXAMPLES / "example-policy.json"))


def test_example_profile() -> None:
    policy = load_policy(str(EXAMPLES / "example-policy.yaml"))

    assert policy.effective("conservative").min_age_days == {"same": 30}
    assert policy.effective("fast-track").upgrade_types == ["same", "cross"]
