"""Per-joint limits in ros2_control's ``joint_limits`` format, and clamping a joint trajectory to them.

The file is what ros2_control and MoveIt read::

    joint_limits:
      left_waist:
        has_position_limits: true
        min_position: -3.14
        max_position: 3.14
        has_velocity_limits: true
        max_velocity: 3.0          # rad/s, either direction
        has_acceleration_limits: true
        max_acceleration: 20.0     # rad/s^2, either direction

(also accepted under ``<node>: ros__parameters: joint_limits:``). Keys not listed (jerk, effort) are
ignored; a ``has_*`` flag without its values, a negative limit or min above max is an error naming
the joint.

:func:`clamp_trajectory` checks every point of a trajectory that starts from a known position and
velocity: each segment's velocity (points are joined by straight lines, as the follower interpolates)
is limited to ``max_velocity``, its change from the previous segment to ``max_acceleration`` times
the segment's duration, and every point to the position limits; a clamped point lags its request,
never overshoots it. A point due at once (``time_from_start`` 0) cannot move a velocity-limited
joint. Position limits win over acceleration limits (a point is never placed outside the range to
honour a deceleration).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from vla_core.errors import VLAError


@dataclass(frozen=True)
class JointLimit:
    """One joint's limits; ``inf`` (or -inf) where the joint has none."""

    min_position: float = -np.inf
    max_position: float = np.inf
    max_velocity: float = np.inf
    max_acceleration: float = np.inf


def _value(entry: dict, key: str, flag: str, where: str) -> float | None:
    """``entry[key]`` when ``entry[flag]`` is set (None when not)."""
    if not entry.get(flag, False):
        return None
    if key not in entry:
        raise VLAError(f"{where} sets {flag} but gives no {key}")
    try:
        return float(entry[key])
    except (TypeError, ValueError):
        raise VLAError(f"{where}: {key} must be a number, got {entry[key]!r}") from None


def parse_joint_limits(data: dict, source: str = "joint limits") -> dict[str, JointLimit]:
    """``{"joint_limits": {joint: {...}}}`` (or nested under a node's ``ros__parameters``) -> joint -> limit."""
    table = data.get("joint_limits") if isinstance(data, dict) else None
    if table is None and isinstance(data, dict):
        for node in data.values():
            if isinstance(node, dict) and isinstance(node.get("ros__parameters"), dict) and "joint_limits" in node["ros__parameters"]:
                table = node["ros__parameters"]["joint_limits"]
                break
    if not isinstance(table, dict) or not table:
        raise VLAError(f"{source}: expected a 'joint_limits' mapping of joint names to their limits")
    limits = {}
    for joint, entry in table.items():
        if not isinstance(entry, dict):
            raise VLAError(f"{source}: joint '{joint}': expected a mapping of limits, got {entry!r}")
        where = f"{source}: joint '{joint}'"
        lo, hi = _value(entry, "min_position", "has_position_limits", where), _value(entry, "max_position", "has_position_limits", where)
        vel = _value(entry, "max_velocity", "has_velocity_limits", where)
        acc = _value(entry, "max_acceleration", "has_acceleration_limits", where)
        if lo is not None and lo > hi:
            raise VLAError(f"{where}: min_position {lo} is above max_position {hi}")
        for key, v in (("max_velocity", vel), ("max_acceleration", acc)):
            if v is not None and not v > 0:
                raise VLAError(f"{where}: {key} must be positive, got {v}")
        limits[str(joint)] = JointLimit(-np.inf if lo is None else lo, np.inf if hi is None else hi,
                                        np.inf if vel is None else vel, np.inf if acc is None else acc)
    return limits


def load_joint_limits(path: str | Path) -> dict[str, JointLimit]:
    """Read a joint_limits YAML file (see the module docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise VLAError(f"joint limits file '{path}' cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise VLAError(f"joint limits file '{path}' is not valid YAML ({exc.__class__.__name__})") from None
    return parse_joint_limits(data or {}, f"joint limits file '{path.name}'")


def limit_arrays(limits: dict[str, JointLimit], joints: list[str]) -> np.ndarray:
    """(4, J): min position, max position, max velocity, max acceleration of ``joints`` (a joint not listed is an error)."""
    missing = [j for j in joints if j not in limits]
    if missing:
        raise VLAError(f"the joint limits name no limits for {missing}; every commanded joint needs an entry")
    return np.array([[getattr(limits[j], f) for j in joints]
                     for f in ("min_position", "max_position", "max_velocity", "max_acceleration")], float)


def clamp_trajectory(times, points, start_position, start_velocity, limits: np.ndarray) -> tuple[np.ndarray, bool]:
    """Clamp a trajectory to ``limits`` (from :func:`limit_arrays`); returns (clamped points, whether any changed).

    ``points`` (K, J) are due at ``times`` (K,) seconds from now; the joints start at ``start_position``
    moving at ``start_velocity``.
    """
    lo, hi, vmax, amax = limits
    points = np.asarray(points, float)
    out = np.empty_like(points)
    q, v, t = np.asarray(start_position, float), np.asarray(start_velocity, float), 0.0
    for k, (tk, p) in enumerate(zip(np.asarray(times, float), points)):
        dt = tk - t
        if dt <= 0:  # a point due now: a jump, allowed only for joints without a velocity limit
            out[k] = q = np.clip(np.where(np.isfinite(vmax), q, p), lo, hi)
            t = tk
            continue
        want = np.clip((p - q) / dt, -vmax, vmax)
        want = np.clip(want, v - amax * dt, v + amax * dt)
        nxt = np.clip(q + want * dt, lo, hi)
        v, q, t = (nxt - q) / dt, nxt, tk
        out[k] = q
    return out, not np.allclose(out, points, rtol=0.0, atol=1e-9)
