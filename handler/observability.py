"""The structured logger and the metrics of the Lambda functions (Powertools).

Logs go to standard error, so standard output stays free for events (the JSON-lines fallback and
the CLI). Metrics are CloudWatch embedded-metric-format lines, flushed at the end of an invocation;
`count` is safe to call from the worker's record threads.
"""

from __future__ import annotations

import logging
import sys
import threading

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "css-upgrade-scout"
NAMESPACE = "CssUpgradeScout"

logger = Logger(service=SERVICE, stream=sys.stderr)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Library modules (the CSS and AWS clients) log through the standard `logging` module under the
# `handler` package. Their records get the same JSON format, stream and level as the function's own.
_library_logger = logging.getLogger("handler")
_library_logger.handlers = [logger.registered_handler]
_library_logger.setLevel(logger.log_level)
_library_logger.propagate = False

# urllib3 logs each request line at DEBUG, path and query included. A Slack response_url or incoming
# webhook path is a credential, so these lines stay off even when the root logger is set to DEBUG
# (for example by AWS_LAMBDA_LOG_LEVEL). Its warnings and errors still pass.
logging.getLogger("urllib3").setLevel(logging.INFO)

_metrics_lock = threading.Lock()


def count(name: str, value: float = 1) -> None:
    """Add `value` to the counter metric `name` for this invocation."""
    with _metrics_lock:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
