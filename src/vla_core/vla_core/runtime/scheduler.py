"""The one chunk scheduler: how chunks of future actions become one action per control tick.

The robot's executor node (``vla_controller``), ``vla eval`` (in simulation time) and
``VLAPolicy.select_action`` all run this class, so an evaluation runs the code the robot runs.

Ticks are integers (control periods). A chunk computed from the observation of tick ``t0`` holds
the actions for ticks ``t0 .. t0 + H - 1``.

1. Requests: a chunk is wanted when none is pending and either ``execute_steps`` ticks have passed
   since the last request, or nothing or fewer than ``min_buffer`` planned actions remain
   (synchronous mode: when the plan is used up).
2. Latency compensation: when a chunk for ``t0`` arrives at tick ``now > t0``, its first
   ``now - t0`` actions went stale while inference ran and are skipped. In ``sync`` mode the robot
   held still while it waited, so the chunk starts at ``now`` instead (nothing is stale).
3. Merging with the actions still planned from the previous chunk, by ``mode``:
   ``sync``   the robot holds during inference; each chunk's first ``execute_steps`` actions run
              (receding horizon; ``execute_steps = H`` is full-chunk execution);
   ``blend``  the first ``blend_steps`` overlapping ticks cross-fade linearly from old to new;
   ``ensemble`` every prediction for a tick is averaged with weights ``exp(-m * i)``, i = 0 for the
              oldest (ACT's temporal ensembling);
   ``rtc``    real-time chunking: the request carries the planned actions, the policy samples the
              new chunk conditioned on them (:func:`guidance_for`), and the new chunk replaces them.
4. Holds: :meth:`ChunkScheduler.pop` returns None when no action is planned for the tick; the
   caller sends its robot's hold command.

Shapes: a chunk is (H, ...) - one action array per step, (A,) on a robot, (B, A) for a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vla_core.params import doc

MODES = ("sync", "blend", "ensemble", "rtc")


@dataclass
class SchedulerConfig:
    """How chunks are executed; every field is also a ``vla_controller`` parameter."""

    mode: str = doc("chunk execution: sync (hold during inference), blend, ensemble (ACT temporal ensembling) "
                    "or rtc (real-time chunking; flow and diffusion heads)", default="blend")
    execute_steps: int = doc("ticks executed from each chunk before the next is requested (replan interval)", default=8)
    min_buffer: int = doc("asynchronous modes: request early when fewer planned actions than this remain", default=4)
    blend_steps: int = doc("blend mode: ticks over which the old plan cross-fades into the new chunk", default=4)
    ensemble_m: float = doc("ensemble mode: weight exp(-m * i) of a tick's i-th prediction, i = 0 the oldest "
                            "(m > 0: older predictions weigh more, as in ACT; m < 0: newer ones do)", default=0.01)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{self.mode}'")
        if self.execute_steps < 1:
            raise ValueError("execute_steps must be >= 1")
        if self.min_buffer < 0 or self.blend_steps < 0:
            raise ValueError("min_buffer and blend_steps must be >= 0")
        if not math.isfinite(self.ensemble_m):
            raise ValueError("ensemble_m must be a finite number")


@dataclass
class ChunkRequest:
    """A request for a chunk, made at ``tick``.

    ``prefix`` (n, ...) holds the actions already planned for ticks ``tick .. tick + n - 1`` (empty
    outside ``rtc`` mode); the first ``frozen`` of them will execute while the policy computes, so a
    real-time-chunking policy must reproduce them (see :func:`guidance_for`).
    """

    tick: int
    prefix: np.ndarray
    frozen: int


def rtc_weights(overlap: int, frozen: int, horizon: int) -> np.ndarray:
    """Soft mask (H,) of real-time chunking (Black, Galliker and Levine 2025, eq. 5).

    1 for the ``frozen`` actions that execute during inference, then an exponential decay to 0 over
    the rest of the ``overlap`` with the previous plan, 0 beyond it.
    """
    w = np.zeros(horizon, np.float32)
    overlap, frozen = min(overlap, horizon), min(frozen, overlap, horizon)
    w[:frozen] = 1.0
    span = overlap - frozen
    for i in range(frozen, overlap):
        c = (overlap - i) / (span + 1)
        w[i] = c * (math.exp(c) - 1) / (math.e - 1)
    return w


def guidance_for(prefix: np.ndarray, frozen: int, offset: int, horizon: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Targets (H, ...) and weights (H,) for sampling a chunk conditioned on a planned ``prefix``.

    ``offset``: how many ticks the chunk's first action lies before the prefix's first action (the
    observation the chunk is computed from is ``offset`` ticks older than the request; negative if
    newer). None when nothing overlaps.
    """
    prefix = np.asarray(prefix)
    # Chunk index i <-> prefix index i - offset.
    lo, hi = max(0, offset), min(horizon, offset + prefix.shape[0])
    if hi <= lo:
        return None
    targets = np.zeros((horizon, *prefix.shape[1:]), np.float32)
    targets[lo:hi] = prefix[lo - offset:hi - offset]
    weights = np.zeros(horizon, np.float32)
    # Frozen ticks are counted from the request, so they shift with the prefix.
    weights[lo:hi] = rtc_weights(prefix.shape[0], frozen, prefix.shape[0])[lo - offset:hi - offset]
    return targets, weights


class ChunkScheduler:
    """Future actions indexed by control tick, and when to ask for more (see the module docstring)."""

    def __init__(self, config: SchedulerConfig | None = None):
        self.config = config or SchedulerConfig()
        self._actions: dict[int, np.ndarray] = {}
        self._log_weights: dict[int, float] = {}   # ensemble: log of the accumulated weight per tick
        self._count: dict[int, int] = {}       # ensemble: predictions merged per tick
        self.pending: ChunkRequest | None = None
        self._last_request: int | None = None
        self.stale_skipped = 0
        self.chunks = 0
        self.holds = 0

    # ------------------------------------------------------------------ requests
    def wants_chunk(self, tick: int) -> bool:
        """Whether a chunk should be requested at ``tick``."""
        if self.pending is not None:
            return False
        depth = self.depth(tick)
        if self.config.mode == "sync":
            return depth == 0
        if self._last_request is None or depth == 0 or depth < self.config.min_buffer:
            return True  # nothing (or too little) planned: always ask
        return tick - self._last_request >= self.config.execute_steps

    def request(self, tick: int, frozen: int = 0) -> ChunkRequest:
        """Mark a request as pending; ``frozen``: expected inference delay in ticks (rtc)."""
        prefix = []
        if self.config.mode == "rtc":
            t = tick
            while t in self._actions:
                prefix.append(self._actions[t])
                t += 1
        self.pending = ChunkRequest(tick, np.asarray(prefix, np.float32), max(0, int(frozen)))
        self._last_request = tick
        return self.pending

    def cancel(self) -> None:
        """Forget the pending request (its chunk will never come, or is to be ignored)."""
        self.pending = None

    # ------------------------------------------------------------------ chunks
    def insert(self, chunk, t0: int, now: int) -> int:
        """Add a chunk (H, ...) computed from the observation of tick ``t0``; returns how many stale actions were skipped."""
        chunk = np.asarray(chunk, dtype=np.float64)
        self.pending = None
        self.chunks += 1
        self._drop_before(now)
        if self.config.mode == "sync":
            # The robot held still while waiting: the chunk starts now, and runs execute_steps actions.
            self._actions.clear()
            for i, action in enumerate(chunk[: self.config.execute_steps]):
                self._actions[now + i] = action.copy()
            return 0
        stale = min(max(0, now - t0), len(chunk))
        self.stale_skipped += stale
        overlap = 0
        for i in range(stale, len(chunk)):
            tick, new = t0 + i, chunk[i]
            old = self._actions.get(tick)
            if old is None or self.config.mode == "rtc":
                self._set(tick, new)
            elif self.config.mode == "ensemble":
                # In logs, so that a negative m (newer predictions weigh more) cannot overflow.
                w = -self.config.ensemble_m * self._count[tick]
                total = np.logaddexp(self._log_weights[tick], w)
                self._actions[tick] = old * math.exp(self._log_weights[tick] - total) + new * math.exp(w - total)
                self._log_weights[tick], self._count[tick] = float(total), self._count[tick] + 1
            else:  # blend
                overlap += 1
                w = overlap / (self.config.blend_steps + 1) if overlap <= self.config.blend_steps else 1.0
                self._actions[tick] = (1 - w) * old + w * new
        if self.config.mode != "ensemble":
            # Ticks beyond the new chunk that only the old plan covered are dropped: the new plan wins.
            last = t0 + len(chunk) - 1
            for tick in [t for t in self._actions if t > last]:
                self._drop(tick)
        return stale

    def pop(self, tick: int) -> np.ndarray | None:
        """The action planned for ``tick`` (removed with every older one), or None: hold."""
        self._drop_before(tick)
        action = self._actions.get(tick)
        self._drop(tick)
        if action is None:
            self.holds += 1
        return action

    def depth(self, tick: int) -> int:
        """Actions planned for ``tick`` and later."""
        return sum(1 for t in self._actions if t >= tick)

    @property
    def planned(self) -> int:
        """Actions planned in all (after a pop, every one is for a later tick)."""
        return len(self._actions)

    def reset(self) -> None:
        """Drop the plan and any pending request (new episode, new instruction, stale observations)."""
        self._actions.clear()
        self._log_weights.clear()
        self._count.clear()
        self.pending = None
        self._last_request = None

    # ------------------------------------------------------------------ internals
    def _set(self, tick: int, action: np.ndarray) -> None:
        self._actions[tick] = action.copy()
        self._log_weights[tick] = 0.0
        self._count[tick] = 1

    def _drop(self, tick: int) -> None:
        self._actions.pop(tick, None)
        self._log_weights.pop(tick, None)
        self._count.pop(tick, None)

    def _drop_before(self, tick: int) -> None:
        for t in [t for t in self._actions if t < tick]:
            self._drop(t)


def parse_mode(text: str, n_action_steps: int, horizon: int) -> SchedulerConfig:
    """``MODE[:K]`` of ``vla eval --modes`` -> config (K: execute_steps; default the policy's n_action_steps).

    Aliases of earlier releases: ``full`` = ``sync:H``, ``receding`` = ``sync``, ``receding:K`` = ``sync:K``.
    ``ensemble`` defaults to K = 1 (a new chunk every tick, as in ACT); ``ensemble:K:M`` also sets
    ``ensemble_m`` (the weight of a tick's i-th prediction is exp(-M * i), i = 0 the oldest).
    """
    from vla_core.errors import ConfigError

    name, _, rest = text.partition(":")
    k, _, m = rest.partition(":")
    aliases = {"full": ("sync", str(horizon)), "receding": ("sync", k)}
    if name in aliases:
        name, k = aliases[name]
    if name not in MODES:
        raise ConfigError(f"unknown execution mode '{text}'; expected sync, blend, ensemble or rtc, optionally "
                          f"with ':K' actions per chunk (aliases: full, receding, receding:K)")
    default = 1 if name == "ensemble" else n_action_steps
    try:
        steps = int(k) if k else default
    except ValueError:
        raise ConfigError(f"execution mode '{text}': K must be an integer") from None
    if not 1 <= steps <= horizon:
        raise ConfigError(f"execution mode '{text}': K must be in [1, {horizon}]")
    extra = {}
    if m:
        try:
            extra["ensemble_m"] = float(m)
        except ValueError:
            raise ConfigError(f"execution mode '{text}': M must be a number") from None
        if name != "ensemble" or not math.isfinite(extra["ensemble_m"]):
            raise ConfigError(f"execution mode '{text}': only ensemble takes a third field, a finite weight M")
    return SchedulerConfig(mode=name, execute_steps=steps, min_buffer=min(4, steps), **extra)
