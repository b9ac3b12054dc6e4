"""joy_teleop over real DDS: Joy messages become robot commands."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy  # noqa: F401 - required: a missing install fails, never skips


def test_joy_axes_become_commands(tmp_path):
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import Joy

    domain = 150 + os.getpid() % 50
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    config = Path(__file__).resolve().parents[2] / "vla_bringup" / "config" / "joy_mapping.yaml"
    proc = subprocess.Popen([sys.executable, "-c", "from vla_teleop.teleop_sources_node import joy_main; joy_main()",
                             "--ros-args", "--params-file", str(config)], env=env)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("joy_probe", context=ctx)
    got = []
    node.create_subscription(TwistStamped, "/robot/cmd_twist", got.append, 10)
    pub = node.create_publisher(Joy, "/joy", 10)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (got and got[-1].twist.linear.x > 0.5):
            pub.publish(Joy(axes=[0.0, 0.8, 0.0, 0.0, -0.5], buttons=[0] * 8))
            _spin(node, ctx)
        assert got and got[-1].twist.linear.x == pytest.approx(0.8) and got[-1].twist.linear.z == pytest.approx(-0.5)
    finally:
        proc.send_signal(2)
        proc.wait(timeout=20)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def _spin(node, ctx):
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    ex.spin_once(timeout_sec=0.05)
    ex.remove_node(node)
