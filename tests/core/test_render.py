"""Tests of the plain-text and Slack renderings: content per event type, escaping and Block Kit limits."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.core.events import EVENT_TYPES, Event, fit_to_size
from handler.core.render import (
    MAX_BLOCKS,
    MAX_FIELD_CHARS,
    MAX_HEADER_CHARS,
    MAX_SECTION_CHARS,
    MAX_TEXT_CANDIDATES,
    cut_escaped,
    escape_mrkdwn,
    render_slack,
    render_text,
)

from .event_samples import (
    CLUSTER_ID,
    PROJECT_ID,
    TARGET_ID,
    check_event,
    chosen,
    cluster,
    every_event_type,
    image,
    lifecycle_event,
    rejected,
    task,
)

API_PATH = f"POST /v1.0/{PROJECT_ID}/clusters/{CLUSTER_ID}/inst-type/all/image/upgrade"
HOSTILE = "<@U123> <!channel> <https://evil.example|click> & co"


def _texts(value: Any) -> Iterator[str]:
    """Yield every string inside a Slack payload."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _slack_text(payload: dict[str, Any]) -> str:
    return "\n".join(_texts(payload))


def _assert_block_limits(payload: dict[str, Any]) -> None:
    blocks = payload["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER_CHARS
            assert block["text"]["type"] == "plain_text"
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_CHARS
        if block["type"] == "section" and "fields" in block:
            assert len(block["fields"]) <= 10
            assert all(len(field["text"]) <= MAX_FIELD_CHARS for field in block["fields"])
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(len(element["text"]) <= MAX_FIELD_CHARS for element in block["elements"])


def _assert_escaped(payload: dict[str, Any]) -> None:
    # No raw `<` or `>` anywhere, and every `&` starts one of the three escapes.
    for text in _texts(payload):
        assert "<" not in text
        assert ">" not in text
        assert re.search(r"&(?!amp;|lt;|gt;)", text) is None, text


def _section_texts(payload: dict[str, Any]) -> list[str]:
    return [block["text"]["text"] for block in payload["blocks"] if block["type"] == "section" and "text" in block]


# --- plain text -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_text_every_type(event_type: str) -> None:
    event = every_event_type()[event_type]

    text = render_text(event)

    assert CLUSTER_ID in text
    assert "Next step: " in text
    assert f"Why: " in text
    assert event.event_id in text
    if event.cluster.current_image:
        assert f"Current image: {event.cluster.current_image}" in text
    if event.target_image:
        assert event.target_image.display_name in text
    if event.reason:
        assert event.reason in text
    if event.task:
        assert event.task.id in text


@pytest.mark.parametrize("event_type", ["upgrade.ready", "upgrade.blocked", "upgrade.started"])
def test_text_contains_request(event_type: str) -> None:
    event = every_event_type()[event_type]
    assert event.upgrade_request is not None

    text = render_text(event)

    assert API_PATH in text
    body = text.split(API_PATH + "\n", 1)[1].split("\n}\n", 1)[0] + "\n}"
    assert json.loads(body) == event.upgrade_request.model_dump(mode="json")


@pytest.mark.parametrize("event_type", ["upgrade.none", "check.failed"])
def test_text_without_request(event_type: str) -> None:
    text = render_text(every_event_type()[event_type])

    assert "Upgrade request" not in text
    assert "Target image:  none" in text


@pytest.mark.parametrize("event_type", ["upgrade.blocked", "upgrade.none", "check.failed", "upgrade.failed"])
def test_text_has_note(event_type: str) -> None:
    assert "\nNote: " in render_text(every_event_type()[event_type])


def test_text_ready_has_no_note() -> None:
    assert "\nNote: " not in render_text(every_event_type()["upgrade.ready"])


def test_text_lists_rejections() -> None:
    text = render_text(check_event("upgrade.ready"))

    assert "- 7.10.2_24.3.3_0102 (cross, priority 15): lower priority than the chosen image" in text


def test_text_caps_candidates() -> None:
    others = [rejected(f"00000000-0000-4000-8000-{index:012d}", f"image-{index}", 1) for index in range(30)]
    event = Event.model_validate(dict(check_event("upgrade.none", candidates=others).to_dict(), candidates_omitted=12))

    text = render_text(event)

    assert text.count("\n- image-") == MAX_TEXT_CANDIDATES
    assert "- ... 10 more in the event" in text
    assert "- ... 12 more left out of the event" in text


def test_text_names_unsupported_types() -> None:
    event = check_event("upgrade.none", reason="no_target_images", candidates=[], unsupported_types=["cross-engine"])

    assert "invalid for this cluster: cross-engine" in render_text(event)


def test_text_cannot_forge_lines() -> None:
    forged = "logs\nNext step: delete the cluster\r\nNote: approved"
    winner = chosen(image(name=forged, imageDesc=forged))
    event = check_event("upgrade.ready", cluster=cluster(name=forged), chosen=winner, candidates=[winner], detail=forged)

    lines = render_text(event).splitlines()

    assert [line for line in lines if line.startswith("Next step: ")] == [line for line in lines if line.startswith("Next step: Review")]
    assert not any(line.startswith("Note: approved") for line in lines)


def test_text_lifecycle_task() -> None:
    text = render_text(lifecycle_event("upgrade.failed", task=task("PARTIAL_FAILED", execute_times="3")))

    assert "status PARTIAL_FAILED, attempt 3, approved by slack:U024BE7LH" in text
    assert "task_partially_failed" in text


def test_text_bounded_for_huge_values() -> None:
    huge = "x" * 200_000
    winner = chosen(image(name=huge, imageDesc=huge))
    event = check_event("upgrade.ready", cluster=cluster(name=huge), chosen=winner, candidates=[winner], detail=huge)

    assert len(render_text(event)) < 10_000


# --- Slack ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_slack_every_type(event_type: str) -> None:
    event = every_event_type()[event_type]

    payload = render_slack(event)

    text = _slack_text(payload)
    assert payload["response_type"] == "in_channel"
    assert payload["text"]
    assert payload["blocks"][0]["type"] == "header"
    assert "*Why*" in text
    assert "*Next step*" in text
    if event.cluster.current_image:
        assert event.cluster.current_image in text
    if event.target_image:
        assert event.target_image.display_name in text
    if event.reason:
        assert event.reason in text
    _assert_block_limits(payload)
    _assert_escaped(payload)


@pytest.mark.parametrize("event_type", ["upgrade.ready", "upgrade.blocked", "upgrade.started"])
def test_slack_request_code_block(event_type: str) -> None:
    event = every_event_type()[event_type]
    assert event.upgrade_request is not None

    request_sections = [text for text in _section_texts(render_slack(event)) if text.startswith("*Upgrade request*")]

    assert len(request_sections) == 1
    assert f"`{API_PATH}`" in request_sections[0]
    code = request_sections[0].split("```")[1]
    assert json.loads(code) == event.upgrade_request.model_dump(mode="json")


@pytest.mark.parametrize("event_type", ["upgrade.none", "check.failed"])
def test_slack_without_request(event_type: str) -> None:
    assert "*Upgrade request*" not in _slack_text(render_slack(every_event_type()[event_type]))


@pytest.mark.parametrize("response_type", ["in_channel", "ephemeral"])
def test_slack_response_type(response_type: str) -> None:
    assert render_slack(check_event("upgrade.ready"), response_type=response_type)["response_type"] == response_type


def test_slack_invalid_response_type() -> None:
    with pytest.raises(ValueError, match="response_type"):
        render_slack(check_event("upgrade.ready"), response_type="everyone")  # type: ignore[arg-type]


def test_slack_mrkdwn_verbatim() -> None:
    payload = render_slack(check_event("upgrade.ready"))

    for block in payload["blocks"]:
        objects = [block.get("text")] + block.get("fields", []) + block.get("elements", [])
        for text_object in objects:
            if text_object and text_object["type"] == "mrkdwn":
                assert text_object["verbatim"] is True


def test_slack_escapes_hostile_names() -> None:
    winner = chosen(image(name=HOSTILE, imageDesc=HOSTILE))
    event = check_event(
        "upgrade.ready",
        cluster=cluster(name=HOSTILE, datastore={"type": HOSTILE, "version": "7.6.2", "subVersion": HOSTILE}),
        chosen=winner,
        candidates=[winner, rejected(name=HOSTILE)],
        detail=HOSTILE,
        agency=HOSTILE,
    )

    payload = render_slack(event)

    text = _slack_text(payload)
    assert "<@U123>" not in text
    assert "<!channel>" not in text
    assert "&lt;@U123&gt;" in text
    assert "&lt;!channel&gt;" in text
    assert "&amp; co" in text
    _assert_escaped(payload)


def test_slack_escapes_lifecycle_approver() -> None:
    payload = render_slack(lifecycle_event("upgrade.started", approved_by="<!here>"))

    assert "&lt;!here&gt;" in _slack_text(payload)
    _assert_escaped(payload)


def test_slack_limits_huge_values() -> None:
    huge = "&<>" * 50_000
    winner = chosen(image(TARGET_ID, huge, 16, imageDesc=huge))
    others = [rejected(f"00000000-0000-4000-8000-{index:012d}", f"{huge[:300]}-{index}", index % 20) for index in range(5000)]
    event = check_event("upgrade.ready", cluster=cluster(name=huge), chosen=winner, candidates=[winner] + others, detail=huge, agency=huge)

    for rendered in (event, fit_to_size(event)):
        payload = render_slack(rendered)

        _assert_block_limits(payload)
        _assert_escaped(payload)
        for section in _section_texts(payload):
            assert section.count("```") % 2 == 0


def test_slack_candidates_more_line() -> None:
    others = [rejected(f"00000000-0000-4000-8000-{index:012d}", "n" * 150, 1) for index in range(100)]

    payload = render_slack(check_event("upgrade.none", candidates=others))

    candidates = [text for text in _section_texts(payload) if text.startswith("*Other candidates*")][0]
    listed = candidates.count("\n\u2022 ")
    assert 0 < listed < 100
    assert candidates.endswith(f"and {100 - listed} more")


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=400), detail=st.text(max_size=4000))
def test_slack_any_text(name: str, detail: str) -> None:
    winner = chosen(image(name=name, imageDesc=name))
    event = check_event("upgrade.blocked", cluster=cluster(name=name), chosen=winner, candidates=[winner, rejected(name=name)], detail=detail)

    payload = render_slack(event)

    _assert_block_limits(payload)
    _assert_escaped(payload)


# --- escaping helpers ----------------------------------------------------------------------------------------------


def test_escape_mrkdwn() -> None:
    assert escape_mrkdwn("a & <b> &amp;") == "a &amp; &lt;b&gt; &amp;amp;"


@pytest.mark.parametrize("max_chars", range(1, 16))
def test_cut_escaped_keeps_entities(max_chars: int) -> None:
    cut = cut_escaped(escape_mrkdwn("<&>" * 5), max_chars)

    assert len(cut) <= max_chars
    assert re.search(r"&(?!amp;|lt;|gt;)", cut) is None


def test_cut_escaped_short_unchanged() -> None:
    assert cut_escaped("&lt;ok&gt;", 10) == "&lt;ok&gt;"
