"""Log lines a person can read and a log pipeline can parse.

The scheduler logs one line per decision, so the lines must be cheap and
structured: callers pass fields as ``extra={"fields": {...}}`` and the
formatter renders them as ``key=value`` pairs (text) or as keys of one JSON
object per line (``--log-format json``). Verbosity follows klog's ``--v``
(0-3 info, 4+ debug) unless ``--log-level`` names a level.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final, TextIO

__all__ = ["setup_logging", "level_from", "JsonFormatter", "TextFormatter"]

_DEBUG_VERBOSITY: Final = 4  # klog: --v=4 is "debug level verbosity"


def level_from(*, log_level: str | None, verbosity: int) -> int:
    """The logging level from ``--log-level`` (wins) or klog's ``--v``."""
    if log_level:
        level = logging.getLevelName(log_level.upper())
        if not isinstance(level, int):
            raise ValueError(f"--log-level must be one of debug, info, warning, error; got {log_level!r}")
        return level
    return logging.DEBUG if verbosity >= _DEBUG_VERBOSITY else logging.INFO


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        out.update(_fields(record))
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={json.dumps(v) if isinstance(v, str) and ' ' in v else v}"
                                   for k, v in fields.items())
        return line


def setup_logging(*, level: int = logging.INFO, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the ``vecsched`` loggers (and the root) for the command line."""
    if fmt not in ("text", "json"):
        raise ValueError(f"--log-format must be text or json, got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("vecsched").setLevel(level)
