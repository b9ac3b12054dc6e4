"""The executor's logic without ROS: ticks from time, requests, latency compensation, refusals, holds."""

import numpy as np
import pytest

from vla_core.runtime.scheduler import SchedulerConfig
from vla_inference.executor import Executor, ExecutorConfig

NAMES = ["dx", "dy", "dz", "gripper"]
P = 0.1  # control period (10 Hz): round numbers


def executor(mode="blend", execute_steps=4, **kw):
    cfg = ExecutorConfig(control_rate=1 / P, action_names=NAMES, **kw)
    return Executor(cfg, SchedulerConfig(mode=mode, execute_steps=execute_steps, min_buffer=0, blend_steps=0))


def chunk(first, h=8):
    return np.array([[first + i, 0, 0, -1] for i in range(h)], float).reshape(-1)


def test_holds_until_state_instruction_and_a_chunk():
    ex = executor()
    assert ex.step(0.0) == (None, None)  # no state yet
    ex.on_state(0.05)
    action, request = ex.step(0.1)
    assert action is None and request is None  # no instruction
    ex.on_instruction("open the drawer")
    action, request = ex.step(0.2)
    assert action is None and request.id == 1 and request.tick == 2
    assert ex.scheduler.holds == 3


def test_a_chunk_is_compensated_for_latency_from_its_stamp():
    ex = executor()
    ex.on_state(0.0)
    ex.on_instruction("go")
    _, req = ex.step(0.0)                     # tick 0 asks
    ex.on_state(0.1)
    assert ex.step(0.1) == (None, None)       # tick 1: still computing
    # Computed from an observation 0.1 s before the request (t0 = tick -1), arriving before tick 2.
    assert ex.on_chunk(req.id, NAMES, P, 8, chunk(100.0), "go", obs_time=-0.1) is None
    ex.on_state(0.2)
    action, _ = ex.step(0.2)
    assert action[0] == 103.0                 # ticks -1, 0, 1 went stale; tick 2 runs step 3
    assert ex.scheduler.stale_skipped == 3 and ex.delays[-1] == 2


def test_late_ticks_are_skipped_and_counted():
    ex = executor()
    ex.on_state(0.0)
    ex.on_instruction("go")
    _, req = ex.step(0.0)
    ex.on_chunk(req.id, NAMES, P, 8, chunk(0.0), "go", obs_time=0.0)
    ex.on_state(0.1)
    assert ex.step(0.1)[0][0] == 1.0
    ex.on_state(0.4)
    assert ex.step(0.4)[0][0] == 4.0 and ex.missed_ticks == 2   # ticks 2 and 3 never ran
    assert ex.step(0.41)[0][0] == 5.0                            # a tick never repeats


@pytest.mark.parametrize("names, step, values, words", [
    (["a", "b", "c", "d"], P, chunk(0.0), "the policy produces actions ['a', 'b', 'c', 'd'] but this robot takes"),
    (NAMES, 0.0125, chunk(0.0), "chunks step every 12.50 ms (80 Hz) but control_rate is 10 Hz"),
    (NAMES, P, chunk(0.0)[:-1], "a chunk of 31 values for horizon 8 x 4 actions"),
    (NAMES, P, np.where(np.arange(32) == 5, np.nan, chunk(0.0)), "non-finite"),
])
def test_chunks_for_another_robot_or_rate_are_refused_and_the_robot_holds(names, step, values, words):
    ex = executor()
    ex.on_state(0.0)
    ex.on_instruction("go")
    _, req = ex.step(0.0)
    assert words in ex.on_chunk(req.id, names, step, 8, values, "go", obs_time=0.0)
    ex.on_state(0.1)
    action, again = ex.step(0.1)
    assert action is None and ex.refused == 1
    assert again is not None and again.id == 2  # asked again: a policy with the right actions might answer


def test_superseded_and_foreign_answers_are_ignored():
    ex = executor(request_timeout=0.25)
    ex.on_state(0.0)
    ex.on_instruction("go")
    _, first = ex.step(0.0)
    for t in (0.1, 0.2):
        ex.on_state(t)
        assert ex.step(t)[1] is None
    ex.on_state(0.3)
    _, second = ex.step(0.3)                   # the first went unanswered for 0.3 s > 0.25: asked again
    assert second.id == first.id + 1
    assert ex.on_chunk(first.id, NAMES, P, 8, chunk(0.0), "go", 0.0) is None and ex.scheduler.chunks == 0
    assert ex.on_chunk(second.id, NAMES, P, 8, chunk(0.0), "close", 0.3) is None and ex.scheduler.chunks == 0
    assert ex.on_chunk(second.id, NAMES, P, 8, chunk(0.0), "go", 0.3) is None and ex.scheduler.chunks == 1


def test_new_instruction_and_stale_state_drop_the_plan():
    ex = executor()
    ex.on_state(0.0)
    ex.on_instruction("go")
    _, req = ex.step(0.0)
    ex.on_chunk(req.id, NAMES, P, 8, chunk(0.0), "go", 0.0)
    ex.on_state(0.1)
    assert ex.step(0.1)[0] is not None
    assert ex.on_instruction("stop") and not ex.on_instruction("stop")
    assert ex.scheduler.depth(0) == 0
    _, req = ex.step(0.2)
    ex.on_chunk(req.id, NAMES, P, 8, chunk(0.0), "stop", 0.2)
    assert ex.step(0.75) == (None, None)       # state 0.65 s old > observation_timeout 0.5
    assert ex.scheduler.depth(0) == 0


def test_real_time_chunking_freezes_the_measured_delay():
    ex = executor(mode="rtc", execute_steps=2, delay_margin=1)
    ex.on_state(0.0)
    ex.on_instruction("go")
    _, req = ex.step(0.0)
    assert req.frozen == 1 and req.prefix.size == 0     # no delay measured yet: the margin alone
    ex.on_state(0.1)
    ex.step(0.1)
    ex.on_chunk(req.id, NAMES, P, 8, chunk(0.0), "go", 0.0)   # arrived after tick 1: delay 2 ticks
    ex.on_state(0.2)
    _, req = ex.step(0.2)
    assert req.frozen == 3 and req.prefix[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
