"""The safety monitor's logic, free of ROS: limits, watchdog, e-stop latch, counters.

Commands are vectors with one value per named dimension (an end-effector velocity + gripper for
Meta-World, joint positions for an arm). Every command passes through :meth:`SafetyMonitor.filter`:

1. non-finite or wrongly sized commands are rejected (the robot holds);
2. values are clipped to ``command_lower`` / ``command_upper``;
3. the change per second of each value is limited to ``max_rate`` (an acceleration limit for
   velocity commands, a velocity limit for position commands);
4. velocity commands that would push the robot further out of its workspace box are zeroed on the
   offending axis (``workspace_*`` bounds on the state named by ``workspace_state``).

The e-stop latches on ``/emergency_stop``, on a state beyond the workspace plus ``estop_margin``,
on a state speed above ``max_state_speed``, or on a missing heartbeat; only :meth:`reset` releases
it. Stale commands (older than ``watchdog_timeout``) make the robot hold. Each intervention is
counted every time, and reported to ``on_event`` once per episode of that intervention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_core.params import doc

OK, LIMITED, ESTOP = 0, 1, 2
STATE_NAMES = {OK: "OK", LIMITED: "LIMITED", ESTOP: "ESTOP"}



@dataclass
class SafetyLimits:
    """Limits of one robot. Lengths: every ``command_*`` list has one entry per command dimension.

    Every field is a ROS parameter of the safety_monitor node (see vla_bringup/config/safety_monitor.yaml).
    """

    command_names: list[str] = doc("name of each command dimension, e.g. [vx, vy, vz, gripper]", default_factory=list)
    command_lower: list[float] = doc("lower bound of each command dimension (command units)", default_factory=list)
    command_upper: list[float] = doc("upper bound of each command dimension (command units)", default_factory=list)
    max_rate: list[float] = doc("largest change per second of each command dimension; 0 = unlimited", default_factory=list)
    hold_command: list[float] = doc("command sent to hold the robot (zeros for velocity control)", default_factory=list)
    watchdog_timeout: float = doc("seconds without a command before the robot holds", default=0.2)
    workspace_state: list[str] = doc("joint_states names of the workspace box axes", default_factory=list)
    workspace_command: list[str] = doc("command dimension that moves each workspace axis", default_factory=list)
    workspace_lower: list[float] = doc("workspace box lower corner (state units, e.g. metres)", default_factory=list)
    workspace_upper: list[float] = doc("workspace box upper corner (state units, e.g. metres)", default_factory=list)
    estop_margin: float = doc("distance beyond the workspace box that latches the e-stop", default=0.05)
    max_state_speed: float = doc("speed of the workspace axes (units/s) that latches the e-stop; 0 = unchecked", default=0.0)
    heartbeat_timeout: float = doc("seconds without a heartbeat that latch the e-stop; 0 = no dead-man switch", default=0.0)
    status_rate: float = doc("SafetyStatus publication rate (Hz)", default=10.0)

    def __post_init__(self):
        n = len(self.command_names)
        if n == 0:
            raise ValueError("command_names must name at least one command dimension")
        for name in ("command_lower", "command_upper", "max_rate", "hold_command"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} values for {n} command dimensions")
        if any(lo > hi for lo, hi in zip(self.command_lower, self.command_upper)):
            raise ValueError("command_lower must not exceed command_upper")
        k = len(self.workspace_state)
        for name in ("workspace_command", "workspace_lower", "workspace_upper"):
            if len(getattr(self, name)) != k:
                raise ValueError(f"{name} has {len(getattr(self, name))} values for {k} workspace axes")
        for c in self.workspace_command:
            if c not in self.command_names:
                raise ValueError(f"workspace_command '{c}' is not a command dimension {self.command_names}")
        if self.watchdog_timeout <= 0:
            raise ValueError("watchdog_timeout must be positive")


class SafetyMonitor:
    """Filters commands against :class:`SafetyLimits` and keeps the OK / LIMITED / ESTOP state."""

    def __init__(self, limits: SafetyLimits, on_event: Callable[[str], None] | None = None):
        self.limits = limits
        self.on_event = on_event or (lambda reason: None)
        self._lo = np.asarray(limits.command_lower, float)
        self._hi = np.asarray(limits.command_upper, float)
        self._rate = np.asarray(limits.max_rate, float)
        self._hold = np.asarray(limits.hold_command, float)
        self._ws_cmd = [limits.command_names.index(c) for c in limits.workspace_command]
        self.counters = dict(received=0, forwarded=0, clipped=0, rejected=0, watchdog_holds=0, estops=0)
        self.estopped = False
        self.reasons: list[str] = []
        self._active: set[str] = set()
        self._last_out: np.ndarray | None = None
        self._last_time: float | None = None
        self._last_command_time: float | None = None
        self._last_heartbeat: float | None = None
        self._holding = False
        self._state_pos: np.ndarray | None = None
        self._state_time: float | None = None

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> int:
        """OK, LIMITED or ESTOP."""
        if self.estopped:
            return ESTOP
        return LIMITED if self._active else OK

    def _event(self, reason: str, active: bool = True) -> None:
        if active and reason not in self._active:
            self._active.add(reason)
            self.reasons = [reason] + [r for r in self.reasons if r != reason][:9]
            self.on_event(reason)

    def trigger_estop(self, reason: str) -> None:
        """Latch the e-stop (idempotent while latched)."""
        if not self.estopped:
            self.estopped = True
            self.counters["estops"] += 1
            self._event(f"e-stop: {reason}")

    def reset(self) -> bool:
        """Release the e-stop and clear interventions; the next command starts from hold."""
        self.estopped = False
        self._active.clear()
        self.reasons = []
        self._last_out = None
        self._holding = False
        self._state_pos = self._state_time = None  # a reset often follows a repositioned robot: new baseline
        return True

    # ------------------------------------------------------------------ inputs
    def heartbeat(self, now: float) -> None:
        """The operator's dead-man signal."""
        self._last_heartbeat = now

    def observe_state(self, names: list[str], positions: list[float], now: float) -> None:
        """Robot state from /joint_states: checks the workspace and its speed (e-stop on violation)."""
        lim = self.limits
        if not lim.workspace_state:
            return
        index = {n: i for i, n in enumerate(names)}
        if not all(n in index for n in lim.workspace_state):
            return
        pos = np.array([positions[index[n]] for n in lim.workspace_state], float)
        if not np.isfinite(pos).all():
            self.trigger_estop("non-finite joint state")
            return
        lo, hi = np.asarray(lim.workspace_lower), np.asarray(lim.workspace_upper)
        outside = (pos < lo - lim.estop_margin) | (pos > hi + lim.estop_margin)
        if outside.any():
            axis = lim.workspace_state[int(np.argmax(outside))]
            self.trigger_estop(f"joint limit exceeded: {axis}")
        if lim.max_state_speed > 0 and self._state_pos is not None and now > self._state_time:
            speed = float(np.linalg.norm(pos - self._state_pos) / (now - self._state_time))
            if speed > lim.max_state_speed:
                self.trigger_estop(f"velocity limit exceeded: {speed:.2f} > {lim.max_state_speed:.2f}")
        self._state_pos, self._state_time = pos, now

    def filter(self, command, now: float) -> np.ndarray:
        """The command to forward for ``command`` received at ``now`` (the hold command if unsafe)."""
        self.counters["received"] += 1
        self._last_command_time = now
        self._holding = False
        cmd = np.asarray(command, float).reshape(-1)
        if cmd.shape[0] != len(self._lo) or not np.isfinite(cmd).all():
            self.counters["rejected"] += 1
            self._event("rejected: non-finite or wrongly sized command")
            return self._emit(self._hold, now)
        if self.estopped:
            return self._emit(self._hold, now)
        out = np.clip(cmd, self._lo, self._hi)
        clipped = not np.array_equal(out, cmd)
        self._event("clipped to command bounds", clipped)
        if self._last_out is not None and self._last_time is not None:
            dt = max(now - self._last_time, 1e-3)
            step = np.where(self._rate > 0, self._rate * dt, np.inf)
            limited = np.clip(out, self._last_out - step, self._last_out + step)
            if not np.array_equal(limited, out):
                clipped = True
                self._event("rate limited")
            out = limited
        if self._state_pos is not None and self._ws_cmd:
            lo, hi = np.asarray(self.limits.workspace_lower), np.asarray(self.limits.workspace_upper)
            for axis, ci in enumerate(self._ws_cmd):
                if (self._state_pos[axis] <= lo[axis] and out[ci] < 0) or (self._state_pos[axis] >= hi[axis] and out[ci] > 0):
                    out[ci] = 0.0
                    clipped = True
                    self._event(f"workspace bound: {self.limits.workspace_state[axis]}")
        if clipped:
            self.counters["clipped"] += 1
        else:
            self._active = {r for r in self._active if r.startswith("e-stop")}
        self.counters["forwarded"] += 1
        return self._emit(out, now)

    def _emit(self, out: np.ndarray, now: float) -> np.ndarray:
        self._last_out, self._last_time = out.copy(), now
        return out

    def tick(self, now: float) -> np.ndarray | None:
        """Periodic check: returns the hold command when the robot must hold (stale commands, no heartbeat)."""
        lim = self.limits
        if lim.heartbeat_timeout > 0 and not self.estopped:
            if self._last_heartbeat is None or now - self._last_heartbeat > lim.heartbeat_timeout:
                self.trigger_estop("heartbeat missing")
        if self.estopped:
            return self._emit(self._hold, now)
        if self._last_command_time is not None and now - self._last_command_time > lim.watchdog_timeout:
            if not self._holding:
                self._holding = True
                self.counters["watchdog_holds"] += 1
                self._event("watchdog: commands stale")
            return self._emit(self._hold, now)
        return None

    def status(self) -> dict:
        """State, reasons (newest first) and counters."""
        return {"state": self.state, "state_name": STATE_NAMES[self.state], "reasons": list(self.reasons), **self.counters}
