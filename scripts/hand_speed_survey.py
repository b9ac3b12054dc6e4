"""Survey how fast the simulated Sawyer's measured hand moves in normal operation (the e-stop's speed limit).

    python scripts/hand_speed_survey.py --episodes 20 --hold 1,8,16,40

The safety monitor latches the e-stop when the hand position on /joint_states moves faster than
``max_state_speed`` (``config/sawyer/safety_monitor.yaml``): that is meant for a sensor fault or an
unannounced teleport, never for what the arm does. Meta-World's hand follows a mocap target through a
weld; while an object blocks the hand the target runs ahead, and when the hand comes free it catches
up faster than any command moves the target (about 0.8 m/s). This script drives every MT10 task with
random commands in [-1, 1] (a new one every ``hold`` steps: longer holds push longer against objects),
measures the hand's speed per 80 Hz step and compares the largest with the configured limit.
Prints one line per task and hold, then a JSON summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from vla_sim.metaworld_suite import FPS, MT10_TASKS, MetaWorldTask

CONFIG = Path(__file__).resolve().parents[1] / "src" / "vla_bringup" / "config" / "sawyer" / "safety_monitor.yaml"


def survey(tasks: list[str], holds: list[int], episodes: int, steps: int = 200) -> dict:
    """Per task and hold: steps measured, 99.9th percentile and largest hand speed (m/s)."""
    rng = np.random.default_rng(0)
    results = {}
    for name in tasks:
        task = MetaWorldTask(name, render=False)
        for hold in holds:
            speeds = []
            for episode in range(episodes):
                previous = np.asarray(task.reset(1000 * hold + episode, "survey")["proprio"][:3], float)
                for k in range(steps):
                    if k % hold == 0:
                        action = rng.uniform(-1.0, 1.0, 4)
                    result = task.step(action, render=False)
                    hand = np.asarray(result.observation["proprio"][:3], float)
                    speeds.append(float(np.linalg.norm(hand - previous) * FPS))
                    previous = hand
                    if result.done:
                        break
            s = np.array(speeds)
            results[f"{name} hold {hold}"] = {"steps": len(s), "p99.9": round(float(np.percentile(s, 99.9)), 3),
                                              "max": round(float(s.max()), 3)}
            print(f"{name:24s} hold {hold:3d}: {len(s):6d} steps, p99.9 {np.percentile(s, 99.9):.2f} m/s, "
                  f"max {s.max():.2f} m/s", flush=True)
        task.close()
    return results


def main() -> int:
    """Entry point: survey, then compare the largest speed with the configured limit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and hold")
    parser.add_argument("--hold", default="1,8,16,40", help="comma-separated: steps each random command is held")
    parser.add_argument("--tasks", default=",".join(MT10_TASKS), help="comma-separated Meta-World tasks")
    args = parser.parse_args()
    results = survey(args.tasks.split(","), [int(h) for h in args.hold.split(",")], args.episodes)
    limit = yaml.safe_load(CONFIG.read_text())["safety_monitor"]["ros__parameters"]["max_state_speed"]
    largest = max(r["max"] for r in results.values())
    print(json.dumps({"steps": sum(r["steps"] for r in results.values()), "max_m_s": largest,
                      "max_state_speed": limit, "margin": round(limit / largest, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
