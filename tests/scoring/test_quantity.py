"""Quantities parse exactly and round up as upstream's MilliValue()/Value() do."""

import pytest

from scoring.quantity import QuantityError, milli_value, parse_quantity, value


@pytest.mark.parametrize(
    ("text", "milli", "units"),
    [
        ("100m", 100, 1),  # 0.1 -> Value() rounds up to 1
        ("0.5", 500, 1),
        (".5", 500, 1),
        ("1.", 1000, 1),
        ("1e3", 1_000_000, 1000),
        ("1E-3", 1, 1),  # 0.001 -> 1 milli; Value() rounds up to 1
        ("1e-4", 1, 1),  # 0.0001 -> 0.1 milli rounds up to 1 milli
        ("0.1001", 101, 1),  # 100.1 milli -> 101
        ("5Gi", 5 * 2**30 * 1000, 5 * 2**30),
        ("512Mi", 512 * 2**20 * 1000, 512 * 2**20),
        ("1Ki", 1024_000, 1024),
        ("1k", 1_000_000, 1000),
        ("1M", 10**9, 10**6),
        ("2T", 2 * 10**15, 2 * 10**12),
        ("1n", 1, 1),  # 1e-9 rounds up in both
        ("1500u", 2, 1),  # 0.0015 -> 1.5 milli -> 2
        ("+1", 1000, 1),
        ("-1", -1000, -1),
        ("-1.5", -1500, -2),  # away from zero, as upstream
        ("0", 0, 0),
        ("  2  ", 2000, 2),
        (3, 3000, 3),  # JSON numbers are quantities too
        (0.25, 250, 1),
    ],
)
def test_valid_quantities(text: object, milli: int, units: int) -> None:
    assert milli_value(text) == milli
    assert value(text) == units


def test_exabytes_fit_in_units_but_not_in_milli() -> None:
    # 1Ei = 2^60 fits int64; 2^60 * 1000 does not.
    assert value("1Ei") == 2**60
    with pytest.raises(QuantityError, match="out of int64 range"):
        milli_value("1Ei")


def test_exact_arithmetic() -> None:
    # 0.1 + 0.2 is exactly 0.3 in quantities; floats would give 0.30000000000000004.
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("300m")


@pytest.mark.parametrize(
    "text",
    ["1.2.3", "Gi", "--1", "1ii", "", "   ", "1e", "e3", "1 Gi", "1Gb", "0x10", "8Ei", "1e100", None, True, [], "lots"],
)
def test_invalid_quantities_name_the_string(text: object) -> None:
    with pytest.raises(QuantityError) as err:
        value(text)
    assert repr(text) in str(err.value)
