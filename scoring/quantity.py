"""Kubernetes resource quantities as exact integers.

The API carries amounts as strings (``100m``, ``1.5Gi``, ``1e3``). The
scheduler compares and sums them, so they become int64 once, here, with the
same rounding as upstream's ``resource.Quantity``: ``MilliValue()`` for CPU
and ``Value()`` for everything else, both rounding *up* (away from zero).
Parsing is exact (``fractions.Fraction``), so ``0.1`` plus ``0.2`` CPU is
300 millicores, never 299.
"""

from __future__ import annotations

import functools

import re
from fractions import Fraction
from typing import Final

from scoring.safe_input import quote

__all__ = [
    "MAX_QUANTITY_CHARS",
    "INT64_MAX",
    "QuantityError",
    "parse_quantity",
    "milli_value",
    "value",
    "format_milli",
    "format_bytes",
]

INT64_MAX: Final = 2**63 - 1

_BINARY: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Final = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# <sign>? <digits>(.<digits>?)? | .<digits>, then an optional suffix: a binary
# SI suffix, a decimal SI suffix, or a decimal exponent e<signed integer>.
_QUANTITY: Final = re.compile(
    r"(?P<sign>[+-])?(?P<num>\d+(?:\.\d*)?|\.\d+)"
    r"(?:(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exp>[eE][+-]?\d+)|(?P<dec>[numkMGTPE]?))"
)
# Upstream refuses exponents this large as well; the bound keeps Fraction sane.
_MAX_EXPONENT: Final = 64


MAX_QUANTITY_CHARS: Final = 1000
"""Longest quantity string read. Any amount within int64 fits in a few dozen characters; 1,000
leaves room for a decimal fraction of any precision a person writes, while the number is far
below the 4,300 digits Python refuses to convert and costs microseconds to read."""


class QuantityError(ValueError):
    """A string that is not a valid Kubernetes quantity, or one out of int64 range."""

    def __init__(self, text: object, problem: str) -> None:
        super().__init__(f"invalid quantity {quote(text)}: {problem}")
        self.text = text
        self.problem = problem


def parse_quantity(text: object) -> Fraction:
    """Parse a quantity string (or a JSON number) into an exact Fraction.

    Accepts every form of upstream's grammar: ``100m``, ``0.5``, ``.5``,
    ``1e3``, ``1E-3``, ``5Gi``, ``1k``, ``2T``, ``1Ei``, ``+1``, ``-1``.
    """
    if isinstance(text, bool):
        raise QuantityError(text, "expected a string or a number")
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        if text != text or text in (float("inf"), float("-inf")):
            raise QuantityError(text, "not a finite number")
        return Fraction(str(text))
    if not isinstance(text, str):
        raise QuantityError(text, "expected a string or a number")
    if len(text) > MAX_QUANTITY_CHARS:
        raise QuantityError(text, f"longer than {MAX_QUANTITY_CHARS:,} characters")
    s = text.strip()
    if not s:
        raise QuantityError(text, "empty string")
    m = _QUANTITY.fullmatch(s)
    if m is None:
        raise QuantityError(text, "expected <number><suffix> such as 100m, 1.5, 2Gi or 1e3")
    number = Fraction(m.group("num") if not m.group("num").endswith(".") else m.group("num")[:-1])
    if m.group("bin"):
        number *= _BINARY[m.group("bin")]
    elif m.group("exp"):
        exponent = int(m.group("exp")[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(text, "exponent out of range")
        number *= Fraction(10) ** exponent
    else:
        number *= _DECIMAL[m.group("dec") or ""]
    return -number if m.group("sign") == "-" else number


def _round_away(q: Fraction, text: object) -> int:
    magnitude = -(-abs(q.numerator) // q.denominator)  # ceil(|q|): away from zero
    whole = magnitude if q >= 0 else -magnitude
    if not -INT64_MAX - 1 <= whole <= INT64_MAX:
        raise QuantityError(text, "out of int64 range")
    return whole


@functools.lru_cache(maxsize=4096)
def _milli_value_of(text: str) -> int:
    return _round_away(parse_quantity(text) * 1000, text)


@functools.lru_cache(maxsize=4096)
def _value_of(text: str) -> int:
    return _round_away(parse_quantity(text), text)


def milli_value(text: object) -> int:
    """The quantity in thousandths, rounded up as ``MilliValue()`` does (``0.1001`` -> 101).

    Strings are memoised: a cluster writes the same few quantities (``100m``, ``1Gi``)
    on thousands of pods, and the load plugins read each pod's on every decision."""
    if isinstance(text, str):
        return _milli_value_of(text)
    return _round_away(parse_quantity(text) * 1000, text)


def value(text: object) -> int:
    """The quantity in units, rounded up as ``Value()`` does (``1.1`` -> 2, ``100m`` -> 1); strings memoised."""
    if isinstance(text, str):
        return _value_of(text)
    return _round_away(parse_quantity(text), text)


def format_milli(milli: int) -> str:
    """Render millicores as a person writes them: 1500 -> ``1500m``, 2000 -> ``2``."""
    return f"{milli // 1000}" if milli % 1000 == 0 else f"{milli}m"


def format_bytes(n: int) -> str:
    """Render bytes with the largest binary suffix that divides them exactly."""
    for suffix, factor in reversed(_BINARY.items()):
        if n and n % factor == 0:
            return f"{n // factor}{suffix}"
    return str(n)
