"""``vla collect``: scripted demonstrations in a simulated suite, written with the one EpisodeWriter.

Episodes are named ``<task>__<seed>.h5``; re-running fills in only what is missing (resumable).
Failed expert episodes are kept, marked ``success=False`` (training skips nothing silently: use
``vla data inspect`` to see them). Several worker processes run in parallel.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

from vla_core.data.episode import EpisodeWriter
from vla_core.env import make_suite


@dataclass
class CollectJob:
    """One episode to record."""

    suite: str
    task: str
    seed: int
    path: str
    image_size: int
    max_steps: int
    extra_steps: int
    camera: str | None = None   # None: the suite's default camera


def episode_path(out: Path, task: str, seed: int) -> Path:
    """File name of one collected episode."""
    return out / f"{task}__{seed:05d}.h5"


_TASKS: dict = {}


def _worker_init() -> None:
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")


def run_job(job: CollectJob) -> tuple[str, int, bool, int]:
    """Record one expert episode; returns (task, seed, success, frames)."""
    suite = make_suite(job.suite)
    key = (job.suite, job.task, job.image_size, job.max_steps, job.camera)
    if key not in _TASKS:
        kwargs = {"camera": job.camera} if job.camera else {}
        _TASKS[key] = suite.make_task(job.task, image_size=job.image_size, max_steps=job.max_steps, **kwargs)
    task = _TASKS[key]
    phrasings = suite.instructions(job.task, "train")
    instruction = phrasings[job.seed % len(phrasings)]
    writer = EpisodeWriter(job.path, fps=task.spec.fps, instruction=instruction, robot=task.spec.robot, task=job.task,
                           action_names=task.spec.action_names, proprio_names=task.spec.proprio_names)
    try:
        obs = task.reset(job.seed, instruction)
        success, after = False, 0
        for _ in range(job.max_steps):
            action = task.expert_action()
            writer.add_frame(obs["images"], obs["proprio"], action)
            result = task.step(action)
            obs = result.observation
            success = success or result.success
            if success:
                after += 1  # keep a few frames past success so the policy learns to settle
                if after > job.extra_steps:
                    break
            elif result.done:
                break
    except BaseException:
        writer.discard()  # a failed episode leaves no partial file behind
        raise
    n = len(writer)
    writer.finish(success=success, extra={"seed": job.seed})
    return job.task, job.seed, success, n


def collect(suite_name: str, out: str | Path, episodes_per_task: int, tasks: list[str] | None = None, workers: int = 2,
            image_size: int = 64, max_steps: int = 200, seed_offset: int = 0, extra_steps: int = 5,
            progress: bool = True, camera: str | None = None) -> dict:
    """Collect missing episodes; returns counts and per-task expert success."""
    from tqdm import tqdm

    from vla_core.errors import VLAError

    if extra_steps < 0:
        raise VLAError(f"extra steps after success must be 0 or more, got {extra_steps}")
    suite = make_suite(suite_name)
    tasks = list(tasks or suite.task_names)
    for t in tasks:
        if t not in suite.task_names:
            raise VLAError(f"unknown task '{t}' in suite {suite_name}; expected one of {', '.join(suite.task_names)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [CollectJob(suite_name, t, s, str(episode_path(out, t, s)), image_size, max_steps, extra_steps, camera)
            for t in tasks for s in range(seed_offset, seed_offset + episodes_per_task)]
    todo = [j for j in jobs if not Path(j.path).exists()]
    stats = {t: [0, 0] for t in tasks}
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="collect", unit="ep", disable=not progress,
               dynamic_ncols=True)
    workers = max(1, min(workers, len(todo) or 1))
    if workers == 1:
        results = map(run_job, todo)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init)
        results = pool.imap_unordered(run_job, todo)
    frames = 0
    try:
        for task, _seed, success, n in results:
            stats[task][0] += int(success)
            stats[task][1] += 1
            frames += n
            bar.update(1)
            bar.set_postfix(frames=frames)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return {"out": str(out), "requested": len(jobs), "recorded": len(todo), "already_present": len(jobs) - len(todo),
            "frames_recorded": frames, "workers": workers, "pid": os.getpid(),
            "expert_success": {t: (s / n if n else None) for t, (s, n) in stats.items()}}
