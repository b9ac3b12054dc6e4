"""Closed loop of a joint-position robot over real DDS: robot.yaml with robot:=aloha (sim_robot, vla_policy with a
tiny checkpoint, vla_controller, safety_monitor). The safety monitor is the only publisher on the robot's
JointTrajectory topic, the arms move, no point beyond the configured joint limits reaches the robot, and the
e-stop holds the measured position."""

import time

import numpy as np
import rclpy  # noqa: F401 - required: a missing install fails, never skips
from conftest import Launch, graph_with_overrides
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty
from trajectory_msgs.msg import JointTrajectory

from vla_msgs.msg import SafetyStatus

ROBOT = "/joint_trajectory_controller/joint_trajectory"
REQUESTED = "/safety/in/joint_trajectory"
WAIST = 0.01   # the test's limit on left_waist (rad, either side of its start at 0)


def points(messages, joint):
    """Every point's position of ``joint`` in the recorded trajectories."""
    return [p.positions[list(m.joint_names).index(joint)] for _, m in messages for p in m.points]


def set_parameters(probe, values: dict):
    """Set the safety monitor's parameters in one atomic update (what `ros2 param set` does one at a time)."""
    from rcl_interfaces.srv import SetParametersAtomically
    from rclpy.parameter import Parameter

    request = SetParametersAtomically.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    return probe.call(SetParametersAtomically, "/safety_monitor/set_parameters_atomically", request).result


def test_a_joint_robot_is_commanded_only_through_the_monitor_within_its_limits(tmp_path, tiny_aloha_checkpoint, ros_env,
                                                                              probe):
    probe.record(JointTrajectory, ROBOT)
    probe.record(JointTrajectory, REQUESTED)
    probe.record(JointState, "/joint_states")
    probe.record(SafetyStatus, "/safety/status")
    overrides = {
        "sim_robot": {"max_steps": 100000, "camera_rate": 10.0},
        "safety_monitor": {"joint_limits": {"left_waist": {"has_position_limits": True, "min_position": -WAIST,
                                                           "max_position": WAIST}}},
    }
    launch = Launch(graph_with_overrides("robot", tmp_path, overrides), ros_env, ["robot:=aloha", f"checkpoint:={tiny_aloha_checkpoint}"])
    try:
        # The controller's trajectories carry points once the policy's first chunk has arrived.
        assert probe.wait_for(lambda: sum(bool(m.points) for _, m in probe.received[REQUESTED]) > 50, 120), launch.output()
        publishers = {info.node_name for info in probe.node.get_publishers_info_by_topic(ROBOT)}
        assert publishers == {"safety_monitor"}, publishers
        assert not probe.node.get_publishers_info_by_topic("/vla/joint_trajectory")  # remapped to the monitor's input
        assert not probe.node.get_subscriptions_info_by_topic("/robot/cmd_twist")   # no twist path for this robot

        # The policy asks for the left waist beyond the test's limit; nothing beyond it reaches the robot.
        asked = points(probe.received[REQUESTED], "left_waist")
        assert max(abs(v) for v in asked) > 2 * WAIST, "the policy never asked beyond the limit: the test proves nothing"
        sent = points(probe.received[ROBOT], "left_waist")
        assert sent and max(abs(v) for v in sent) <= WAIST + 1e-9
        states = [np.array(m.position) for _, m in probe.received["/joint_states"]]
        assert max(np.abs(s - states[0]).max() for s in states) > 0.02   # the arms moved
        status = probe.received["/safety/status"][-1][1]
        assert status.state != SafetyStatus.ESTOP and status.estop_count == 0 and status.commands_clipped > 0, (
            list(status.reasons), status, launch.output()[-3000:])

        # Limits change at run time (`ros2 param set`): a bad margin is refused with its reason and changes
        # nothing; a narrower position limit holds from the next trajectory on.
        refused = set_parameters(probe, {"estop_margins.left_gripper": -1.0})
        assert not refused.successful and "estop_margins must be >= 0" in refused.reason, refused
        narrow = WAIST / 2
        changed = set_parameters(probe, {"joint_limits.left_waist.min_position": -narrow,
                                         "joint_limits.left_waist.max_position": narrow})
        assert changed.successful, changed.reason
        since = time.monotonic() + 0.2   # trajectories already on the wire when the update returned
        assert probe.wait_for(lambda: len(points([m for m in probe.received[ROBOT] if m[0] > since], "left_waist")) > 20, 30)
        after_change = points([m for m in probe.received[ROBOT] if m[0] > since], "left_waist")
        asked = points([m for m in probe.received[REQUESTED] if m[0] > since], "left_waist")
        assert max(abs(v) for v in asked) > narrow, "the policy never asked beyond the new limit: the test proves nothing"
        assert max(abs(v) for v in after_change) <= narrow + 1e-9
        assert probe.received["/safety/status"][-1][1].state != SafetyStatus.ESTOP

        # E-stop: from then on the monitor holds one position, the one measured when it latched.
        estop = probe.node.create_publisher(Empty, "/emergency_stop", 10)
        estop.publish(Empty())
        assert probe.wait_for(lambda: probe.received["/safety/status"][-1][1].state == SafetyStatus.ESTOP, 10)
        latched = time.monotonic()
        measured = np.array(probe.received["/joint_states"][-1][1].position)
        time.sleep(1.5)
        holds = [m for t, m in probe.received[ROBOT] if t > latched + 0.1]
        assert len(holds) > 20 and all(len(m.points) == 1 for m in holds)
        held = np.array([m.points[0].positions for m in holds])
        assert np.ptp(held, axis=0).max() == 0.0                      # one position, the same every time
        assert np.abs(held[0] - measured).max() < 0.05                # where the arm was measured
        after = np.array(probe.received["/joint_states"][-1][1].position)
        assert np.abs(after - held[0]).max() < 0.05                   # and the arm stays there
    finally:
        code = launch.stop()
    assert code == 0, launch.output()
