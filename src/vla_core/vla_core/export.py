"""``vla export``: a checkpoint -> a self-describing ONNX directory for deployment back ends.

Layout::

    EXPORT/
      export.json          format, head, graphs and their inputs / outputs, cached inputs, sampler, fp16
      spec.json            cameras, proprio / action names, control rate (as in the checkpoint)
      normalization.json   action / proprio statistics (used by the sampling loop of iterative heads)
      language.onnx        instruction encoder (input_ids, attention_mask) -> embedding; run once per
      tokenizer/           new instruction and cached, so the per-tick graph stays small
      policy.onnx          regression / tokens heads: (images, proprio, language) -> actions (B, H, A)
      encoder.onnx         diffusion / flow heads: (images, proprio, language) -> memory (B, M, D)
      denoise_step.onnx    diffusion / flow heads: (x_t, t, memory) -> noise / velocity (B, H, A)

Iterative heads export their per-step network; :mod:`vla_core.runtime.backends` runs the same fixed
sampling loop (DDIM or Euler) around it for every back end.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from vla_core.checkpoint import load_policy
from vla_core.errors import VLAError

EXPORT_FORMAT = 1
OPSET = 17


class _PolicyGraph(nn.Module):
    """Per-tick graph of a non-iterative head: images uint8 (B, [To,] H, W, 3), proprio, language -> actions."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, *inputs):
        images, proprio, lang = inputs[:-2], inputs[-2], inputs[-1]
        obs = {"images": dict(zip(self.policy.cameras, images)), "proprio": proprio}
        memory = self.policy.encode(obs, lang)
        return self.policy.normalizer.unnormalize_action(self.policy.head.sample(memory))


class _EncoderGraph(_PolicyGraph):
    """Observation -> fused memory tokens (iterative heads)."""

    def forward(self, *inputs):
        images, proprio, lang = inputs[:-2], inputs[-2], inputs[-1]
        return self.policy.encode({"images": dict(zip(self.policy.cameras, images)), "proprio": proprio}, lang)


class _StepGraph(nn.Module):
    """One denoising / velocity evaluation: (x_t, t, memory) -> (B, H, A)."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, x_t, t, memory):
        return self.head.denoise_step(x_t, t, memory)


class _LanguageGraph(nn.Module):
    """Token ids -> mean-pooled instruction embedding (B, E)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def _export(module: nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:
    torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export_onnx(checkpoint: str | Path, out: str | Path, fp16: bool = False) -> Path:
    """Export every graph of a checkpoint into ``out`` (written atomically)."""
    from vla_core.policy.heads import DiffusionHead

    policy = load_policy(checkpoint).eval()
    policy.language.model.eval()
    spec, cfg = policy.spec, policy.config
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    dtype = torch.float16 if fp16 else torch.float32
    try:
        # The language encoder runs once per new instruction (its output is cached): always float32.
        tok = policy.language.tokenizer(["open the drawer"], padding="max_length", truncation=True,
                                        max_length=policy.language.max_length, return_tensors="pt")
        _export(_LanguageGraph(policy.language.model), (tok["input_ids"], tok["attention_mask"]), tmp / "language.onnx",
                ["input_ids", "attention_mask"], ["embedding"],
                {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}})
        if fp16:
            # Never .half() the whole policy: the frozen language model is shared by every policy in
            # the process (and runs once per instruction in float32 anyway).
            for name, module in policy.named_children():
                if name != "language":
                    module.half()
        to = cfg.n_obs_steps
        image_names = [f"image_{c}" for c in policy.cameras]
        images = tuple(torch.zeros((1, to, *spec.cameras[c]), dtype=torch.uint8) for c in policy.cameras)
        proprio = torch.zeros(1, to, spec.proprio_dim, dtype=dtype)
        lang = torch.zeros(1, policy.language.dim, dtype=dtype)
        obs_names = [*image_names, "proprio", "language"]
        obs_dyn = {n: {0: "batch"} for n in obs_names}
        graphs = {}
        if getattr(policy.head, "iterative", False):
            _export(_EncoderGraph(policy), (*images, proprio, lang), tmp / "encoder.onnx", obs_names, ["memory"],
                    obs_dyn | {"memory": {0: "batch"}})
            with torch.no_grad():
                memory = policy.encode({"images": dict(zip(policy.cameras, images)), "proprio": proprio}, lang)
            x = torch.zeros(1, cfg.horizon, spec.action_dim, dtype=dtype)
            t = torch.zeros(1, dtype=dtype)
            _export(_StepGraph(policy.head), (x, t, memory), tmp / "denoise_step.onnx", ["x_t", "t", "memory"], ["out"],
                    {"x_t": {0: "batch"}, "t": {0: "batch"}, "memory": {0: "batch"}, "out": {0: "batch"}})
            graphs = {"encoder": "encoder.onnx", "denoise_step": "denoise_step.onnx"}
            if isinstance(policy.head, DiffusionHead):
                sampler = {"type": "ddim", "timesteps": policy.head.timesteps(),
                           "alphas_cumprod": policy.head.alphas_cumprod.float().tolist()}
            else:
                sampler = {"type": "euler", "steps": policy.head.inference_steps}
        else:
            _export(_PolicyGraph(policy), (*images, proprio, lang), tmp / "policy.onnx", obs_names, ["actions"],
                    obs_dyn | {"actions": {0: "batch"}})
            graphs = {"policy": "policy.onnx"}
            sampler = None
        policy.language.tokenizer.save_pretrained(str(tmp / "tokenizer"))
        (tmp / "spec.json").write_text(json.dumps(spec.to_dict(), indent=2))
        (tmp / "normalization.json").write_text(json.dumps({k: v.astype("float32").tolist() for k, v in policy.normalizer.stats().items()}))
        meta = {"format_version": EXPORT_FORMAT, "format": "onnx", "opset": OPSET, "head": cfg.head,
                "iterative": bool(getattr(policy.head, "iterative", False)), "graphs": graphs | {"language": "language.onnx"},
                "inputs": {"images": image_names, "proprio": "proprio", "language": "language"},
                "cameras": list(policy.cameras), "n_obs_steps": to, "horizon": cfg.horizon,
                "n_action_steps": cfg.n_action_steps, "action_dim": spec.action_dim, "language_dim": policy.language.dim,
                "max_length": policy.language.max_length, "cached": ["language"], "sampler": sampler,
                "fp16": fp16, "source_checkpoint": str(Path(checkpoint).resolve())}
        (tmp / "export.json").write_text(json.dumps(meta, indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_export(directory: str | Path) -> dict:
    """``export.json`` of an export directory, checked for completeness."""
    directory = Path(directory)
    meta_path = directory / "export.json"
    if not meta_path.is_file():
        raise VLAError(f"'{directory}' is not an export directory (missing export.json; create one with vla export)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        raise VLAError(f"'{directory}/export.json' is corrupt (not valid JSON)") from None
    if meta.get("format_version") != EXPORT_FORMAT:
        raise VLAError(f"'{directory}' has export format {meta.get('format_version')}; this vla_core reads {EXPORT_FORMAT}")
    missing = [f for f in [*meta.get("graphs", {}).values(), "spec.json", "normalization.json", "tokenizer"]
               if not (directory / f).exists()]
    if missing:
        raise VLAError(f"export '{directory}' is incomplete: missing {', '.join(missing)}")
    return meta
