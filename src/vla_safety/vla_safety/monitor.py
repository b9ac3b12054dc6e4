"""The safety monitor's logic, free of ROS: limits, watchdogs, e-stop latch, counters.

Commands are vectors with one value per named dimension (an end-effector velocity + gripper for
Meta-World, joint positions for an arm). Every command passes through :meth:`SafetyMonitor.filter`:

1. rejected (the robot holds) when non-finite, wrongly sized, stamped older than
   ``max_command_age``, stamped in the future, or stamped before the last accepted command;
2. held while the e-stop is latched, or while the robot's state is unknown or older than
   ``state_timeout`` (every monitored state name must be fresh: a sensor that stops, or that never
   reports a configured name, fails safe);
3. clipped to ``command_lower`` / ``command_upper``, and its change per second limited to ``max_rate``
   starting from the hold command (at start-up and after a release, never from nothing); a switch
   to the hold command itself is never rate limited (stopping is always allowed);
4. velocity commands that would push the robot further out of its workspace box are zeroed on the
   offending axis; after a release the command's distance from hold ramps in over ``ramp_in_time``.

The e-stop latches on ``/emergency_stop``, on a state beyond the workspace plus
``estop_margin``, on a state speed above ``max_state_speed``, on non-finite state, or when
heartbeats stop (before the first heartbeat the robot holds); only :meth:`reset` releases it.
A robot moved on purpose (a simulator's scene reset) is announced with :meth:`rebaseline`, stamped
with the time of the move: states measured up to that stamp are the old pose, the first one after
it is the new baseline, and commands stamped up to it were planned for the old pose: the robot holds
(expected at every reset, so neither counted nor reported); a joint robot holds until its first
position after the move is measured. The announcement travels on its own topic, so it can arrive after the state
that shows the jump: a speed violation therefore holds the robot at once and latches the e-stop
only if no announcement explaining it arrives within ``episode_start_grace``. For ``reset_settle``
after the announced move a robot may still ignore commands (a simulator does, for its own
``reset_settle``): a joint robot's trajectories are then clamped from its measured position, since
what was forwarded moved no setpoint; clamped from that setpoint instead, the first trajectory the
robot took would ask it to jump to where it never went.
Stale commands (``watchdog_timeout``) make the robot hold. A clock that jumps backwards (a
simulation reset) drops every time-dependent belief: hold until fresh data.

Joint-position robots (``command_interface: joint_position``) send joint trajectories instead, through
:meth:`SafetyMonitor.filter_trajectory`: the same rejections, latch, watchdogs and heartbeat, but
the bounds are per-joint position, velocity and acceleration limits in ros2_control's
``joint_limits`` format (:mod:`vla_safety.joint_limits`), every point of a trajectory is clamped to
them, and holding means holding the
measured position: the position measured when the hold began, kept until commands flow again (a
trajectory with no points, "hold where you are", while no position is known). The joint box takes the
place of the workspace box: a measured joint beyond its position limits plus ``estop_margin`` (or its own
margin in ``estop_margins``: a gripper that contact can push past its range) latches
the e-stop, and ``max_state_speed`` bounds the joints' speed (norm over the joints, units/s).
Clamping starts where the robot's controller is: the monitor follows what it forwarded with the
same :class:`~vla_core.trajectory.TrajectoryFollower` the simulated controller runs, and limits each
new trajectory's velocity and change of velocity from that setpoint (a position controller lags its
setpoint, so starting from the measured position would clamp normal motion); with nothing forwarded
yet, after a hold without a known position, a release or an announced move, it starts from the
measured positions and velocities.
Each intervention is counted every time and reported to ``on_event`` once per occurrence: again
only after it has been absent for ``REPORT_QUIET_S`` (a 1 kHz flood of faults is one report).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_core.env import EE_VELOCITY, JOINT_POSITION
from vla_core.errors import VLAError
from vla_core.params import doc
from vla_core.trajectory import TrajectoryFollower, check_trajectory
from vla_safety.joint_limits import JointLimit, clamp_trajectory, limit_arrays

OK, LIMITED, ESTOP = 0, 1, 2
STATE_NAMES = {OK: "OK", LIMITED: "LIMITED", ESTOP: "ESTOP"}
REPORT_QUIET_S = 1.0  # an intervention is reported again only after this long without it


@dataclass
class SafetyLimits:
    """Limits of one robot. Lengths: every ``command_*`` list has one entry per command dimension.

    Every field is a ROS parameter of the safety_monitor node (see vla_bringup/config/<robot>/safety_monitor.yaml).
    """

    command_interface: str = doc("'ee_velocity': a vector command (end-effector twist + gripper) bounded by command_lower / "
                                 "command_upper / max_rate; 'joint_position': joint trajectories for the joints in "
                                 "command_names, bounded by their joint_limits", default=EE_VELOCITY)
    command_names: list[str] = doc("name of each command dimension, e.g. [vx, vy, vz, gripper]; for joint_position robots "
                                   "the joint names", default_factory=list)
    command_lower: list[float] = doc("lower bound of each command dimension (command units)", default_factory=list)
    command_upper: list[float] = doc("upper bound of each command dimension (command units)", default_factory=list)
    max_rate: list[float] = doc("largest change per second of each command dimension; 0 = unlimited", default_factory=list)
    hold_command: list[float] = doc("command sent to hold the robot (zeros for velocity control)", default_factory=list)
    watchdog_timeout: float = doc("seconds without a command before the robot holds", default=0.2)
    max_command_age: float = doc("commands stamped more than this many seconds ago (or ahead) are rejected; "
                                 "0 = stamps are not checked", default=0.2)
    state_timeout: float = doc("seconds without a fresh value of every monitored state name before the robot "
                               "holds; 0 = no state watchdog", default=0.5)
    ramp_in_time: float = doc("seconds over which commands ramp in from hold after the e-stop is released", default=1.0)
    workspace_state: list[str] = doc("joint_states names of the workspace box axes", default_factory=list)
    workspace_command: list[str] = doc("command dimension that moves each workspace axis", default_factory=list)
    workspace_lower: list[float] = doc("workspace box lower corner (state units, e.g. metres)", default_factory=list)
    workspace_upper: list[float] = doc("workspace box upper corner (state units, e.g. metres)", default_factory=list)
    estop_margin: float = doc("distance beyond the workspace box that latches the e-stop", default=0.05)
    max_state_speed: float = doc("speed of the workspace axes (units/s) that latches the e-stop; 0 = unchecked", default=0.0)
    heartbeat_timeout: float = doc("seconds without a heartbeat that latch the e-stop; 0 = no dead-man switch", default=0.0)
    episode_start_grace: float = doc("seconds a speed violation holds the robot while waiting for the episode-start "
                                     "announcement that explains it, before the e-stop latches; 0 = latch at once",
                                     default=0.25)
    reset_settle: float = doc("seconds after an announced episode start during which the robot may ignore commands "
                              "(a simulator's reset_settle, plus delivery time): joint trajectories are clamped from "
                              "the measured position then, since what was forwarded moved no setpoint; 0 = always "
                              "from the setpoint of what was forwarded", default=0.0)
    status_rate: float = doc("SafetyStatus publication rate (Hz)", default=10.0)

    def __post_init__(self):
        n = len(self.command_names)
        if n == 0:
            raise ValueError("command_names must name at least one command dimension")
        if self.command_interface not in (EE_VELOCITY, JOINT_POSITION):
            raise ValueError(f"command_interface must be '{EE_VELOCITY}' or '{JOINT_POSITION}', got '{self.command_interface}'")
        if len(set(self.command_names)) != n:
            raise ValueError(f"command_names {self.command_names} repeat a name")
        vector_only = ("command_lower", "command_upper", "max_rate", "hold_command", "workspace_state", "workspace_command",
                       "workspace_lower", "workspace_upper")
        if self.joint_robot:
            given = [name for name in vector_only if getattr(self, name)]
            if given:
                raise ValueError(f"{', '.join(given)} apply to {EE_VELOCITY} robots; a {JOINT_POSITION} robot's bounds are "
                                 f"its joint_limits and it holds its measured position")
            if self.state_timeout == 0:
                raise ValueError(f"state_timeout must be positive for a {JOINT_POSITION} robot (holding needs its measured position)")
        for name in ("command_lower", "command_upper", "max_rate", "hold_command"):
            if not self.joint_robot and len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} values for {n} command dimensions")
        if any(lo > hi for lo, hi in zip(self.command_lower, self.command_upper)):
            raise ValueError("command_lower must not exceed command_upper")
        if any(not lo <= h <= hi for lo, h, hi in zip(self.command_lower, self.hold_command, self.command_upper)):
            raise ValueError("hold_command must lie within command_lower / command_upper")
        k = len(self.workspace_state)
        for name in ("workspace_lower", "workspace_upper") + (() if self.joint_robot else ("workspace_command",)):
            if len(getattr(self, name)) != k:
                raise ValueError(f"{name} has {len(getattr(self, name))} values for {k} workspace axes")
        for c in self.workspace_command:
            if c not in self.command_names:
                raise ValueError(f"workspace_command '{c}' is not a command dimension {self.command_names}")
        if self.watchdog_timeout <= 0:
            raise ValueError("watchdog_timeout must be positive")
        if min(self.max_command_age, self.state_timeout, self.ramp_in_time, self.heartbeat_timeout,
               self.episode_start_grace, self.reset_settle) < 0:
            raise ValueError("max_command_age, state_timeout, ramp_in_time, heartbeat_timeout, "
                             "episode_start_grace and reset_settle must be >= 0")
        if self.workspace_state and self.state_timeout == 0:
            raise ValueError("state_timeout must be positive when workspace_state names monitored state")

    @property
    def joint_robot(self) -> bool:
        """Whether commands are joint trajectories (else vectors)."""
        return self.command_interface == JOINT_POSITION

    @property
    def state_names(self) -> list[str]:
        """The joint_states names the monitor needs, in order: the workspace axes, or the commanded joints."""
        return list(self.command_names) if self.joint_robot else list(self.workspace_state)


def check_estop_margins(margins: dict[str, float], joints: list[str]) -> dict[str, float]:
    """``margins`` (joint -> its own estop_margin) if every one is >= 0 and names one of ``joints``."""
    if set(margins) - set(joints) or any(not v >= 0 for v in margins.values()):
        raise VLAError(f"estop_margins must be >= 0 and name joints of command_names; got {margins}")
    return margins


@dataclass
class JointCommand:
    """A joint trajectory to send: ``positions`` (K, J), in ``command_names`` order, due ``times`` (K,) s after sending.

    A hold is one point at the held position due at once; with no point (K = 0) it asks the robot's
    controller to hold where it is (used while no measured position is known).
    """

    times: np.ndarray
    positions: np.ndarray
    hold: bool = False


class SafetyMonitor:
    """Filters commands against :class:`SafetyLimits` and keeps the OK / LIMITED / ESTOP state."""

    def __init__(self, limits: SafetyLimits, on_event: Callable[[str], None] | None = None,
                 joint_limits: dict[str, JointLimit] | None = None, estop_margins: dict[str, float] | None = None):
        """``joint_limits`` (joint_position robots): every joint of ``limits.command_names`` needs an entry.

        ``estop_margins`` (joint_position robots): joint -> its own ``estop_margin`` (the others use the common one).
        """
        self.joint_limits = joint_limits or {}
        self.estop_margins = check_estop_margins(estop_margins or {}, limits.command_names)
        self.on_event = on_event or (lambda reason: None)
        self.counters = dict(received=0, forwarded=0, clipped=0, rejected=0, watchdog_holds=0, estops=0)
        self.estopped = False
        self.reasons: list[str] = []
        self._active: set[str] = set()
        self._seen: dict[str, float] = {}   # reason -> when it last occurred (report throttle)
        self.limits = limits
        self._last_heartbeat: float | None = None
        self._forget_time(None)

    @property
    def limits(self) -> SafetyLimits:
        """The limits in force (replaced whole by a parameter update)."""
        return self._limits

    @limits.setter
    def limits(self, limits: SafetyLimits) -> None:
        self._limits = limits
        self._lo = np.asarray(limits.command_lower, float)
        self._hi = np.asarray(limits.command_upper, float)
        self._rate = np.asarray(limits.max_rate, float)
        self._hold = np.asarray(limits.hold_command, float)
        self._ws_cmd = [limits.command_names.index(c) for c in limits.workspace_command]
        if limits.joint_robot:  # the joints' position box stands in for the workspace box
            self._joint_limits = limit_arrays(self.joint_limits, limits.command_names)
            self._box_lo, self._box_hi = self._joint_limits[0], self._joint_limits[1]
        else:
            self._box_lo, self._box_hi = np.asarray(limits.workspace_lower, float), np.asarray(limits.workspace_upper, float)
        self._margin = np.array([self.estop_margins.get(n, limits.estop_margin) for n in limits.state_names], float)

    def _forget_time(self, now: float | None) -> None:
        """Drop every belief that depends on time (start-up, a clock jump): hold until fresh data arrives."""
        self._last_out, self._last_time = self._hold.copy(), now   # rate limits start from hold
        self._last_out_stamp: float | None = None
        self._last_command_time: float | None = None
        self._stale_counted: float | None = None   # the command time whose stale period was counted
        self._last_stamp: float | None = None
        self._state: dict[str, tuple[float, float]] = {}            # name -> (value, time of arrival)
        self._heard_state = False  # any well-formed joint_states yet: before it, holding is start-up, not an intervention
        self._state_pos: np.ndarray | None = None                   # last complete workspace (or joint) position
        self._state_vel: dict[str, float] = {}                      # measured joint velocities (joint robots)
        self._state_time: float | None = None
        self._hold_pos: np.ndarray | None = None   # joint robots: the measured position held since the hold began
        self._reference: TrajectoryFollower | None = None  # joint robots: the setpoint of what was forwarded
        self._episode_stamp: float | None = None   # stamp of the latest announced move of the robot (no further ahead
        #                                            than the clock allows: the baseline filter)
        self._announced: float | None = None       # that stamp as announced: a jump that spans it is explained
        self._settle_until = -np.inf               # until then the robot may ignore commands (reset_settle)
        self._jump: tuple[str, float, float, float] | None = None  # (reason, arrival, from, to stamp) awaiting an announcement
        self._release_time: float | None = None
        self._now = now

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> int:
        """OK, LIMITED or ESTOP."""
        if self.estopped:
            return ESTOP
        return LIMITED if self._active else OK

    def _event(self, reason: str, active: bool = True) -> None:
        if not active:
            return
        now = self._now if self._now is not None else 0.0
        if reason not in self._active:
            self._active.add(reason)
            self.reasons = [reason] + [r for r in self.reasons if r != reason][:9]
        last = self._seen.get(reason)
        if last is None or now - last > REPORT_QUIET_S or now < last:
            self.on_event(reason)
        self._seen[reason] = now

    def _clear(self, *prefixes: str) -> None:
        self._active = {r for r in self._active if not r.startswith(prefixes)}

    def trigger_estop(self, reason: str) -> None:
        """Latch the e-stop (idempotent while latched)."""
        if not self.estopped:
            self.estopped = True
            self.counters["estops"] += 1
            self._event(f"e-stop: {reason}")

    def reset(self, now: float | None = None) -> bool:
        """Release the e-stop: the next commands start from hold and ramp in over ``ramp_in_time``."""
        self.estopped = False
        self._active.clear()
        self.reasons = []
        self._last_out, self._last_time, self._last_out_stamp = self._hold.copy(), now, None
        self._release_time = now
        self.rebaseline(settle=False)   # a release moves nothing: the robot takes commands (ramp_in_time applies)
        return True

    def rebaseline(self, stamp: float | None = None, settle: bool = True) -> None:
        """The robot was moved on purpose (a simulator reset, a repositioning) at ``stamp``: no jump.

        States measured up to ``stamp`` show the old pose and are no baseline; the first one after it
        is. A speed violation still waiting for its explanation is explained when it spans ``stamp``
        (any pending one when ``stamp`` is None). ``settle``: the robot may ignore commands for ``reset_settle``.
        """
        if self._jump is not None and (stamp is None or self._jump[2] <= stamp < self._jump[3]):
            self._jump = None
            self._clear("holding: state jump")
        if stamp is not None:
            # A stamp far ahead of the clock would switch the speed check off until then: trust it no further
            # ahead than a state may be old (this monitor's clock may lag the announcer's by delivery time).
            ahead = self._now + self.limits.state_timeout if self._now is not None else stamp
            self._episode_stamp = min(stamp, ahead)
            self._announced = stamp
        start = self._episode_stamp if stamp is not None else self._now
        if settle and start is not None:   # ``reset_settle`` from the move on
            self._settle_until = start + self.limits.reset_settle
        self._state_pos = self._state_time = None
        self._state_vel = {}    # nor start its next trajectory at the speed it had there
        self._hold_pos = None   # the robot is elsewhere now: never pull it back to the old pose
        self._reference = None

    def _settle_jump(self, now: float) -> None:
        """Latch the e-stop for a speed violation that no announcement explained within the grace period."""
        if self._jump is not None and now - self._jump[1] > self.limits.episode_start_grace:
            reason = self._jump[0]
            self._jump = None
            self._clear("holding: state jump")
            self.trigger_estop(reason)

    def _clock(self, now: float) -> bool:
        """Track ``now``; a clock that runs backwards drops time-dependent beliefs. Returns False then."""
        if self._now is not None and now < self._now:
            self._forget_time(now)
            self._event("clock jumped backwards: holding until fresh state and commands")
            return False
        self._now = now
        return True

    # ------------------------------------------------------------------ inputs
    def heartbeat(self, now: float) -> None:
        """The operator's dead-man signal."""
        self._clock(now)
        self._last_heartbeat = now

    def observe_state(self, names: list[str], positions: list[float], now: float, stamp: float | None = None,
                      velocities: list[float] | None = None) -> None:
        """Robot state from /joint_states (any subset and order of names): freshness, position box, speed.

        ``now``: arrival time (freshness); ``stamp``: the measurement's own time, used for the speed, so
        that messages delivered late and bunched together do not hide a jump (arrival time if None).
        ``velocities`` (optional, as in JointState): where a joint robot's trajectories start from.
        """
        self._clock(now)
        lim = self.limits
        box = lim.state_names
        if not box:
            return
        if len(names) != len(positions) or len(set(names)) != len(names) or (velocities and len(velocities) != len(names)):
            self.counters["rejected"] += 1
            self._event("rejected: malformed joint_states (names, positions and velocities differ in number, or a "
                        "name repeats)")
            return
        self._heard_state = True
        index = {n: i for i, n in enumerate(names)}
        for n in box:
            if n in index:
                value = float(positions[index[n]])
                if not np.isfinite(value):
                    self.trigger_estop(f"non-finite joint state: {n}")
                    return
                self._state[n] = (value, now)
                if velocities:
                    speed = float(velocities[index[n]])
                    self._state_vel[n] = speed if np.isfinite(speed) else 0.0
        if not any(n in index for n in box) or not all(n in self._state for n in box):
            return  # nothing new about the box, or part of it never seen yet
        pos = np.array([self._state[n][0] for n in box], float)  # newest value of each axis
        outside = (pos < self._box_lo - self._margin) | (pos > self._box_hi + self._margin)
        if outside.any():
            self.trigger_estop(f"joint limit exceeded: {box[int(np.argmax(outside))]}")
        measured = now if stamp is None or stamp <= 0 else stamp
        if self._episode_stamp is not None and measured <= self._episode_stamp:
            return  # measured before the announced move: the old pose, no baseline for the new one
        if lim.max_state_speed > 0 and self._state_pos is not None and measured > self._state_time:
            rates = np.abs(pos - self._state_pos) / (measured - self._state_time)
            speed = float(np.linalg.norm(rates))
            # A jump across the announced move is that move, seen late: this monitor's clock can lag the
            # announcer's (a starved process reads /episode/start before the /clock messages queued ahead of it),
            # and then states of the old pose measured after the capped stamp became the baseline.
            explained = self._announced is not None and self._state_time <= self._announced < measured
            if speed > lim.max_state_speed and not explained:
                fastest = int(np.argmax(rates))
                reason = (f"velocity limit exceeded: {speed:.2f} > {lim.max_state_speed:.2f} "
                          f"(fastest {box[fastest]} at {rates[fastest]:.2f}, over {measured - self._state_time:.3f} s)")
                if lim.episode_start_grace == 0:
                    self.trigger_estop(reason)
                elif self._jump is None and not self.estopped:
                    self._jump = (reason, now, self._state_time, measured)
                    self._event("holding: state jump, waiting for the episode start that explains it")
        self._state_pos, self._state_time = pos, measured
        self._settle_jump(now)

    def state_problem(self, now: float) -> str | None:
        """Why the robot's state cannot be trusted now (None: every monitored name is fresh)."""
        lim = self.limits
        if not lim.state_names:
            return None
        if self._jump is not None:
            return "state jump, waiting for the episode start that explains it"
        missing = [n for n in lim.state_names if n not in self._state]
        if missing:
            return f"no joint_states for {missing}"
        stale = [n for n in lim.state_names if now - self._state[n][1] > lim.state_timeout]
        return f"joint_states older than {lim.state_timeout} s for {stale}" if stale else None

    def _heartbeat_problem(self) -> str | None:
        if self.limits.heartbeat_timeout > 0 and self._last_heartbeat is None:
            return "waiting for the first heartbeat (dead-man switch)"
        return None

    def filter(self, command, now: float, stamp: float | None = None) -> np.ndarray:
        """The command to forward for ``command`` received at ``now`` and stamped ``stamp`` (the hold command if unsafe)."""
        self.counters["received"] += 1
        lim = self.limits
        if lim.joint_robot:
            raise TypeError("filter() takes vector commands; a joint_position robot's commands go through filter_trajectory()")
        if not self._clock(now):
            return self._emit(self._hold, now)
        cmd = np.ravel(np.asarray(command, float))
        if cmd.shape[0] != len(self._lo) or not np.isfinite(cmd).all():
            return self._reject("non-finite or wrongly sized command", now)
        if not self._admit(now, stamp):
            return self._hold_output(now)
        out = np.clip(cmd, self._lo, self._hi)
        clipped = not np.array_equal(out, cmd)
        self._event("clipped to command bounds", clipped)
        # Between two stamped commands the rate limit runs on their own timeline: commands delivered late and
        # bunched together are not "too fast" (checked stamps cannot run ahead of the clock). After a hold, or
        # without stamps, it runs on arrival times (a hold applies when it is sent).
        stamped = stamp if (lim.max_command_age > 0 and stamp is not None) else None
        if stamped is not None and self._last_out_stamp is not None:
            dt = max(stamped - self._last_out_stamp, 0.0)
        else:
            dt = 0.0 if self._last_time is None else max(now - self._last_time, 0.0)
        step = np.where(self._rate > 0, self._rate * dt, np.inf)
        limited = np.clip(out, self._last_out - step, self._last_out + step)
        if not np.array_equal(limited, out):
            clipped = True
            self._event("rate limited")
        out = limited
        if self._state_pos is not None and self._ws_cmd:
            lo, hi = np.asarray(lim.workspace_lower), np.asarray(lim.workspace_upper)
            for axis, ci in enumerate(self._ws_cmd):
                if (self._state_pos[axis] <= lo[axis] and out[ci] < 0) or (self._state_pos[axis] >= hi[axis] and out[ci] > 0):
                    out[ci] = 0.0
                    clipped = True
                    self._event(f"workspace bound: {lim.workspace_state[axis]}")
        if self._release_time is not None and lim.ramp_in_time > 0:
            scale = min(1.0, max(0.0, (now - self._release_time) / lim.ramp_in_time))
            out = self._hold + scale * (out - self._hold)   # scheduled after a release, not an intervention
        if clipped:
            self.counters["clipped"] += 1
        else:
            self._clear("clipped", "rate limited", "workspace bound")
        self.counters["forwarded"] += 1
        return self._emit(out, now, stamped)

    def _admit(self, now: float, stamp: float | None) -> bool:
        """The checks every command passes, after its own shape: stamp, e-stop, state, heartbeat. False: hold.

        A command rejected for its stamp is counted and reported here; every command that gets this far
        feeds the command watchdog.
        """
        lim = self.limits
        if lim.max_command_age > 0 and stamp is not None:
            why = None
            if now - stamp > lim.max_command_age:
                why = f"command older than max_command_age {lim.max_command_age} s"
            elif stamp - now > lim.max_command_age:
                why = "command stamped in the future (clocks disagree)"
            elif self._last_stamp is not None and stamp < self._last_stamp:
                why = "command out of order (stamped before the previous one)"
            if why:
                self.counters["rejected"] += 1
                self._event(f"rejected: {why}")
                return False
            self._last_stamp = stamp
        if stamp is not None and self._episode_stamp is not None and stamp <= self._episode_stamp:
            return False   # planned before the robot was moved on purpose: for the old pose (expected, not counted)
        self._last_command_time = now
        self._settle_jump(now)
        if self.estopped:
            return False
        problem = self.state_problem(now) or self._heartbeat_problem()
        if problem:
            if self._heard_state or not lim.state_names:  # before the robot's first state: start-up, not counted
                self.counters["watchdog_holds"] += 1
            self._event(f"holding: {problem}")
            return False
        self._clear("holding:", "rejected:", "clock jumped")
        return True

    def _reject(self, why: str, now: float):
        self.counters["rejected"] += 1
        self._event(f"rejected: {why}")
        return self._hold_output(now)

    def _hold_output(self, now: float):
        """What holding sends: the hold command, or for a joint robot the measured position held since the hold began."""
        if not self.limits.joint_robot:
            return self._emit(self._hold, now)
        self._last_time, self._last_out_stamp = now, None
        if self._hold_pos is None and self._state_pos is not None:
            self._hold_pos = self._state_pos.copy()
        joints = self.limits.command_names
        if self._hold_pos is None:
            self._reference = None   # the controller holds wherever it is: start from the measurement next time
            return JointCommand(np.zeros(0), np.zeros((0, len(joints))), hold=True)
        self._reference = TrajectoryFollower(joints, self._hold_pos)
        return JointCommand(np.zeros(1), self._hold_pos[None].copy(), hold=True)

    def filter_trajectory(self, names: list[str], times, positions, now: float, stamp: float | None = None) -> JointCommand:
        """The trajectory to forward for a joint trajectory received at ``now`` (a hold if unsafe).

        ``names``: its joints (any order, every joint of ``command_names``); ``times``: each point's
        ``time_from_start`` (s); ``positions``: one row per point in ``names`` order. A trajectory with
        no points asks to hold and is forwarded as a hold at the measured position.
        """
        self.counters["received"] += 1
        lim = self.limits
        if not lim.joint_robot:
            raise TypeError("filter_trajectory() is for joint_position robots; vector commands go through filter()")
        if not self._clock(now):
            return self._hold_output(now)
        problem = check_trajectory(list(names), list(times), [list(p) for p in positions], lim.command_names)
        if problem:
            return self._reject(f"malformed trajectory: {problem}", now)
        if not self._admit(now, stamp):
            return self._hold_output(now)
        if len(times) and self._reference is None and self._state_pos is None:
            return self._hold_output(now)   # moved on purpose, not measured since: nothing to clamp from yet
        self.counters["forwarded"] += 1
        if len(times) == 0:
            self._clear("clamped to joint limits")
            return self._hold_output(now)
        order = [list(names).index(j) for j in lim.command_names]
        points = np.asarray(positions, float)[:, order]
        bounds = self._joint_limits.copy()
        if self._release_time is not None and lim.ramp_in_time > 0:  # velocity limits ramp in after a release
            scale = min(1.0, max(0.0, (now - self._release_time) / lim.ramp_in_time))
            bounds[2] = np.where(np.isfinite(bounds[2]), bounds[2] * scale, bounds[2])
        # From the measurement at first and while the robot may be ignoring commands after a reset (what was forwarded
        # then moved no setpoint: clamped from it, the first trajectory the robot takes would ask for a jump); later
        # trajectories from the setpoint of what was forwarded, which a position controller's measurement lags.
        if self._reference is None or (now < self._settle_until and self._state_pos is not None):
            self._reference = TrajectoryFollower(lim.command_names, self._state_pos)
            start, velocity = self._state_pos, np.array([self._state_vel.get(n, 0.0) for n in lim.command_names])
        else:
            start, velocity = self._reference.setpoint(now), self._reference.velocity(now)
        out, clamped = clamp_trajectory(times, points, start, velocity, bounds)
        self._reference.follow(lim.command_names, list(times), out, now)
        if clamped:
            self.counters["clipped"] += 1
            self._event("clamped to joint limits")
        else:
            self._clear("clamped to joint limits")
        self._hold_pos = None
        self._last_time, self._last_out_stamp = now, None
        return JointCommand(np.asarray(times, float), out)

    @property
    def output_time(self) -> float | None:
        """The time the last output is for: its command's stamp, or when it was sent (holds, unstamped commands)."""
        return self._last_out_stamp if self._last_out_stamp is not None else self._last_time

    def _emit(self, out: np.ndarray, now: float, stamp: float | None = None) -> np.ndarray:
        """Remember what was sent: when (``now``), and the stamp of the command it came from (None: a hold)."""
        self._last_out, self._last_time, self._last_out_stamp = np.array(out, float), now, stamp
        return out

    def tick(self, now: float) -> np.ndarray | JointCommand | None:
        """Periodic check: the hold command when the robot must hold (stale commands or state, no heartbeat, e-stop)."""
        lim = self.limits
        self._clock(now)
        self._settle_jump(now)
        if lim.heartbeat_timeout > 0 and not self.estopped and self._last_heartbeat is not None:
            if now - self._last_heartbeat > lim.heartbeat_timeout:
                self.trigger_estop("heartbeat missing")
        if self.estopped:
            return self._hold_output(now)
        if self._last_command_time is None:
            return self._hold_output(now)  # no command yet: the robot holds (not an intervention)
        problem = self.state_problem(now) or self._heartbeat_problem()
        stale = now - self._last_command_time > lim.watchdog_timeout
        if stale or problem:
            if self._stale_counted != self._last_command_time:   # one count per stale period
                self._stale_counted = self._last_command_time
                self.counters["watchdog_holds"] += int(stale or self._heard_state or not lim.state_names)
                self._event("watchdog: commands stale" if stale else f"holding: {problem}")
            return self._hold_output(now)
        return None

    def status(self) -> dict:
        """State, reasons (newest first) and counters."""
        return {"state": self.state, "state_name": STATE_NAMES[self.state], "reasons": list(self.reasons), **self.counters}
