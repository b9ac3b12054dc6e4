"""The README's main job: the simulated robot driven by the default policy through the real ROS nodes.

    make demo            (or: python -m vla_bringup.demo [--robot aloha] [--instructions "open the drawer" ...])
    make demo ROBOT=aloha

1. The policy: the trained default policy shipped with this package (``policies/<robot>/``), else -
   or with ``--from-recipe`` - the one made by the robot's recipe and cached in
   ``$VLA_CACHE`` (default ``~/.cache/vla``), created on first use: scripted demonstrations of the
   demo tasks (``vla collect``) and a training run from ``config/<robot>/demo_policy.yaml`` (Sawyer:
   about 8 minutes on a 2-core CPU; ALOHA: about an hour with its collection).
   ``policies/<robot>/README.md`` names the command that produced the shipped one.
2. Bring up robot.yaml (sim_robot + vla_policy + vla_controller + safety_monitor) under the
   ``vla launch`` supervisor, then for each instruction reset the episode through sim_robot's
   ~/reset service and wait for it to end. The e-stop is never released by the demo.
3. Print per-instruction success, control-loop timing (intervals of the commands the robot received)
   and the safety monitor's interventions, and save a video per instruction from the 256 px viewer
   camera with the instruction and the outcome written on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DemoRobot:
    """What the demo needs to know of a robot: its suite and tasks, how its default policy is made, where commands go."""

    suite: str
    tasks: list[str]
    instructions: list[str]
    episodes_per_task: int
    train_steps: int
    camera: str               # the camera demonstrations are recorded with ('' = the suite's default)
    command_topic: str        # the robot's command topic (the control-loop timing is measured there)
    command_type: str         # its message type, package/Name


ROBOTS = {
    "sawyer": DemoRobot("metaworld-mt10", ["drawer-open-v3", "drawer-close-v3", "button-press-topdown-v3", "window-close-v3"],
                        ["open the drawer", "close the drawer", "press the button", "close the window"], 25, 3000, "",
                        "/robot/cmd_twist", "geometry_msgs/TwistStamped"),
    "aloha": DemoRobot("aloha", ["transfer-cube", "insertion"],
                       ["transfer the cube to the other arm", "insert the peg into the socket"], 50, 8000,
                       "top,left_wrist,right_wrist",
                       "/joint_trajectory_controller/joint_trajectory", "trajectory_msgs/JointTrajectory"),
}


def cache_dir() -> Path:
    """Where the default policy and its data live."""
    return Path(os.environ.get("VLA_CACHE", Path.home() / ".cache" / "vla"))


def package_file(relative: str | Path) -> Path:
    """A file of this package: installed (share/vla_bringup) if there, else in the source tree."""
    from vla_core.launch.graph import find_share

    share = find_share("vla_bringup")
    if share is not None and (share / relative).exists():
        return share / relative
    return Path(__file__).resolve().parents[1] / relative


def shipped_policy(robot: str) -> Path | None:
    """The trained default policy shipped for ``robot`` (``policies/<robot>/``), or None."""
    ckpt = package_file(Path("policies") / robot)
    return ckpt if (ckpt / "model.safetensors").is_file() else None


def ensure_default_policy(progress: bool = True, robot: str = "sawyer", from_recipe: bool = False) -> Path:
    """The robot's default checkpoint: the shipped one, else (or if ``from_recipe``) the recipe's.

    The recipe's is cached in ``$VLA_CACHE`` and created on first use (collect + train).
    """
    from vla_core.collect import collect
    from vla_core.config import ExperimentConfig
    from vla_core.training.trainer import Trainer

    shipped = None if from_recipe else shipped_policy(robot)
    if shipped is not None:
        return shipped
    spec = ROBOTS[robot]
    root = cache_dir() / ("default_policy" if robot == "sawyer" else f"default_policy_{robot}")
    ckpt = root / "run" / "best"
    if (ckpt / "model.safetensors").is_file():
        return ckpt
    takes = "about 8 minutes" if robot == "sawyer" else "about an hour"
    print(f"no default {robot} policy cached in {root}: creating it ({takes} on a 2-core CPU)")
    collect(spec.suite, root / "data", spec.episodes_per_task, spec.tasks, workers=2, progress=progress,
            max_steps=make_suite_max_steps(spec.suite), camera=spec.camera or None)
    config_file = package_file(Path("config") / robot / "demo_policy.yaml")
    cfg = ExperimentConfig.load(config_file, [f"--data.path={root / 'data'}", f"--train.output_dir={root / 'run'}",
                                              f"--train.steps={spec.train_steps}"])
    Trainer(cfg, progress=progress).run()
    return ckpt


def make_suite_max_steps(suite: str) -> int:
    """The suite's own episode length."""
    from vla_core.env import make_suite

    return make_suite(suite).max_steps


class DemoDriver:
    """An rclpy node that resets episodes, watches them end, and collects timing, safety and viewer frames.

    It never releases the safety monitor's e-stop: a latched e-stop ends the demo, as it would stop
    an operator. Scene resets are announced by the simulator (/episode/start), so they are no fault.
    """

    def __init__(self, robot: DemoRobot = ROBOTS["sawyer"]):
        import importlib

        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image
        from std_msgs.msg import Empty

        from vla_msgs.msg import SafetyStatus
        from vla_msgs.srv import ResetEpisode
        from vla_ros import episode

        self.rclpy = rclpy
        rclpy.init()
        self.node = rclpy.create_node("vla_demo")
        self.ResetEpisode = ResetEpisode
        self.reset_client = self.node.create_client(ResetEpisode, "/sim_robot/reset")
        self.pub_estop = self.node.create_publisher(Empty, "/emergency_stop", 10)
        self.episode = episode.listen(self.node)   # stale end-of-episode messages never end the next episode
        self.cmd_times: list[float] = []
        self.frames: list[np.ndarray] = []
        self.status = None
        self.record = False
        self.record_video = True
        package, name = robot.command_type.split("/")
        command_type = getattr(importlib.import_module(f"{package}.msg"), name)
        self.node.create_subscription(command_type, robot.command_topic, self._on_cmd, 50)
        self.node.create_subscription(SafetyStatus, "/safety/status", lambda m: setattr(self, "status", m), 10)
        self.node.create_subscription(Image, "/viewer/image_raw", self._on_image, 5)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _on_cmd(self, _msg):
        if self.record:
            self.cmd_times.append(time.monotonic())

    def _on_image(self, msg):
        if self.record and self.record_video:
            from vla_core.image_codec import image_to_numpy

            self.frames.append(np.array(image_to_numpy(msg)))

    def run_episode(self, instruction: str, seed: int, timeout: float, fault_at: float | None = None,
                    video: bool = True) -> dict:
        """Reset with ``instruction`` and wait for the episode to end.

        ``fault_at``: seconds in, press the e-stop; ``video``: keep the viewer's frames (decoded only then).
        """
        if not self.reset_client.wait_for_service(timeout_sec=60):
            raise RuntimeError("sim_robot's ~/reset service did not appear")
        self.cmd_times, self.frames = [], []
        self.record_video = video
        future = self.reset_client.call_async(self.ResetEpisode.Request(instruction=instruction, seed=seed))
        while not future.done():
            time.sleep(0.01)
        result = future.result()
        if not result.success:
            return {"instruction": instruction, "success": False, "error": result.message}
        self.episode.restart()   # after the reply: the old episode's queued flags are ignored from here
        self.record = True
        t0 = time.monotonic()
        pressed = False
        while not self.episode.done and time.monotonic() - t0 < timeout:
            if fault_at is not None and not pressed and time.monotonic() - t0 >= fault_at:
                self.pub_estop.publish(self._empty())
                pressed = True
            if self.status is not None and self.status.state == 2 and pressed and time.monotonic() - t0 > fault_at + 3.0:
                break  # latched: the robot holds until an operator resets it; nothing more will happen
            time.sleep(0.05)
        self.record = False
        intervals = np.diff(self.cmd_times) * 1e3 if len(self.cmd_times) > 2 else np.zeros(1)
        return {"instruction": instruction, "task": result.task, "seed": seed, "success": self.episode.success,
                "seconds": round(time.monotonic() - t0, 1), "commands": len(self.cmd_times),
                "command_interval_ms": {"p50": round(float(np.percentile(intervals, 50)), 2),
                                        "p99": round(float(np.percentile(intervals, 99)), 2)},
                "frames": list(self.frames), "fault": "e-stop" if pressed else None}

    @staticmethod
    def _empty():
        from std_msgs.msg import Empty

        return Empty()

    def close(self):
        """Stop the node."""
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def safety_report(status) -> dict | None:
    """The monitor's counters and reasons; ``interventions`` sums everything it altered, rejected, held or stopped."""
    if status is None:
        return None
    counts = {"clipped": status.commands_clipped, "rejected": status.commands_rejected,
              "watchdog_holds": status.watchdog_holds, "estops": status.estop_count}
    return {"state": ("OK", "LIMITED", "ESTOP")[status.state], "received": status.commands_received,
            "forwarded": status.commands_forwarded, **counts, "interventions": int(sum(counts.values())),
            "reasons": list(status.reasons)}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``make demo``."""
    parser = argparse.ArgumentParser(prog="python -m vla_bringup.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="", help="use this checkpoint instead of the default policy")
    parser.add_argument("--from-recipe", action="store_true",
                        help="use the policy made by config/<robot>/demo_policy.yaml (cached; created on first use, "
                             "collect + train) instead of the shipped one")
    parser.add_argument("--robot", default="sawyer", choices=sorted(ROBOTS), help="the simulated robot (config/<robot>/)")
    parser.add_argument("--instructions", nargs="*", default=None, help="default: one per demo task of the robot")
    parser.add_argument("--seed", type=int, default=100_000, help="first evaluation seed of every instruction (never used for collection)")
    parser.add_argument("--episodes-per-instruction", type=int, default=1, metavar="N",
                        help="run each instruction on seeds SEED .. SEED+N-1 (the seeds vla eval uses); "
                             "a video of the first only")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per episode")
    parser.add_argument("--fault", type=float, default=None, metavar="SECONDS",
                        help="press the e-stop this many seconds into the first episode (shows that the fault, and "
                             "only it, is reported; the demo then ends, as the latch needs an operator)")
    parser.add_argument("--out", default="runs/demo", help="where the rollout videos and the summary go")
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from vla_core.errors import VLAError
    from vla_core.video import save_rollout_gif

    robot = ROBOTS[args.robot]
    instructions = args.instructions or robot.instructions
    try:
        ckpt = Path(args.checkpoint) if args.checkpoint else ensure_default_policy(robot=args.robot,
                                                                                  from_recipe=args.from_recipe)
    except VLAError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = json.loads((ckpt / "spec.json").read_text())
    camera = ",".join(spec["cameras"])
    log = open(out / "nodes.log", "w")
    launch_args = [f"robot:={args.robot}", f"checkpoint:={ckpt}", f"camera:={camera}", "viewer_rate:=10.0"]
    launch = subprocess.Popen([sys.executable, "-m", "vla_core.cli", "launch", "robot", *launch_args],
                              stdout=log, stderr=subprocess.STDOUT)
    print(f"robot.launch (vla launch robot {' '.join(launch_args)}); node output in {out / 'nodes.log'}")
    driver = DemoDriver(robot)
    results, videos = [], []
    n = max(1, args.episodes_per_instruction)
    latched = False
    try:
        for i, text in enumerate(instructions):
            for j in range(n):
                fault = args.fault if i == 0 and j == 0 else None
                r = driver.run_episode(text, args.seed + j, args.timeout, fault_at=fault, video=j == 0)
                results.append(r)
                verdict = "success" if r["success"] else ("refused: " + r["error"] if "error" in r else "failure")
                label = f"'{text}'" + (f" seed {args.seed + j}" if n > 1 else "")
                print(f"  {label}: {verdict}"
                      + (f" in {r['seconds']} s, {r['commands']} commands, interval p50 {r['command_interval_ms']['p50']} "
                         f"ms p99 {r['command_interval_ms']['p99']} ms" if "error" not in r else "")
                      + (" (e-stop pressed)" if r.get("fault") else ""))
                if r.get("frames"):
                    name = f"rollout_{i}_{r['task']}.gif"
                    save_rollout_gif(out / name, r["frames"], text, r["success"], fps=10.0)
                    videos.append(name)
                r.pop("frames", None)
                if "error" in r:
                    break  # a refused instruction is refused on every seed
                if r.get("fault"):
                    latched = True  # the e-stop is latched: only an operator's ~/reset releases it
                    break
            if latched:
                break
        status = driver.status
    finally:
        driver.close()
        launch.send_signal(2)
        try:
            launch.wait(timeout=20)
        except subprocess.TimeoutExpired:
            launch.kill()
        log.close()
    if videos:
        import shutil

        shutil.copyfile(out / videos[0], out / "rollout.gif")
    safety = safety_report(status)
    from vla_core.evaluation import wilson_interval

    per_instruction = {}
    for text in dict.fromkeys(r["instruction"] for r in results if "error" not in r):
        wins = [r["success"] for r in results if r["instruction"] == text]
        per_instruction[text] = {"episodes": len(wins), "success": float(np.mean(wins)),
                                 "ci95": list(wilson_interval(int(sum(wins)), len(wins)))}
    summary = {"checkpoint": str(ckpt), "episodes": results,
               "success_rate": float(np.mean([r["success"] for r in results])) if results else 0.0,
               "per_instruction": per_instruction, "safety": safety, "videos": videos}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if n > 1:
        for text, v in per_instruction.items():
            print(f"  '{text}': {100 * v['success']:.0f} % [{100 * v['ci95'][0]:.0f}-{100 * v['ci95'][1]:.0f}] "
                  f"of {v['episodes']} seeds")
    print(f"success {sum(r['success'] for r in results)}/{len(results)}")
    if safety is not None:
        print(f"safety monitor: {safety['interventions']} interventions (clipped {safety['clipped']}, rejected "
              f"{safety['rejected']}, watchdog holds {safety['watchdog_holds']}, e-stops {safety['estops']}) over "
              f"{safety['received']} commands; state {safety['state']}"
              # the start-up hold before the robot's first state is not an intervention: reasons only with one
              + (f"; reasons: {safety['reasons']}" if safety['reasons'] and safety['interventions'] else ""))
    print(f"rollout videos: {', '.join(str(out / v) for v in videos)}; summary: {out / 'summary.json'}")
    return 0 if results and all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
