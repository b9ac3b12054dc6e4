import numpy as np
import pytest

from vla_core.errors import ConfigError
from vla_core.runtime.executors import RecedingHorizon, TemporalEnsemble, make_executor


class CountingPredictor:
    """Chunk t holds values 100 * t + step, so executed actions reveal which chunk they came from."""

    def __init__(self, horizon=4):
        self.calls, self.horizon = 0, horizon

    def __call__(self, obs):
        chunk = np.array([[100 * self.calls + i] for i in range(self.horizon)], float)
        self.calls += 1
        return chunk


def test_receding_horizon_executes_k_then_replans():
    pred, ex = CountingPredictor(), RecedingHorizon(2)
    acts = [ex.act({}, pred)[0] for _ in range(5)]
    assert acts == [0, 1, 100, 101, 200] and pred.calls == 3
    ex.reset()
    assert ex.act({}, pred)[0] == 300


def test_full_chunk():
    pred, ex = CountingPredictor(), make_executor("full", 4, 2)
    assert [ex.act({}, pred)[0] for _ in range(5)] == [0, 1, 2, 3, 100]


def test_temporal_ensemble_averages_overlapping_chunks():
    pred, ex = CountingPredictor(), TemporalEnsemble(m=0.0)
    assert ex.act({}, pred)[0] == 0            # only chunk 0: its step 0
    assert ex.act({}, pred)[0] == (1 + 100) / 2  # chunk 0 step 1, chunk 1 step 0
    assert ex.act({}, pred)[0] == (2 + 101 + 200) / 3


def test_bad_modes():
    with pytest.raises(ConfigError, match="unknown execution mode 'sometimes'"):
        make_executor("sometimes", 4, 2)
    with pytest.raises(ConfigError, match=r"k must be in \[1, 4\]"):
        make_executor("receding:9", 4, 2)
