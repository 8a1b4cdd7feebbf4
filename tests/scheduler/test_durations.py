"""Ages as kubectl prints them: apimachinery's ``duration_test.go`` TestHumanDuration cases."""

from __future__ import annotations

import pytest

from scheduler.durations import human_duration

_H = 3600


@pytest.mark.parametrize(("seconds", "want"), [
    (1, "1s"),
    (70, "70s"),  # under 2 minutes: seconds
    (190, "3m10s"),  # under 10 minutes: minutes and seconds
    (70 * 60, "70m"),  # under 3 hours: minutes
    (47 * _H, "47h"),  # under 2 days: hours
    (49 * _H, "2d1h"),  # under 8 days: days and hours
    ((8 * 24 + 2) * _H, "8d"),  # under 2 years: days
    (367 * 24 * _H, "367d"),
    ((365 * 2 * 24 + 25) * _H, "2y1d"),  # 731 days: under 8 years, years and days
    ((365 * 8 * 24 + 2) * _H, "8y"),  # 2,920 days: years
    (-5, "0s"),  # a clock behind the object's timestamp: never negative
])
def test_human_duration(seconds: int, want: str) -> None:
    assert human_duration(seconds) == want
