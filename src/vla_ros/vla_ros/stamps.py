"""``builtin_interfaces`` times and float seconds, both ways.

Every node reads header stamps and ``time_from_start`` and writes step durations and trajectory point times.
"""

from __future__ import annotations

from builtin_interfaces.msg import Duration, Time

NS_PER_S = 1_000_000_000


def seconds(t) -> float:
    """A ``builtin_interfaces/Time`` or ``Duration`` (anything with ``sec`` and ``nanosec``) in seconds."""
    return t.sec + t.nanosec * 1e-9


def _split(s: float) -> tuple[int, int]:
    """Seconds -> (sec, nanosec), rounded on the whole nanosecond count (``nanosec`` stays below 1e9)."""
    return divmod(int(round(s * NS_PER_S)), NS_PER_S)


def duration(s: float) -> Duration:
    """Seconds -> ``builtin_interfaces/Duration``, rounded to the nanosecond."""
    sec, nanosec = _split(s)
    return Duration(sec=sec, nanosec=nanosec)


def stamp(s: float) -> Time:
    """Seconds (e.g. since the epoch) -> ``builtin_interfaces/Time``, rounded to the nanosecond."""
    sec, nanosec = _split(s)
    return Time(sec=sec, nanosec=nanosec)
