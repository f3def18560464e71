"""Broadcasting an event: to the SNS topic, to the EventBridge bus, or as a JSON line on standard output.

SNS deliveries carry the event as JSON for machine subscribers and its plain-text rendering for
e-mail subscribers (one publish with a per-protocol message), plus the seven message attributes that
subscription filter policies match. With neither a topic nor a bus configured, events go to
standard output, one JSON document per line.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import TextIO

from handler.aws import eventbridge, sns
from handler.aws.client import AwsClient
from handler.core.events import EVENT_SOURCE, Event, fit_to_size, sns_message_attributes, sns_subject
from handler.core.render import render_text
from handler.retry import NO_DEADLINE, Deadline


def sns_message(event: Event) -> str:
    """Build the SNS per-protocol message: the event's JSON for machines, its plain text for e-mail."""
    return json.dumps({"default": event.to_json(), "email": render_text(event)}, ensure_ascii=False)


def fitted_sns_message(event: Event) -> tuple[Event, str]:
    """Return the event cut to the SNS size limit and its SNS message.

    The message that was measured last is reused when it belongs to the returned event, so an event
    that fits is rendered once rather than twice (the JSON plus the e-mail text, about 0.2 ms).
    """
    measured: list[tuple[Event, str]] = []

    def message_size(candidate: Event) -> int:
        message = sns_message(candidate)
        measured[:] = [(candidate, message)]
        return len(message.encode("utf-8"))

    # The SNS message carries the event twice (JSON and e-mail text), so both count toward the limit.
    fitted = fit_to_size(event, size_of=message_size)
    if measured and measured[0][0] is fitted:
        return fitted, measured[0][1]
    return fitted, sns_message(fitted)


class Broadcaster:
    """Publishes events to every configured target."""

    def __init__(
        self,
        client: AwsClient,
        *,
        topic_arn: str | None = None,
        event_bus: str | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self._client = client
        self.topic_arn = topic_arn
        self.event_bus = event_bus
        self._stream = stream
        self._stream_lock = threading.Lock()

    @property
    def targets(self) -> list[str]:
        """Human-readable names of where events go."""
        names = []
        if self.topic_arn:
            names.append(f"SNS {self.topic_arn}")
        if self.event_bus:
            names.append(f"EventBridge {self.event_bus}")
        return names or ["standard output"]

    def broadcast(self, event: Event, *, deadline: Deadline = NO_DEADLINE, published_targets: set[str] | None = None) -> None:
        """Publish `event` (cut to the size limit) to every target; raise the first delivery error.

        `published_targets` names targets (`sns:<topic ARN>`, `eventbridge:<bus>`) that already have
        the event: they are skipped, and each target this call publishes to is added to the set, so
        that after an error the caller knows which targets got the event.
        """
        published = published_targets if published_targets is not None else set()
        if not self.topic_arn and not self.event_bus:
            self._write_line(fit_to_size(event))
            return

        sns_target = f"sns:{self.topic_arn}"
        if self.topic_arn and sns_target not in published:
            sns_event, message = fitted_sns_message(event)
            sns.publish(
                self.topic_arn,
                message,
                subject=sns_subject(sns_event),
                attributes=sns_message_attributes(sns_event),
                message_structure="json",
                client=self._client,
                deadline=deadline,
            )
            published.add(sns_target)

        bus_target = f"eventbridge:{self.event_bus}"
        if self.event_bus and bus_target not in published:
            entry = eventbridge.EventEntry(source=EVENT_SOURCE, detail_type=event.event_type, detail=fit_to_size(event).to_json())
            eventbridge.put_events([entry], self.event_bus, client=self._client, deadline=deadline)
            published.add(bus_target)

    def _write_line(self, event: Event) -> None:
        stream = self._stream or sys.stdout
        with self._stream_lock:
            stream.write(event.to_json() + "\n")
            stream.flush()
