"""Replay a joint robot's scripted demonstrations through its safety monitor: how often is normal operation clamped?

    python scripts/replay_experts_through_monitor.py --robot aloha --seeds 3

Each control step the expert's action goes through ``SafetyMonitor.filter_trajectory`` as the controller sends
it (one point due one period later) with the robot's parameter file (``config/<robot>/safety_monitor.yaml``),
the simulator executes what the monitor forwards, and the measured joints are fed back. A quiet monitor
clamps nothing here and never latches. Prints one line per task and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from vla_core.env import make_suite
from vla_safety.joint_limits import load_joint_limits
from vla_safety.monitor import ESTOP, SafetyLimits, SafetyMonitor

CONFIG = Path(__file__).resolve().parents[1] / "src" / "vla_bringup" / "config"
SUITES = {"aloha": "aloha"}


def replay(robot: str, seeds: int) -> dict:
    path = CONFIG / robot / "safety_monitor.yaml"
    params = yaml.safe_load(path.read_text())["safety_monitor"]["ros__parameters"]
    joint_limits = load_joint_limits(path)
    limits = SafetyLimits(**{k: v for k, v in params.items() if k != "joint_limits"})
    suite = make_suite(SUITES[robot])
    results = {}
    for name in suite.task_names:
        task = suite.make_task(name, image_size=8, render=False)
        period = 1.0 / task.spec.fps
        steps = clamped = estops = 0
        largest = 0.0
        for seed in range(seeds):
            monitor = SafetyMonitor(limits, joint_limits=joint_limits)
            obs = task.reset(seed)
            now, previous = 0.0, np.asarray(obs["proprio"], float)
            monitor.observe_state(task.spec.proprio_names, list(previous), now, velocities=[0.0] * len(previous))
            for _ in range(task.max_steps):
                action = task.expert_action()
                out = monitor.filter_trajectory(task.spec.action_names, [period], [action], now + 1e-3, now + 1e-3)
                steps += 1
                if out.hold:
                    break
                change = float(np.abs(out.positions[0] - action).max())
                clamped += change > 1e-9
                largest = max(largest, change)
                result = task.step(out.positions[0], render=False)
                now += period
                position = np.asarray(result.observation["proprio"], float)
                monitor.observe_state(task.spec.proprio_names, list(position), now,
                                      velocities=list((position - previous) / period))
                previous = position
                if result.done:
                    break
            estops += monitor.state == ESTOP
        task.close()
        results[name] = {"steps": steps, "clamped": int(clamped), "largest_change": round(largest, 6), "estops": int(estops)}
        print(f"{name}: {clamped} of {steps} steps clamped (largest change {largest:.4f}), {estops} e-stops")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", default="aloha", choices=sorted(SUITES))
    parser.add_argument("--seeds", type=int, default=3, help="episodes per task (seeds 0 ..)")
    args = parser.parse_args()
    print(json.dumps(replay(args.robot, args.seeds), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
