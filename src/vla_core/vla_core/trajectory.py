"""Joint trajectories on ros2_control's conventions, free of ROS: checking one, and following it.

A trajectory names its joints (any order, each once, every joint of the robot) and carries points,
each with one position per named joint and a ``time_from_start``. As ros2_control's
JointTrajectoryController does for a trajectory stamped zero, :class:`TrajectoryFollower` starts it
when it arrives, from the position it was commanding at that moment, interpolates linearly between
points and keeps the last point once it is past; an empty trajectory (no points) holds where the
follower is. A malformed trajectory (unknown or repeated names, a point of the wrong length,
times that do not increase, a non-finite value) is refused with one sentence naming the fault, and
the follower holds. The simulated robot's controller and the safety monitor's joint path share
:func:`check_trajectory`, so both sides refuse the same things.
"""

from __future__ import annotations

import numpy as np


def check_trajectory(names: list[str], times, positions, joints: list[str]) -> str | None:
    """Why a trajectory for a robot with ``joints`` is malformed (None: it is well formed).

    ``times``: one ``time_from_start`` per point (s); ``positions``: one sequence per point, in ``names`` order.
    """
    if len(set(names)) != len(names):
        return f"joint names {list(names)} repeat a joint"
    if set(names) != set(joints):
        unknown, missing = sorted(set(names) - set(joints)), sorted(set(joints) - set(names))
        return f"joint names do not match the robot's: unknown {unknown}, missing {missing}"
    if len(times) != len(positions):
        return f"{len(times)} times for {len(positions)} points"
    previous = -np.inf
    for i, (t, point) in enumerate(zip(times, positions)):
        if len(point) != len(names):
            return f"point {i} has {len(point)} positions for {len(names)} joints"
        if not np.isfinite(t) or not np.isfinite(np.asarray(point, float)).all():
            return f"point {i} has a non-finite time or position"
        if t < 0 or t <= previous:
            return f"time_from_start must be >= 0 and increase: point {i} at {t:g} s after {previous:g} s"
        previous = t
    return None


class TrajectoryFollower:
    """The position setpoint of a joint trajectory controller at any time (see the module docstring)."""

    def __init__(self, joints: list[str], start):
        self.joints = list(joints)
        self._times = np.zeros(1)
        self._points = np.asarray(start, float).reshape(1, len(self.joints))
        self._t0 = 0.0

    def hold(self, positions) -> None:
        """Hold ``positions`` (in :attr:`joints` order) from now on."""
        self._times, self._points, self._t0 = np.zeros(1), np.asarray(positions, float).reshape(1, len(self.joints)), 0.0

    def follow(self, names: list[str], times, positions, now: float) -> str | None:
        """Start a trajectory received at ``now``; returns why it was refused (then the follower holds), or None."""
        here = self.setpoint(now)
        problem = check_trajectory(names, times, positions, self.joints)
        if problem is not None or len(times) == 0:
            self.hold(here)
            return problem
        order = [list(names).index(j) for j in self.joints]
        points = np.asarray(positions, float)[:, order]
        times = np.asarray(times, float)
        if times[0] > 0:  # start from where the follower is now
            times, points = np.concatenate([[0.0], times]), np.concatenate([here[None], points])
        self._times, self._points, self._t0 = times, points, now
        return None

    def setpoint(self, now: float) -> np.ndarray:
        """Commanded positions at ``now`` (in :attr:`joints` order)."""
        t = now - self._t0
        if t <= self._times[0]:
            return self._points[0].copy()
        if t >= self._times[-1]:
            return self._points[-1].copy()
        k = int(np.searchsorted(self._times, t, side="right"))  # times[k - 1] <= t < times[k]
        w = (t - self._times[k - 1]) / (self._times[k] - self._times[k - 1])
        return (1 - w) * self._points[k - 1] + w * self._points[k]

    def velocity(self, now: float) -> np.ndarray:
        """Commanded velocity at ``now``: the slope of the segment under way (zero before the start and after the end)."""
        t = now - self._t0
        if t < self._times[0] or t >= self._times[-1]:
            return np.zeros(len(self.joints))
        k = int(np.searchsorted(self._times, t, side="right"))
        return (self._points[k] - self._points[k - 1]) / (self._times[k] - self._times[k - 1])

    @property
    def end_time(self) -> float:
        """When the current trajectory reaches its last point (``now`` units)."""
        return self._t0 + float(self._times[-1])
