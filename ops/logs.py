"""Log output: ``--log-format=text`` (one readable line) or ``json`` (one JSON object per line),
at ``--log-level``.

Nothing the server logs carries a token, a cookie or a message's text: requests are logged with
their path only (no query, no headers), and no code path logs a body or a frame.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# The fields a request's log record carries (handlers/base.py, request_logger), in this order.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601, milliseconds), level, logger, message, then the
    request fields when the record is a request's, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        millis = int(record.msecs)
        line: dict[str, Any] = {"time": f"{seconds}.{millis:03d}Z", "level": record.levelname.lower(),
                                "logger": record.name, "message": record.getMessage()}
        for name in REQUEST_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(log_format: str, level: str) -> None:
    """The root logger writes to stderr in ``log_format`` at ``level`` (names as in settings.py)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
