"""safety_monitor as a real process: clipping, rejection, e-stop latch, watchdog, a 1 kHz garbage storm."""

import math
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from conftest import Launch  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from std_msgs.msg import Empty, Float64  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from vla_msgs.msg import SafetyStatus  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "safety_monitor.yaml"


def graph(tmp_path):
    path = tmp_path / "launch" / "safety.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"nodes": [{
        "name": "safety_monitor", "command": [sys.executable, "-m", "vla_safety.safety_monitor_node"],
        "parameters": [str(CONFIG)]}]}))
    return path


def twist(x, y=0.0, z=0.0):
    m = TwistStamped()
    m.twist.linear.x, m.twist.linear.y, m.twist.linear.z = float(x), float(y), float(z)
    return m


def test_limits_estop_watchdog_and_garbage(tmp_path, ros_env, probe):
    out = "/safety/out/cmd_twist"
    probe.record(TwistStamped, out)
    probe.record(SafetyStatus, "/safety/status")
    pub = probe.node.create_publisher(TwistStamped, "/safety/in/cmd_twist", 10)
    grip = probe.node.create_publisher(Float64, "/safety/in/gripper_cmd", 10)
    estop = probe.node.create_publisher(Empty, "/emergency_stop", 10)
    launch = Launch(graph(tmp_path), ros_env)
    try:
        assert probe.wait_for(lambda: probe.received["/safety/status"], 30), launch.output()
        assert probe.wait_for(lambda: pub.get_subscription_count() > 0, 10)

        def send(msg, settle=0.15):
            n = len(probe.received[out])
            pub.publish(msg)
            assert probe.wait_for(lambda: len(probe.received[out]) > n, 5)
            time.sleep(settle)
            return probe.received[out][-1][1].twist.linear

        grip.publish(Float64(data=0.5))
        send(twist(0.0))
        lin = send(twist(5.0, -7.0))  # out of range -> clipped (and rate limited from 0)
        assert 0 < lin.x <= 1.0 and -1.0 <= lin.y < 0
        for _ in range(10):
            lin = send(twist(5.0, -7.0), settle=0.05)
        assert lin.x == pytest.approx(1.0) and lin.y == pytest.approx(-1.0)
        lin = send(twist(math.nan, 0.1))  # NaN -> rejected: hold
        assert (lin.x, lin.y) == (0.0, 0.0)

        time.sleep(0.5)  # stale commands: the watchdog publishes hold on its own
        held = [m for t, m in probe.received[out] if t > time.monotonic() - 0.2]
        assert held and all(m.twist.linear.x == 0.0 for m in held)

        estop.publish(Empty())
        assert probe.wait_for(lambda: probe.received["/safety/status"][-1][1].state == SafetyStatus.ESTOP, 5)
        for _ in range(3):
            assert send(twist(0.2)).x == 0.0  # latched
        res = probe.call(Trigger, "/safety_monitor/reset", Trigger.Request())
        assert res.success
        assert probe.wait_for(lambda: send(twist(0.2), settle=0.05).x > 0.0, 5)

        # 1 kHz of garbage for 2 s: the monitor keeps running and keeps counting.
        before = probe.received["/safety/status"][-1][1].commands_received
        t_end = time.monotonic() + 2.0
        i = 0
        while time.monotonic() < t_end:
            pub.publish(twist(*(math.inf if i % 7 == 0 else (-1) ** i * 10.0 ** (i % 40),) * 3))
            i += 1
            time.sleep(0.001)
        assert probe.wait_for(lambda: probe.received["/safety/status"][-1][1].commands_received >= before + 0.5 * i, 10)
        status = probe.received["/safety/status"][-1][1]
        assert status.commands_rejected > 0 and status.commands_clipped > 0
        assert launch.proc.poll() is None
        assert all(abs(m.twist.linear.x) <= 1.0 for _, m in probe.received[out])
    finally:
        code = launch.stop()
    assert code == 0, launch.output()


def test_bad_parameter_stops_the_node_with_its_name(tmp_path, ros_env):
    bad = tmp_path / "config" / "bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text(yaml.safe_dump({"safety_monitor": {"ros__parameters": {
        "command_names": ["vx", "vy"], "command_lower": [-1.0], "command_upper": [1.0, 1.0],
        "max_rate": [0.0, 0.0], "hold_command": [0.0, 0.0]}}}))
    import subprocess

    r = subprocess.run([sys.executable, "-m", "vla_safety.safety_monitor_node", "--ros-args", "--params-file", str(bad)],
                       env=ros_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "command_lower has 1 values for 2 command dimensions" in r.stderr and "Traceback" not in r.stderr
