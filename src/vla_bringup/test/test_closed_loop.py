"""Closed loop over real DDS: sim_robot + vla_controller (tiny checkpoint) + safety_monitor from robot.yaml."""


import metaworld  # noqa: F401 - required: a missing install fails, never skips
import rclpy  # noqa: F401 - required: a missing install fails, never skips
from conftest import Launch  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from vla_msgs.msg import ActionChunk, SafetyStatus  # noqa: E402
from vla_msgs.srv import ResetEpisode  # noqa: E402


def test_commands_reach_the_robot_only_through_the_monitor(tiny_checkpoint, ros_env, probe):
    probe.record(TwistStamped, "/robot/cmd_twist")
    probe.record(JointState, "/joint_states")
    probe.record(Bool, "/episode/done")
    probe.record(ActionChunk, "/vla/action_chunk")
    probe.record(SafetyStatus, "/safety/status")
    launch = Launch("robot", ros_env, [f"checkpoint:={tiny_checkpoint}"])
    try:
        assert probe.wait_for(lambda: len(probe.received["/robot/cmd_twist"]) > 20, 60), launch.output()
        publishers = {info.node_name for info in probe.node.get_publishers_info_by_topic("/robot/cmd_twist")}
        assert publishers == {"safety_monitor"}, publishers
        assert not probe.node.get_subscriptions_info_by_topic("/vla/cmd_twist")  # remapped away: nobody listens there
        # The first episode may have ended while the controller was still loading: start one now.
        res = probe.call(ResetEpisode, "/sim_robot/reset", ResetEpisode.Request(instruction="open the drawer", seed=7))
        assert res.success and res.task == "drawer-open-v3"
        import time

        t_reset = time.monotonic()  # the reset teleports the arm; the simulator announces it, so nothing latches
        probe.received["/joint_states"].clear()
        assert probe.wait_for(lambda: probe.received["/vla/action_chunk"], 60)
        chunk = probe.received["/vla/action_chunk"][-1][1]
        assert chunk.horizon == 16 and len(chunk.actions) == 16 * 4 and chunk.instruction == "open the drawer"
        assert probe.wait_for(lambda: probe.received["/joint_states"], 10)
        first = probe.received["/joint_states"][0][1].position
        assert probe.wait_for(lambda: any(m.data for t, m in probe.received["/episode/done"] if t > t_reset + 0.5), 120), \
            launch.output()
        last = probe.received["/joint_states"][-1][1].position
        assert max(abs(a - b) for a, b in zip(first[:3], last[:3])) > 1e-3  # the hand moved
        status = probe.received["/safety/status"][-1][1]
        assert status.estop_count == 0 and status.state != SafetyStatus.ESTOP, (list(status.reasons), launch.output())
    finally:
        code = launch.stop()
    assert code == 0, launch.output()
