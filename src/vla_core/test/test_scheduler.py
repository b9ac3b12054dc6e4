"""The one chunk scheduler: exact actions per tick in every mode, requests, latency compensation, guidance."""

import math

import numpy as np
import pytest

from vla_core.errors import ConfigError
from vla_core.runtime.scheduler import ChunkScheduler, SchedulerConfig, guidance_for, parse_mode, rtc_weights


def counting(h=4):
    """Chunk c holds 100 * c + step, so an executed action reveals its chunk and step."""
    calls = []

    def predict():
        c = len(calls)
        calls.append(c)
        return np.array([[100.0 * c + i] for i in range(h)])
    return predict, calls


def run(scheduler, predict, ticks, delay=0):
    """Drive the scheduler like vla eval: request, deliver after ``delay`` ticks, pop. None = hold."""
    out, in_flight = [], None
    for t in range(ticks):
        if in_flight is not None and t >= in_flight[0]:
            scheduler.insert(in_flight[1], in_flight[2], t)
            in_flight = None
        if in_flight is None and scheduler.wants_chunk(t):
            scheduler.request(t, frozen=delay)
            in_flight = (t + delay, predict(), t)
            if delay == 0:
                scheduler.insert(in_flight[1], t, t)
                in_flight = None
        a = scheduler.pop(t)
        out.append(None if a is None else float(a[0]))
    return out


def test_sync_executes_k_actions_per_chunk():
    predict, calls = counting()
    s = ChunkScheduler(SchedulerConfig(mode="sync", execute_steps=2))
    assert run(s, predict, 5) == [0, 1, 100, 101, 200] and len(calls) == 3
    s.reset()
    assert run(s, predict, 1) == [300]


def test_sync_full_chunk_and_alias():
    predict, _ = counting()
    s = ChunkScheduler(parse_mode("full", n_action_steps=2, horizon=4))
    assert run(s, predict, 5) == [0, 1, 2, 3, 100]


def test_sync_holds_while_inference_runs_and_starts_the_chunk_on_arrival():
    predict, _ = counting()
    s = ChunkScheduler(SchedulerConfig(mode="sync", execute_steps=2))
    # delay 2: hold 2 ticks, run 2 actions from the chunk's start (nothing is stale: the robot waited).
    assert run(s, predict, 8, delay=2) == [None, None, 0, 1, None, None, 100, 101]
    assert s.holds == 4 and s.stale_skipped == 0


def test_async_blend_keeps_executing_during_inference_and_skips_stale_actions():
    predict, _ = counting(h=8)
    s = ChunkScheduler(SchedulerConfig(mode="blend", execute_steps=4, min_buffer=0, blend_steps=0))
    out = run(s, predict, 12, delay=2)
    # chunk 0 requested at 0, arrives at 2 (steps 0-1 stale); chunk 1 requested at 4 (for ticks 4..11), arrives at 6.
    assert out == [None, None, 2, 3, 4, 5, 102, 103, 104, 105, 202, 203]
    assert s.stale_skipped == 6 and s.holds == 2


def test_blend_crossfades_old_into_new():
    s = ChunkScheduler(SchedulerConfig(mode="blend", blend_steps=3))
    s.insert(np.zeros((8, 1)), t0=0, now=0)
    s.insert(np.ones((8, 1)), t0=4, now=4)
    got = [s.pop(t)[0] for t in range(4, 12)]
    assert got == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert s.pop(12) is None


def test_new_plan_drops_old_ticks_beyond_it():
    s = ChunkScheduler(SchedulerConfig(mode="blend", blend_steps=0))
    s.insert(np.zeros((8, 1)), t0=0, now=0)
    s.insert(np.ones((2, 1)), t0=1, now=1)
    assert s.depth(1) == 2 and s.pop(2)[0] == 1.0 and s.pop(3) is None


def test_latency_compensation_skips_exactly_the_stale_actions():
    s = ChunkScheduler(SchedulerConfig(mode="blend", blend_steps=0))
    assert s.insert(np.arange(8.0)[:, None], t0=10, now=13) == 3
    assert s.depth(13) == 5 and s.pop(13)[0] == 3.0
    assert s.insert(np.arange(4.0)[:, None], t0=0, now=20) == 4 and s.depth(20) == 0  # arrived entirely stale


@pytest.mark.parametrize("m", [0.0, 0.5, -0.5])
def test_temporal_ensemble_weights_oldest_first(m):
    s = ChunkScheduler(SchedulerConfig(mode="ensemble", execute_steps=1, ensemble_m=m))
    s.insert(np.zeros((4, 1)), 0, 0)
    s.insert(np.ones((4, 1)), 1, 1)
    s.insert(np.full((4, 1), 2.0), 2, 2)
    w = np.exp(-m * np.arange(3))  # predictions for tick 2: chunk 0 (oldest), 1, 2
    assert s.pop(2)[0] == pytest.approx((w * [0.0, 1.0, 2.0]).sum() / w.sum())
    assert s.pop(3)[0] == pytest.approx((w * [0.0, 1.0, 2.0]).sum() / w.sum())
    assert s.pop(4)[0] == pytest.approx((w[:2] * [1.0, 2.0]).sum() / w[:2].sum())  # chunk 0 covered ticks 0-3 only


def test_ensemble_with_a_large_negative_m_follows_the_newest_prediction_without_overflow():
    s = ChunkScheduler(SchedulerConfig(mode="ensemble", execute_steps=1, ensemble_m=-50.0))
    for t in range(40):  # exp(50 * 39) overflows a float; the weights are kept in logs
        s.insert(np.full((40, 1), float(t)), t, t)
    assert s.pop(39)[0] == pytest.approx(39.0)


def test_ensemble_requests_every_tick():
    predict, calls = counting(h=4)
    s = ChunkScheduler(parse_mode("ensemble", n_action_steps=2, horizon=4))
    out = run(s, predict, 3)
    w = np.exp(-0.01 * np.arange(3))
    assert len(calls) == 3
    assert out == pytest.approx([0.0, (1 + 100 * w[1]) / w[:2].sum(), (2 + 101 * w[1] + 200 * w[2]) / w.sum()])


def test_requests_wait_for_the_pending_chunk_and_follow_execute_steps():
    s = ChunkScheduler(SchedulerConfig(mode="blend", execute_steps=3, min_buffer=2))
    assert s.wants_chunk(0)
    s.request(0)
    assert not s.wants_chunk(1)  # one request in flight at a time
    s.insert(np.zeros((8, 1)), 0, 1)
    assert not s.wants_chunk(2) and s.wants_chunk(3)
    s.request(3)
    s.cancel()
    assert s.pending is None
    assert not s.wants_chunk(5) and s.wants_chunk(6)  # cancel frees the slot; the interval counts from the request
    s2 = ChunkScheduler(SchedulerConfig(mode="blend", execute_steps=100, min_buffer=2))
    s2.request(0)
    s2.insert(np.zeros((4, 1)), 0, 0)
    assert not s2.wants_chunk(1) and s2.wants_chunk(3)  # only 1 planned action left < min_buffer 2
    s3 = ChunkScheduler(SchedulerConfig(mode="blend", execute_steps=100, min_buffer=0))
    s3.request(0)
    s3.insert(np.zeros((2, 1)), 0, 0)
    assert not s3.wants_chunk(1) and s3.wants_chunk(2)  # an empty plan always asks, whatever min_buffer


def test_rtc_request_carries_the_plan_and_the_new_chunk_replaces_it():
    s = ChunkScheduler(SchedulerConfig(mode="rtc", execute_steps=4))
    s.request(0)
    assert s.pending.prefix.shape == (0,)
    s.insert(np.arange(8.0)[:, None], 0, 0)
    for t in range(4):
        s.pop(t)
    req = s.request(4, frozen=2)
    np.testing.assert_array_equal(req.prefix[:, 0], [4, 5, 6, 7])
    assert req.frozen == 2 and req.tick == 4
    s.insert(np.full((8, 1), 50.0), 4, 6)
    assert [s.pop(t)[0] for t in (6, 7)] == [50.0, 50.0]  # no blending: the chunk was conditioned on the plan
    assert ChunkScheduler(SchedulerConfig(mode="blend")).request(0).prefix.size == 0  # other modes send no prefix


def test_rtc_weights_freeze_then_decay_then_zero():
    w = rtc_weights(overlap=6, frozen=2, horizon=8)
    assert w[:2].tolist() == [1.0, 1.0] and w[6:].tolist() == [0.0, 0.0]
    c = np.array([4, 3, 2, 1]) / 5
    np.testing.assert_allclose(w[2:6], c * (np.exp(c) - 1) / (math.e - 1), rtol=1e-6)
    assert np.all(np.diff(w[2:6]) < 0)


def test_guidance_aligns_the_plan_with_the_chunk():
    prefix = np.array([[10.0], [11.0], [12.0], [13.0]])
    targets, weights = guidance_for(prefix, frozen=1, offset=2, horizon=8)  # observation 2 ticks older than the request
    assert targets[:, 0].tolist() == [0, 0, 10, 11, 12, 13, 0, 0]
    assert weights[:2].tolist() == [0, 0] and weights[2] == 1.0 and 0 < weights[3] < 1 and weights[6:].tolist() == [0, 0]
    targets, weights = guidance_for(prefix, frozen=2, offset=-1, horizon=8)  # observation newer than the request
    assert targets[:3, 0].tolist() == [11, 12, 13] and weights[0] == 1.0 and 0 < weights[1] < 1
    assert guidance_for(np.zeros((0, 1)), 0, 0, 8) is None
    assert guidance_for(prefix, 0, 9, 8) is None


def test_batched_actions():
    s = ChunkScheduler(SchedulerConfig(mode="sync", execute_steps=2))
    s.request(0)
    s.insert(np.arange(12.0).reshape(3, 2, 2), 0, 0)  # (H, B, A)
    np.testing.assert_array_equal(s.pop(0), [[0, 1], [2, 3]])


def test_modes_and_bad_configs():
    assert parse_mode("receding", 8, 16).execute_steps == 8 and parse_mode("receding:3", 8, 16).mode == "sync"
    assert parse_mode("rtc:5", 8, 16).execute_steps == 5 and parse_mode("blend", 8, 16).min_buffer == 4
    with pytest.raises(ConfigError, match="unknown execution mode 'sometimes'"):
        parse_mode("sometimes", 8, 16)
    with pytest.raises(ConfigError, match=r"K must be in \[1, 16\]"):
        parse_mode("blend:17", 8, 16)
    with pytest.raises(ConfigError, match="K must be an integer"):
        parse_mode("blend:x", 8, 16)
    assert parse_mode("ensemble:2:0.2", 8, 16).ensemble_m == 0.2 and parse_mode("ensemble:2:0.2", 8, 16).execute_steps == 2
    assert parse_mode("ensemble", 8, 16).ensemble_m == SchedulerConfig().ensemble_m
    assert parse_mode("ensemble:1:-0.5", 8, 16).ensemble_m == -0.5
    for bad in ("sync:4:0.2", "ensemble:1:inf", "ensemble:1:nan"):
        with pytest.raises(ConfigError, match="only ensemble takes a third field"):
            parse_mode(bad, 8, 16)
    with pytest.raises(ConfigError, match="M must be a number"):
        parse_mode("ensemble:1:x", 8, 16)
    with pytest.raises(ValueError, match="mode must be one of"):
        SchedulerConfig(mode="fast")
    with pytest.raises(ValueError, match="execute_steps must be >= 1"):
        SchedulerConfig(execute_steps=0)


# Boundaries and bookkeeping, pinned exactly (found by mutation testing: scripts/mutation_test.py).

def test_config_refuses_each_negative_count():
    with pytest.raises(ValueError, match="min_buffer and blend_steps must be >= 0"):
        SchedulerConfig(blend_steps=-1)
    with pytest.raises(ValueError, match="min_buffer and blend_steps must be >= 0"):
        SchedulerConfig(min_buffer=-1)
    assert parse_mode("ensemble", 8, 16).min_buffer == 1 and parse_mode("sync:2", 8, 16).min_buffer == 2


def test_min_buffer_is_a_strict_threshold():
    s = ChunkScheduler(SchedulerConfig(mode="blend", execute_steps=100, min_buffer=2))
    s.request(0)
    s.insert(np.zeros((4, 1)), 0, 0)
    assert not s.wants_chunk(2)  # exactly min_buffer planned (ticks 2 and 3): enough
    assert s.wants_chunk(3)


def test_request_defaults_and_sync_stale_count():
    s = ChunkScheduler(SchedulerConfig(mode="rtc"))
    assert s.request(0).frozen == 0 and s.request(0, frozen=-3).frozen == 0
    sync = ChunkScheduler(SchedulerConfig(mode="sync", execute_steps=2))
    sync.request(0)
    assert sync.insert(np.zeros((4, 1)), t0=0, now=3) == 0  # synchronous: nothing is stale


def test_guidance_for_one_planned_step_and_no_overlap():
    targets, weights = guidance_for(np.array([[7.0]]), frozen=1, offset=0, horizon=4)
    assert targets[:, 0].tolist() == [7, 0, 0, 0] and weights.tolist() == [1, 0, 0, 0]
    assert guidance_for(np.ones((4, 1)), 0, -4, 8) is None  # the plan ends where the chunk begins
