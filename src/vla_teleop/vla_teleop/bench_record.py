"""``ros2 run vla_teleop bench_record``: whether the collector keeps up with what a real robot produces.

Two measurements:

1. The episode writer alone (no ROS): frames/s and MB/s of camera data for 1 and 3 cameras at
   640x480, per compression, with bytes per frame on disk.
2. A recording session over real DDS: this process publishes ``--cameras`` synthetic 640x480
   camera streams at 30 Hz (moving shapes on a gradient with sensor noise, so compression has real
   work), joint states at 100 Hz and teleop commands at 30 Hz; ``teleop_collector`` runs in its own
   process and records one episode of ``--seconds``. Reported: frames recorded against the ticks of
   the session, frames dropped by the writer queue, the longest interval between the collector's
   sampling ticks (a stalled callback shows there), and the collector's peak resident memory
   (VmHWM) - which must stay flat however long the episode.

A benchmark, not a test: run it on the machine the robot records with, report medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from vla_ros.bench import isolated_env, spawn_node

H, W = 480, 640


def synthetic_frames(n: int, seed: int) -> list[np.ndarray]:
    """``n`` camera-like frames: a gradient, a moving block and noise (compresses like a real scene, not like zeros)."""
    rng = np.random.default_rng(seed)
    base = np.zeros((H, W, 3), np.uint8)
    base[..., 0] = np.linspace(30, 200, W, dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(60, 160, H, dtype=np.uint8)[:, None]
    base[..., 2] = 90
    frames = []
    for k in range(n):
        f = base.copy()
        x = (40 + 13 * k) % (W - 80)
        f[200:280, x:x + 80] = (220, 40, 40)
        f += rng.integers(0, 6, (H, W, 3), dtype=np.uint8)
        frames.append(f)
    return frames


def bench_writer(cameras: int, compression: str, frames: int, directory: Path) -> dict:
    """Synchronous write speed of the one EpisodeWriter."""
    from vla_core.data.episode import EpisodeFile, EpisodeWriter

    pool = synthetic_frames(16, cameras)
    w = EpisodeWriter(directory / f"w{cameras}_{compression.replace(':', '')}.h5", fps=30, instruction="bench",
                      compression=compression)
    t0 = time.perf_counter()
    for k in range(frames):
        w.add_frame({f"cam{c}": pool[(k + c) % len(pool)] for c in range(cameras)}, np.zeros(7), np.zeros(7))
    path = w.finish()
    dt = time.perf_counter() - t0
    stored = sum(EpisodeFile(path).stored_bytes.values()) / frames / cameras
    return {"cameras": cameras, "compression": compression, "frames_per_s": round(frames / dt, 1),
            "camera_MB_per_s": round(frames * cameras * H * W * 3 / dt / 1e6, 1),
            "kB_per_camera_frame": round(stored / 1e3, 1), "needed_frames_per_s": 30}


def _vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def bench_session(cameras: int, seconds: float, compression: str, directory: Path) -> dict:
    """One recorded episode over DDS with ``cameras`` 640x480 streams at 30 Hz."""
    import rclpy
    from geometry_msgs.msg import TwistStamped
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64, String
    from std_srvs.srv import SetBool, Trigger

    from vla_core.image_codec import numpy_to_image_fields

    env = isolated_env(120)
    names = [f"cam{c}" for c in range(cameras)]
    log = open(directory / "collector.log", "w")  # noqa: SIM115 - closed below
    collector = spawn_node("vla_teleop.teleop_collector_node", "teleop_collector",
                           {"out_dir": str(directory / "episodes"), "rate": 30.0, "cameras": names, "instruction": "bench",
                            "compression": compression, "min_frames": 1, "max_age": 0.5}, env, output=log)
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("bench_record", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    pubs = [node.create_publisher(Image, f"{n}/image_raw", 5) for n in names]
    pub_js = node.create_publisher(JointState, "/joint_states", 10)
    pub_tw = node.create_publisher(TwistStamped, "/robot/cmd_twist", 10)
    pub_gr = node.create_publisher(Float64, "/robot/gripper_cmd", 10)
    pub_in = node.create_publisher(String, "/instruction", 1)
    start_cli = node.create_client(Trigger, "/teleop_collector/start")
    stop_cli = node.create_client(SetBool, "/teleop_collector/stop")
    images = [Image(**numpy_to_image_fields(f, "rgb8")) for f in synthetic_frames(8, 0)]
    stop = threading.Event()
    published = {"frames": 0}

    def publish():
        t, k = time.monotonic(), 0
        while not stop.is_set():
            stamp = node.get_clock().now().to_msg()
            js = JointState(name=[f"j{i}" for i in range(7)], position=[0.01 * k] * 7)
            js.header.stamp = stamp
            pub_js.publish(js)
            if k % 3 == 0:  # 100 Hz state, 33 Hz cameras and commands
                for c, pub in enumerate(pubs):
                    msg = images[(k // 3 + c) % len(images)]
                    msg.header.stamp = stamp
                    pub.publish(msg)
                tw = TwistStamped()
                tw.header.stamp = stamp
                tw.twist.linear.x = 0.1
                pub_tw.publish(tw)
                pub_gr.publish(Float64(data=1.0))
                published["frames"] += 1
            k += 1
            t += 0.01
            time.sleep(max(0.0, t - time.monotonic()))

    def call(client, request, timeout=30.0):
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done():
            raise RuntimeError(f"no answer from {client.srv_name}; see {directory / 'collector.log'}")
        return future.result()

    try:
        for client in (start_cli, stop_cli):
            if not client.wait_for_service(timeout_sec=60):
                raise RuntimeError(f"teleop_collector did not come up; see {directory / 'collector.log'}")
        pub_in.publish(String(data="bench"))
        threading.Thread(target=publish, daemon=True).start()
        time.sleep(2.0)  # inputs flowing
        rss_before = _vm(collector.pid, "VmRSS:")
        answer = call(start_cli, Trigger.Request())
        if not answer.success:
            raise RuntimeError(f"start refused: {answer.message}")
        t0, samples = time.monotonic(), []
        while time.monotonic() - t0 < seconds:
            executor.spin_once(timeout_sec=0.5)
            samples.append((round(time.monotonic() - t0, 1), _vm(collector.pid, "VmRSS:")))
        answer = call(stop_cli, SetBool.Request(data=True))
        elapsed = time.monotonic() - t0
        peak = _vm(collector.pid, "VmHWM:")
    finally:
        stop.set()
        collector.send_signal(2)
        code = collector.wait(timeout=120)
        log.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    from vla_core.data.episode import EpisodeFile

    episode = EpisodeFile(next((directory / "episodes").glob("*.h5")))
    rss = [r for _, r in samples]
    # memory growth over the second half of the episode: flat when nothing accumulates
    half = [r for t, r in samples if t >= seconds / 2]
    return {"cameras": cameras, "seconds": round(elapsed, 1), "compression": compression,
            "frames_recorded": len(episode), "ticks_expected": int(elapsed * 30),
            "dropped_frames": episode.dropped_frames, "collector_answer": answer.message,
            "collector_rss_MB": {"before": round(rss_before / 2**20), "median": round(float(np.median(rss)) / 2**20),
                                 "max": round(max(rss) / 2**20)},
            "collector_peak_MB": round(peak / 2**20), "rss_growth_second_half_MB": round((half[-1] - half[0]) / 2**20, 1),
            "camera_MB_per_s": round(cameras * 30 * H * W * 3 / 1e6, 1),
            "file_MB": round(episode.path.stat().st_size / 1e6), "collector_exit_code": code}


def main(argv: list[str] | None = None) -> int:
    """Entry point of bench_record."""
    parser = argparse.ArgumentParser(prog="bench_record", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the recorded episode")
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--compression", default="lzf", help="lzf, gzip, none or jpeg:QUALITY")
    parser.add_argument("--writer-frames", type=int, default=150, help="frames per writer-only measurement (0: skip)")
    parser.add_argument("--out", default="", help="also write the JSON here")
    args = parser.parse_args(argv)
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory() as tmp:
        if args.writer_frames:
            out["writer"] = [bench_writer(c, comp, args.writer_frames, Path(tmp))
                             for c in (1, 3) for comp in ("lzf", "jpeg:90", "none")]
            for r in out["writer"]:
                print(json.dumps(r), file=sys.stderr)
        if args.seconds > 0:
            session_dir = Path(tmp) / "session"
            session_dir.mkdir()
            out["session"] = bench_session(args.cameras, args.seconds, args.compression, session_dir)
    print(json.dumps(out, indent=2))
    if "writer" in out:
        print("\n| cameras | compression | frames/s | camera MB/s | kB per camera frame |")
        print("|---|---|---|---|---|")
        for r in out["writer"]:
            print(f"| {r['cameras']} | {r['compression']} | {r['frames_per_s']} | {r['camera_MB_per_s']} | {r['kB_per_camera_frame']} |")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
