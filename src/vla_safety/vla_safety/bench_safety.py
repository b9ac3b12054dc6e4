"""``ros2 run vla_safety bench_safety``: how fast the safety monitor stops the robot.

The monitor runs as its own process with the shipped parameter file; this process plays the robot
(/joint_states at 100 Hz) and the controller (stamped commands at 80 Hz) and listens on the robot's
command topic. Per trial:

- e-stop reaction: /emergency_stop is published while commands flow; the time until the first hold
  command reaches the robot topic (then ~/reset releases it for the next trial);
- watchdog hold: commands stop; the time until the first hold command (the timeout is
  ``watchdog_timeout``; what is measured is how far past it the hold arrives).

Prints p50 / p99 / max in milliseconds as JSON and as a Markdown table row. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from vla_ros.bench import interval_stats, isolated_env


def main(argv: list[str] | None = None) -> int:
    """Entry point of bench_safety."""
    parser = argparse.ArgumentParser(prog="bench_safety", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--params", default="", help="parameter file (default: vla_bringup/config/sawyer/safety_monitor.yaml)")
    args = parser.parse_args(argv)
    import rclpy
    from geometry_msgs.msg import TwistStamped
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Empty
    from std_srvs.srv import Trigger

    from vla_core.launch.graph import find_share

    params = args.params or str(find_share("vla_bringup") / "config" / "sawyer" / "safety_monitor.yaml")
    env = isolated_env(150)
    monitor = subprocess.Popen([sys.executable, "-m", "vla_safety.safety_monitor_node", "--ros-args", "--params-file", params],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("bench_safety", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    outputs: list[tuple[float, float]] = []   # (arrival, twist.linear.x)
    node.create_subscription(TwistStamped, "/safety/out/cmd_twist", lambda m: outputs.append((time.monotonic(), m.twist.linear.x)), 100)
    pub_cmd = node.create_publisher(TwistStamped, "/safety/in/cmd_twist", 10)
    pub_state = node.create_publisher(JointState, "/joint_states", 10)
    pub_estop = node.create_publisher(Empty, "/emergency_stop", 10)
    reset = node.create_client(Trigger, "/safety_monitor/reset")
    sending = threading.Event()
    stop = threading.Event()

    def robot():
        k = 0
        while not stop.is_set():
            stamp = node.get_clock().now().to_msg()
            js = JointState(name=["hand_x", "hand_y", "hand_z"], position=[0.0, 0.6, 0.2])
            js.header.stamp = stamp
            pub_state.publish(js)
            if sending.is_set() and k % 5 == 0:  # commands at 80 Hz, state at 400 Hz
                cmd = TwistStamped()
                cmd.header.stamp = stamp
                cmd.twist.linear.x = 0.3
                pub_cmd.publish(cmd)
            k += 1
            time.sleep(0.0025)

    threading.Thread(target=executor.spin, daemon=True).start()
    threading.Thread(target=robot, daemon=True).start()

    def first_hold_after(t0: float, timeout: float = 3.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, x in list(outputs):
                if t >= t0 and x == 0.0:
                    return (t - t0) * 1e3
            time.sleep(0.0005)
        return None

    def wait_moving(timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        n = len(outputs)
        while time.monotonic() < deadline:
            if any(x > 0 for _, x in outputs[n:]):
                return True
            time.sleep(0.005)
        return False

    estop_ms, watchdog_ms = [], []
    try:
        if not reset.wait_for_service(timeout_sec=30):
            raise SystemExit("the safety monitor did not come up")
        sending.set()
        if not wait_moving(10):
            raise SystemExit("commands do not get through the monitor")
        for _ in range(args.trials):
            time.sleep(0.05)
            t0 = time.monotonic()
            pub_estop.publish(Empty())
            ms = first_hold_after(t0)
            if ms is not None:
                estop_ms.append(ms)
            future = reset.call_async(Trigger.Request())
            while not future.done():
                time.sleep(0.001)
            wait_moving()
        for _ in range(args.trials):
            wait_moving()
            time.sleep(0.05)
            sending.clear()
            t0 = time.monotonic()
            ms = first_hold_after(t0)
            if ms is not None:
                watchdog_ms.append(ms)
            sending.set()
    finally:
        stop.set()
        monitor.send_signal(2)
        monitor.wait(timeout=20)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    import yaml

    timeout_s = yaml.safe_load(Path(params).read_text())["safety_monitor"]["ros__parameters"].get("watchdog_timeout", 0.2)
    result = {"estop_to_hold_ms": interval_stats(estop_ms), "watchdog_hold_ms": interval_stats(watchdog_ms),
              "watchdog_timeout_ms": timeout_s * 1e3, "lost_trials": 2 * args.trials - len(estop_ms) - len(watchdog_ms)}
    print(json.dumps(result, indent=2))
    e, w = result["estop_to_hold_ms"], result["watchdog_hold_ms"]
    print(f"\n| e-stop -> hold p50 / p99 / max | watchdog hold after last command p50 / p99 / max (timeout {timeout_s * 1e3:.0f} ms) |")
    print("|---|---|")
    print(f"| {e['p50']} / {e['p99']} / {e['max']} ms | {w['p50']} / {w['p99']} / {w['max']} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
