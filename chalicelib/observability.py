"""Structured (JSON-lines) logging with the standard library.

One JSON object per line is what CloudWatch Logs Insights queries best; the stdlib
keeps ``import app`` cheap (Powertools' Logger alone costs ~100 ms of cold start).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_configured = False


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def set_level(level: str) -> None:
    logging.getLogger("chalicelib").setLevel(level.upper())


def configure_logging(level: str | None = None) -> None:
    """Configure the ``chalicelib`` loggers once (idempotent; safe under Lambda's root handler)."""
    global _configured
    if _configured:
        return
    _configured = True
    logger = logging.getLogger("chalicelib")
    # INFO until the dependency container applies Settings.LOG_LEVEL: logging must work
    # even when the settings themselves are invalid (that error has to be logged too).
    if level is not None or logger.level == logging.NOTSET:
        logger.setLevel(level or "INFO")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter())
    logger.addHandler(handler)
    logger.propagate = False
