"""The string formats kube-apiserver checks in custom objects (``format: date-time`` and friends).

go-openapi's format registry decides whether ``"2024-13-01"`` is a ``date``;
a CRD's ``format`` field is only as useful as that check, so the common
formats are checked the way go-openapi checks them. The rarely used ones that
the registry knows but this module does not emulate (isbn, creditcard,
rgbcolor) accept every string.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable
from typing import Final

from .crd_node import compile_pattern

__all__ = ["format_ok"]


_DATE_RE: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\Z")
_TIME_RE: Final = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))\Z")
_BASE64_RE: Final = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})\Z")
_UUID: Final = r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?%s[0-9a-f]{3}-?%s[0-9a-f]{3}-?[0-9a-f]{12}$"
_MAC_RE: Final = re.compile(r"^([0-9A-Fa-f]{2}([:-]))([0-9A-Fa-f]{2}\2){4}([0-9A-Fa-f]{2}\2){0,14}[0-9A-Fa-f]{2}$"
                            r"|^[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2,9}$")
_HOSTNAME_RE: Final = re.compile(r"^([a-zA-Z0-9]((-?[a-zA-Z0-9]{0,62})?)|([a-zA-Z0-9](([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
                                 r"(\.)){1,}([a-zA-Z]){2,63})$")
_DURATION_RE: Final = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$"
                                 r"|^0$|^\d+\s?(ns|us|µs|ms|s|m|h|d|w|nanos?|micros?|millis?|seconds?|minutes?|hours?|days?|weeks?)$")


def _is_date(s: str) -> bool:
    m = _DATE_RE.match(s)
    if not m:
        return False
    try:
        dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return False
    return True


def _is_datetime(s: str) -> bool:
    parts = s.lower().split("t")
    if len(s) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    m = _TIME_RE.match(parts[1])
    return m is not None and m[1] <= "23" and m[2] <= "59" and m[3] <= "59"


def _is_ip(s: str, *, version: int) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return ("." in s) if version == 4 else (":" in s)


def _is_cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return "/" in s


def _is_base64(s: str) -> bool:
    return _BASE64_RE.match(s) is not None


def _rx(pattern: str) -> Callable[[str], bool]:
    """A check by regex, with Go's anchoring (``$`` is the end of the text)."""
    compiled, _ = compile_pattern(pattern)
    assert compiled is not None, pattern
    return lambda s: compiled.search(s) is not None


_UUID_ANY: Final = r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"
_FORMAT_CHECKS: Final[dict[str, Callable[[str], bool]]] = {
    "date": _is_date,
    "datetime": _is_datetime,
    "byte": _is_base64,
    "password": lambda s: True,
    "uuid": _rx(_UUID_ANY),
    "uuid3": _rx(_UUID % ("3", "[0-9a-f]")),
    "uuid4": _rx(_UUID % ("4", "[89ab]")),
    "uuid5": _rx(_UUID % ("5", "[89ab]")),
    "ipv4": lambda s: _is_ip(s, version=4),
    "ipv6": lambda s: _is_ip(s, version=6),
    "cidr": _is_cidr,
    "mac": lambda s: _MAC_RE.search(s) is not None and not s.endswith("\n"),  # Go's $ is the end of the text
    "hostname": lambda s: _HOSTNAME_RE.search(s) is not None and not s.endswith("\n") and len(s) <= 255
    and all(len(p) <= 63 for p in s.split(".")),
    "hexcolor": _rx(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"),
    "bsonobjectid": _rx(r"^[0-9a-fA-F]{24}$"),
    "ssn": _rx(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"),
    "email": lambda s: re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", s.strip("<> ")) is not None,
    "uri": lambda s: re.fullmatch(r"([a-zA-Z][a-zA-Z0-9+.-]*:|/)\S*", s) is not None,
    "duration": lambda s: _DURATION_RE.search(s) is not None and not s.endswith("\n"),
}
"""Formats checked as go-openapi does; the remaining known ones (isbn, creditcard, rgbcolor) pass."""


def format_ok(fmt: str, value: str) -> bool:
    """Whether ``value`` is valid for ``fmt`` (a format name go-openapi knows; dashes are ignored)."""
    check = _FORMAT_CHECKS.get(fmt.replace("-", ""))
    return check is None or check(value)
