"""``vla eval``: closed-loop rollouts of a checkpoint (and baselines) in a simulated suite.

Evaluation seeds start at ``EVAL_SEED_BASE``, far from the collection seeds (0 ...), so every
rollout is an unseen object / goal placement. For every agent (the checkpoint under each execution
mode and inference delay, the scripted expert, a zero-action policy) it reports per-task success
with a 95 % Wilson interval, the average over tasks, success under held-out phrasings, episode
lengths and policy latency; files: ``results.json``, ``report.md``, ``success.png``,
``videos/<task>__<agent>.gif``.

The policy's chunks become actions through :class:`~vla_core.runtime.scheduler.ChunkScheduler`,
the class the robot's executor runs. Inference delay is simulated in simulation time: a chunk
requested at tick t (from the observation of tick t) arrives at tick t + d, d = ceil(delay / period),
while the robot goes on executing the old plan (or holds, in ``sync`` mode). ``--delay-ms`` takes
fixed delays or ``measured`` (the back end's median latency on this machine).

Results are appended to ``results.jsonl`` as each episode ends: an interrupted evaluation resumes
where it stopped when run again with the same ``--out``, and shows partial results meanwhile.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vla_core.env import make_suite
from vla_core.errors import ConfigError

EVAL_SEED_BASE = 100_000
VIDEO_SIZE = 256   # pixels of the viewer camera in videos (the policy's camera is never upscaled)
VIDEO_EVERY = 4    # a video frame every 4 control ticks: 20 frames/s at Meta-World's 80 Hz


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The bounds contain p exactly (rounding put the upper bound of 6 of 6 at 0.99999..., below p).
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


@dataclass
class EvalJob:
    """One rollout."""

    agent: str            # "policy:<mode>[@<delay>ms]", "expert" or "zero"
    task: str
    seed: int
    instruction: str
    split: str            # "train" or "heldout" phrasing
    video: bool = False

    @property
    def key(self) -> str:
        """Identity of the rollout in ``results.jsonl``."""
        return f"{self.agent}|{self.task}|{self.seed}|{self.split}|{self.instruction}"


@dataclass
class EvalConfig:
    """What to evaluate and how."""

    suite: str
    checkpoint: str | None
    out: str
    episodes_per_task: int = 50
    heldout_episodes_per_task: int = -1   # -1: half of episodes_per_task
    tasks: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=lambda: ["sync"])
    delays_ms: list[str] = field(default_factory=lambda: ["0"])   # numbers or "measured"
    baselines: list[str] = field(default_factory=lambda: ["expert", "zero"])
    max_steps: int = 200
    workers: int = 2
    video: bool = True
    backend: str = "torch"       # torch | onnxruntime | tensorrt (onnxruntime / tensorrt need an export directory)
    compile: bool = False        # torch back end: torch.compile the encoder
    providers: list[str] = field(default_factory=list)   # onnxruntime: execution providers, in order of preference
    device: str = "cpu"          # torch back end: cpu, cuda or cuda:N (every worker loads the policy there)
    seed_base: int = EVAL_SEED_BASE   # first seed; another range (e.g. 200000) is a validation set for choosing settings


def policy_agents(modes: list[str], delays_ms: list[str]) -> list[str]:
    """Agent names for every (mode, delay): ``policy:MODE`` at delay 0, else ``policy:MODE@DELAYms``."""
    out = []
    for d in delays_ms:
        if d != "measured":
            try:
                if float(d) < 0:
                    raise ValueError
            except ValueError:
                raise ConfigError(f"--delay-ms value '{d}' must be a non-negative number of milliseconds or 'measured'") from None
        for m in modes:
            out.append(f"policy:{m}" if d in ("0", "0.0") else f"policy:{m}@{d}ms")
    return out


def parse_agent(agent: str) -> tuple[str, str]:
    """``policy:MODE[@DELAYms]`` -> (MODE, DELAY)."""
    body = agent.split(":", 1)[1]
    mode, _, delay = body.partition("@")
    return mode, delay.removesuffix("ms") or "0"


def delay_ticks(delay_ms: float, fps: float) -> int:
    """Control ticks that pass while an inference of ``delay_ms`` runs (a chunk arrives at the next tick boundary)."""
    return int(math.ceil(delay_ms * fps / 1000.0 - 1e-9))


_STATE: dict = {}


def _init_worker(cfg: EvalConfig) -> None:
    import torch

    torch.set_num_threads(1)
    _STATE["cfg"] = cfg
    _STATE["suite"] = make_suite(cfg.suite)
    _STATE["tasks"] = {}
    if cfg.checkpoint:
        from vla_core.runtime.backends import load_runtime, runtime_options

        options = runtime_options(cfg.backend, 1, cfg.compile, cfg.providers, cfg.device)
        _STATE["policy"] = load_runtime(cfg.checkpoint, cfg.backend, **options)


def _task(name: str, image_size: int, camera: str | None):
    key = (name, image_size, camera)
    if key not in _STATE["tasks"]:
        kwargs = {"camera": camera} if camera else {}
        _STATE["tasks"][key] = _STATE["suite"].make_task(name, image_size=image_size, max_steps=_STATE["cfg"].max_steps,
                                                         **kwargs)
    return _STATE["tasks"][key]


def measured_latency_ms(policy, obs: dict, calls: int = 7) -> float:
    """Median latency of ``policy.predict_chunk`` on ``obs`` in this process, after one warm-up call."""
    policy.predict_chunk(obs)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        policy.predict_chunk(obs)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def _batch(policy, o: dict) -> dict:
    return {"images": {c: o["images"][c][None] for c in policy.spec.cameras}, "proprio": o["proprio"][None],
            "instruction": o["instruction"]}


def run_rollout(job: EvalJob) -> dict:
    """One closed-loop episode; returns success, length, latencies and (optionally) frames."""
    from vla_core.runtime.scheduler import ChunkScheduler, guidance_for, parse_mode

    policy = _STATE.get("policy")  # a PolicyRuntime: the same interface the ROS policy node uses
    size = next(iter(policy.spec.cameras.values()))[0] if policy is not None else 64
    known = getattr(_STATE["suite"], "cameras", [])
    cameras = ",".join(policy.spec.cameras) if policy is not None and all(c in known for c in policy.spec.cameras) else None
    task = _task(job.task, size, cameras)
    obs = task.reset(job.seed, job.instruction)
    latencies, frames = [], []  # frames: the viewer camera, for the video
    scheduler, delay, in_flight = None, 0, None
    if job.agent.startswith("policy:"):
        policy.spec.check_compatible(task.spec, f"task {job.task}")
        mode, delay_ms = parse_agent(job.agent)
        scheduler = ChunkScheduler(parse_mode(mode, policy.n_action_steps, policy.horizon))
        if delay_ms == "measured":
            if "measured_ms" not in _STATE:
                _STATE["measured_ms"] = measured_latency_ms(policy, _batch(policy, obs))
            delay_ms = _STATE["measured_ms"]
        delay = delay_ticks(float(delay_ms), task.spec.fps)
    success, steps, last = False, 0, None
    for steps in range(1, task.max_steps + 1):  # noqa: B007 - steps is the episode length afterwards
        tick = steps - 1
        if job.video and tick % VIDEO_EVERY == 0:
            frames.append(task.render_view(VIDEO_SIZE))
        if scheduler is not None:
            # The robot's order: a chunk that has arrived is in the plan before the tick asks for the next one.
            if in_flight is not None and tick >= in_flight[0]:
                scheduler.insert(in_flight[1], in_flight[2], tick)
                in_flight = None
            if in_flight is None and scheduler.wants_chunk(tick):
                obs = task.observe()  # the only ticks whose camera image anyone looks at
                request = scheduler.request(tick, frozen=delay)
                guidance = guidance_for(request.prefix, request.frozen, 0, policy.horizon) if len(request.prefix) else None
                t0 = time.perf_counter()
                chunk = policy.predict_chunk(_batch(policy, obs), guidance=guidance)[0]
                latencies.append(time.perf_counter() - t0)
                if delay == 0:
                    scheduler.insert(chunk, tick, tick)
                else:  # computed now from this observation, delivered d ticks later
                    in_flight = (tick + delay, chunk, tick)
            action = scheduler.pop(tick)
            if action is None:
                action = task.hold_action(last)
        elif job.agent == "expert":
            action = task.expert_action()
        else:
            action = np.zeros(len(task.spec.action_names), np.float32)
        last = np.asarray(action, np.float32)
        result = task.step(last, render=False)
        obs = result.observation
        if result.success:
            success = True
        if result.done:
            break
    out = {"agent": job.agent, "task": job.task, "seed": job.seed, "split": job.split, "instruction": job.instruction,
           "success": success, "length": steps, "latencies": latencies, "delay_ticks": delay,
           "holds": scheduler.holds if scheduler is not None else 0, "key": job.key,
           "stages": task.stages(), "stage": task.stage_reached()}
    out["frames"] = frames if job.video else None
    out["video_fps"] = task.spec.fps / VIDEO_EVERY
    return out


def plan_jobs(cfg: EvalConfig) -> list[EvalJob]:
    """Every rollout to run: agents x tasks x seeds, plus held-out phrasings for the first policy agent."""
    suite = make_suite(cfg.suite)
    tasks = cfg.tasks or suite.task_names
    n_held = cfg.episodes_per_task // 2 if cfg.heldout_episodes_per_task < 0 else cfg.heldout_episodes_per_task
    agents = (policy_agents(cfg.modes, cfg.delays_ms) if cfg.checkpoint else []) + list(cfg.baselines)
    jobs = []
    for agent in agents:
        for task in tasks:
            train, held = suite.instructions(task, "train"), suite.instructions(task, "heldout")
            for i in range(cfg.episodes_per_task):
                jobs.append(EvalJob(agent, task, cfg.seed_base + i, train[i % len(train)], "train",
                                    video=cfg.video and i == 0 and agent in (agents[0], "expert")))
            if agent.startswith("policy:") and agent == agents[0]:
                for i in range(n_held):
                    jobs.append(EvalJob(agent, task, cfg.seed_base + i, held[i % len(held)], "heldout"))
    return jobs


def summarize(results: list[dict], tasks: list[str]) -> dict:
    """Per-agent, per-task success rates with intervals, averages, lengths, delay and latency."""
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
            names = tr[0].get("stages") if tr else None
            if names:  # share of episodes that reached each milestone (success is the last one)
                per_task[task]["stages"] = {n: float(np.mean([r.get("stage", 0) > i for r in tr])) for i, n in enumerate(names)}
        held = [r for r in rs if r["split"] == "heldout"]
        lat = np.array([x for r in rs for x in r["latencies"]]) * 1e3
        rates = [v["success"] for v in per_task.values() if v["success"] is not None]
        n_all = sum(v["episodes"] for v in per_task.values())
        s_all = sum(round((v["success"] or 0) * v["episodes"]) for v in per_task.values())
        out[agent] = {
            "average_success": float(np.mean(rates)) if rates else None,
            "ci95": list(wilson_interval(s_all, n_all)),
            "heldout_phrasing_success": (float(np.mean([r["success"] for r in held])) if held else None),
            "heldout_episodes": len(held),
            "delay_ticks": int(max(r.get("delay_ticks", 0) for r in rs)),
            "holds_per_episode": float(np.mean([r.get("holds", 0) for r in rs])),
            "tasks": per_task,
            "latency_ms": ({"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)), "calls": int(lat.size)}
                           if lat.size else None),
        }
    return out


def save_video(out: Path, result: dict, fps: float) -> str:
    """Write a rollout's viewer frames as an annotated GIF under ``out/videos``; returns its path relative to ``out``."""
    from vla_core.video import save_rollout_gif

    name = f"{result['task']}__{result['agent'].replace(':', '_').replace('@', '_')}.gif"
    save_rollout_gif(out / "videos" / name, result["frames"], result["instruction"], result["success"], fps=fps,
                     label=result["agent"])
    return f"videos/{name}"


def write_report(summary: dict, results: list[dict], cfg: EvalConfig, wall_s: float) -> Path:
    """results.json, report.md and success.png (the GIFs are written as their episodes end)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(cfg.out)
    tasks = list(next(iter(summary.values()))["tasks"])
    videos = {}
    for r in results:
        if r.get("video"):
            videos.setdefault(r["task"], []).append((r["agent"], r["video"], r["success"]))
    meta = {"suite": cfg.suite, "checkpoint": cfg.checkpoint, "backend": cfg.backend, "episodes_per_task": cfg.episodes_per_task,
            "max_steps": cfg.max_steps, "seed_base": cfg.seed_base, "wall_s": round(wall_s, 1)}
    (out / "results.json").write_text(json.dumps({"meta": meta, "agents": summary}, indent=2))

    fig, ax = plt.subplots(figsize=(max(8, len(tasks) * 1.1), 4.5))
    width = 0.8 / len(summary)
    for i, (agent, s) in enumerate(summary.items()):
        vals = [s["tasks"][t]["success"] or 0 for t in tasks]
        err = np.array([[v - s["tasks"][t]["ci95"][0], s["tasks"][t]["ci95"][1] - v] for t, v in zip(tasks, vals)]).T
        ax.bar(np.arange(len(tasks)) + i * width, vals, width, yerr=err, capsize=2,
               label=f"{agent} (avg {100 * (s['average_success'] or 0):.1f}%)")
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
             f"Checkpoint: `{cfg.checkpoint}` ({cfg.backend})  " if cfg.checkpoint else "Baselines only.  ",
             f"{cfg.episodes_per_task} episodes per task on unseen seeds (from {cfg.seed_base}), "
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
    policy = [a for a in agents if a.startswith("policy:")]
    if policy:
        lines += ["", "| agent | inference delay (ticks) | holds per episode |", "|---|---|---|"]
        lines += [f"| {a} | {summary[a]['delay_ticks']} | {summary[a]['holds_per_episode']:.1f} |" for a in policy]
    staged = [(a, t) for a in agents for t in tasks if summary[a]["tasks"][t].get("stages")]
    if staged:
        lines += ["", "Where episodes stop: the share that reached each milestone before success.", "",
                  "| agent | task | milestones reached | success |", "|---|---|---|---|"]
        for a, t in staged:
            v = summary[a]["tasks"][t]
            reached = ", ".join(f"{n} {100 * f:.0f}%" for n, f in v["stages"].items())
            lines.append(f"| {a} | {t} | {reached} | {100 * v['success']:.0f}% |")
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


_IDENTITY = ("suite", "checkpoint", "backend", "max_steps")


def _load_partial(out: Path, cfg: EvalConfig) -> dict[str, dict]:
    """Results of an earlier, interrupted run of the same evaluation in ``out`` (by job key)."""
    run_file, stream = out / "eval_config.json", out / "results.jsonl"
    identity = {k: getattr(cfg, k) for k in _IDENTITY}
    if run_file.is_file():
        before = {k: json.loads(run_file.read_text()).get(k) for k in _IDENTITY}
        if before != identity:
            changed = [k for k in _IDENTITY if before[k] != identity[k]]
            raise ConfigError(f"'{out}' holds results of another evaluation ({', '.join(changed)} differ); "
                              f"choose another --out or delete {stream}")
    out.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(asdict(cfg), indent=2))
    done = {}
    if stream.is_file():
        for line in stream.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption: that episode runs again
            done[r["key"]] = r
    return done


def evaluate(cfg: EvalConfig, progress: bool = True) -> dict:
    """Run every rollout of ``cfg`` not already in ``results.jsonl`` (in ``workers`` processes) and write the report."""
    from tqdm import tqdm

    if cfg.checkpoint:  # fail fast, in this process, on a bad checkpoint, export or back-end option
        from vla_core.runtime.backends import runtime_options

        runtime_options(cfg.backend, 1, cfg.compile, cfg.providers, cfg.device)
        if (Path(cfg.checkpoint) / "export.json").is_file():
            from vla_core.export import read_export

            read_export(cfg.checkpoint)
        else:
            from vla_core.checkpoint import read_checkpoint_meta

            read_checkpoint_meta(cfg.checkpoint)
    jobs = plan_jobs(cfg)
    out = Path(cfg.out)
    done = _load_partial(out, cfg)
    todo = [j for j in jobs if j.key not in done]
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="eval", unit="ep", disable=not progress,
               dynamic_ncols=True)
    pool, it = None, iter(())
    if todo and cfg.workers <= 1:
        _init_worker(cfg)
        it = map(run_rollout, todo)
    elif todo:
        pool = mp.get_context("spawn").Pool(min(cfg.workers, len(todo)), initializer=_init_worker, initargs=(cfg,))
        it = pool.imap_unordered(run_rollout, todo, chunksize=1)
    try:
        with open(out / "results.jsonl", "a") as stream:
            for r in it:
                frames, fps = r.pop("frames"), r.pop("video_fps")
                if frames:
                    r["video"] = save_video(out, r | {"frames": frames}, fps=fps)
                stream.write(json.dumps(r) + "\n")
                stream.flush()
                done[r["key"]] = r
                bar.update(1)
                policy = [x for x in done.values() if x["agent"].startswith("policy")] or list(done.values())
                bar.set_postfix(success=f"{np.mean([x['success'] for x in policy]):.2f}")
    except BaseException:
        if pool is not None:
            pool.terminate()  # an interruption must not wait for the queued episodes; finished ones are saved
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    results = [done[j.key] for j in jobs]
    tasks = list(dict.fromkeys(j.task for j in jobs))
    summary = summarize(results, tasks)
    write_report(summary, results, cfg, time.perf_counter() - t0)
    return summary
