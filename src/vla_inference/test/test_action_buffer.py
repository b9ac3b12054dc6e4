"""Action buffer and replanning logic without ROS."""

import threading
import time

import numpy as np
import pytest

from vla_inference.action_buffer import ActionBuffer, ControllerConfig, ReplanningController


def chunk(value, h=8, a=2):
    return np.full((h, a), float(value)) + np.arange(h)[:, None] * 0.01


def test_stale_actions_are_skipped():
    buf = ActionBuffer(blend_steps=0)
    skipped = buf.insert(chunk(1), t0=10, now=13)  # inference took 3 ticks
    assert skipped == 3 and buf.depth(13) == 5
    np.testing.assert_allclose(buf.pop(13), chunk(1)[3])


def test_blend_crossfades_old_into_new():
    buf = ActionBuffer(blend_steps=3)
    buf.insert(np.zeros((8, 1)), t0=0, now=0)
    buf.insert(np.ones((8, 1)), t0=4, now=4)
    got = [buf.pop(t)[0] for t in range(4, 12)]
    assert got[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # 3 blended ticks, then the new chunk alone
    assert got[4:] == pytest.approx([1.0] * 4)


def test_temporal_ensemble_averages():
    buf = ActionBuffer(ensemble=True, ensemble_m=0.0)
    buf.insert(np.zeros((4, 1)), 0, 0)
    buf.insert(np.ones((4, 1)), 1, 1)
    buf.insert(np.full((4, 1), 2.0), 2, 2)
    assert buf.pop(2)[0] == pytest.approx(1.0)  # mean of 0, 1, 2


def test_flush_and_empty_pop():
    buf = ActionBuffer()
    buf.insert(chunk(1), 0, 0)
    buf.flush()
    assert buf.pop(0) is None and buf.depth(0) == 0


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_controller_replans_without_blocking_and_compensates_latency():
    clock = FakeClock()
    gate = threading.Event()
    calls = []

    def slow_predict(obs):
        calls.append(obs["instruction"])
        gate.wait(5)
        return chunk(len(calls), h=8, a=2)

    ctl = ReplanningController(slow_predict, ControllerConfig(replan_interval=4, min_buffer=2, blend_steps=0), clock=clock)
    ctl.set_instruction("open the drawer")
    ctl.set_observation({"images": {}, "proprio": np.zeros(2)})
    t0 = time.perf_counter()
    actions = [ctl.tick() for _ in range(3)]  # inference is blocked: the loop must not wait
    assert time.perf_counter() - t0 < 0.5 and actions == [None, None, None]
    gate.set()
    assert ctl.wait_idle()
    a = ctl.tick()  # tick 3: the chunk was for tick 0, so 3 stale actions were skipped
    np.testing.assert_allclose(a, chunk(1)[3])
    assert calls == ["open the drawer"]


def test_stale_observation_holds_and_new_instruction_flushes():
    clock = FakeClock()
    ctl = ReplanningController(lambda obs: chunk(7), ControllerConfig(observation_timeout=0.5), clock=clock)
    ctl.set_instruction("open the drawer")
    ctl.set_observation({"proprio": np.zeros(2)})
    ctl.tick()
    ctl.wait_idle()
    assert ctl.tick() is not None
    clock.t = 1.0  # no observation for a second
    assert ctl.tick() is None and ctl.buffer.depth(ctl.tick_index) == 0
    ctl.set_observation({"proprio": np.zeros(2)})
    ctl.tick()
    ctl.wait_idle()
    assert ctl.buffer.depth(ctl.tick_index) > 0
    ctl.set_instruction("close the drawer")
    assert ctl.buffer.depth(ctl.tick_index) == 0


def test_bad_config():
    with pytest.raises(ValueError, match="control_rate must be positive"):
        ControllerConfig(control_rate=0)
