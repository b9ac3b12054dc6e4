"""``vla bench``: per action head, training throughput and inference latency of the default CPU recipe.

Inputs match the default recipe: one 64 px camera, 4-D proprioception, 4-D actions, horizon 16,
batch 1 for latency (the instruction embedding is cached, as on a robot where it rarely changes).
Results are medians over repeated runs; the machine is named in the output.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from vla_core.config import HEAD_TYPES, ExperimentConfig
from vla_core.policy import make_policy
from vla_core.spec import PolicySpec


def bench_spec() -> PolicySpec:
    """The default recipe's interface: one 64x64 camera, 4-D state, 4-D action."""
    return PolicySpec(cameras={"corner": [64, 64, 3]}, proprio_names=["hand_x", "hand_y", "hand_z", "gripper"],
                      action_names=["dx", "dy", "dz", "gripper"], fps=80.0)


def unit_stats(dim: int) -> dict[str, np.ndarray]:
    """Identity normalisation statistics."""
    z, o = np.zeros(dim, np.float32), np.ones(dim, np.float32)
    return {"action_min": -o, "action_max": o, "action_mean": z, "action_std": o, "proprio_mean": z, "proprio_std": o}


def machine() -> dict:
    """What the numbers were measured on."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _obs(spec: PolicySpec, batch: int, rng: np.random.Generator) -> dict:
    return {"images": {c: rng.integers(0, 255, (batch, *s), dtype=np.uint8) for c, s in spec.cameras.items()},
            "proprio": rng.standard_normal((batch, spec.proprio_dim)).astype(np.float32),
            "instruction": "open the drawer"}


def _latency(runtime, obs: dict, n: int) -> dict:
    for _ in range(5):
        runtime.predict_chunk(obs)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        runtime.predict_chunk(obs)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p99": round(float(np.percentile(ms, 99)), 3),
            "mean": round(float(ms.mean()), 3), "n": n}


def _network_passes(runtime, obs: dict) -> int:
    """Passes of the head's network per chunk (1 for regression / tokens, the sampling steps for diffusion / flow)."""
    head = runtime.policy.head
    module = head.net if hasattr(head, "net") else head.decoder
    calls = []
    hook = module.register_forward_hook(lambda *_: calls.append(1))
    try:
        runtime.predict_chunk(obs)
    finally:
        hook.remove()
    return len(calls)


def bench_head(head: str, quick: bool, overrides: list[str], backends: list[str], workdir: Path, compile: bool = False,
               providers: list[str] | None = None) -> dict:
    """Latency (p50 / p99 ms, batch 1) per back end, and training samples/s, for one head."""
    from vla_core.checkpoint import save_checkpoint
    from vla_core.runtime.backends import load_runtime, runtime_options

    config = ExperimentConfig.load(None, [f"--policy.head={head}", *overrides])
    spec = bench_spec()
    policy = make_policy(config.policy, spec, unit_stats(spec.action_dim))
    rng = np.random.default_rng(0)
    policy.eval()
    obs = _obs(spec, 1, rng)
    n = 30 if quick else 200
    ckpt = save_checkpoint(workdir / head, policy, config)
    latency = {}
    passes = None
    for backend in backends:
        if backend == "torch":
            runtime = load_runtime(ckpt, "torch", **runtime_options("torch", compile=compile))
            passes = _network_passes(runtime, obs)
        else:
            from vla_core.export import export_onnx

            export_dir = workdir / f"{head}_onnx"
            if not export_dir.exists():
                export_onnx(ckpt, export_dir)
            options = runtime_options(backend, providers=providers if backend == "onnxruntime" else None)
            runtime = load_runtime(export_dir, backend, **options)
        latency[backend] = _latency(runtime, obs, n)

    policy.train()
    bsz = config.train.batch_size
    batch = _obs(spec, bsz, rng)
    batch["images"] = {c: torch.from_numpy(v).permute(0, 3, 1, 2).float() / 255 for c, v in batch["images"].items()}
    batch["actions"] = torch.randn(bsz, config.policy.horizon, spec.action_dim).clamp(-1, 1)
    batch["action_is_pad"] = torch.zeros(bsz, config.policy.horizon, dtype=torch.bool)
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4)
    steps = 3 if quick else 20
    rates = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss, _ = policy(batch)
        loss.backward()
        opt.step()
        if i > 0:  # the first step pays one-off allocation costs
            rates.append(bsz / (time.perf_counter() - t0))
    trainable = sum(p.numel() for k, p in policy.named_parameters() if p.requires_grad)
    out = {"latency_ms": latency, "network_passes_per_chunk": passes}
    if "torch" in latency and len(latency) > 1:
        out["speedup_vs_torch_p50"] = {b: round(latency["torch"]["p50"] / v["p50"], 2) for b, v in latency.items() if b != "torch"}
    return out | {
            "train_samples_per_s": round(float(np.median(rates)), 1), "train_batch_size": bsz,
            "trainable_parameters": trainable, "horizon": config.policy.horizon}


def run_bench(quick: bool = False, heads: list[str] | None = None, overrides: list[str] | None = None,
              threads: int = 0, backends: list[str] | None = None, compile: bool = False,
              providers: list[str] | None = None) -> dict:
    """Benchmark every requested head on every requested back end; returns a JSON-able dict."""
    import tempfile

    from vla_core.runtime.backends import BACKENDS

    backends = list(backends or ["torch"])
    for b in backends:
        if b not in BACKENDS:
            from vla_core.errors import ConfigError

            raise ConfigError(f"unknown back end '{b}'; expected one of {', '.join(BACKENDS)}")
    if threads > 0:
        torch.set_num_threads(threads)
    heads = heads or list(HEAD_TYPES)
    for h in heads:
        if h not in HEAD_TYPES:
            from vla_core.errors import ConfigError

            raise ConfigError(f"unknown head '{h}'; expected one of {', '.join(HEAD_TYPES)}")
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = {h: bench_head(h, quick, list(overrides or []), backends, Path(tmp), compile, providers) for h in heads}
    return {"machine": machine(), "recipe": "one 64px camera, 4-D state, 4-D action, batch 1 latency through the runtime interface",
            "backends": backends, "compile": compile, "providers": list(providers or []), "quick": quick, "heads": results,
            "wall_s": round(time.perf_counter() - t0, 1)}
