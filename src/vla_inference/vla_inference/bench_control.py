"""``ros2 run vla_inference bench_control``: whether the control loop keeps time while inference runs.

Four processes over real DDS (a domain of their own, localhost only):

1. ``vla_policy`` with a real policy made slower than the control period by real computation
   (flow head, ``--inference-steps`` Euler steps on one CPU thread), so inference competes for the CPU;
2. ``vla_controller``, the executor, at each control rate in turn;
3. a subscriber that timestamps every command it receives;
4. this process, publishing camera images (30 Hz), joint states (at the control rate) and an instruction.

Reported per rate: intervals between commands as the subscriber received them and as the executor's
timer fired (p50 / p99 / max, ms), chunks, stale actions skipped, and the policy's latency. Prints
JSON and a Markdown table (the README's). A benchmark, not a test: timing on a shared 2-core VM is
noisy, so run it several times and report medians.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from vla_ros.bench import interval_stats, isolated_env, spawn_node

SUBSCRIBER = r"""
import json, os, sys, threading, time, rclpy
from rclpy.executors import SingleThreadedExecutor
if int(sys.argv[2]):
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(sys.argv[2])))
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from vla_msgs.msg import ActionChunk
rclpy.init()
node = rclpy.create_node("bench_subscriber")
stamps, sent, chunks, diag = [], [], [], {}
def on_cmd(m):
    stamps.append(time.monotonic())
    sent.append(seconds(m.header.stamp))
node.create_subscription(TwistStamped, "/vla/cmd_twist", on_cmd, 100)
node.create_subscription(ActionChunk, "/vla/action_chunk", lambda m: chunks.append(m.inference_latency), 10)
def on_diag(m):
    for s in m.status:
        diag[s.name] = {kv.key: kv.value for kv in s.values}
node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
executor = SingleThreadedExecutor()
executor.add_node(node)
def spin():
    try:
        executor.spin()   # blocks in the wait set: no polling
    except Exception:
        pass
spinner = threading.Thread(target=spin)
spinner.start()
time.sleep(float(sys.argv[1]))
print(json.dumps({"stamps": list(stamps), "sent": list(sent), "latencies": list(chunks), "diagnostics": diag}), flush=True)
rclpy.shutdown()
spinner.join()
executor.shutdown()
node.destroy_node()
"""


# The controller's parameters for the tiny checkpoint's end-effector interface (config/sawyer/vla_controller.yaml).
EE_SAWYER = {"action_names": ["dx", "dy", "dz", "gripper"], "twist_actions": ["dx", "dy", "dz"], "gripper_action": "gripper"}

def make_checkpoint(directory: Path, inference_steps: int, rate: float) -> Path:
    """A flow-head policy of the default CPU recipe's size for a ``rate`` Hz robot, with ``inference_steps`` Euler steps."""
    from vla_core.bench import bench_spec, unit_stats
    from vla_core.checkpoint import save_checkpoint
    from vla_core.config import ExperimentConfig
    from vla_core.policy import make_policy

    config = ExperimentConfig.load(None, ["--policy.head=flow", f"--policy.flow.inference_steps={inference_steps}"])
    spec = bench_spec()
    spec.fps = rate
    policy = make_policy(config.policy, spec, unit_stats(spec.action_dim)).eval()
    return save_checkpoint(directory / f"bench_flow_{rate:g}hz", policy, config)


def run_rate(rate: float, checkpoint: Path, seconds: float, env: dict, mode: str, realtime_priority: int,
             policy_nice: int, subscriber_priority: int = 0) -> dict:
    """One measurement at ``rate`` Hz; returns the statistics."""
    import rclpy
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String

    from vla_core.image_codec import numpy_to_image_fields

    policy = spawn_node("vla_inference.vla_policy_node", "vla_policy",
                   {"checkpoint": str(checkpoint), "inference_threads": 1, "nice": policy_nice}, env)
    executor = spawn_node("vla_inference.vla_controller_node", "vla_controller",
                     {"control_rate": rate, "mode": mode, "execute_steps": max(2, int(rate // 10)),
                      "realtime_priority": realtime_priority, **EE_SAWYER}, env)
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("bench_observations", context=context)
    pub_img = node.create_publisher(Image, "corner/image_raw", 5)
    pub_js = node.create_publisher(JointState, "/joint_states", 5)
    pub_ins = node.create_publisher(String, "/instruction", 5)
    image = Image(**numpy_to_image_fields(np.zeros((64, 64, 3), np.uint8), "rgb8"))
    stop = threading.Event()

    def publish():
        t, k = time.monotonic(), 0
        while not stop.is_set():
            stamp = node.get_clock().now().to_msg()
            js = JointState(name=["hand_x", "hand_y", "hand_z", "gripper"], position=[0.0, 0.6, 0.2, 1.0])
            js.header.stamp = stamp
            pub_js.publish(js)
            if k % max(1, round(rate / 30)) == 0:
                image.header.stamp = stamp
                pub_img.publish(image)
                pub_ins.publish(String(data="open the drawer"))
            k += 1
            t += 1.0 / rate
            time.sleep(max(0.0, t - time.monotonic()))

    try:
        # Let both nodes load (the policy warms up) before the subscriber starts its clock.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (node.count_subscribers("/vla/chunk_request") == 0
                                               or node.count_publishers("/vla/chunk_request") == 0):
            time.sleep(0.1)
        threading.Thread(target=publish, daemon=True).start()
        time.sleep(3.0)  # steady state: chunks flowing
        sub = subprocess.run([sys.executable, "-c", SUBSCRIBER, str(seconds), str(subscriber_priority)], env=env,
                             capture_output=True, text=True,
                             timeout=seconds + 60)
        if sub.returncode != 0:
            raise RuntimeError(f"the subscriber failed: {sub.stderr[-2000:]}")
        data = json.loads(sub.stdout)
    finally:
        stop.set()
        for p in (policy, executor):
            p.send_signal(2)
        codes = [p.wait(timeout=30) for p in (policy, executor)]
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    received = np.diff(np.asarray(data["stamps"])) * 1e3
    sent = np.diff(np.asarray(data["sent"])) * 1e3
    diag = data["diagnostics"].get("vla_controller", {})
    lat = np.asarray(data["latencies"]) * 1e3
    return {"rate_hz": rate, "period_ms": round(1e3 / rate, 2), "mode": mode, "seconds": seconds,
            "realtime_priority": realtime_priority, "policy_nice": policy_nice, "subscriber_priority": subscriber_priority,
            "received_interval_ms": interval_stats(received),
            "sent_interval_ms": interval_stats(sent),   # from the commands' header stamps: the executor's side alone
            "executor_tick_interval_ms": {"p50": float(diag.get("tick_interval_p50_ms", "nan")),
                                          "p99": float(diag.get("tick_interval_p99_ms", "nan"))},
            "missed_ticks": int(diag.get("missed_ticks", -1)), "chunks": int(lat.size),
            "stale_actions_skipped": int(diag.get("stale_actions_skipped", -1)),
            "inference_ms": {"p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
                             "max": round(float(lat.max()), 1) if lat.size else None},
            "exit_codes": codes}


def main(argv: list[str] | None = None) -> int:
    """Entry point of bench_control."""
    parser = argparse.ArgumentParser(prog="bench_control", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="30,80", help="control rates in Hz, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per rate")
    parser.add_argument("--inference-steps", type=int, default=50, help="flow Euler steps (sets the policy's latency)")
    parser.add_argument("--mode", default="blend", help="chunk execution mode of the executor")
    parser.add_argument("--realtime-priority", type=int, default=0, help="the executor's SCHED_FIFO priority (0: normal)")
    parser.add_argument("--policy-nice", type=int, default=5, help="the policy process's nice value")
    parser.add_argument("--subscriber-priority", type=int, default=0,
                        help="SCHED_FIFO priority of the measuring subscriber (a real-time robot driver); 0: normal")
    parser.add_argument("--out", default="", help="also write the JSON here")
    args = parser.parse_args(argv)
    env = isolated_env(200)
    import platform

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in [float(r) for r in args.rates.split(",")]:
            ckpt = make_checkpoint(Path(tmp), args.inference_steps, rate)
            results.append(run_rate(rate, ckpt, args.seconds, env, args.mode, args.realtime_priority, args.policy_nice,
                                    args.subscriber_priority))
            print(json.dumps(results[-1]), file=sys.stderr)
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "results": results}
    print(json.dumps(out, indent=2))
    print("\n| rate | period | received p50 / p99 / max (ms) | sent (header stamps) p50 / p99 / max (ms) "
          "| inference p50 (ms) | chunks | stale skipped |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        rc, se = r["received_interval_ms"], r["sent_interval_ms"]
        print(f"| {r['rate_hz']:g} Hz | {r['period_ms']} ms | {rc['p50']} / {rc['p99']} / {rc['max']} | "
              f"{se['p50']} / {se['p99']} / {se['max']} | {r['inference_ms']['p50']} | {r['chunks']} | "
              f"{r['stale_actions_skipped']} |")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
