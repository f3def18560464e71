"""Powertools batch processors that check the records of one SQS batch concurrently.

Powertools' `BatchProcessor` calls the record handler for one record after another. CSS calls
spend their time waiting on the network, so a standard-queue batch runs its records on a thread
pool instead (at most `MAX_CONCURRENCY` at once) and takes about as long as its slowest record.
FIFO batches keep Powertools' in-order processor, which fails only the rest of a failed group.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, SqsFifoPartialProcessor


class ConcurrentBatchProcessor(BatchProcessor):
    """A `BatchProcessor` for SQS whose records run on a thread pool, results kept in record order."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    def process(self) -> list[tuple]:
        if len(self.records) <= 1 or self._max_workers <= 1:
            return [self._process_record(record) for record in self.records]
        if self._pool is None:
            # Kept for the life of the execution environment: warm invocations reuse the threads.
            self._pool = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="record")
        return list(self._pool.map(self._process_record, self.records))


def fifo_processor() -> SqsFifoPartialProcessor:
    """Return Powertools' FIFO processor, failing only the rest of a failed message group.

    Its constructor has no `raise_on_entire_batch_failure` parameter. The attribute is set after
    construction so that a batch whose every record failed returns the failure list instead of
    raising, as the worker's contract requires.
    """
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    processor.raise_on_entire_batch_failure = False
    return processor
