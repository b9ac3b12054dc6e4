"""Action-buffer replanning, free of ROS.

:class:`ActionBuffer` maps control ticks to actions. A chunk computed from the observation of tick
``t0`` covers ticks ``t0 .. t0 + H - 1``; when it arrives at tick ``now`` the actions for ticks
before ``now`` went stale while inference ran and are skipped (latency compensation). Where the new
chunk overlaps actions still queued from the previous one, the first ``blend_steps`` overlapping
ticks cross-fade linearly from old to new; with ``ensemble=True`` every overlapping prediction is
instead averaged with weights ``exp(-m * age)`` (ACT's temporal ensembling).

:class:`ReplanningController` decides when to ask for a new chunk (buffer below ``min_buffer`` or
every ``replan_interval`` ticks), runs inference in a worker thread so the control tick never
blocks, flushes on a new instruction, and holds (returns None) when the observation is stale or
missing rather than extrapolating.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_core.params import doc


class ActionBuffer:
    """Future actions indexed by control tick."""

    def __init__(self, blend_steps: int = 4, ensemble: bool = False, ensemble_m: float = 0.01):
        self.blend_steps = blend_steps
        self.ensemble = ensemble
        self.m = ensemble_m
        self._actions: dict[int, np.ndarray] = {}
        self._weights: dict[int, float] = {}   # ensemble: accumulated weight per tick
        self._ages: dict[int, int] = {}        # ensemble: number of chunks seen per tick
        self.skipped_stale = 0

    def insert(self, chunk: np.ndarray, t0: int, now: int) -> int:
        """Add a chunk (H, A) whose first action belongs to tick ``t0``; returns how many stale actions were skipped."""
        chunk = np.asarray(chunk, dtype=np.float64)
        stale = max(0, now - t0)
        self.skipped_stale += min(stale, len(chunk))
        for tick in list(self._actions):
            if tick < now:
                self._drop(tick)
        overlap = 0
        for i in range(stale, len(chunk)):
            tick, new = t0 + i, chunk[i]
            old = self._actions.get(tick)
            if old is None:
                self._actions[tick] = new.copy()
                self._weights[tick] = 1.0
                self._ages[tick] = 1
            elif self.ensemble:
                w = float(np.exp(-self.m * self._ages[tick]))
                total = self._weights[tick] + w
                self._actions[tick] = (old * self._weights[tick] + new * w) / total
                self._weights[tick], self._ages[tick] = total, self._ages[tick] + 1
            else:
                overlap += 1
                w = overlap / (self.blend_steps + 1) if overlap <= self.blend_steps else 1.0
                self._actions[tick] = (1 - w) * old + w * new
        # Ticks beyond the new chunk that only the old chunk covered are dropped: the new plan wins.
        last = t0 + len(chunk) - 1
        for tick in [t for t in self._actions if t > last]:
            self._drop(tick)
        return stale

    def _drop(self, tick: int) -> None:
        self._actions.pop(tick, None)
        self._weights.pop(tick, None)
        self._ages.pop(tick, None)

    def pop(self, tick: int) -> np.ndarray | None:
        """The action for ``tick`` (removed), or None when the buffer has none."""
        for t in [t for t in self._actions if t < tick]:
            self._drop(t)
        action = self._actions.get(tick)
        self._drop(tick)
        return action

    def depth(self, tick: int) -> int:
        """Actions queued for ``tick`` and later."""
        return sum(1 for t in self._actions if t >= tick)

    def flush(self) -> None:
        """Drop everything (new instruction, reset)."""
        self._actions.clear()
        self._weights.clear()
        self._ages.clear()


@dataclass
class ControllerConfig:
    """Replanning parameters (ticks are control periods); every field is a vla_controller parameter."""

    control_rate: float = doc("control ticks per second (Hz): one action is published per tick", default=30.0)
    replan_interval: int = doc("ticks between chunk requests, even with a full buffer", default=8)
    min_buffer: int = doc("request a new chunk when fewer actions than this remain", default=4)
    blend_steps: int = doc("ticks over which the old chunk cross-fades into the new one", default=4)
    temporal_ensembling: bool = doc("average overlapping chunks (ACT) instead of cross-fading", default=False)
    observation_timeout: float = doc("seconds after which an observation is stale and the robot holds", default=0.5)

    def __post_init__(self):
        if self.control_rate <= 0:
            raise ValueError("control_rate must be positive")
        if self.replan_interval < 1 or self.min_buffer < 0 or self.blend_steps < 0:
            raise ValueError("replan_interval must be >= 1, min_buffer and blend_steps >= 0")
        if self.observation_timeout <= 0:
            raise ValueError("observation_timeout must be positive")


@dataclass
class InferenceRecord:
    """One finished inference: when its observation was taken, the chunk, and its latency."""

    t0: int
    chunk: np.ndarray
    latency: float
    instruction: str
    stale_skipped: int


class ReplanningController:
    """Control-tick logic around a ``predict(obs) -> chunk (H, A)`` function (a PolicyRuntime)."""

    def __init__(self, predict: Callable[[dict], np.ndarray], config: ControllerConfig,
                 on_chunk: Callable[[InferenceRecord], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.predict = predict
        self.config = config
        self.on_chunk = on_chunk or (lambda record: None)
        self.clock = clock
        self.buffer = ActionBuffer(config.blend_steps, config.temporal_ensembling)
        self.tick_index = 0
        self.instruction: str | None = None
        self._obs: dict | None = None
        self._obs_time = -np.inf
        self._lock = threading.Lock()
        self._busy = threading.Event()
        self._generation = 0          # bumped on flush: results of older requests are discarded
        self._last_request = -10**9
        self.latencies: list[float] = []
        self.holds = 0
        self.errors: list[str] = []

    def set_observation(self, obs: dict) -> None:
        """Latest observation (images, proprio); time-stamped on arrival."""
        with self._lock:
            self._obs, self._obs_time = obs, self.clock()

    def set_instruction(self, text: str) -> None:
        """A new instruction flushes the buffer: actions planned for the old goal are dropped."""
        with self._lock:
            if text != self.instruction:
                self.instruction = text
                self.buffer.flush()
                self._generation += 1

    def observation_fresh(self) -> bool:
        """Whether the latest observation is younger than the timeout."""
        return self._obs is not None and self.clock() - self._obs_time <= self.config.observation_timeout

    def _worker(self, obs: dict, t0: int, generation: int) -> None:
        try:
            start = self.clock()
            chunk = np.asarray(self.predict(obs))
            latency = self.clock() - start
            with self._lock:
                if generation != self._generation:
                    return
                stale = self.buffer.insert(chunk, t0, self.tick_index)
                self.latencies.append(latency)
            self.on_chunk(InferenceRecord(t0, chunk, latency, obs["instruction"], stale))
        except Exception as exc:  # noqa: BLE001 - reported by the node; the control loop keeps running
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._busy.clear()

    def tick(self) -> np.ndarray | None:
        """One control tick: the action to send, or None to hold. Never waits for inference."""
        with self._lock:
            t = self.tick_index
            fresh = self.observation_fresh()
            depth = self.buffer.depth(t)
            want = depth < self.config.min_buffer or t - self._last_request >= self.config.replan_interval
            if fresh and self.instruction and want and not self._busy.is_set():
                self._busy.set()
                self._last_request = t
                obs = dict(self._obs, instruction=self.instruction)
                threading.Thread(target=self._worker, args=(obs, t, self._generation), daemon=True).start()
            action = self.buffer.pop(t) if fresh else None
            if not fresh:
                self.buffer.flush()  # never replay a plan made for a world we no longer see
            self.tick_index += 1
            if action is None:
                self.holds += 1
            return action

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no inference is running (tests, shutdown)."""
        deadline = self.clock() + timeout
        while self._busy.is_set() and self.clock() < deadline:
            time.sleep(0.001)
        return not self._busy.is_set()
