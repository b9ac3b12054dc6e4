"""launch_testing test of teleop.launch.py under the real ROS 2 launch tools.

Sim robot + scripted teleop + collector record demonstrations; every node exits with code 0 on
SIGINT. Skipped cleanly where neither a ROS install nor ../shared/ros2-launch provide the tools.
"""

import os
import tempfile
import unittest

import pytest

pytest.importorskip("launch_testing", reason="launch_testing is not installed (no ROS 2 install, no ../shared/ros2-launch)")
import launch  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import metaworld  # noqa: F401 - required: a missing install fails, never skips
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

OUT = os.path.join(tempfile.mkdtemp(), "teleop")


@pytest.mark.launch_test
def generate_test_description():
    """teleop.launch.py writing to a temporary directory, then ReadyToTest."""
    teleop = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(get_package_share_directory("vla_bringup"), "launch", "teleop.launch.py")),
        launch_arguments={"out_dir": OUT}.items())
    return launch.LaunchDescription([teleop, launch_testing.actions.ReadyToTest()])


class TestRecording(unittest.TestCase):
    """While the stack runs."""

    def test_demonstrations_are_recorded(self, proc_output):
        proc_output.assertWaitFor("finished 3 demonstrations", timeout=240)
        from vla_core.data.dataset import load_episodes

        report = load_episodes(OUT)
        assert len(report.episodes) == 3 and not report.skipped


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """After shutdown."""

    def test_every_node_exits_cleanly(self, proc_info, proc_output):
        launch_testing.asserts.assertExitCodes(proc_info)
        assert len(proc_info.process_names()) == 3, proc_info.process_names()
        for process in proc_info.processes():
            text = "".join(o.text.decode() for o in proc_output[process])
            assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
