"""With inference slower than the control period, vla_controller keeps publishing at its rate.

The jitter numbers are printed (a benchmark: the target is p99 < 5 ms at 30 Hz on the 2-core CI
machine); the assertions only require the rate to hold and inference to be truly slower.
"""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

LISTENER = r"""
import json, sys, time, rclpy
from geometry_msgs.msg import TwistStamped
rclpy.init()
node = rclpy.create_node("timing_listener")
stamps = []
node.create_subscription(TwistStamped, "/vla/cmd_twist", lambda m: stamps.append(time.monotonic()), 100)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.01)
print(json.dumps(stamps))
"""


class SlowRuntime:
    """A real PolicyRuntime whose every inference takes at least ``delay`` seconds."""

    def __init__(self, runtime, delay):
        self.runtime, self.delay = runtime, delay
        self.spec, self.backend = runtime.spec, f"{runtime.backend}+{delay * 1e3:.0f}ms"
        self.calls = 0

    def predict_chunk(self, obs):
        start = time.monotonic()
        out = self.runtime.predict_chunk(obs)
        self.calls += 1
        time.sleep(max(0.0, self.delay - (time.monotonic() - start)))
        return out


def test_control_rate_holds_while_inference_is_slow(tiny_checkpoint, ros_env, probe, monkeypatch):
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String

    from vla_core.image_codec import numpy_to_image_fields
    from vla_core.runtime.backends import load_runtime
    from vla_inference.vla_controller_node import VLAControllerNode

    # threads=1: what vla_controller does by default (inference_threads), leaving a core to the control loop.
    runtime = SlowRuntime(load_runtime(tiny_checkpoint, "torch", threads=1), delay=0.1)  # 3 control periods at 30 Hz
    monkeypatch.setenv("ROS_DOMAIN_ID", ros_env["ROS_DOMAIN_ID"])
    listener = subprocess.Popen([sys.executable, "-c", LISTENER, "8"], env=ros_env, stdout=subprocess.PIPE, text=True)
    ctx = probe.context
    node = VLAControllerNode(runtime=runtime, context=ctx,
                             parameter_overrides=[Parameter("control_rate", value=30.0), Parameter("replan_interval", value=4)])
    executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    executor.add_node(node)
    import threading

    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    pub_img = probe.node.create_publisher(Image, "/camera/image_raw", 5)
    pub_js = probe.node.create_publisher(JointState, "/joint_states", 5)
    pub_ins = probe.node.create_publisher(String, "/instruction", 5)
    try:
        image = Image(**numpy_to_image_fields(np.zeros((64, 64, 3), np.uint8), "rgb8"))
        t_end = time.monotonic() + 7.5
        while time.monotonic() < t_end:
            pub_img.publish(image)
            pub_js.publish(JointState(name=list(runtime.spec.proprio_names), position=[0.0, 0.6, 0.2, 1.0]))
            pub_ins.publish(String(data="open the drawer"))
            time.sleep(0.02)
        stamps = json.loads(listener.communicate(timeout=30)[0])
    finally:
        executor.shutdown()
        node.destroy_node()
    ticks = np.diff(node.tick_times[30:])   # steady state: skip the first second
    recv = np.diff(np.array(stamps[30:]))
    assert runtime.calls >= 10 and min(node.core.latencies) >= 0.1  # inference really was slower than a tick
    assert node.core.buffer.skipped_stale > 0  # latency compensation skipped what went stale
    period = 1 / 30
    rate = 1 / np.median(recv)
    jitter_tick = np.abs(ticks - period) * 1e3
    jitter_recv = np.abs(recv - period) * 1e3
    print(f"\ncontrol loop at 30 Hz with 100 ms inference: {rate:.1f} Hz received; "
          f"timer jitter p50 {np.percentile(jitter_tick, 50):.2f} ms p99 {np.percentile(jitter_tick, 99):.2f} ms; "
          f"subscriber jitter p50 {np.percentile(jitter_recv, 50):.2f} ms p99 {np.percentile(jitter_recv, 99):.2f} ms")
    # A loop that waited for inference could run at most 1 / (100 ms + 33 ms) = 7.5 Hz; require twice that.
    # (The rate itself is a benchmark on a shared 2-core VM: measured 25-30 Hz here.)
    assert 15.0 < rate < 33.0
    span = stamps[-1] - stamps[30]
    # rclpy timers do not replay missed periods, so a stall of the whole process loses ticks; on a
    # busy 2-core CI machine allow some, but far fewer than the 2 in 3 a blocking design would lose.
    assert span > 1.0 and len(stamps) - 30 >= 0.5 * 30 * span

