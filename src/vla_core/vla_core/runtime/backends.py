"""One runtime interface for every inference back end, used by ``vla eval`` and the ROS controller.

    runtime = load_runtime(path, backend="onnxruntime")   # torch | onnxruntime | tensorrt
    chunk = runtime.predict_chunk(obs)                     # (B, H, A) float32, robot units

``obs`` is ``{"images": {cam: uint8 (B, [To,] H, W, 3)}, "proprio": (B, [To,] P), "instruction": str}``.
The instruction embedding is computed once per distinct instruction and cached. Iterative heads
(diffusion, flow) run the same fixed sampling loop on every back end; ``noise`` (B, H, A) fixes its
starting point so back ends can be compared on identical draws, and ``guidance`` = (targets (H, A)
in robot units, weights (H,)) conditions the chunk on actions already planned (real-time chunking,
:mod:`vla_core.policy.guidance`; ``supports_guidance`` says whether the head can use it). Chunks are
clipped to the spec's ``action_low`` / ``action_high``: the range the policy was trained on.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from vla_core.errors import VLAError
from vla_core.policy.guidance import ddim_guidance_scale, flow_guidance_scale
from vla_core.spec import PolicySpec

BACKENDS = ("torch", "onnxruntime", "tensorrt")


class PolicyRuntime(ABC):
    """A loaded policy ready for closed-loop inference."""

    backend: str
    spec: PolicySpec
    horizon: int
    n_action_steps: int
    n_obs_steps: int
    supports_guidance: bool = False  # iterative heads (flow, diffusion): real-time chunking

    def __init__(self, seed: int = 0):
        self._lang_cache: dict[str, np.ndarray] = {}
        self._rng = np.random.default_rng(seed)

    @abstractmethod
    def _embed(self, text: str) -> np.ndarray:
        """Instruction -> embedding (E,)."""

    @abstractmethod
    def _predict(self, images: list[np.ndarray], proprio: np.ndarray, lang: np.ndarray, noise: np.ndarray | None,
                 guidance: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """Back-end specific chunk prediction (guidance already normalised to [-1, 1], targets (H, A))."""

    @abstractmethod
    def _normalize_action(self, action: np.ndarray) -> np.ndarray:
        """Robot units -> the head's [-1, 1]."""

    def instruction_embedding(self, text: str) -> np.ndarray:
        """Cached embedding of ``text``: (E,) float32."""
        if text not in self._lang_cache:
            self._lang_cache[text] = np.asarray(self._embed(text), dtype=np.float32)
        return self._lang_cache[text]

    def _inputs(self, obs: dict) -> tuple[list[np.ndarray], np.ndarray, int]:
        images = []
        for cam in self.spec.cameras:
            if cam not in obs["images"]:
                raise VLAError(f"observation lacks camera '{cam}'; the policy needs {list(self.spec.cameras)}")
            im = np.asarray(obs["images"][cam])
            if im.dtype != np.uint8 or im.shape[-1] != 3:
                raise VLAError(f"camera '{cam}': expected uint8 (B, H, W, 3) images, got {im.dtype} {im.shape}")
            if im.ndim == 4:
                im = im[:, None]
            if list(im.shape[2:4]) != list(self.spec.cameras[cam][:2]):
                raise VLAError(f"camera '{cam}': expected {self.spec.cameras[cam][:2]} pixels, got {list(im.shape[2:4])}")
            images.append(_history(im, self.n_obs_steps))
        proprio = np.asarray(obs["proprio"], dtype=np.float32)
        if proprio.ndim == 2:
            proprio = proprio[:, None]
        if proprio.shape[-1] != self.spec.proprio_dim:
            raise VLAError(f"expected {self.spec.proprio_dim} proprioception values, got {proprio.shape[-1]}")
        return images, _history(proprio, self.n_obs_steps), proprio.shape[0]

    def predict_chunk(self, obs: dict, noise: np.ndarray | None = None,
                      guidance: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Chunk of actions (B, H, A) in robot units; ``guidance`` is ignored by heads that cannot use it."""
        images, proprio, b = self._inputs(obs)
        texts = obs["instruction"]
        texts = [texts] * b if isinstance(texts, str) else list(texts)
        lang = np.stack([self.instruction_embedding(t) for t in texts])
        if guidance is not None and self.supports_guidance:
            targets, weights = guidance
            targets = np.asarray(targets, np.float32)
            if targets.shape != (self.horizon, self.spec.action_dim) or np.shape(weights) != (self.horizon,):
                raise VLAError(f"guidance must be targets ({self.horizon}, {self.spec.action_dim}) and weights "
                               f"({self.horizon},), got {targets.shape} and {np.shape(weights)}")
            guidance = (self._normalize_action(targets), np.asarray(weights, np.float32))
        else:
            guidance = None
        chunk = np.asarray(self._predict(images, proprio, lang, noise, guidance), dtype=np.float32)
        if self.spec.action_low and self.spec.action_high:
            # Never beyond the range the policy was trained on (a regression head can overshoot it).
            chunk = np.clip(chunk, np.asarray(self.spec.action_low, np.float32), np.asarray(self.spec.action_high, np.float32))
        return chunk

    def reset(self) -> None:  # noqa: B027 - an optional hook
        """Per-episode reset (runtimes are stateless apart from the instruction cache)."""


def _history(x: np.ndarray, to: int) -> np.ndarray:
    if x.shape[1] < to:
        x = np.concatenate([np.repeat(x[:, :1], to - x.shape[1], axis=1), x], axis=1)
    return x[:, -to:]


class TorchRuntime(PolicyRuntime):
    """Eager PyTorch from a checkpoint directory (optionally ``torch.compile``)."""

    backend = "torch"

    def __init__(self, checkpoint: str | Path, device: str = "cpu", compile: bool = False, seed: int = 0, threads: int = 0):
        super().__init__(seed)
        import torch

        if threads > 0:
            torch.set_num_threads(threads)  # process-wide in torch: the caller decides for the process
        from vla_core.checkpoint import load_policy

        self._torch = torch
        self.policy = load_policy(checkpoint, device=device)
        # Inference only: no parameter needs a gradient (guidance differentiates w.r.t. the sample alone).
        self.policy.requires_grad_(False)
        self.spec = self.policy.spec
        cfg = self.policy.config
        self.horizon, self.n_action_steps, self.n_obs_steps = cfg.horizon, cfg.n_action_steps, cfg.n_obs_steps
        self.supports_guidance = bool(getattr(self.policy.head, "iterative", False))
        self._encode = torch.compile(self.policy.encode) if compile else self.policy.encode
        self._gen = torch.Generator().manual_seed(seed)

    def _embed(self, text):
        with self._torch.inference_mode():
            return self.policy.language([text])[0].float().cpu().numpy()

    def _normalize_action(self, action):
        torch = self._torch
        with torch.no_grad():
            return self.policy.normalizer.normalize_action(torch.from_numpy(action).to(self.policy.device)).cpu().numpy()

    def _predict(self, images, proprio, lang, noise, guidance):
        torch, p = self._torch, self.policy
        # no_grad rather than inference_mode: real-time chunking takes gradients w.r.t. the sample.
        with torch.no_grad():
            # Images may be read-only views of a message's buffer: copied only then (torch needs writable memory).
            obs = {"images": {c: torch.from_numpy(np.require(im, requirements=["C", "W"])).to(p.device)
                              for c, im in zip(p.cameras, images)},
                   "proprio": torch.from_numpy(proprio).to(p.device)}
            memory = self._encode(obs, torch.from_numpy(lang).to(p.device))
            n = None if noise is None else torch.from_numpy(np.asarray(noise, np.float32)).to(p.device)
            g = None
            if guidance is not None:
                targets = torch.from_numpy(guidance[0]).to(p.device).expand(memory.shape[0], -1, -1)
                g = (targets, torch.from_numpy(guidance[1]).to(p.device))
            return p.normalizer.unnormalize_action(p.head.sample(memory, self._gen, n, g)).cpu().numpy()


class _GraphRuntime(PolicyRuntime):
    """Shared logic of the back ends that run an export directory's graphs."""

    def __init__(self, export_dir: str | Path, seed: int = 0):
        super().__init__(seed)
        from vla_core.export import read_export

        self.dir = Path(export_dir)
        self.meta = read_export(self.dir)
        self.spec = PolicySpec.from_dict(json.loads((self.dir / "spec.json").read_text()))
        self.horizon, self.n_action_steps = self.meta["horizon"], self.meta["n_action_steps"]
        self.n_obs_steps = self.meta["n_obs_steps"]
        stats = json.loads((self.dir / "normalization.json").read_text())
        lo, hi = np.asarray(stats["action_min"], np.float32), np.asarray(stats["action_max"], np.float32)
        self._center, self._half = (hi + lo) / 2, np.maximum((hi - lo) / 2, 1e-6)
        self._float = np.float16 if self.meta["fp16"] else np.float32
        self.supports_guidance = bool(self.meta["iterative"])
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(self.dir / "tokenizer"))

    @abstractmethod
    def _run(self, graph: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run one graph of the export."""

    def _embed(self, text):
        tok = self.tokenizer([text], padding="max_length", truncation=True, max_length=self.meta["max_length"], return_tensors="np")
        return self._run("language", {"input_ids": tok["input_ids"].astype(np.int64),
                                      "attention_mask": tok["attention_mask"].astype(np.int64)})[0]

    def _obs_feeds(self, images, proprio, lang):
        feeds = {name: im for name, im in zip(self.meta["inputs"]["images"], images)}
        feeds["proprio"] = proprio.astype(self._float)
        feeds["language"] = lang.astype(self._float)
        return feeds

    def _normalize_action(self, action):
        return (action - self._center) / self._half

    def _predict(self, images, proprio, lang, noise, guidance):
        feeds = self._obs_feeds(images, proprio, lang)
        if not self.meta["iterative"]:
            return self._run("policy", feeds)
        memory = self._run("encoder", feeds)
        b = memory.shape[0]
        shape = (b, self.horizon, self.meta["action_dim"])
        x = (self._rng.standard_normal(shape) if noise is None else np.asarray(noise)).astype(np.float32)
        if guidance is not None:
            # No gradients through a graph: the guidance uses the update's own Jacobian (guidance.py).
            targets, weights = guidance[0][None], guidance[1][None, :, None]
        sampler = self.meta["sampler"]
        if sampler["type"] == "ddim":
            ac = np.asarray(sampler["alphas_cumprod"], np.float32)
            ts = sampler["timesteps"]
            for i, t in enumerate(ts):
                eps = self._run("denoise_step", {"x_t": x.astype(self._float), "t": np.full(b, t, self._float),
                                                 "memory": memory}).astype(np.float32)
                a_t = ac[t]
                if guidance is not None:
                    x0_hat = (x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
                    eps = eps - ddim_guidance_scale(float(a_t)) * weights * (targets - x0_hat) / np.sqrt(a_t)
                a_prev = ac[ts[i + 1]] if i + 1 < len(ts) else np.float32(1.0)
                x0 = np.clip((x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t), -1.0, 1.0)
                eps = (x - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
                x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps
        else:
            steps = sampler["steps"]
            dt = np.float32(1.0 / steps)
            for i in range(steps):
                v = self._run("denoise_step", {"x_t": x.astype(self._float), "t": np.full(b, i * dt, self._float),
                                               "memory": memory}).astype(np.float32)
                if guidance is not None:
                    v = v + flow_guidance_scale(float(i * dt)) * weights * (targets - (x + (1 - i * dt) * v))
                x = x + dt * v
            x = np.clip(x, -1.0, 1.0)
        return (x * self._half + self._center).astype(np.float32)


class OnnxRuntime(_GraphRuntime):
    """ONNX Runtime: CPU by default; CUDA / TensorRT execution providers when present and asked for."""

    backend = "onnxruntime"

    def __init__(self, export_dir: str | Path, providers: list[str] | None = None, threads: int = 0, seed: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise VLAError("the onnxruntime back end needs the package onnxruntime (pip install onnxruntime, "
                           "or onnxruntime-gpu for CUDA / TensorRT)") from None
        super().__init__(export_dir, seed)
        available = ort.get_available_providers()
        requested = list(providers or ["CPUExecutionProvider"])
        providers = [p for p in requested if p in available]  # in order of preference; unavailable ones dropped
        if not providers:
            raise VLAError(f"none of the requested ONNX Runtime execution providers {requested} is available here; "
                           f"available: {available}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
        self.providers = providers
        self.sessions = {name: ort.InferenceSession(str(self.dir / f), sess_options=opts, providers=providers)
                         for name, f in self.meta["graphs"].items()}

    def _run(self, graph, feeds):
        return self.sessions[graph].run(None, feeds)[0]


class TensorRTRuntime(_GraphRuntime):
    """TensorRT engines built on the target from the export's ONNX graphs (scripts/build_trt_engines.sh).

    Engines are looked up as ``<graph>.engine`` next to the ONNX files. Needs ``tensorrt`` and a
    CUDA device (``torch.cuda`` is used for the device buffers).
    """

    backend = "tensorrt"

    def __init__(self, export_dir: str | Path, seed: int = 0):
        try:
            import tensorrt as trt
        except ImportError:
            raise VLAError("the tensorrt back end needs NVIDIA TensorRT's Python package (tensorrt), "
                           "which ships with JetPack on a Jetson; elsewhere use onnxruntime") from None
        import torch

        if not torch.cuda.is_available():
            raise VLAError("the tensorrt back end needs a CUDA device")
        super().__init__(export_dir, seed)
        self._torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        self.engines, self.contexts = {}, {}
        for name, onnx_file in self.meta["graphs"].items():
            engine_path = self.dir / onnx_file.replace(".onnx", ".engine")
            if not engine_path.is_file():
                raise VLAError(f"TensorRT engine '{engine_path}' is missing; build it on the target with "
                               f"scripts/build_trt_engines.sh {self.dir}")
            engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
            self.engines[name], self.contexts[name] = engine, engine.create_execution_context()

    def _run(self, graph, feeds):
        import tensorrt as trt

        torch, engine, ctx = self._torch, self.engines[graph], self.contexts[graph]
        keep = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                t = torch.from_numpy(np.ascontiguousarray(feeds[name])).cuda()
                ctx.set_input_shape(name, tuple(t.shape))
                ctx.set_tensor_address(name, t.data_ptr())
                keep.append(t)
        outputs = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                dtype = torch.float16 if engine.get_tensor_dtype(name) == trt.DataType.HALF else torch.float32
                out = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=dtype, device="cuda")
                ctx.set_tensor_address(name, out.data_ptr())
                outputs[name] = out
        stream = torch.cuda.current_stream()
        ctx.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return next(iter(outputs.values())).float().cpu().numpy()


def runtime_options(backend: str, threads: int = 0, compile: bool = False, providers: list[str] | None = None,
                    device: str = "cpu") -> dict:
    """Keyword arguments of :func:`load_runtime` for ``backend``; options another back end would ignore are refused.

    ``device``: where the torch back end runs the policy (``cpu``, ``cuda``, ``cuda:N``).
    """
    if compile and backend != "torch":
        raise VLAError(f"torch.compile applies to the torch back end, not '{backend}'")
    if device != "cpu":
        if backend != "torch":
            raise VLAError(f"--device applies to the torch back end, not '{backend}' (onnxruntime: --providers)")
        if not re.fullmatch(r"cuda(:\d+)?", device):
            raise VLAError(f"device '{device}' is not cpu, cuda or cuda:N")
        import torch

        if not torch.cuda.is_available():
            raise VLAError(f"device '{device}' was asked for but torch sees no CUDA device")
    if providers and backend != "onnxruntime":
        raise VLAError(f"execution providers apply to the onnxruntime back end, not '{backend}'")
    options: dict = {}
    if backend in ("torch", "onnxruntime") and threads > 0:
        options["threads"] = threads
    if compile:
        options["compile"] = True
    if providers:
        options["providers"] = list(providers)
    if device != "cpu":
        options["device"] = device
    return options


def load_runtime(path: str | Path, backend: str = "torch", **kwargs) -> PolicyRuntime:
    """Load a checkpoint (torch) or an export directory (onnxruntime, tensorrt) behind the runtime interface."""
    path = Path(path)
    if backend not in BACKENDS:
        raise VLAError(f"unknown back end '{backend}'; expected one of {', '.join(BACKENDS)}")
    is_export = (path / "export.json").is_file()
    if backend == "torch":
        if is_export:
            meta = json.loads((path / "export.json").read_text())
            path = Path(meta["source_checkpoint"])
        return TorchRuntime(path, **kwargs)
    if not is_export:
        raise VLAError(f"back end '{backend}' runs an export directory; '{path}' is not one "
                       f"(create it with: vla export --checkpoint {path} --format onnx --out EXPORT_DIR)")
    if backend == "onnxruntime":
        return OnnxRuntime(path, **kwargs)
    return TensorRTRuntime(path, **kwargs)
