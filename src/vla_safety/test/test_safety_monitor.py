"""The safety monitor's logic without ROS."""

import numpy as np
import pytest

from vla_safety.monitor import ESTOP, LIMITED, OK, SafetyLimits, SafetyMonitor


def limits(**kw):
    base = dict(command_names=["vx", "vy", "vz", "gripper"], command_lower=[-1, -1, -1, -1], command_upper=[1, 1, 1, 1],
                max_rate=[20, 20, 20, 0], hold_command=[0, 0, 0, 0], watchdog_timeout=0.2,
                workspace_state=["hand_x", "hand_y", "hand_z"], workspace_command=["vx", "vy", "vz"],
                workspace_lower=[-0.5, 0.4, 0.05], workspace_upper=[0.5, 0.9, 0.3], estop_margin=0.05, max_state_speed=2.0)
    return SafetyLimits(**(base | kw))


def test_passes_safe_commands_unchanged():
    m = SafetyMonitor(limits())
    out = m.filter([0.1, 0.0, -0.1, 1.0], now=0.0)
    np.testing.assert_array_equal(out, [0.1, 0.0, -0.1, 1.0])
    assert m.state == OK and m.counters["forwarded"] == 1 and m.counters["clipped"] == 0


def test_clips_out_of_range_and_limits_rate():
    events = []
    m = SafetyMonitor(limits(), on_event=events.append)
    np.testing.assert_array_equal(m.filter([5, -5, 0, 2], 0.0), [1, -1, 0, 1])
    assert m.state == LIMITED and m.counters["clipped"] == 1
    m2 = SafetyMonitor(limits())
    m2.filter([0, 0, 0, 0], 0.0)
    out = m2.filter([1, 0, 0, 0], 0.01)  # 20 units/s * 10 ms = 0.2 per tick
    assert out[0] == pytest.approx(0.2)
    for i in range(2, 6):
        m.filter([5, -5, 0, 2], i * 0.01)
    assert events.count("clipped to command bounds") == 1  # logged once, counted every time
    assert m.counters["clipped"] == 5


def test_rejects_nan_and_wrong_size():
    m = SafetyMonitor(limits())
    np.testing.assert_array_equal(m.filter([np.nan, 0, 0, 0], 0.0), [0, 0, 0, 0])
    np.testing.assert_array_equal(m.filter([np.inf, 0, 0, 0], 0.0), [0, 0, 0, 0])
    np.testing.assert_array_equal(m.filter([0.1, 0.2], 0.0), [0, 0, 0, 0])
    assert m.counters["rejected"] == 3 and m.counters["forwarded"] == 0


def test_workspace_bound_zeroes_outward_motion():
    m = SafetyMonitor(limits())
    m.observe_state(["hand_x", "hand_y", "hand_z"], [0.5, 0.6, 0.1], 0.0)  # at the +x bound
    out = m.filter([0.5, 0.1, 0.0, 0.0], 0.01)
    assert out[0] == 0.0 and out[1] == pytest.approx(0.1)
    assert m.filter([-0.3, 0.0, 0.0, 0.0], 0.02)[0] < 0  # moving back inside is allowed


def test_estop_latches_until_reset():
    m = SafetyMonitor(limits())
    m.trigger_estop("/emergency_stop")
    assert m.state == ESTOP
    for t in range(5):
        np.testing.assert_array_equal(m.filter([0.5, 0, 0, 0], t * 0.01), [0, 0, 0, 0])
    assert m.counters["estops"] == 1 and m.reasons[0] == "e-stop: /emergency_stop"
    assert m.reset() and m.state == OK
    assert m.filter([0.1, 0, 0, 0], 1.0)[0] == pytest.approx(0.1)


def test_state_violations_trigger_estop():
    m = SafetyMonitor(limits())
    m.observe_state(["hand_x", "hand_y", "hand_z"], [0.0, 0.6, 0.1], 0.0)
    m.observe_state(["hand_x", "hand_y", "hand_z"], [0.0, 0.6, 0.5], 0.01)  # beyond z bound + margin
    assert m.state == ESTOP and "joint limit exceeded: hand_z" in m.reasons[0]
    fast = SafetyMonitor(limits())
    fast.observe_state(["hand_x", "hand_y", "hand_z"], [0.0, 0.6, 0.1], 0.0)
    fast.observe_state(["hand_x", "hand_y", "hand_z"], [0.05, 0.6, 0.1], 0.01)  # 5 m/s
    assert fast.state == ESTOP and "velocity limit exceeded" in fast.reasons[0]
    fast.reset()  # after a reset the next state is a new baseline, not a jump from the old pose
    fast.observe_state(["hand_x", "hand_y", "hand_z"], [0.3, 0.6, 0.1], 0.02)
    assert fast.state == OK


def test_watchdog_holds_stale_commands_and_heartbeat_estops():
    m = SafetyMonitor(limits())
    m.filter([0.3, 0, 0, 0], 0.0)
    assert m.tick(0.1) is None
    np.testing.assert_array_equal(m.tick(0.3), [0, 0, 0, 0])
    m.tick(0.4)
    assert m.counters["watchdog_holds"] == 1  # one hold per stale period
    m.filter([0.3, 0, 0, 0], 0.5)
    assert m.tick(0.55) is None
    dead = SafetyMonitor(limits(heartbeat_timeout=0.5))
    dead.heartbeat(0.0)
    assert dead.tick(0.4) is None
    dead.tick(0.6)
    assert dead.state == ESTOP and "heartbeat missing" in dead.reasons[0]


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="max_rate has 2 values for 4 command dimensions"):
        limits(max_rate=[1, 1])
    with pytest.raises(ValueError, match="workspace_command 'wx' is not a command dimension"):
        limits(workspace_command=["wx", "vy", "vz"])


def test_survives_garbage_storm():
    m = SafetyMonitor(limits())
    rng = np.random.default_rng(0)
    for i in range(5000):
        cmd = rng.standard_normal(rng.integers(1, 6)) * 10.0 ** rng.integers(-3, 40)
        if rng.random() < 0.1:
            cmd[0] = np.nan
        out = m.filter(cmd, i * 0.001)
        assert np.isfinite(out).all() and np.all(np.abs(out) <= 1.0)
    assert m.counters["received"] == 5000
