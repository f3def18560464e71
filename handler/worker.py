"""Lambda entry point of the main job: an SQS batch of work messages in, events out.

Returns `{"batchItemFailures": [...]}` for every batch, also when every record failed. It raises
only on a configuration fault, so that no message of the batch is consumed while the deployment is
broken; that fault is logged once per invocation and counted in the `ConfigurationFault` metric.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handler import runtime as runtime_module
from handler.batch import ConcurrentBatchProcessor, fifo_processor
from handler.config import ConfigurationError
from handler.observability import count, logger, metrics
from handler.process import ConfigurationFault, Record, Redeliver, process_message
from handler.retry import Deadline

# Time kept back from the Lambda deadline for dead-lettering and returning the failure list.
SAFETY_MARGIN_SECONDS = 5.0

# A processor stores the state of the batch it is processing, so each invoking thread gets its own.
# Lambda invokes one batch at a time per execution environment, always from the same thread, so warm
# invocations still reuse the processors and the standard-queue thread pool. Local tools and tests
# that run invocations side by side in threads get separate ones.
_processors = threading.local()


class _Invocation:
    """State shared by the records of one invocation: the deadline and the first configuration fault."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.fault: Exception | None = None
        self._lock = threading.Lock()

    def fail(self, error: Exception) -> None:
        with self._lock:
            if self.fault is None:
                self.fault = error


@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        runtime = runtime_module.get()
    except ConfigurationError as error:
        _report_fault(error)
        raise

    invocation = _Invocation(Deadline.from_lambda_context(context, SAFETY_MARGIN_SECONDS))
    processor = _processor_for(event, runtime.settings.max_concurrency)

    def record_handler(record: SQSRecord) -> str:
        if invocation.fault is not None:
            raise ConfigurationFault("skipped: the batch stopped at a configuration fault")
        try:
            outcome = process_message(
                Record(body=record.body, message_id=record.message_id, group_id=record.attributes.message_group_id),
                runtime,
                invocation.deadline,
            )
            return outcome.value
        except ConfigurationFault as error:
            invocation.fail(error)
            raise
        except Redeliver as error:
            count("Outcome.redelivered")
            logger.warning("record reported for redelivery", extra={"message_id": record.message_id, "error": str(error)})
            raise
        except Exception:
            # A bug rather than a fault of the message: SQS delivers the record again.
            count("Outcome.redelivered")
            logger.exception("record failed unexpectedly; reported for redelivery", extra={"message_id": record.message_id})
            raise
        finally:
            logger.thread_safe_clear_keys()

    response = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    if invocation.fault is not None:
        _report_fault(invocation.fault)
        # NOTE: records of this batch that were dead-lettered before the fault stay on the queue as
        # well, so each redelivery sends another copy of them to a standard dead-letter queue.
        raise invocation.fault
    return response


def _processor_for(event: dict[str, Any], max_concurrency: int) -> BasePartialBatchProcessor:
    records = event.get("Records") or []
    source_arn = records[0].get("eventSourceARN", "") if records and isinstance(records[0], dict) else ""
    key = ("fifo", 1) if source_arn.endswith(".fifo") else ("standard", max_concurrency)
    cache: dict[tuple[str, int], BasePartialBatchProcessor] | None = getattr(_processors, "by_key", None)
    if cache is None:
        cache = _processors.by_key = {}
    if key not in cache:
        cache[key] = fifo_processor() if key[0] == "fifo" else ConcurrentBatchProcessor(max_concurrency)
    return cache[key]


def _report_fault(error: Exception) -> None:
    count("ConfigurationFault")
    logger.error("configuration fault: the batch stays on the queue until it is fixed", extra={"error": str(error)})
