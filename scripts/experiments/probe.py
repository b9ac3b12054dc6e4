"""One recorded experiment: train on a subset of a collected suite, evaluate, append a row to docs/experiments.md.

    python scripts/experiments/probe.py NAME --data data/mt10 --tasks reach-v3,push-v3 \
        --train "--config src/vla_core/config/mt10_cpu.yaml --train.steps=5000" \
        --eval "--episodes-per-task 40 --modes sync" --note "what changed"

Every row names the exact commands, the machine, wall times, training samples/s, and per-task
success with 95 % Wilson intervals; runs/<NAME>/ keeps the checkpoint and the evaluation report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "experiments.md"
HEADER = """# Experiments

Every row is one run of `scripts/experiments/probe.py` (the command is in the row); the machine is named.
Success: unseen seeds (from 100000), 95 % Wilson intervals in brackets. Change one thing at a time.

| name | change | tasks | train | samples/s | eval | success per task | average [95 % CI] | machine | command |
|---|---|---|---|---|---|---|---|---|---|
"""


def insert_rows(table: Path, rows: list[str]) -> None:
    """Add ``rows`` at the end of the table (the first block of ``|`` lines), above the notes that follow it."""
    lines = table.read_text().splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    while at < len(lines) and lines[at].startswith("|"):
        at += 1
    lines[at:at] = rows
    table.write_text("\n".join(lines) + "\n")


def run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` (output to ``log``); returns wall seconds; stops the experiment on failure."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        f.write(" ".join(shlex.quote(c) for c in cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"{cmd[:3]} failed ({r.returncode}); see {log}")
    return time.perf_counter() - t0


def subset(data: Path, tasks: list[str], out: Path, per_task: int = 0) -> Path:
    """A directory of links to the episodes of ``tasks`` (episodes are named <task>__<seed>.h5);
    ``per_task`` > 0 keeps the first that many seeds of each task."""
    out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, int] = {}
    for f in sorted(data.glob("*.h5")):
        task = f.name.split("__")[0]
        if (not tasks or task in tasks) and (per_task <= 0 or kept.get(task, 0) < per_task):
            kept[task] = kept.get(task, 0) + 1
            link = out / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
    return out


def main() -> int:
    """Entry point."""
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--data", required=True)
    p.add_argument("--tasks", default="", help="comma-separated task subset (default: every task in --data)")
    p.add_argument("--episodes-per-task", type=int, default=0, help="first N seeds of each task (default: all)")
    p.add_argument("--train", default="", help="extra arguments of vla train")
    p.add_argument("--eval", default="", help="extra arguments of vla eval")
    p.add_argument("--note", default="")
    args = p.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    run_dir = ROOT / "runs" / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    data = subset(ROOT / args.data, tasks, run_dir / "data", args.episodes_per_task) if tasks or args.episodes_per_task else ROOT / args.data
    vla = [sys.executable, "-m", "vla_core.cli"]
    train_cmd = [*vla, "train", *shlex.split(args.train), f"--data.path={data}", f"--train.output_dir={run_dir / 'train'}",
                 "--no-progress"]
    train_s = run(train_cmd, run_dir / "train.log")
    result = json.loads((run_dir / "train.log").read_text().strip().splitlines()[-1])
    eval_cmd = [*vla, "eval", "--checkpoint", str(run_dir / "train" / "best"), "--out", str(run_dir / "eval"),
                "--baselines", "", "--no-progress", *(["--tasks", ",".join(tasks)] if tasks else []), *shlex.split(args.eval)]
    eval_s = run(eval_cmd, run_dir / "eval.log")
    summary = json.loads((run_dir / "eval" / "results.json").read_text())["agents"]
    machine = f"{platform.machine()} {os.cpu_count()} cores" + (" (GPU)" if os.environ.get("CUDA_VISIBLE_DEVICES") else "")
    if not TABLE.exists():
        TABLE.parent.mkdir(parents=True, exist_ok=True)
        TABLE.write_text(HEADER)
    command = "python scripts/experiments/probe.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    rows = []
    for agent, s in summary.items():
        per_task = ", ".join(f"{t.removesuffix('-v3')} {100 * v['success']:.0f}" for t, v in s["tasks"].items())
        lo, hi = s["ci95"]
        rows.append(f"| {args.name} ({agent}) | {args.note} | {len(s['tasks'])} | {train_s / 60:.0f} min, {result['step']} steps "
                    f"| {result['samples_per_s']:.0f} | {eval_s / 60:.0f} min | {per_task} | **{100 * s['average_success']:.1f} %** "
                    f"[{100 * lo:.0f}-{100 * hi:.0f}] | {machine} | `{command}` |")
    insert_rows(TABLE, rows)
    with open(run_dir / "commands.txt", "w") as f:
        f.write(" ".join(shlex.quote(c) for c in train_cmd) + "\n" + " ".join(shlex.quote(c) for c in eval_cmd) + "\n")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
