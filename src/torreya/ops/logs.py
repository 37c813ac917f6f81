"""TORREYA_LOG_FORMAT=json: every log line one JSON object (ts, level, logger, msg, the
request's id, and for a request its method, route, status, duration and user). What a log
line may hold is the code's promise (SPEC §4.11): never a token, code, password or phone
number; tests/test_logs.py greps a test run's logs for them."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from torreya.ops.observe import request_id

_FIELDS = ("method", "route", "status", "duration_ms", "user_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage()}
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            line["request_id"] = rid
        for name in _FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def config(json_lines: bool) -> dict:
    """A logging configuration (dictConfig) for `serve` and `worker`: Torreya's loggers and
    uvicorn's, as text or as JSON lines."""
    formatter = ({"()": "torreya.ops.logs.JsonFormatter"} if json_lines else
                 {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"})
    handler = {"class": "logging.StreamHandler", "formatter": "main",
               "stream": "ext://sys.stderr"}
    loggers = {name: {"handlers": ["main"], "level": "INFO", "propagate": False}
               for name in ("torreya", "uvicorn", "uvicorn.error")}
    loggers["uvicorn.access"] = {"handlers": [], "level": "WARNING", "propagate": False}
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"main": formatter}, "handlers": {"main": handler},
            "loggers": loggers}
