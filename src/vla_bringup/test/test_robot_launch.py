"""launch_testing test of robot.launch.py under the real ROS 2 launch tools.

They come from a ROS 2 Jazzy install, or from ../shared/ros2-launch (installed by make setup);
where neither exists pytest skips this module cleanly. Also runs as
``launch_test src/vla_bringup/test/test_robot_launch.py``. It brings up the real launch file with
a tiny checkpoint, waits for the policy's chunks, the robot's commands and the safety status, and
checks that every node exits with code 0 when launch stops it with SIGINT.
"""

import os
import tempfile
import unittest

import pytest

pytest.importorskip("launch_testing", reason="launch_testing is not installed (no ROS 2 install, no ../shared/ros2-launch)")
pytest.importorskip("launch_testing_ros")

import launch  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_testing_ros import WaitForTopics  # noqa: E402

from vla_msgs.msg import ActionChunk, SafetyStatus  # noqa: E402


def _tiny_checkpoint() -> str:
    import numpy as np

    from vla_core.checkpoint import save_checkpoint
    from vla_core.config import ExperimentConfig
    from vla_core.policy import make_policy
    from vla_core.spec import PolicySpec

    spec = PolicySpec(cameras={"corner2": [64, 64, 3]}, proprio_names=["hand_x", "hand_y", "hand_z", "gripper_opening"],
                      action_names=["dx", "dy", "dz", "gripper"], fps=80.0, robot="sawyer")
    one, zero = np.ones(4, np.float32), np.zeros(4, np.float32)
    stats = {"action_min": -one, "action_max": one, "action_mean": zero, "action_std": one, "proprio_mean": zero, "proprio_std": one}
    cfg = ExperimentConfig.load(None, ["--policy.fusion.dim=64", "--policy.fusion.layers=1"])
    path = os.path.join(tempfile.mkdtemp(), "tiny")
    save_checkpoint(path, make_policy(cfg.policy, spec, stats), cfg)
    return path


@pytest.mark.launch_test
def generate_test_description():
    """robot.launch.py with a tiny checkpoint, then ReadyToTest."""
    robot = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(get_package_share_directory("vla_bringup"), "launch", "robot.launch.py")),
        launch_arguments={"checkpoint": _tiny_checkpoint()}.items())
    return launch.LaunchDescription([robot, launch_testing.actions.ReadyToTest()])


class TestRobotTopics(unittest.TestCase):
    """While the stack runs."""

    def test_robot_commands_and_safety_status_flow(self, proc_output):
        waiter = WaitForTopics([("/robot/cmd_twist", TwistStamped), ("/safety/status", SafetyStatus),
                                ("/vla/action_chunk", ActionChunk)], timeout=90.0)
        try:
            self.assertTrue(waiter.wait(), f"topics missing: {waiter.topics_not_received()}")
        finally:
            waiter.shutdown()


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """After shutdown."""

    def test_every_node_exits_cleanly(self, proc_info, proc_output):
        launch_testing.asserts.assertExitCodes(proc_info)  # 0 only: SIGINT is a clean shutdown
        assert len(proc_info.process_names()) == 4, proc_info.process_names()
        for process in proc_info.processes():
            text = "".join(o.text.decode() for o in proc_output[process])
            assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
