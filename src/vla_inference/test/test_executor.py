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


def started(start=100.0, **kw):
    """An executor with a state at ``start`` and the instruction "go" (not 0 by default: times add, they must also subtract)."""
    ex = executor(**kw)
    ex.on_state(start)
    ex.on_instruction("go")
    return ex


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
    ex = started(0.0)
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
    ex = started(0.0)
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
    ex = started(0.0)
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
    ex = started(0.0)
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


def test_an_episode_start_drops_the_plan_and_chunks_from_the_old_scene():
    ex = started(0.0)
    _, req = ex.step(0.0)
    ex.on_chunk(req.id, NAMES, P, 8, chunk(0.0), "go", 0.0)
    t, req = 0.0, None
    while req is None:                     # execute until the next chunk is asked for
        t = round(t + P, 6)
        ex.on_state(t)
        action, req = ex.step(t)
        assert action is not None
    ex.on_episode_start(t + 0.05)          # the robot is reset before it arrives, same instruction
    assert ex.scheduler.depth(ex.tick + 1) == 0
    assert ex.on_chunk(req.id, NAMES, P, 8, chunk(50.0), "go", t) is None   # the old request: ignored
    t = round(t + P, 6)
    ex.on_state(t)
    action, req = ex.step(t)
    assert action is None and req is not None                                # holds, asks at once
    # Answered from an observation taken before the reset (the policy had no new image yet): refused...
    assert ex.on_chunk(req.id, NAMES, P, 8, chunk(70.0), "go", t - P + 0.05) is None
    assert ex.pre_episode_chunks == 1 and ex.scheduler.depth(ex.tick + 1) == 0
    t = round(t + P, 6)
    ex.on_state(t)
    action, req = ex.step(t)               # ...and asked again at the next tick
    assert action is None and req is not None
    assert ex.on_chunk(req.id, NAMES, P, 8, chunk(90.0), "go", t) is None
    t = round(t + P, 6)
    ex.on_state(t)
    assert ex.step(t)[0][0] == 91.0        # the new scene's chunk runs
    assert ex.diagnostics()["pre_episode_chunks"] == 1


def test_real_time_chunking_freezes_the_measured_delay():
    ex = started(0.0, mode="rtc", execute_steps=2, delay_margin=1)
    _, req = ex.step(0.0)
    assert req.frozen == 1 and req.prefix.size == 0     # no delay measured yet: the margin alone
    ex.on_state(0.1)
    ex.step(0.1)
    ex.on_chunk(req.id, NAMES, P, 8, chunk(0.0), "go", 0.0)   # arrived after tick 1: delay 2 ticks
    ex.on_state(0.2)
    _, req = ex.step(0.2)
    assert req.frozen == 3 and req.prefix[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


# Boundaries and bookkeeping, pinned exactly (found by mutation testing: scripts/mutation_test.py).

def test_config_validation():
    ExecutorConfig(control_rate=1.0, delay_margin=0, action_names=["a"])  # 1 Hz and no margin are allowed
    for kw, words in [({"control_rate": 0.0}, "control_rate must be positive"),
                      ({"observation_timeout": 0.0}, "must be positive"), ({"request_timeout": 0.0}, "must be positive"),
                      ({"delay_margin": -1}, "delay_margin >= 0"), ({"action_names": []}, "action_names must name")]:
        with pytest.raises(ValueError, match=words):
            ExecutorConfig(**({"action_names": ["a"]} | kw))


def test_ticks_delays_and_timeouts_with_a_clock_not_at_zero():
    ex = started(request_timeout=0.3125)
    _, first = ex.step(100.0)
    assert ex.missed_ticks == 0                           # the first tick misses nothing
    ex.on_state(100.3)
    assert ex.step(100.3) == (None, None)                 # tick 3: ticks 1 and 2 never ran
    assert ex.tick == 3 and ex.missed_ticks == 2
    ex.on_state(100.25 + 0.125)
    assert ex.step(100.25 + 0.125)[1] is not None         # pending since 100.0: 0.375 s > 0.3125: asked again
    req = ex._pending
    ex.on_chunk(req.id, NAMES, P, 8, chunk(0.0), "go", obs_time=ex._pending_time)
    assert ex.delays[-1] == 1                             # asked at tick 4, planned before tick 5
    d = ex.diagnostics()
    assert (d["chunks"], d["missed_ticks"], d["refused_chunks"], d["inference_delay_ticks"]) == (1, 2, 0, 1)
    assert d["plan_depth"] == 7 and d["stale_actions_skipped"] == 1


def test_a_request_is_given_up_after_the_timeout_not_at_it():
    ex = started(request_timeout=0.25)
    ex.step(100.0)
    ex.on_state(100.25)
    assert ex.step(100.25)[1] is None                     # exactly the timeout: still waiting


def test_state_exactly_at_the_timeout_is_fresh():
    ex = executor(observation_timeout=0.25)
    ex.on_state(1.0)
    assert ex.state_fresh(1.25) and not ex.state_fresh(1.25 + 2 ** -10)


def test_frozen_steps_follow_the_largest_of_the_last_ten_delays():
    ex = started(mode="rtc", execute_steps=1, delay_margin=1)
    assert ex.diagnostics()["inference_delay_ticks"] == 0   # none measured yet
    clock = [100.0]

    def answered_after(ticks):
        """Request now; the chunk arrives before the ``ticks``-th tick after the request. Returns the request."""
        _, req = ex.step(clock[0])
        asked_at = clock[0]
        for _ in range(ticks - 1):
            clock[0] += P
            ex.on_state(clock[0])
            ex.step(clock[0])
        ex.on_chunk(req.id, NAMES, P, 8, chunk(0.0), "go", obs_time=asked_at)
        clock[0] += P
        ex.on_state(clock[0])
        return req

    answered_after(5)
    answered_after(2)
    assert list(ex.delays) == [5, 2] and ex.diagnostics()["inference_delay_ticks"] == 5
    assert answered_after(1).frozen == 6                       # the largest recent delay + the margin
    for _ in range(9):
        answered_after(1)
    assert list(ex.delays) == [1] * 10
    assert answered_after(1).frozen == 2                       # the 5 and the 2 have left the window of ten
