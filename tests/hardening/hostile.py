"""Hypothesis strategies for hostile work messages, and hostile values shared with the Slack tests.

Each generated work message is invalid in exactly one field, so a test can check that the
rejection names that field. The values are wrong types, huge strings, deep nesting, look-alike
characters (Cyrillic and fullwidth letters and digits) and control characters. They also include
path, query, user-info and header injection, wrong encodings, and both spellings of a field at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from handler.core.message import SOURCES
from handler.local.emulator.catalog import DEFAULT_PROJECT_ID, DEFAULT_REGION

GOOD_CLUSTER = "ea244205-d641-45d9-9dcb-ab2236bcd07e"  # logs-prod of the default catalog
GOOD_PROJECT = DEFAULT_PROJECT_ID
GOOD_REGION = DEFAULT_REGION

CAMEL_CASE = {
    "cluster_id": "clusterId",
    "project_id": "projectId",
    "upgrade_types": "upgradeTypes",
    "policy_profile": "policyProfile",
    "requested_by": "requestedBy",
    "correlation_id": "correlationId",
    "reply_to": "replyTo",
}

# Each contains at least one character that no identifier, profile name or correlation ID allows.
INJECTIONS = (
    "../",
    "..%2F",
    "%2F",
    "%2e%2e%2f",
    "#",
    "#frag",
    "?",
    "?limit=1",
    "@",
    "@127.0.0.2",
    "\r\n",
    "\r\nHost: 127.0.0.2",
    "\n",
    "\t",
    " ",
    "\x00",
    "\x7f",
    "\u200b",
    "\ufeff",
    "\u2028",
    "\\",
    "%00",
    ";",
    "&x=",
    "//127.0.0.2/",
    ":443/",
)

# Characters that look like ASCII letters and digits: Cyrillic letters, fullwidth forms, a hyphen.
LOOKALIKES = {
    "0": "\uff10", "1": "\uff11", "2": "\uff12", "3": "\uff13", "4": "\uff14", "5": "\uff15",
    "6": "\uff16", "7": "\uff17", "8": "\uff18", "9": "\uff19",
    "a": "\u0430", "b": "\uff42", "c": "\u0441", "d": "\uff44", "e": "\u0435", "f": "\uff46",
    "h": "\u04bb", "o": "\u043e", "p": "\u0440", "s": "\u0455", "t": "\uff54", "u": "\uff55",
    "-": "\u2010",
}

CONTROL_CHARACTERS = tuple(chr(code) for code in (*range(0, 32), *range(127, 160)))

# Reply URLs on no host of SLACK_REPLY_HOSTS (127.0.0.1 in the tests), or not plain http(s) URLs.
HOSTILE_URLS = (
    "https://hooks.slack.com/commands/T0/1/abc",
    "http://127.0.0.2/commands/x",
    "http://127.0.0.1.evil.invalid/commands/x",
    "http://127.0.0.1@127.0.0.2/commands/x",
    "http://127.0.0.1:80@127.0.0.2/x",
    "https://hooks.slack.com@127.0.0.2/x",
    "http://user:secret@127.0.0.1/x",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://2130706433/x",
    "http://0x7f000001/x",
    "http://0177.0.0.1/x",
    "http://127.1/x",
    "http://127.0.0.1:99999/x",
    "http://127.0.0.1:-1/x",
    "http://127\u30020\u30020\u30021/x",
    "http://127\uff0e0\uff0e0\uff0e1/x",
    "http://\uff11\uff12\uff17.0.0.1/x",
    "http:\\\\127.0.0.1\\x",
    "http://127.0.0.1\\@127.0.0.2/x",
    "http://127.0.0.1\r\nHost: 127.0.0.2/x",
    "http://127.0.0.1/x\r\nX-Injected: 1",
    "http://127.0.0.1 /x",
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/_x",
    "ftp://127.0.0.1/x",
    "javascript:alert(1)",
    "//127.0.0.1/x",
    "127.0.0.1/x",
    "http:///x",
    "",
    "https://hooks.slack.com.127.0.0.2.nip.invalid/x",
    "http://localhost/x",
    "http://127.0.0.1" + "/x" * 1100,
)


@dataclass(frozen=True)
class HostileMessage:
    """A work message body and the field its rejection must name."""

    body: str
    field: str


def nested(depth: int) -> Any:
    """Return a value nested `depth` levels deep, objects and lists in turn."""
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


WRONG_TYPES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.integers(min_value=1, max_value=200).map(nested),
)


@st.composite
def corrupted(draw: st.DrawFn, valid: str, *, lookalikes: bool = True) -> str:
    """Return `valid` made invalid by an injection, a look-alike, a control character or sheer size."""
    corruption = draw(st.sampled_from(("inject", "lookalike", "control", "huge") if lookalikes else ("inject", "control", "huge")))
    position = draw(st.integers(min_value=0, max_value=len(valid)))
    if corruption == "inject":
        return valid[:position] + draw(st.sampled_from(INJECTIONS)) + valid[position:]
    if corruption == "control":
        return valid[:position] + draw(st.sampled_from(CONTROL_CHARACTERS)) + valid[position:]
    if corruption == "huge":
        return valid * draw(st.integers(min_value=200, max_value=3000))
    replaceable = [index for index, character in enumerate(valid) if character in LOOKALIKES]
    index = draw(st.sampled_from(replaceable))
    return valid[:index] + LOOKALIKES[valid[index]] + valid[index + 1 :]


def _not_none(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy.filter(lambda value: value is not None)


# For each field, values that make a message invalid in that field.
HOSTILE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "cluster_id": st.one_of(corrupted(GOOD_CLUSTER), WRONG_TYPES, st.sampled_from(["", GOOD_CLUSTER[:-1], GOOD_CLUSTER + "0", None])),
    "project_id": st.one_of(corrupted(GOOD_PROJECT), WRONG_TYPES, st.sampled_from(["", GOOD_PROJECT[:-1], None])),
    "region": st.one_of(corrupted(GOOD_REGION), WRONG_TYPES, st.sampled_from(["", "AP-SOUTHEAST-1", "ap-southeast-1.evil.invalid", None])),
    "upgrade_types": st.one_of(
        _not_none(WRONG_TYPES).filter(lambda value: not isinstance(value, list)),
        st.just([]),
        st.sampled_from([["sideways"], ["same", "same"], ["cross-engine"], [["same"]], ["SAME"], ["same "], ["cross_engine"]]),
        corrupted("same").map(lambda value: ["cross", value]),
    ),
    "policy_profile": st.one_of(corrupted("conservative", lookalikes=False), st.just("conservative"), _not_none(WRONG_TYPES)),
    "source": st.one_of(st.text(max_size=20).filter(lambda value: value not in SOURCES), st.just(None), _not_none(WRONG_TYPES)),
    "requested_by": st.one_of(
        st.sampled_from(CONTROL_CHARACTERS).map(lambda character: f"slack:U0{character}EVIL"),
        st.sampled_from(["", "x" * 201, "slack:U0\u200bEVIL", "slack:U0\u2028EVIL", "a\r\nb"]),
        _not_none(WRONG_TYPES),
    ),
    "correlation_id": st.one_of(corrupted("corr-1", lookalikes=False), st.sampled_from(["", "x" * 129]), _not_none(WRONG_TYPES)),
}


@st.composite
def field_level_messages(draw: st.DrawFn) -> HostileMessage:
    """A JSON message whose other fields are valid and one field is hostile."""
    field = draw(st.sampled_from((*HOSTILE_VALUES, "reply_to")))
    message: dict[str, Any] = {"cluster_id": GOOD_CLUSTER}
    if draw(st.booleans()):
        message.update(project_id=GOOD_PROJECT, region=GOOD_REGION)
    if draw(st.booleans()):
        message["unknown_key"] = draw(st.sampled_from(["ignored", 1, None, ["x"]]))

    expected = field
    if field == "reply_to":
        value, expected = draw(
            st.one_of(
                _not_none(WRONG_TYPES).filter(lambda item: not isinstance(item, dict)).map(lambda item: (item, "reply_to")),
                st.sampled_from(HOSTILE_URLS).map(lambda url: ({"slack_response_url": url}, "reply_to.slack_response_url")),
                st.sampled_from(HOSTILE_URLS).map(lambda url: ({"slackResponseUrl": url}, "reply_to.slack_response_url")),
                _not_none(WRONG_TYPES).map(lambda item: ({"slack_response_url": item}, "reply_to.slack_response_url")),
                st.just(({"slack_response_url": "http://127.0.0.1/a", "slackResponseUrl": "http://127.0.0.1/a"}, "reply_to.slack_response_url")),
            )
        )
    else:
        value = draw(HOSTILE_VALUES[field])

    camel = CAMEL_CASE.get(field)
    if field == "cluster_id" and draw(st.booleans()):
        # Both spellings at once: the message is invalid even when both values are the same.
        message["clusterId"] = value if draw(st.booleans()) else GOOD_CLUSTER
    elif camel and draw(st.booleans()):
        message.pop(field, None)
        message[camel] = value
    else:
        message[field] = value
    return HostileMessage(json.dumps(message, ensure_ascii=draw(st.booleans())), expected)


BODY_LEVEL = st.sampled_from(
    [
        HostileMessage("{not json", "body"),
        HostileMessage('{"cluster_id": "' + GOOD_CLUSTER + '"', "body"),
        HostileMessage('{"cluster_id": ' + "[" * 100_000, "body"),
        HostileMessage("{" + '"a":{' * 50_000, "body"),
        HostileMessage("\ufeff" + json.dumps({"cluster_id": GOOD_CLUSTER}), "cluster_id"),
        HostileMessage(json.dumps([{"cluster_id": GOOD_CLUSTER}]), "cluster_id"),
        HostileMessage(json.dumps(GOOD_CLUSTER), "cluster_id"),
        HostileMessage("{}", "cluster_id"),
        HostileMessage(json.dumps({"clusterid": GOOD_CLUSTER}), "cluster_id"),
        HostileMessage("", "cluster_id"),
        HostileMessage(" \t\r\n ", "cluster_id"),
        HostileMessage(GOOD_CLUSTER + "\r\nHost: 127.0.0.2", "cluster_id"),
        HostileMessage(GOOD_CLUSTER + "/../../v1.0/other", "cluster_id"),
        HostileMessage(GOOD_CLUSTER[:-1] + "\ufffd", "cluster_id"),
        # UTF-8 bytes read as Latin-1 (mojibake), as a producer with the wrong encoding sends them.
        HostileMessage(json.dumps({"cluster_id": GOOD_CLUSTER[:-1] + "\u00e9"}, ensure_ascii=False).encode("utf-8").decode("latin-1"), "cluster_id"),
        HostileMessage(json.dumps({"cluster_id": GOOD_CLUSTER, "region": "ap-southeast-1\u00e9"}, ensure_ascii=False).encode("utf-8").decode("latin-1"), "region"),
        HostileMessage(json.dumps({"cluster_id": GOOD_CLUSTER, "reply_to": {"slack_response_url": "http://127.0.0.1/x", "slackResponseUrl": "http://127.0.0.1/y"}}), "reply_to.slack_response_url"),
    ]
)

# Lone surrogates (undecodable bytes read with surrogateescape) cannot travel through SQS, so they
# are only fed to the parser directly.
UNDECODABLE = st.sampled_from(
    [
        HostileMessage(b'{"cluster_id": "\xff\xfe"}'.decode("utf-8", "surrogateescape"), "cluster_id"),
        HostileMessage(GOOD_CLUSTER[:-2] + b"\xc3\x28".decode("utf-8", "surrogateescape"), "cluster_id"),
    ]
)


def sqs_safe(text: str) -> bool:
    """Whether SQS accepts `text` as a message body (the XML character range)."""
    for character in text:
        code = ord(character)
        if code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF:
            continue
        return False
    return True


HOSTILE_MESSAGES = st.one_of(field_level_messages(), field_level_messages(), field_level_messages(), BODY_LEVEL)
SQS_HOSTILE_MESSAGES = HOSTILE_MESSAGES.filter(lambda message: sqs_safe(message.body))
PARSER_HOSTILE_MESSAGES = st.one_of(HOSTILE_MESSAGES, UNDECODABLE)
