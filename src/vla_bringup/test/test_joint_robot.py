"""The ALOHA simulator as a joint-position robot over real DDS: it follows JointTrajectory messages as
ros2_control's JointTrajectoryController does, and refuses malformed ones with one reason while holding."""

import sys
import time

import numpy as np
import rclpy  # noqa: F401 - required: a missing install fails, never skips
import yaml
from conftest import Launch
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_msgs.srv import ResetEpisode
from vla_ros.stamps import duration, seconds

TOPIC = "/joint_trajectory_controller/joint_trajectory"
SETTLE = 1.0   # s of simulation time after a reset without commands (default 0.1: long here, for a loaded machine)


def sim_graph(tmp_path):
    params = tmp_path / "sim.yaml"
    params.write_text(yaml.safe_dump({"sim_robot": {"ros__parameters": {
        "suite": "aloha", "task": "transfer-cube", "camera_size": 32, "camera_rate": 5.0, "max_steps": 100000,
        "reset_settle": SETTLE}}}))
    graph = tmp_path / "graph.yaml"
    graph.write_text(yaml.safe_dump({"nodes": [{"name": "sim_robot", "command": [sys.executable, "-m", "vla_sim.sim_robot_node"],
                                                "parameters": [str(params)]}]}))
    return graph


def trajectory(names, points):
    msg = JointTrajectory(joint_names=list(names))
    for t, positions in points:
        msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in positions],
                                               time_from_start=duration(t)))
    return msg


def test_the_aloha_sim_follows_and_refuses_joint_trajectories(tmp_path, ros_env, probe):
    probe.record(JointState, "/joint_states")
    pub = probe.node.create_publisher(JointTrajectory, TOPIC, 10)
    launch = Launch(sim_graph(tmp_path), ros_env)
    try:
        assert probe.wait_for(lambda: probe.received["/joint_states"], 60), launch.output()
        assert probe.wait_for(lambda: pub.get_subscription_count() > 0, 10)
        js = probe.received["/joint_states"][-1][1]
        names = list(js.name)
        assert len(names) == 14 and names[0] == "left_waist" and names[6] == "left_gripper" and len(js.velocity) == 14
        assert not probe.node.get_subscriptions_info_by_topic("/robot/cmd_twist")  # a joint robot offers no twist input

        def position():
            return np.array(probe.received["/joint_states"][-1][1].position)

        start = position()
        target = start.copy()
        target[0] += 0.3                     # left_waist
        target[8] -= 0.2                     # right_shoulder
        order = names[::-1]                  # any joint order
        pub.publish(trajectory(order, [(1.0, [target[names.index(n)] for n in order])]))
        time.sleep(0.5)
        mid = position()
        assert 0.03 < mid[0] - start[0] < 0.27      # on its way, interpolated, not a jump
        assert max(abs(m.velocity[0]) for _, m in list(probe.received["/joint_states"])[-10:]) > 0.05
        time.sleep(1.5)
        np.testing.assert_allclose(position()[[0, 8]], target[[0, 8]], atol=0.03)

        # Malformed trajectories: refused with one logged reason each; the robot holds where it is.
        held = position()
        pub.publish(trajectory(names[:-1] + ["elbow"], [(1.0, start)]))
        pub.publish(trajectory(names, [(1.0, [np.nan] * 14)]))
        pub.publish(trajectory(names, [(1.0, start), (0.5, start)]))
        pub.publish(trajectory(names, [(1.0, start[:7])]))
        time.sleep(1.0)
        np.testing.assert_allclose(position()[[0, 8]], held[[0, 8]], atol=0.01)
        assert launch.wait_for("refused, holding: joint names do not match the robot's: unknown ['elbow']", 5), launch.output()
        for reason in ("non-finite", "must be >= 0 and increase", "point 0 has 7 positions for 14 joints"):
            assert launch.wait_for(reason, 5), launch.output()
        # An empty trajectory stops a motion where it is.
        pub.publish(trajectory(names, [(2.0, start)]))
        time.sleep(0.5)
        pub.publish(trajectory(names, []))
        stopped = position()
        time.sleep(1.0)
        assert abs(position()[0] - stopped[0]) < 0.03 and position()[0] - start[0] > 0.05

        # A reset teleports the arm home; a trajectory planned before it (still in flight) must not yank it back.
        probe.record(Header, "/episode/start")
        away = position()
        res = probe.call(ResetEpisode, "/sim_robot/reset", ResetEpisode.Request(task="transfer-cube", seed=3))
        assert res.success, res.message
        pub.publish(trajectory(names, [(0.02, away)]))      # where the old episode's plan went next
        assert probe.wait_for(lambda: probe.received["/episode/start"], 10)
        began = seconds(probe.received["/episode/start"][-1][1].stamp)
        assert probe.wait_for(lambda: seconds(probe.received["/joint_states"][-1][1].header.stamp) > began + SETTLE, 30)
        after = [m for _, m in probe.received["/joint_states"] if seconds(m.header.stamp) > began]
        home = np.array(after[0].position)
        assert abs(home[0] - away[0]) > 0.05                                        # the reset moved the arm
        assert max(abs(m.position[0] - home[0]) for m in after) < 0.01              # and the old plan never ran
        pub.publish(trajectory(names, [(0.5, away)]))       # after the settling time commands are followed again
        assert probe.wait_for(lambda: abs(position()[0] - away[0]) < 0.03, 10)
    finally:
        code = launch.stop()
    assert code == 0, launch.output()
