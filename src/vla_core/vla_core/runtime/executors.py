"""Chunk execution strategies, composed around a policy rather than built into it.

Each executor turns ``predict(obs) -> chunk (H, A)`` into one action per control tick:

- :class:`RecedingHorizon` executes the first ``k`` actions of each chunk, then predicts again
  (``k = H`` is full-chunk execution);
- :class:`TemporalEnsemble` predicts every tick and averages all chunks that cover the current tick
  with weights ``exp(-m * age)`` (ACT's temporal ensembling; older predictions weigh more for m > 0).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

Predict = Callable[[dict], np.ndarray]


class ChunkExecutor:
    """Base class: ``reset()`` at episode start, ``act(obs, predict)`` every tick."""

    name = "base"

    def reset(self) -> None:
        """Forget everything queued."""

    def act(self, obs: dict, predict: Predict) -> np.ndarray:
        """The action (A,) for this tick; calls ``predict`` when a new chunk is needed."""
        raise NotImplementedError


class RecedingHorizon(ChunkExecutor):
    """Execute ``k`` actions of each chunk (None = the whole chunk)."""

    def __init__(self, k: int | None = None):
        self.k = k
        self.name = "full_chunk" if k is None else f"receding_{k}"
        self._queue: deque[np.ndarray] = deque()

    def reset(self) -> None:
        """Forget queued actions."""
        self._queue.clear()

    def act(self, obs: dict, predict: Predict) -> np.ndarray:
        """Pop the next queued action, predicting a new chunk when the queue is empty."""
        if not self._queue:
            chunk = np.asarray(predict(obs))
            self._queue.extend(chunk[: self.k] if self.k else chunk)
        return self._queue.popleft()


class TemporalEnsemble(ChunkExecutor):
    """Predict every tick; average the predictions for this tick from every chunk still covering it."""

    def __init__(self, m: float = 0.01):
        self.m = m
        self.name = "temporal_ensemble"
        self._chunks: list[tuple[int, np.ndarray]] = []
        self._t = 0

    def reset(self) -> None:
        """Forget past chunks."""
        self._chunks.clear()
        self._t = 0

    def act(self, obs: dict, predict: Predict) -> np.ndarray:
        """Weighted mean over overlapping chunks (oldest first, weight exp(-m * i))."""
        chunk = np.asarray(predict(obs))
        self._chunks.append((self._t, chunk))
        self._chunks = [(t0, c) for t0, c in self._chunks if self._t - t0 < len(c)]
        preds = np.stack([c[self._t - t0] for t0, c in self._chunks])
        weights = np.exp(-self.m * np.arange(len(preds)))
        self._t += 1
        return (weights[:, None] * preds).sum(0) / weights.sum()


def make_executor(mode: str, horizon: int, n_action_steps: int) -> ChunkExecutor:
    """``full`` | ``receding`` (the policy's n_action_steps) | ``receding:K`` | ``ensemble``."""
    from vla_core.errors import ConfigError

    if mode == "full":
        return RecedingHorizon(None)
    if mode == "receding":
        return RecedingHorizon(n_action_steps)
    if mode.startswith("receding:"):
        k = int(mode.split(":", 1)[1])
        if not 1 <= k <= horizon:
            raise ConfigError(f"execution mode '{mode}': k must be in [1, {horizon}]")
        return RecedingHorizon(k)
    if mode == "ensemble":
        return TemporalEnsemble()
    raise ConfigError(f"unknown execution mode '{mode}'; expected full, receding, receding:K or ensemble")
