"""The safety monitor's joint-trajectory path without ROS: exact outputs derived from the joint limits."""

import numpy as np
import pytest

from vla_core.errors import VLAError
from vla_safety.joint_limits import parse_joint_limits
from vla_safety.monitor import ESTOP, LIMITED, OK, JointCommand, SafetyLimits, SafetyMonitor

JOINTS = ["shoulder", "gripper"]
TABLE = {"joint_limits": {
    "shoulder": {"has_position_limits": True, "min_position": -1.0, "max_position": 1.0,
                 "has_velocity_limits": True, "max_velocity": 2.0, "has_acceleration_limits": True, "max_acceleration": 100.0},
    "gripper": {"has_position_limits": True, "min_position": 0.0, "max_position": 1.0},
}}


def limits(**kw):
    base = dict(command_interface="joint_position", command_names=JOINTS, watchdog_timeout=0.2, max_command_age=0.1,
                state_timeout=0.5, ramp_in_time=0.0, estop_margin=0.1, max_state_speed=10.0, episode_start_grace=0.0)
    return SafetyLimits(**(base | kw))


def ready(at=(0.2, 0.5), t=0.0, events=None, velocity=None, **kw):
    """A monitor that has seen the arm at ``at`` at time ``t``."""
    m = SafetyMonitor(limits(**kw), on_event=events.append if events is not None else None,
                      joint_limits=parse_joint_limits(TABLE))
    m.observe_state(JOINTS, list(at), t, velocities=velocity)
    return m


def assert_hold(out, position):
    assert isinstance(out, JointCommand) and out.hold
    np.testing.assert_array_equal(out.times, [0.0])
    np.testing.assert_array_equal(out.positions, [position])


def test_forwards_a_trajectory_within_limits_in_the_robots_joint_order():
    m = ready()
    # given as (gripper, shoulder): 0.1 rad in 0.1 s = 1 rad/s < 2 rad/s
    out = m.filter_trajectory(["gripper", "shoulder"], [0.1, 0.2], [[0.6, 0.3], [0.7, 0.4]], now=0.01, stamp=0.01)
    assert not out.hold
    np.testing.assert_array_equal(out.times, [0.1, 0.2])
    np.testing.assert_allclose(out.positions, [[0.3, 0.6], [0.4, 0.7]])
    assert m.state == OK and m.counters == dict(received=1, forwarded=1, clipped=0, rejected=0, watchdog_holds=0, estops=0)


def test_every_point_is_clamped_to_position_velocity_and_acceleration_limits():
    events = []
    m = ready(events=events)
    # shoulder asks 1.0 rad in 0.1 s (10 rad/s): 2 rad/s allows 0.2 -> 0.4; then beyond max_position 1.0;
    # gripper has no velocity limit, only its position range [0, 1]
    out = m.filter_trajectory(JOINTS, [0.1, 0.6], [[1.2, 1.5], [5.0, -0.5]], now=0.01, stamp=0.01)
    np.testing.assert_allclose(out.positions, [[0.4, 1.0], [1.0, 0.0]])
    assert m.state == LIMITED and events == ["clamped to joint limits"] and m.counters["clipped"] == 1
    ok = m.filter_trajectory(JOINTS, [0.1], [[0.25, 0.5]], now=0.02, stamp=0.02)
    np.testing.assert_allclose(ok.positions, [[0.25, 0.5]])
    assert m.state == OK and m.counters["clipped"] == 1


def test_trajectories_start_from_the_measured_velocity():
    # moving at -2 rad/s (its limit), the shoulder may change velocity by 100 rad/s^2 * 0.01 s = 1 rad/s in 10 ms
    m = ready(at=(0.0, 0.5), velocity=[-2.0, 0.0])
    out = m.filter_trajectory(JOINTS, [0.01], [[0.5, 0.5]], now=0.01, stamp=0.01)
    np.testing.assert_allclose(out.positions, [[-0.01, 0.5]])


@pytest.mark.parametrize("names, times, points, reason", [
    (["shoulder", "elbow"], [0.1], [[0.0, 0.5]], "unknown ['elbow']"),
    (JOINTS, [0.1], [[float("nan"), 0.5]], "non-finite"),
    (JOINTS, [0.2, 0.1], [[0.0, 0.5], [0.1, 0.5]], "increase"),
    (JOINTS, [0.1], [[0.0]], "1 positions for 2 joints"),
])
def test_malformed_trajectories_are_rejected_and_the_arm_holds_where_it_was_measured(names, times, points, reason):
    events = []
    m = ready(events=events)
    out = m.filter_trajectory(names, times, points, now=0.01, stamp=0.01)
    assert_hold(out, [0.2, 0.5])
    assert m.counters["rejected"] == 1 and m.counters["forwarded"] == 0
    assert len(events) == 1 and events[0].startswith("rejected: malformed trajectory") and reason in events[0]


def test_hold_keeps_the_position_measured_when_it_began():
    m = ready()
    m.trigger_estop("test")
    assert m.state == ESTOP
    assert_hold(m.tick(0.02), [0.2, 0.5])
    m.observe_state(JOINTS, [0.25, 0.45], 0.03)  # the arm sags: the hold does not follow it
    assert_hold(m.tick(0.04), [0.2, 0.5])
    assert_hold(m.filter_trajectory(JOINTS, [0.1], [[0.3, 0.5]], now=0.05, stamp=0.05), [0.2, 0.5])
    m.reset(now=0.06)
    m.observe_state(JOINTS, [0.25, 0.45], 0.07)
    out = m.filter_trajectory(JOINTS, [0.1], [[0.3, 0.45]], now=0.08, stamp=0.08)
    np.testing.assert_allclose(out.positions, [[0.3, 0.45]])   # commands flow again, from the new measurement
    m.trigger_estop("again")
    assert_hold(m.tick(0.09), [0.25, 0.45])                    # a new hold holds where the arm is now


def test_release_ramps_velocity_limits_in():
    m = ready(ramp_in_time=1.0)
    m.trigger_estop("test")
    m.reset(now=1.0)
    m.observe_state(JOINTS, [0.0, 0.5], 1.0)
    # 0.25 s after the release: 2 rad/s * 0.25 = 0.5 rad/s, so 0.05 rad in 0.1 s; the gripper has no velocity limit
    out = m.filter_trajectory(JOINTS, [0.1], [[0.5, 0.9]], now=1.25, stamp=1.25)
    np.testing.assert_allclose(out.positions, [[0.05, 0.9]])


def test_an_empty_trajectory_is_a_hold_at_the_measured_position():
    m = ready()
    out = m.filter_trajectory(JOINTS, [], [], now=0.01, stamp=0.01)
    assert_hold(out, [0.2, 0.5])
    assert m.counters["forwarded"] == 1 and m.state == OK


def test_without_a_measured_position_hold_asks_the_controller_to_hold_where_it_is():
    m = SafetyMonitor(limits(), joint_limits=parse_joint_limits(TABLE))
    out = m.tick(0.0)
    assert out.hold and out.times.shape == (0,) and out.positions.shape == (0, 2)
    out = m.filter_trajectory(JOINTS, [0.1], [[0.3, 0.5]], now=0.01, stamp=0.01)
    assert out.hold and out.positions.shape == (0, 2)   # no state yet: never forwarded


def test_watchdog_and_stale_state_hold_the_measured_position():
    m = ready()
    m.filter_trajectory(JOINTS, [0.1], [[0.3, 0.5]], now=0.01, stamp=0.01)
    assert m.tick(0.1) is None
    m.observe_state(JOINTS, [0.3, 0.5], 0.15)
    assert_hold(m.tick(0.5), [0.3, 0.5])      # no command for 0.49 s > watchdog_timeout
    assert m.counters["watchdog_holds"] == 1
    m.filter_trajectory(JOINTS, [0.1], [[0.3, 0.5]], now=0.6, stamp=0.6)
    assert_hold(m.tick(0.7), [0.3, 0.5])      # state last heard at 0.15: older than state_timeout
    assert "holding: joint_states older than 0.5 s" in m.reasons[0]


def test_a_repositioned_arm_is_held_at_its_new_pose_not_pulled_back():
    m = ready(episode_start_grace=0.25)
    m.trigger_estop("test")
    assert_hold(m.tick(0.01), [0.2, 0.5])
    m.reset(now=0.02)
    m.trigger_estop("test")
    m.rebaseline(0.03)                          # the simulator moved the arm at 0.03
    assert m.tick(0.04).positions.shape == (0, 2)  # nothing measured since: hold where the controller is
    m.observe_state(JOINTS, [-0.5, 0.1], 0.05, stamp=0.05)
    assert_hold(m.tick(0.06), [-0.5, 0.1])
    assert m.counters["estops"] == 2          # the jump itself latched nothing


def test_after_a_move_commands_planned_before_it_hold_until_the_new_pose_is_measured():
    m = ready()
    np.testing.assert_allclose(m.filter_trajectory(JOINTS, [0.02], [[0.21, 0.5]], now=0.01, stamp=0.01).positions,
                               [[0.21, 0.5]])
    m.rebaseline(0.03)                                              # the simulator reset the scene at 0.03
    for now, stamp in ((0.035, 0.025), (0.04, 0.03)):                # planned for the old pose, arriving late
        out = m.filter_trajectory(JOINTS, [0.02], [[0.22, 0.5]], now=now, stamp=stamp)
        assert out.hold and out.positions.shape == (0, 2)           # hold where the robot is: not the old pose
    out = m.filter_trajectory(JOINTS, [0.02], [[0.22, 0.5]], now=0.045, stamp=0.045)
    assert out.hold and out.positions.shape == (0, 2)               # new, but the new pose is not measured yet
    m.observe_state(JOINTS, [-0.5, 0.1], 0.05, stamp=0.05)
    out = m.filter_trajectory(JOINTS, [0.02], [[-0.49, 0.1]], now=0.06, stamp=0.06)
    np.testing.assert_allclose(out.positions, [[-0.49, 0.1]])       # clamped from the new pose: 0.5 rad/s, untouched
    assert m.state == OK and m.reasons == []                        # a reset is normal operation: nothing reported
    assert m.counters == dict(received=5, forwarded=2, clipped=0, rejected=0, watchdog_holds=0, estops=0)


@pytest.mark.parametrize("settle", [0.1, 0.0])
def test_while_the_robot_may_ignore_commands_after_a_move_trajectories_start_from_where_it_is(settle):
    # A simulator ignores commands for its reset_settle after a reset: the arm stays at its new pose. Clamped from the
    # setpoint of what was forwarded meanwhile, the first trajectory it takes asks it to be far away within 10 ms
    # (the ALOHA demo under CPU load: one shoulder stepped 0.235 rad in 20 ms and the speed e-stop latched).
    m = ready(t=-0.01, velocity=[2.0, 0.0], reset_settle=settle)   # the last episode ended with the arm at 2 rad/s
    m.rebaseline(0.0)
    m.observe_state(JOINTS, [0.0, 0.5], 0.005, stamp=0.005)      # the new pose (no velocities in this message)
    for i in range(1, 10):                                        # 0.01 .. 0.09: the arm does not move
        out = m.filter_trajectory(JOINTS, [0.01], [[1.0, 0.5]], now=i / 100, stamp=i / 100)
        if settle:
            np.testing.assert_allclose(out.positions, [[0.01, 0.5]])  # from rest where the arm is: 100 rad/s^2 x 10 ms
        m.observe_state(JOINTS, [0.0, 0.5], i / 100 + 0.005, stamp=i / 100 + 0.005)
    # The simulator takes commands again: the first trajectory it gets asks for this within 10 ms.
    asked = m.filter_trajectory(JOINTS, [0.01], [[1.0, 0.5]], now=0.1, stamp=0.1).positions[0, 0]
    if settle:
        assert asked == pytest.approx(0.02)                       # from the setpoint of the last one: 2 rad/s
    else:
        assert asked > 0.1                                        # five periods of travel the arm never made
    assert m.counters["forwarded"] == 10 and m.counters["watchdog_holds"] == 0 and m.state == LIMITED


def test_joints_beyond_their_limits_or_moving_too_fast_latch_the_e_stop():
    m = ready()
    m.observe_state(JOINTS, [1.05, 0.5], 0.01)  # within estop_margin 0.1 of max_position 1.0; 85 rad/s though
    assert m.state == ESTOP and "velocity limit exceeded" in m.reasons[0]
    m = ready()
    m.observe_state(JOINTS, [0.2, 1.11], 1.0)   # the gripper 0.11 beyond its range
    assert m.state == ESTOP and m.reasons[0] == "e-stop: joint limit exceeded: gripper"
    m = ready()
    m.observe_state(JOINTS, [0.2, 1.09], 1.0)
    assert m.state == OK


def test_a_joint_can_have_its_own_e_stop_margin():
    margins = {"gripper": 0.5}
    m = SafetyMonitor(limits(), joint_limits=parse_joint_limits(TABLE), estop_margins=margins)
    m.observe_state(JOINTS, [0.2, 1.4], 0.0)          # the gripper pushed 0.4 past its range: within its 0.5
    m.observe_state(JOINTS, [0.2, 1.4], 1.0)
    assert m.state == OK
    m.observe_state(JOINTS, [1.15, 1.4], 2.0)         # the shoulder keeps the common 0.1
    assert m.state == ESTOP and m.reasons[0] == "e-stop: joint limit exceeded: shoulder"
    m = SafetyMonitor(limits(), joint_limits=parse_joint_limits(TABLE), estop_margins=margins)
    m.observe_state(JOINTS, [0.2, 1.51], 0.0)
    assert m.state == ESTOP and m.reasons[0] == "e-stop: joint limit exceeded: gripper"
    with pytest.raises(VLAError, match="estop_margins must be >= 0 and name joints of command_names"):
        SafetyMonitor(limits(), joint_limits=parse_joint_limits(TABLE), estop_margins={"elbow": 0.5})


def test_joint_robot_configuration_errors_name_the_fault():
    with pytest.raises(ValueError, match="command_lower, hold_command apply to ee_velocity robots"):
        limits(command_lower=[0.0, 0.0], hold_command=[0.0, 0.0])
    with pytest.raises(ValueError, match="state_timeout must be positive"):
        limits(state_timeout=0.0)
    with pytest.raises(ValueError, match="command_interface must be"):
        limits(command_interface="torque")
    with pytest.raises(ValueError, match="repeat a name"):
        limits(command_names=["shoulder", "shoulder"])
    with pytest.raises(VLAError, match=r"no limits for \['gripper'\]"):
        SafetyMonitor(limits(), joint_limits=parse_joint_limits({"joint_limits": {"shoulder": TABLE["joint_limits"]["shoulder"]}}))
    m = ready()
    with pytest.raises(TypeError, match="filter_trajectory"):
        m.filter([0.0, 0.0], 0.01)
