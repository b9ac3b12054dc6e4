"""Float seconds <-> builtin_interfaces times, exactly at the nanosecond and never with nanosec >= 1e9."""

import pytest
from builtin_interfaces.msg import Duration, Time

from vla_ros.stamps import duration, seconds, stamp


@pytest.mark.parametrize(("s", "sec", "nanosec"), [(0.0, 0, 0), (0.0125, 0, 12_500_000), (3.25, 3, 250_000_000),
                                                    (1.9999999999, 2, 0), (0.9999999996, 1, 0), (7.0000000004, 7, 0)])
def test_duration_rounds_to_the_nanosecond(s, sec, nanosec):
    d, t = duration(s), stamp(s)
    assert (d.sec, d.nanosec) == (sec, nanosec) and (t.sec, t.nanosec) == (sec, nanosec)


def test_seconds_reads_times_and_durations():
    assert seconds(Time(sec=3, nanosec=250_000_000)) == pytest.approx(3.25, abs=1e-12)
    assert seconds(Duration(sec=0, nanosec=12_500_000)) == pytest.approx(0.0125, abs=1e-12)
    for s in (0.0125, 1.5, 12.345678901):
        assert seconds(duration(s)) == pytest.approx(s, abs=1e-9)
