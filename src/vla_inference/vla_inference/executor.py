"""The executor's logic, free of ROS: one action per control tick from the chunk scheduler.

:class:`Executor` wraps :class:`vla_core.runtime.scheduler.ChunkScheduler` (the class ``vla eval``
runs) with what only a robot has:

1. ticks from a clock: tick = round((now - start) / period), never repeating; late ticks are
   skipped (their actions went stale) and counted;
2. requests with ids; only the newest request's answer is used, an unanswered request is given up
   after ``request_timeout``; real-time chunking freezes the measured delay plus ``delay_margin``;
3. latency compensation: a chunk stamped with its observation's time starts at that tick;
4. refusals: a chunk for other action names, another control rate, of the wrong size or with
   non-finite values is refused (the robot holds) with one sentence saying why;
5. holds: no fresh robot state (``observation_timeout``), no instruction, or nothing planned; a new
   instruction or stale state drops the plan.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from vla_core.params import doc
from vla_core.runtime.scheduler import ChunkScheduler, SchedulerConfig


@dataclass
class ExecutorConfig:
    """The robot side of execution; every field is a vla_controller parameter."""

    control_rate: float = doc("control ticks per second (Hz): one command per tick; chunks for another rate are refused",
                              default=80.0)
    action_names: list[str] = doc("action dimensions the robot's command takes, in order (chunks must match); "
                                  "required, from the robot's parameter file", default_factory=list)
    observation_timeout: float = doc("seconds without robot state after which the robot holds and the plan is dropped",
                                     default=0.5)
    request_timeout: float = doc("seconds after which an unanswered chunk request is given up and asked again", default=1.0)
    delay_margin: int = doc("real-time chunking: ticks added to the measured inference delay when freezing actions",
                            default=1)

    def __post_init__(self):
        if self.control_rate <= 0:
            raise ValueError("control_rate must be positive")
        if not self.action_names:
            raise ValueError("action_names must name the robot's action dimensions")
        if self.observation_timeout <= 0 or self.request_timeout <= 0 or self.delay_margin < 0:
            raise ValueError("observation_timeout and request_timeout must be positive, delay_margin >= 0")


@dataclass
class Request:
    """A chunk request to send: its id, the tick it was made at, frozen ticks and the planned prefix (n, A)."""

    id: int
    tick: int
    frozen: int
    prefix: np.ndarray


class Executor:
    """Control-tick logic between a policy that answers requests and a robot that takes one action per tick."""

    def __init__(self, config: ExecutorConfig, scheduler: SchedulerConfig):
        self.config = config
        self.scheduler = ChunkScheduler(scheduler)
        self.period = 1.0 / config.control_rate
        self.instruction: str | None = None
        self.tick = -1   # the last tick run (none yet)
        self.missed_ticks = 0
        self.refused = 0
        self.delays: deque[int] = deque(maxlen=10)    # ticks from request to the chunk's arrival
        self._start: float | None = None
        self._state_time: float | None = None
        self._next_id = 1
        self._pending: Request | None = None
        self._pending_time: float | None = None
        self._episode_start: float | None = None   # stamp of the last episode start (chunks from before it are void)
        self.pre_episode_chunks = 0                 # chunks refused for being computed from the previous episode

    # ------------------------------------------------------------------ inputs
    def on_state(self, now: float) -> None:
        """The robot's state arrived (its freshness gates motion)."""
        self._state_time = now

    def state_fresh(self, now: float) -> bool:
        """Whether the robot's state is younger than ``observation_timeout``."""
        return self._state_time is not None and now - self._state_time <= self.config.observation_timeout

    def on_instruction(self, text: str) -> bool:
        """A new instruction drops the plan; returns whether it changed."""
        if text == self.instruction:
            return False
        self.instruction = text
        self.flush()
        return True

    def on_episode_start(self, stamp: float) -> None:
        """The robot was moved to a new episode's start at ``stamp`` (a simulator or operator reset).

        Drops the plan and refuses chunks computed from observations up to ``stamp`` (they show the old
        scene); the next tick asks again. Without this the rest of the last episode's chunk plays at the
        new start.
        """
        self.flush()
        self._episode_start = stamp

    def flush(self) -> None:
        """Drop the plan and forget the request in flight: its chunk was computed for another situation."""
        self.scheduler.reset()
        self._pending = None

    def on_chunk(self, request_id: int, action_names: list[str], step_s: float, horizon: int, actions, instruction: str,
                 obs_time: float) -> str | None:
        """Plan a chunk (H * A values, row-major) that answers ``request_id``; returns why it was refused, or None.

        ``obs_time``: the time of the observation the chunk was computed from (its first action's time).
        Answers to superseded requests and chunks for another instruction are ignored silently (None).
        """
        request = self._pending
        if request is None or request.id != request_id or instruction != self.instruction:
            return None
        n = len(self.config.action_names)
        problem = None
        if list(action_names) != list(self.config.action_names):
            problem = (f"the policy produces actions {list(action_names)} but this robot takes "
                       f"{self.config.action_names} (parameter action_names)")
        elif not math.isclose(step_s, self.period, rel_tol=1e-3):
            problem = (f"the policy's chunks step every {step_s * 1e3:.2f} ms ({1 / step_s:g} Hz) but control_rate is "
                       f"{self.config.control_rate:g} Hz: retrain at this rate or set control_rate")
        elif len(actions) != horizon * n or not np.isfinite(actions).all():
            problem = f"a chunk of {len(actions)} values for horizon {horizon} x {n} actions, or with non-finite values"
        self._pending = None
        if problem is None and self._episode_start is not None and obs_time <= self._episode_start:
            self.pre_episode_chunks += 1   # the observation predates the reset: ask again at the next tick
            self.scheduler.cancel()
            return None
        if problem:
            self.refused += 1
            self.scheduler.cancel()
            return problem
        now = max(self.tick + 1, request.tick)  # the next tick to execute
        t0 = request.tick - int(round((self._pending_time - obs_time) / self.period))
        self.scheduler.insert(np.asarray(actions, np.float64).reshape(horizon, n), t0, now)
        self.delays.append(now - request.tick)
        return None

    # ------------------------------------------------------------------ control tick
    def _tick_at(self, now: float) -> int:
        if self._start is None:
            self._start = now
        tick = max(self.tick + 1, int(round((now - self._start) / self.period)))
        self.missed_ticks += tick - self.tick - 1
        return tick

    def step(self, now: float) -> tuple[np.ndarray | None, Request | None]:
        """One control tick: (the action to send or None to hold, a request to send or None)."""
        self.tick = tick = self._tick_at(now)
        request = None
        if not self.state_fresh(now):
            self.flush()   # never replay a plan made for a world we no longer see
            self.scheduler.holds += 1
            return None, None
        if self.instruction:
            if self._pending is not None and now - self._pending_time > self.config.request_timeout:
                self._pending = None     # unanswered (policy busy, restarted, its observations stale): ask again
                self.scheduler.cancel()
            if self.scheduler.wants_chunk(tick):   # never while a request is pending
                frozen = (max(self.delays) if self.delays else 0) + self.config.delay_margin
                planned = self.scheduler.request(tick, frozen=frozen)
                request = Request(self._next_id, tick, planned.frozen, planned.prefix)
                self._next_id += 1
                self._pending, self._pending_time = request, now
        return self.scheduler.pop(tick), request

    def diagnostics(self) -> dict:
        """Counters for /diagnostics."""
        s = self.scheduler
        return {"plan_depth": s.planned, "holds": s.holds, "chunks": s.chunks,
                "stale_actions_skipped": s.stale_skipped, "missed_ticks": self.missed_ticks, "refused_chunks": self.refused,
                "inference_delay_ticks": max(self.delays) if self.delays else 0,
                "pre_episode_chunks": self.pre_episode_chunks}
