"""The safety monitor's logic without ROS: exact outputs derived from the limits, for every rule."""

import numpy as np
import pytest

from vla_safety.monitor import ESTOP, LIMITED, OK, SafetyLimits, SafetyMonitor

HAND = ["hand_x", "hand_y", "hand_z"]


def limits(**kw):
    base = dict(command_names=["vx", "vy", "vz", "gripper"], command_lower=[-1, -1, -1, -1], command_upper=[1, 1, 1, 1],
                max_rate=[20, 20, 20, 0], hold_command=[0, 0, 0, 0], watchdog_timeout=0.2, max_command_age=0.1,
                state_timeout=0.5, ramp_in_time=0.0, workspace_state=HAND, workspace_command=["vx", "vy", "vz"],
                workspace_lower=[-0.5, 0.4, 0.05], workspace_upper=[0.5, 0.9, 0.3], estop_margin=0.05, max_state_speed=2.0,
                episode_start_grace=0.0)  # speed violations latch at once unless a test asks for a grace
    return SafetyLimits(**(base | kw))


def ready(events=None, t=0.0, **kw):
    """A monitor that has seen the robot in the middle of its workspace at time ``t``, its rate limit settled."""
    m = SafetyMonitor(limits(**kw), on_event=(events.append if events is not None else None))
    m.observe_state(HAND, [0.0, 0.6, 0.1], t)
    m.tick(t)
    return m


def test_passes_safe_commands_unchanged():
    m = ready(t=0.0)
    out = m.filter([0.1, 0.0, -0.1, 1.0], now=0.01, stamp=0.01)
    np.testing.assert_array_equal(out, [0.1, 0.0, -0.1, 1.0])
    assert m.state == OK and m.counters == dict(received=1, forwarded=1, clipped=0, rejected=0, watchdog_holds=0, estops=0)


def test_clips_to_bounds():
    events = []
    m = ready(events, max_rate=[0, 0, 0, 0])
    np.testing.assert_array_equal(m.filter([5, -5, 0, 2], 0.01, 0.01), [1, -1, 0, 1])
    assert m.state == LIMITED and m.counters["clipped"] == 1
    for i in range(2, 6):
        m.filter([5, -5, 0, 2], i * 0.01, i * 0.01)
    assert events == ["clipped to command bounds"]  # logged once, counted every time
    assert m.counters["clipped"] == 5
    m.filter([0.5, 0, 0, 0], 0.07, 0.07)
    assert m.state == OK and m.counters["clipped"] == 5  # a clean command ends the intervention


def test_rate_limit_starts_from_hold_at_start_up_and_after_release():
    m = ready(t=0.0)  # the watchdog has held the robot since t = 0
    out = m.filter([1, 0, 0, 1], 0.01, 0.01)  # 20 units/s * 10 ms = 0.2 from hold; the gripper is unlimited
    np.testing.assert_allclose(out, [0.2, 0, 0, 1])
    np.testing.assert_allclose(m.filter([1, 0, 0, 1], 0.02, 0.02), [0.4, 0, 0, 1])
    assert m.counters["clipped"] == 2 and "rate limited" in m.reasons
    np.testing.assert_allclose(m.filter([0.3, 0, 0, 1], 0.03, 0.03), [0.3, 0, 0, 1])  # within the rate: unchanged
    m.trigger_estop("test")
    m.tick(0.05)
    m.reset(now=0.06)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.06)
    np.testing.assert_allclose(m.filter([1, 0, 0, 0], 0.07, 0.07), [0.2, 0, 0, 0])  # from hold, not at full value
    fresh = SafetyMonitor(limits())
    fresh.observe_state(HAND, [0.0, 0.6, 0.1], 0.0)
    np.testing.assert_allclose(fresh.filter([1, 0, 0, 0], 0.0, 0.0), [0, 0, 0, 0])  # the very first command: from hold


def test_rate_limit_follows_command_stamps_not_arrival():
    m = ready(t=0.0)
    m.filter([0.0, 0, 0, 0], 0.10, stamp=0.10)
    # Stamped 50 ms apart (the controller's ticks) but delivered 1 ms apart: 20 units/s * 50 ms = 1.0 allowed.
    assert m.filter([0.8, 0, 0, 0], 0.101, stamp=0.15)[0] == pytest.approx(0.8)
    unstamped = ready(t=0.0, max_command_age=0.0)
    unstamped.filter([0.0, 0, 0, 0], 0.10)
    assert unstamped.filter([0.8, 0, 0, 0], 0.101)[0] == pytest.approx(0.02)  # no stamps checked: arrival times


def test_ramp_in_after_release():
    m = ready(ramp_in_time=1.0, max_rate=[0, 0, 0, 0])
    m.trigger_estop("test")
    m.reset(now=1.0)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 1.0)
    assert m.filter([0.8, 0, 0, 0], 1.25, 1.25)[0] == pytest.approx(0.2)  # a quarter of the way in
    assert m.filter([0.8, 0, 0, 0], 1.5, 1.5)[0] == pytest.approx(0.4)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 2.0)
    assert m.filter([0.8, 0, 0, 0], 2.0, 2.0)[0] == pytest.approx(0.8)  # fully in
    assert m.filter([0.8, 0, 0, 0], 2.01, 2.01)[0] == pytest.approx(0.8)
    assert m.counters["clipped"] == 0  # the ramp is scheduled, not an intervention


def test_rejects_non_finite_and_wrong_size():
    m = ready()
    np.testing.assert_array_equal(m.filter([np.nan, 0, 0, 0], 0.01, 0.01), [0, 0, 0, 0])
    np.testing.assert_array_equal(m.filter([np.inf, 0, 0, 0], 0.02, 0.02), [0, 0, 0, 0])
    np.testing.assert_array_equal(m.filter([0.1, 0.2], 0.03, 0.03), [0, 0, 0, 0])
    assert m.counters["rejected"] == 3 and m.counters["forwarded"] == 0


def test_command_stamps_old_future_and_out_of_order_are_rejected():
    events = []
    m = ready(events)
    assert m.filter([0.1, 0, 0, 0], 0.30, stamp=0.25)[0] == pytest.approx(0.1)  # 50 ms old: fine (limit 100 ms)
    np.testing.assert_array_equal(m.filter([0.1, 0, 0, 0], 0.50, stamp=0.35), [0, 0, 0, 0])  # 150 ms old
    np.testing.assert_array_equal(m.filter([0.1, 0, 0, 0], 0.51, stamp=0.70), [0, 0, 0, 0])  # from the future
    np.testing.assert_array_equal(m.filter([0.1, 0, 0, 0], 0.52, stamp=0.24), [0, 0, 0, 0])  # older than 0.25 ... and stale
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.525)
    assert m.filter([0.1, 0, 0, 0], 0.53, stamp=0.52)[0] == pytest.approx(0.1)
    np.testing.assert_array_equal(m.filter([0.1, 0, 0, 0], 0.54, stamp=0.50), [0, 0, 0, 0])  # before the previous one
    assert m.counters["rejected"] == 4
    assert [e for e in events if e.startswith("rejected")] == [
        "rejected: command older than max_command_age 0.1 s", "rejected: command stamped in the future (clocks disagree)",
        "rejected: command out of order (stamped before the previous one)"]
    unchecked = ready(max_command_age=0.0, t=4.99)
    assert unchecked.filter([0.1, 0, 0, 0], 5.0, stamp=0.0)[0] == pytest.approx(0.1)  # 0 = stamps not checked


def test_workspace_bound_zeroes_outward_motion():
    m = SafetyMonitor(limits(max_rate=[0, 0, 0, 0]))
    m.observe_state(HAND, [0.5, 0.6, 0.1], 0.0)  # at the +x bound
    out = m.filter([0.5, 0.1, 0.0, 0.0], 0.01, 0.01)
    assert out[0] == 0.0 and out[1] == pytest.approx(0.1) and m.reasons[0] == "workspace bound: hand_x"
    assert m.filter([-0.3, 0.0, 0.0, 0.0], 0.02, 0.02)[0] == pytest.approx(-0.3)  # moving back inside is allowed
    low = SafetyMonitor(limits(max_rate=[0, 0, 0, 0]))
    low.observe_state(HAND, [0.0, 0.4, 0.1], 0.0)  # at the -y bound
    np.testing.assert_allclose(low.filter([0.0, -0.5, 0.2, 0.0], 0.01, 0.01), [0, 0, 0.2, 0])
    assert low.filter([0.0, 0.5, 0.0, 0.0], 0.02, 0.02)[1] == pytest.approx(0.5)


def test_estop_latches_until_reset():
    m = ready()
    m.trigger_estop("/emergency_stop")
    m.trigger_estop("again")  # idempotent while latched
    assert m.state == ESTOP
    for t in range(5):
        np.testing.assert_array_equal(m.filter([0.5, 0, 0, 0], 0.01 * (t + 1), 0.01 * (t + 1)), [0, 0, 0, 0])
        np.testing.assert_array_equal(m.tick(0.01 * (t + 1)), [0, 0, 0, 0])
    assert m.counters["estops"] == 1 and m.reasons == ["e-stop: /emergency_stop"]
    assert m.reset(now=0.1) and m.state == OK and m.reasons == []
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.1)
    assert m.filter([0.1, 0, 0, 0], 0.11, 0.11)[0] == pytest.approx(0.1)


def test_state_violations_trigger_estop():
    m = ready()
    m.observe_state(HAND, [0.0, 0.6, 0.36], 0.01)  # beyond the z bound (0.3) + margin (0.05)
    assert m.state == ESTOP and m.reasons[0] == "e-stop: joint limit exceeded: hand_z"
    inside_margin = ready()
    inside_margin.observe_state(HAND, [0.0, 0.6, 0.34], 0.2)  # 1.2 m/s: below the speed limit too
    assert inside_margin.state == OK
    fast = ready()
    fast.observe_state(HAND, [0.05, 0.6, 0.1], 0.01)  # 5 m/s > 2 m/s
    assert fast.state == ESTOP and fast.reasons[0] == "e-stop: velocity limit exceeded: 5.00 > 2.00 (fastest hand_x at 5.00, over 0.010 s)"
    slow = ready()
    slow.observe_state(HAND, [0.015, 0.6, 0.1], 0.01)  # 1.5 m/s
    assert slow.state == OK
    late = ready()  # two measurements 10 ms apart, delivered 0.5 s apart: the stamps tell the speed
    late.observe_state(HAND, [0.0, 0.6, 0.1], 0.5, stamp=10.0)
    late.observe_state(HAND, [0.05, 0.6, 0.1], 1.0, stamp=10.01)
    assert late.state == ESTOP and late.reasons[0] == "e-stop: velocity limit exceeded: 5.00 > 2.00 (fastest hand_x at 5.00, over 0.010 s)"
    nan = ready()
    nan.observe_state(HAND, [0.0, np.nan, 0.1], 0.01)
    assert nan.state == ESTOP and nan.reasons[0] == "e-stop: non-finite joint state: hand_y"


def test_rebaseline_and_reset_take_a_repositioned_robot_as_the_new_state():
    m = ready()
    m.rebaseline()  # e.g. the simulator reset the scene
    m.observe_state(HAND, [0.3, 0.6, 0.1], 0.01)  # 30 m/s as a jump, but announced
    assert m.state == OK
    m.observe_state(HAND, [0.35, 0.6, 0.1], 0.02)  # the next jump is not
    assert m.state == ESTOP
    m.reset(now=0.03)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.04)
    assert m.state == OK


def test_a_jump_announced_late_holds_but_does_not_latch():
    # The announcement travels on its own topic: the state showing the jump may be processed first.
    m = ready(t=0.0, episode_start_grace=0.25)
    m.observe_state(HAND, [0.3, 0.6, 0.1], 0.0125, stamp=0.0125)     # 24 m/s: the teleported arm
    assert m.state == LIMITED and m.reasons == ["holding: state jump, waiting for the episode start that explains it"]
    assert m.filter([0.5, 0, 0, 0], 0.02, 0.02)[0] == 0.0             # held meanwhile
    m.rebaseline(stamp=0.0)                                           # the reset happened between the two states
    assert m.state == OK and m.counters["estops"] == 0
    np.testing.assert_allclose(m.filter([0.05, 0, 0, 0], 0.03, 0.03), [0.05, 0, 0, 0])
    m.observe_state(HAND, [0.3005, 0.6, 0.1], 0.025, stamp=0.025)    # the new pose is the baseline now
    m.tick(1.0)
    assert m.counters["estops"] == 0


def test_an_unexplained_jump_latches_after_the_grace_period():
    m = ready(t=0.0, episode_start_grace=0.25)
    m.observe_state(HAND, [0.3, 0.6, 0.1], 0.0125, stamp=0.0125)
    m.rebaseline(stamp=0.0125)                       # a move announced at the jump's own time: not between the states
    assert m.state == LIMITED
    m.tick(0.0125 + 0.25)                            # exactly the grace: still waiting
    assert m.state == LIMITED and m.filter([0.5, 0, 0, 0], 0.2625, 0.2625)[0] == 0.0
    m.tick(0.0125 + 0.25 + 2 ** -7)
    assert m.state == ESTOP and m.reasons[0] == "e-stop: velocity limit exceeded: 24.00 > 2.00 (fastest hand_x at 24.00, over 0.013 s)"
    assert m.counters["estops"] == 1
    m.rebaseline()                                   # too late: an announcement never releases a latched e-stop
    assert m.state == ESTOP
    by_command = ready(t=0.0, episode_start_grace=0.25)   # without a tick, the next command settles it
    by_command.observe_state(HAND, [0.3, 0.6, 0.1], 0.0125, stamp=0.0125)
    assert by_command.filter([0.5, 0, 0, 0], 0.5, 0.5)[0] == 0.0 and by_command.state == ESTOP
    by_state = ready(t=0.0, episode_start_grace=0.25)     # ... or the next state
    by_state.observe_state(HAND, [0.3, 0.6, 0.1], 0.0125, stamp=0.0125)
    by_state.observe_state(HAND, [0.3, 0.6, 0.1], 0.5, stamp=0.5)
    assert by_state.state == ESTOP
    going_on = ready(t=0.0, episode_start_grace=0.25)     # violations that keep coming do not postpone the latch
    going_on.observe_state(HAND, [0.3, 0.6, 0.1], 0.0125, stamp=0.0125)
    going_on.observe_state(HAND, [0.0, 0.6, 0.1], 0.25, stamp=0.25)      # 1.26 m/s: fine
    going_on.observe_state(HAND, [0.3, 0.6, 0.1], 0.2578125, stamp=0.2578125)  # another jump
    going_on.tick(0.0125 + 0.25 + 2 ** -7)
    assert going_on.state == ESTOP
    no_grace = ready(t=0.0, episode_start_grace=0.0)
    no_grace.observe_state(HAND, [0.3, 0.6, 0.1], 0.0125, stamp=0.0125)
    assert no_grace.state == ESTOP


def test_states_measured_before_an_announced_move_are_the_old_pose():
    m = ready(t=0.25, episode_start_grace=0.25)
    m.rebaseline(stamp=0.5)                                       # heard first: the move at t = 0.5 (clock lags)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.51, stamp=0.5)      # the old pose, still in flight: no baseline
    m.observe_state(HAND, [0.3, 0.6, 0.1], 0.52, stamp=0.5125)   # the new pose: the baseline
    m.observe_state(HAND, [0.301, 0.6, 0.1], 0.53, stamp=0.525)  # 0.08 m/s
    m.tick(1.0)
    assert m.state == OK and m.counters["estops"] == 0
    m.observe_state(HAND, [0.4, 0.6, 0.1], 1.0, stamp=0.5375)    # a real jump after the move is caught
    m.tick(1.5)
    assert m.state == ESTOP
    ahead = ready(t=0.0, episode_start_grace=0.0)
    ahead.rebaseline(stamp=100.0)                 # far ahead of the monitor's clock (0): taken as 0 + state_timeout
    ahead.observe_state(HAND, [0.0, 0.6, 0.1], 0.5, stamp=0.5)        # up to then: the old pose
    ahead.observe_state(HAND, [0.0, 0.6, 0.1], 0.625, stamp=0.625)
    assert ahead.state == OK
    ahead.observe_state(HAND, [0.3, 0.6, 0.1], 0.6375, stamp=0.6375)
    assert ahead.state == ESTOP                  # the speed check was not switched off until t = 100


def test_a_move_announced_far_ahead_of_a_lagging_clock_still_explains_its_jump():
    # A starved monitor reads /episode/start (the reset at t = 2.0) while its clock still says 1.0: the
    # stamp is capped at 1.0 + state_timeout, so old-pose states measured up to the reset became the
    # baseline, and the first new-pose state is a jump - across the announced move, so it is that move.
    m = ready(t=1.0, episode_start_grace=0.25)
    m.rebaseline(stamp=2.0)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 1.9, stamp=1.9)       # the old pose, after the capped stamp (1.5)
    m.observe_state(HAND, [0.3, 0.6, 0.1], 2.0125, stamp=2.0125)  # the new pose: 2.7 m/s across t = 2.0
    m.tick(2.3)                                                    # past the grace
    assert m.state == OK and m.counters["estops"] == 0, m.reasons
    m.observe_state(HAND, [0.4, 0.6, 0.1], 2.3, stamp=2.025)      # a jump after the move is still caught
    m.tick(2.6)
    assert m.state == ESTOP


def test_missing_reordered_and_partial_joint_states():
    events = []
    m = SafetyMonitor(limits(max_rate=[0, 0, 0, 0]), on_event=events.append)
    m.observe_state(["elbow", "wrist"], [0.1, 0.2], 0.0)  # other names only: the workspace stays unknown
    np.testing.assert_array_equal(m.filter([0.3, 0, 0, 0], 0.01, 0.01), [0, 0, 0, 0])
    assert events[-1] == "holding: no joint_states for ['hand_x', 'hand_y', 'hand_z']"
    m.observe_state(["hand_z", "hand_x", "hand_y"], [0.1, 0.5, 0.6], 0.02)  # any order
    assert m.filter([0.3, 0, 0, 0], 0.03, 0.03)[0] == 0.0  # at +x: the workspace check sees x = 0.5
    m.observe_state(["hand_x"], [0.49], 0.04)  # partial messages keep each name fresh on its own
    assert m.filter([0.3, 0, 0, 0], 0.05, 0.05)[0] == pytest.approx(0.3)
    before = m.counters["rejected"]
    m.observe_state(HAND + ["hand_x"], [0.0, 0.6, 0.1, 0.4], 0.06)  # a duplicated name: ambiguous, rejected
    m.observe_state(HAND, [0.0, 0.6], 0.06)  # fewer positions than names: rejected
    assert m.counters["rejected"] == before + 2


def test_state_watchdog_holds_when_the_state_stops():
    m = ready()
    assert m.filter([0.1, 0, 0, 0], 0.01, 0.01)[0] == pytest.approx(0.1)
    np.testing.assert_array_equal(m.filter([0.1, 0, 0, 0], 0.55, 0.55), [0, 0, 0, 0])  # state 0.55 s old > 0.5
    np.testing.assert_array_equal(m.tick(0.56), [0, 0, 0, 0])
    assert m.reasons[0] == "holding: joint_states older than 0.5 s for ['hand_x', 'hand_y', 'hand_z']"
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.57)
    assert m.filter([0.1, 0, 0, 0], 0.58, 0.58)[0] == pytest.approx(0.1)  # fresh again: commands pass
    assert m.state == OK


def test_command_watchdog_and_heartbeat():
    m = ready()
    np.testing.assert_array_equal(m.tick(0.005), [0, 0, 0, 0])  # no command yet: hold, silently
    assert m.counters["watchdog_holds"] == 0 and m.state == OK
    m.filter([0.3, 0, 0, 0], 0.01, 0.01)
    assert m.tick(0.1) is None
    np.testing.assert_array_equal(m.tick(0.25), [0, 0, 0, 0])
    m.tick(0.3)
    assert m.counters["watchdog_holds"] == 1 and m.reasons[0] == "watchdog: commands stale"  # one hold per stale period
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.31)
    m.filter([0.3, 0, 0, 0], 0.32, 0.32)
    assert m.tick(0.35) is None
    dead = ready(heartbeat_timeout=0.5)
    np.testing.assert_array_equal(dead.filter([0.2, 0, 0, 0], 0.01, 0.01), [0, 0, 0, 0])  # no heartbeat yet: hold
    assert dead.state == LIMITED and dead.reasons[0] == "holding: waiting for the first heartbeat (dead-man switch)"
    dead.tick(2.0)
    assert dead.state != ESTOP  # never heard: holds, but there is nothing to latch on
    dead.heartbeat(2.0)
    dead.observe_state(HAND, [0.0, 0.6, 0.1], 2.0)
    assert dead.filter([0.2, 0, 0, 0], 2.01, 2.01)[0] > 0
    assert dead.tick(2.1) is None
    dead.tick(2.6)  # 0.6 s since the last heartbeat
    assert dead.state == ESTOP and dead.reasons[0] == "e-stop: heartbeat missing"


def test_clock_jumping_backwards_forgets_time_and_holds():
    events = []
    m = ready(events, t=10.0)
    assert m.filter([0.2, 0, 0, 0], 10.01, 10.01)[0] == pytest.approx(0.2)
    np.testing.assert_array_equal(m.filter([0.2, 0, 0, 0], 0.5, 0.5), [0, 0, 0, 0])  # simulation time restarted
    assert "clock jumped backwards: holding until fresh state and commands" in events
    np.testing.assert_array_equal(m.filter([0.2, 0, 0, 0], 0.51, 0.51), [0, 0, 0, 0])  # state unknown since the jump
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.52)
    m.tick(0.52)
    assert m.filter([0.2, 0, 0, 0], 0.53, 0.53)[0] == pytest.approx(0.2)


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="max_rate has 2 values for 4 command dimensions"):
        limits(max_rate=[1, 1])
    with pytest.raises(ValueError, match="workspace_command 'wx' is not a command dimension"):
        limits(workspace_command=["wx", "vy", "vz"])
    with pytest.raises(ValueError, match="hold_command must lie within"):
        limits(hold_command=[2, 0, 0, 0])
    with pytest.raises(ValueError, match="state_timeout must be positive when workspace_state"):
        limits(state_timeout=0.0)
    with pytest.raises(ValueError, match="command_lower must not exceed command_upper"):
        limits(command_lower=[1, -1, -1, -1], command_upper=[-1, 1, 1, 1])


def test_survives_garbage_storm():
    m = ready(max_command_age=0.0)
    rng = np.random.default_rng(0)
    last = np.zeros(4)
    for i in range(5000):
        now = 0.001 * (i + 1)
        if i % 50 == 0:
            m.observe_state(HAND, [0.0, 0.6, 0.1], now)
        cmd = rng.standard_normal(rng.integers(1, 6)) * 10.0 ** rng.integers(-3, 40)
        if rng.random() < 0.1:
            cmd[0] = np.nan
        out = m.filter(cmd, now)
        assert np.isfinite(out).all() and np.all(np.abs(out) <= 1.0)
        if np.any(out != 0):  # motion never changes faster than the rate limit (a stop may be immediate)
            assert np.all(np.abs(out[:3] - last[:3]) <= 20 * 0.001 + 1e-9)
        last = out
    assert m.counters["received"] == 5000


# ---------------------------------------------------------------------------------------------------
# Boundaries and bookkeeping, pinned exactly (found by mutation testing: scripts/mutation_test.py).
# Times and distances are powers of two, so every comparison below is exact in floating point.

def test_states_match_the_message():
    from vla_msgs.msg import SafetyStatus

    assert (OK, LIMITED, ESTOP) == (SafetyStatus.OK, SafetyStatus.LIMITED, SafetyStatus.ESTOP)


def test_limits_validation_boundaries():
    one = limits(command_names=["v"], command_lower=[0.0], command_upper=[0.0], max_rate=[0.0], hold_command=[0.0],
                 workspace_state=[], workspace_command=[], workspace_lower=[], workspace_upper=[])
    assert one.command_names == ["v"]  # one dimension is enough; lower == upper is allowed
    limits(hold_command=[-1, 0, 0, 1])  # the hold may sit on either bound
    with pytest.raises(ValueError, match="command_names must name at least one"):
        limits(command_names=[], command_lower=[], command_upper=[], max_rate=[], hold_command=[])
    with pytest.raises(ValueError, match="watchdog_timeout must be positive"):
        limits(watchdog_timeout=0.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        limits(ramp_in_time=-0.5)  # one negative among positive values


def test_interventions_are_reported_again_only_after_a_quiet_second():
    events = []
    m = ready(events, max_rate=[0, 0, 0, 0])
    m.filter([2, 0, 0, 0], 0.25, 0.25)                  # clipped: reported
    m.filter([0, 0, 0, 0], 0.5, 0.5)                   # clean: the intervention ends
    m.observe_state(HAND, [0.0, 0.6, 0.1], 1.0)
    m.filter([2, 0, 0, 0], 1.25, 1.25)                 # again after exactly 1.0 s: not reported again
    m.filter([2, 0, 0, 0], 1.25, 1.25)                 # at the same time: not reported again
    m.filter([0, 0, 0, 0], 1.5, 1.5)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 2.25)
    m.filter([2, 0, 0, 0], 2.5, 2.5)                   # 1.25 s after the last occurrence: reported
    assert events == ["clipped to command bounds"] * 2
    early = SafetyMonitor(limits(), on_event=events.append)
    events.clear()
    early.trigger_estop("before any clock")             # no time known yet: counts as t = 0
    early.reset(now=0.5)
    early.tick(1.25)
    early.trigger_estop("before any clock")             # 1.25 s later: reported again
    assert events == ["e-stop: before any clock"] * 2


def test_reasons_are_newest_first_distinct_and_at_most_ten():
    m = SafetyMonitor(limits())
    for i in range(12):
        m.tick(float(i))
        m._event(f"reason {i}")
    assert m.reasons == [f"reason {i}" for i in range(11, 1, -1)]
    m = ready(max_rate=[0, 0, 0, 0])
    m.filter([2, 0, 0, 0], 0.25, 0.25)                  # clipped
    m.observe_state(HAND, [0.5, 0.6, 0.1], 0.375)       # at the +x bound: the next is also a workspace stop
    m.filter([2, 0, 0, 0], 0.5, 0.5)
    assert m.reasons == ["workspace bound: hand_x", "clipped to command bounds"]  # still active: not moved up


def released(at: float):
    """A monitor that forwarded a command at 0.25, was e-stopped, and was released at ``at`` with fresh state."""
    m = ready()
    m.filter([0.1, 0, 0, 0], 0.25, 0.25)
    m.trigger_estop("test")
    m.reset(now=at)
    m.observe_state(HAND, [0.0, 0.6, 0.1], at)
    return m


def test_hold_episodes_are_counted_after_a_reset_and_a_clock_jump():
    m = released(at=0.375)
    m.filter([0.1, 0, 0, 0], 0.5, 0.5)
    m.tick(0.75)                                         # stale since 0.5: the first hold after the release counts
    assert m.counters["watchdog_holds"] == 1
    before = dict(m.counters)
    np.testing.assert_array_equal(m.filter([0.1, 0, 0, 0], 0.25, 0.25), [0, 0, 0, 0])  # the clock ran backwards
    assert m.counters["watchdog_holds"] == before["watchdog_holds"] and m.reasons[0].startswith("clock jumped")
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.3125)
    m.filter([0.1, 0, 0, 0], 0.3125, 0.3125)
    m.tick(0.625)
    assert m.counters["watchdog_holds"] == before["watchdog_holds"] + 1


def test_partial_and_same_time_states():
    m = SafetyMonitor(limits())
    m.observe_state(["hand_x"], [0.0], 0.0)              # part of the workspace, never seen whole: no check, no error
    assert m.state == OK
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.25, stamp=0.5)
    m.observe_state(HAND, [0.25, 0.6, 0.1], 0.26, stamp=0.5)  # same measurement time, another pose: no speed from it
    assert m.state == OK
    small = ready()                                      # a simulator's time starts near 0: 0.5 s is a real stamp
    small.observe_state(HAND, [0.0, 0.6, 0.1], 5.0, stamp=0.5)
    small.observe_state(HAND, [0.125, 0.6, 0.1], 10.0, stamp=0.5 + 2 ** -5)  # 4 m/s by the stamps, 0.025 m/s by arrival
    assert small.state == ESTOP
    zero = ready()
    zero.observe_state(HAND, [0.0, 0.6, 0.1], 5.0, stamp=0.0)       # an unstamped message: arrival times
    zero.observe_state(HAND, [0.0625, 0.6, 0.1], 10.0, stamp=0.0)
    assert zero.state == OK


def test_speed_and_margin_boundaries():
    exact = ready()                                       # limit 2 m/s; 2 ** -6 m in 2 ** -7 s is exactly 2 m/s
    exact.observe_state(HAND, [2 ** -6, 0.6, 0.1], 2 ** -7)
    assert exact.state == OK
    off = ready(max_state_speed=0.0)                     # 0 = unchecked
    off.observe_state(HAND, [0.25, 0.6, 0.1], 0.125)
    assert off.state == OK
    slow_limit = ready(max_state_speed=0.5)
    slow_limit.observe_state(HAND, [0.125, 0.6, 0.1], 0.125)  # 1 m/s > 0.5 m/s
    assert slow_limit.state == ESTOP
    edge = SafetyMonitor(limits(estop_margin=0.0625, workspace_lower=[-0.5, 0.375, 0.0625], workspace_upper=[0.5, 0.875, 0.375],
                                max_state_speed=0.0))
    edge.observe_state(HAND, [-0.5625, 0.375, 0.0625], 0.0)       # exactly on the lower e-stop boundary
    edge.observe_state(HAND, [0.5625, 0.9375, 0.4375], 0.5)       # exactly on the upper one
    assert edge.state == OK


def test_stamp_boundaries_and_duplicates():
    m = ready()                                           # max_command_age 0.1
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.5)
    assert m.filter([0.1, 0, 0, 0], 0.5, stamp=0.5 - 0.125)[0] == 0.0   # older than 0.1: rejected
    m = ready(max_command_age=0.125)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 0.5)
    assert m.filter([0.1, 0, 0, 0], 0.5, stamp=0.375)[0] == pytest.approx(0.1)   # exactly the age limit: accepted
    assert m.filter([0.1, 0, 0, 0], 0.5, stamp=0.625)[0] == pytest.approx(0.1)   # exactly ahead by it: accepted
    assert m.filter([0.1, 0, 0, 0], 0.5, stamp=0.625)[0] == pytest.approx(0.1)   # the same stamp again: accepted
    assert m.counters["rejected"] == 0


def test_hold_counts_while_the_state_is_stale():
    m = ready()
    for t in (0.75, 0.875, 1.0):                          # state from t = 0, timeout 0.5
        m.filter([0.1, 0, 0, 0], t, t)
    assert m.counters["watchdog_holds"] == 3 and m.counters["forwarded"] == 0


def test_stamps_time_the_rate_limit_only_when_they_are_checked():
    m = ready(t=0.0, max_command_age=0.0)
    m.filter([0.0, 0, 0, 0], 0.125, stamp=0.125)
    # Stamps 0.5 s apart but not checked: the rate limit uses arrival, 1/128 s -> 20 / 128 = 0.15625.
    assert m.filter([0.8, 0, 0, 0], 0.125 + 2 ** -7, stamp=0.625)[0] == pytest.approx(0.15625)
    slow = ready(t=0.0, max_rate=[0.5, 0.5, 0.5, 0])    # 0.5 units/s is a limit too (not "unlimited")
    assert slow.filter([1.0, 0, 0, 0], 0.25, 0.25)[0] == pytest.approx(0.125)


def test_workspace_stop_is_counted_and_exact_zero_is_not_a_stop():
    m = SafetyMonitor(limits(max_rate=[0, 0, 0, 0]))
    m.observe_state(HAND, [0.0, 0.4, 0.3], 0.0)          # at the -y and +z bounds
    np.testing.assert_array_equal(m.filter([0.5, 0.0, 0.0, 0.0], 0.125, 0.125), [0.5, 0, 0, 0])
    assert m.counters["clipped"] == 0                      # nothing pushed out: no intervention
    m.filter([0.5, 0.0, 0.25, 0.0], 0.25, 0.25)
    assert m.counters["clipped"] == 1 and m.reasons == ["workspace bound: hand_z"]
    m.rebaseline()                                        # between a reset and the next state: no workspace position
    assert m.filter([0.5, 0.0, 0.0, 0.0], 0.375, 0.375)[0] == pytest.approx(0.5)


def test_ramp_in_with_a_non_zero_hold_and_past_its_end():
    hold = [0.125, 0, 0, 0.5]
    m = ready(ramp_in_time=0.5, max_rate=[0, 0, 0, 0], hold_command=hold)
    m.trigger_estop("test")
    m.reset(now=1.0)
    m.observe_state(HAND, [0.0, 0.6, 0.1], 1.0)
    out = m.filter([0.625, 0, 0, 1.0], 1.25, 1.25)        # half-way in: hold + 0.5 * (command - hold)
    np.testing.assert_allclose(out, [0.375, 0, 0, 0.75])
    m2 = ready(ramp_in_time=0.5, max_rate=[0, 0, 0, 0])
    m2.trigger_estop("test")
    m2.reset(now=1.0)
    m2.observe_state(HAND, [0.0, 0.6, 0.1], 1.75)
    assert m2.filter([0.5, 0, 0, 0], 1.75, 1.75)[0] == pytest.approx(0.5)   # past the ramp: the command itself


def test_output_time_is_the_command_stamp_or_the_send_time():
    m = ready()
    m.filter([0.1, 0, 0, 0], 0.25, stamp=0.1875)
    assert m.output_time == 0.1875
    m.tick(0.5)                                           # a watchdog hold is for when it is sent
    assert m.output_time == 0.5


def test_watchdog_and_heartbeat_boundaries():
    m = ready()                                           # watchdog 0.2 s: use 0.25 for exactness
    m = ready(watchdog_timeout=0.25)
    m.filter([0.1, 0, 0, 0], 0.25, 0.25)
    assert m.tick(0.5) is None                            # exactly the timeout: not stale yet
    assert m.tick(0.5 + 2 ** -10) is not None
    beat = ready(heartbeat_timeout=0.25)
    beat.heartbeat(0.25)
    beat.tick(0.5)                                        # exactly the timeout: no e-stop
    assert beat.state != ESTOP
    disabled = ready(heartbeat_timeout=0.0)
    disabled.heartbeat(0.0)
    disabled.tick(10.0)                                   # 0 = no dead-man switch, even if heartbeats came once
    assert disabled.state != ESTOP


def test_an_active_reason_that_recurs_keeps_its_place():
    m = ready(max_rate=[0, 0, 0, 0])
    m.filter([2, 0, 0, 0], 0.25, 0.25)                    # A: clipped
    m.observe_state(HAND, [0.5, 0.6, 0.1], 0.3125)        # at the +x bound
    m.filter([0.5, 0, 0, 0], 0.375, 0.375)                # B: workspace stop (A still active: no clean command)
    m.observe_state(HAND, [0.25, 0.6, 0.1], 0.4375)
    m.filter([2, 0, 0, 0], 0.5, 0.5)                      # A again while active: not moved to the front
    assert m.reasons == ["workspace bound: hand_x", "clipped to command bounds"]


def test_a_zero_stamp_means_unstamped_and_arrival_times_are_used():
    m = ready()                                            # state at arrival 0, speed limit 2 m/s
    m.observe_state(HAND, [0.0625, 0.6, 0.1], 2 ** -7, stamp=0.0)   # 8 m/s by arrival
    assert m.state == ESTOP


def test_a_stale_period_after_a_release_is_counted_without_a_new_command():
    m = released(at=0.5)
    m.tick(0.75)                                           # no command since 0.25: stale, counted once
    m.tick(0.875)
    assert m.counters["watchdog_holds"] == 1


def test_holding_before_the_robots_first_state_is_start_up_not_an_intervention():
    events = []
    m = SafetyMonitor(limits(), on_event=events.append)
    np.testing.assert_array_equal(m.filter([0.3, 0, 0, 0], 0.01, 0.01), [0, 0, 0, 0])  # held all the same
    m.tick(0.02)
    assert m.counters["watchdog_holds"] == 0 and events[-1].startswith("holding: no joint_states")
    m.observe_state(["elbow"], [0.1], 0.03)  # the robot speaks, but not the monitored names: a fault, counted
    np.testing.assert_array_equal(m.filter([0.3, 0, 0, 0], 0.04, 0.04), [0, 0, 0, 0])
    assert m.counters["watchdog_holds"] == 1
    m.tick(0.05)
    assert m.counters["watchdog_holds"] == 2  # and by the watchdog, once per stale period
    m.tick(0.06)
    assert m.counters["watchdog_holds"] == 2
    # commands that stop before the first state are stale all the same: counted
    quiet = SafetyMonitor(limits())
    quiet.filter([0.3, 0, 0, 0], 0.01, 0.01)
    quiet.tick(0.5)
    assert quiet.counters["watchdog_holds"] == 1
