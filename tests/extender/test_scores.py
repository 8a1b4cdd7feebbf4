"""0..100 totals to 0..10 extender priorities: the weighted mean, divided by 10, rounded half up."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler.extender import MAX_EXTENDER_PRIORITY, extender_scores


@pytest.mark.parametrize(("total", "weights", "expected"), [
    pytest.param(0, 12, 0, id="zero"),
    pytest.param(1200, 12, 10, id="all-100"),
    pytest.param(4 * 12 + 11, 12, 0, id="mean-4.9"),        # (59 + 60) // 120 = 0
    pytest.param(5 * 12, 12, 1, id="mean-5-rounds-up"),     # (60 + 60) // 120 = 1
    pytest.param(94 * 12 + 11, 12, 9, id="mean-94.9"),      # (1139 + 60) // 120 = 9
    pytest.param(95 * 12, 12, 10, id="mean-95-rounds-up"),  # (1140 + 60) // 120 = 10
    pytest.param(419, 12, 3, id="mean-34.9"),               # (419 + 60) // 120 = 3
    pytest.param(45, 1, 5, id="single-plugin-45"),          # (45 + 5) // 10 = 5
    pytest.param(44, 1, 4, id="single-plugin-44"),
    pytest.param(50, 0, 0, id="no-score-plugins"),
])
def test_rounding(total: int, weights: int, expected: int) -> None:
    assert extender_scores(np.array([total], np.int64), weights).tolist() == [expected]


def test_range_is_upstreams_extender_range() -> None:
    totals = np.arange(0, 101 * 7, dtype=np.int64)  # every total of a W = 7 profile
    out = extender_scores(totals, 7)
    assert out.min() == 0 and out.max() == MAX_EXTENDER_PRIORITY == 10
    assert (np.diff(out) >= 0).all()
