"""``vla eval``: closed-loop rollouts of a checkpoint (and baselines) in a simulated suite.

Evaluation seeds start at ``EVAL_SEED_BASE``, far from the collection seeds (0 ...), so every
rollout is an unseen object / goal placement. For every agent (the checkpoint under each execution
mode, the scripted expert, a zero-action policy) it reports per-task success with a 95 % Wilson
interval, the average over tasks, success under held-out phrasings, episode lengths and policy
latency; files: ``results.json``, ``report.md``, ``success.png``, ``videos/<task>.gif``.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_core.env import make_suite

EVAL_SEED_BASE = 100_000


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class EvalJob:
    """One rollout."""

    agent: str            # "policy:<mode>", "expert" or "zero"
    task: str
    seed: int
    instruction: str
    split: str            # "train" or "heldout" phrasing
    video: bool = False


@dataclass
class EvalConfig:
    """What to evaluate and how."""

    suite: str
    checkpoint: str | None
    out: str
    episodes_per_task: int = 50
    heldout_episodes_per_task: int = -1   # -1: half of episodes_per_task
    tasks: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=lambda: ["receding"])
    baselines: list[str] = field(default_factory=lambda: ["expert", "zero"])
    max_steps: int = 200
    workers: int = 2
    video: bool = True
    backend: str = "torch"       # torch | onnxruntime | tensorrt (onnxruntime / tensorrt need an export directory)


_STATE: dict = {}


def _init_worker(cfg: EvalConfig) -> None:
    import torch

    torch.set_num_threads(1)
    _STATE["cfg"] = cfg
    _STATE["suite"] = make_suite(cfg.suite)
    _STATE["tasks"] = {}
    if cfg.checkpoint:
        from vla_core.runtime.backends import load_runtime

        _STATE["policy"] = load_runtime(cfg.checkpoint, cfg.backend)


def _task(name: str, image_size: int):
    key = (name, image_size)
    if key not in _STATE["tasks"]:
        _STATE["tasks"][key] = _STATE["suite"].make_task(name, image_size=image_size, max_steps=_STATE["cfg"].max_steps)
    return _STATE["tasks"][key]


def run_rollout(job: EvalJob) -> dict:
    """One closed-loop episode; returns success, length, latencies and (optionally) frames."""
    from vla_core.runtime.executors import make_executor

    policy = _STATE.get("policy")  # a PolicyRuntime: the same interface the ROS controller uses
    size = next(iter(policy.spec.cameras.values()))[0] if policy is not None else 64
    task = _task(job.task, size)
    obs = task.reset(job.seed, job.instruction)
    latencies, frames = [], []
    executor = None
    if job.agent.startswith("policy:"):
        policy.spec.check_compatible(task.spec, f"task {job.task}")
        executor = make_executor(job.agent.split(":", 1)[1], policy.horizon, policy.n_action_steps)
        executor.reset()

        def predict(o):
            t0 = time.perf_counter()
            batch = {"images": {c: o["images"][c][None] for c in policy.spec.cameras}, "proprio": o["proprio"][None],
                     "instruction": o["instruction"]}
            chunk = policy.predict_chunk(batch)[0]
            latencies.append(time.perf_counter() - t0)
            return chunk
    success, steps = False, 0
    for steps in range(1, task.max_steps + 1):  # noqa: B007 - steps is the episode length afterwards
        if job.video:
            frames.append(next(iter(obs["images"].values())))
        if executor is not None:
            action = executor.act(obs, predict)
        elif job.agent == "expert":
            action = task.expert_action()
        else:
            action = np.zeros(len(task.spec.action_names), np.float32)
        result = task.step(action)
        obs = result.observation
        if result.success:
            success = True
        if result.done:
            break
    return {"agent": job.agent, "task": job.task, "seed": job.seed, "split": job.split, "success": success,
            "length": steps, "latencies": latencies, "frames": frames if job.video else None}


def plan_jobs(cfg: EvalConfig) -> list[EvalJob]:
    """Every rollout to run: agents x tasks x seeds, plus held-out phrasings for the policy."""
    suite = make_suite(cfg.suite)
    tasks = cfg.tasks or suite.task_names
    n_held = cfg.episodes_per_task // 2 if cfg.heldout_episodes_per_task < 0 else cfg.heldout_episodes_per_task
    agents = ([f"policy:{m}" for m in cfg.modes] if cfg.checkpoint else []) + list(cfg.baselines)
    jobs = []
    for agent in agents:
        for task in tasks:
            train, held = suite.instructions(task, "train"), suite.instructions(task, "heldout")
            for i in range(cfg.episodes_per_task):
                jobs.append(EvalJob(agent, task, EVAL_SEED_BASE + i, train[i % len(train)], "train",
                                    video=cfg.video and i == 0 and agent in (agents[0], "expert")))
            if agent.startswith("policy:") and agent == agents[0]:
                for i in range(n_held):
                    jobs.append(EvalJob(agent, task, EVAL_SEED_BASE + i, held[i % len(held)], "heldout"))
    return jobs


def summarize(results: list[dict], tasks: list[str]) -> dict:
    """Per-agent, per-task success rates with intervals, averages, lengths and latency."""
    out = {}
    for agent in dict.fromkeys(r["agent"] for r in results):
        rs = [r for r in results if r["agent"] == agent]
        per_task = {}
        for task in tasks:
            tr = [r for r in rs if r["task"] == task and r["split"] == "train"]
            s = sum(r["success"] for r in tr)
            lo, hi = wilson_interval(s, len(tr))
            per_task[task] = {"success": s / len(tr) if tr else None, "ci95": [lo, hi], "episodes": len(tr),
                              "mean_length": float(np.mean([r["length"] for r in tr])) if tr else None}
        held = [r for r in rs if r["split"] == "heldout"]
        lat = np.array([x for r in rs for x in r["latencies"]]) * 1e3
        rates = [v["success"] for v in per_task.values() if v["success"] is not None]
        out[agent] = {
            "average_success": float(np.mean(rates)) if rates else None,
            "heldout_phrasing_success": (float(np.mean([r["success"] for r in held])) if held else None),
            "heldout_episodes": len(held),
            "tasks": per_task,
            "latency_ms": ({"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)), "calls": int(lat.size)}
                           if lat.size else None),
        }
    return out


def write_report(summary: dict, results: list[dict], cfg: EvalConfig, wall_s: float) -> Path:
    """results.json, report.md, success.png and one GIF per task."""
    import imageio.v2 as imageio
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(cfg.out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    tasks = list(next(iter(summary.values()))["tasks"])
    videos = {}
    for r in results:
        if r["frames"]:
            name = f"{r['task']}__{r['agent'].replace(':', '_')}.gif"
            frames = [np.kron(f, np.ones((3, 3, 1), np.uint8)) for f in r["frames"][::2]]  # 3x larger, 40 fps
            imageio.mimsave(out / "videos" / name, frames, duration=0.025, loop=0)
            videos.setdefault(r["task"], []).append((r["agent"], f"videos/{name}", r["success"]))
    meta = {"suite": cfg.suite, "checkpoint": cfg.checkpoint, "episodes_per_task": cfg.episodes_per_task,
            "max_steps": cfg.max_steps, "seed_base": EVAL_SEED_BASE, "wall_s": round(wall_s, 1)}
    (out / "results.json").write_text(json.dumps({"meta": meta, "agents": summary}, indent=2))

    fig, ax = plt.subplots(figsize=(max(8, len(tasks) * 1.1), 4.5))
    width = 0.8 / len(summary)
    for i, (agent, s) in enumerate(summary.items()):
        vals = [s["tasks"][t]["success"] or 0 for t in tasks]
        err = np.array([[v - s["tasks"][t]["ci95"][0], s["tasks"][t]["ci95"][1] - v] for t, v in zip(tasks, vals)]).T
        ax.bar(np.arange(len(tasks)) + i * width, vals, width, yerr=err, capsize=2,
               label=f"{agent} (avg {100 * (s['average_success'] or 0):.0f}%)")
    ax.set_xticks(np.arange(len(tasks)) + width * (len(summary) - 1) / 2)
    ax.set_xticklabels([t.removesuffix("-v3") for t in tasks], rotation=30, ha="right")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{cfg.suite}: {cfg.episodes_per_task} unseen seeds per task (95% Wilson intervals)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "success.png", dpi=110)
    plt.close(fig)

    agents = list(summary)
    lines = [f"# Evaluation: {cfg.suite}", "",
             f"Checkpoint: `{cfg.checkpoint}`  " if cfg.checkpoint else "Baselines only.  ",
             f"{cfg.episodes_per_task} episodes per task on unseen seeds (from {EVAL_SEED_BASE}), "
             f"at most {cfg.max_steps} steps; wall time {wall_s / 60:.1f} min.", "", "![success](success.png)", "",
             "| task | " + " | ".join(agents) + " |", "|---|" + "---|" * len(agents)]
    for t in tasks:
        cells = []
        for a in agents:
            v = summary[a]["tasks"][t]
            cells.append(f"{100 * v['success']:.0f}% [{100 * v['ci95'][0]:.0f}-{100 * v['ci95'][1]:.0f}] "
                         f"({v['mean_length']:.0f} steps)")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("| **average** | " + " | ".join(f"**{100 * summary[a]['average_success']:.1f}%**" for a in agents) + " |")
    lines.append("")
    for a in agents:
        s = summary[a]
        if s["heldout_phrasing_success"] is not None:
            lines.append(f"- {a}: held-out phrasings {100 * s['heldout_phrasing_success']:.1f}% over {s['heldout_episodes']} episodes")
        if s["latency_ms"]:
            lines.append(f"- {a}: policy latency p50 {s['latency_ms']['p50']:.1f} ms, p99 {s['latency_ms']['p99']:.1f} ms "
                         f"({s['latency_ms']['calls']} calls, 1 thread per worker)")
    lines += ["", "## Rollouts", ""]
    for t, vids in videos.items():
        lines.append(f"**{t}**: " + " ".join(f"![{a}]({p}) {a} {'success' if ok else 'failure'}" for a, p, ok in vids))
        lines.append("")
    (out / "report.md").write_text("\n".join(lines))
    return out


def evaluate(cfg: EvalConfig, progress: bool = True) -> dict:
    """Run every rollout of ``cfg`` (in ``workers`` processes) and write the report."""
    from tqdm import tqdm

    if cfg.checkpoint:  # fail fast, in this process, on a bad checkpoint or export
        if (Path(cfg.checkpoint) / "export.json").is_file():
            from vla_core.export import read_export

            read_export(cfg.checkpoint)
        else:
            from vla_core.checkpoint import read_checkpoint_meta

            read_checkpoint_meta(cfg.checkpoint)
    jobs = plan_jobs(cfg)
    t0 = time.perf_counter()
    results = []
    bar = tqdm(total=len(jobs), desc="eval", unit="ep", disable=not progress, dynamic_ncols=True)
    if cfg.workers <= 1:
        _init_worker(cfg)
        it = map(run_rollout, jobs)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(cfg.workers, initializer=_init_worker, initargs=(cfg,))
        it = pool.imap_unordered(run_rollout, jobs, chunksize=1)
    try:
        for r in it:
            results.append(r)
            bar.update(1)
            done = [x for x in results if x["agent"].startswith("policy")] or results
            bar.set_postfix(success=f"{np.mean([x['success'] for x in done]):.2f}")
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    tasks = list(dict.fromkeys(j.task for j in jobs))
    summary = summarize(results, tasks)
    write_report(summary, results, cfg, time.perf_counter() - t0)
    return summary
