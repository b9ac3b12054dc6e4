"""The VLA policy: encoders -> fusion transformer -> action head, behind one contract.

Contract (shapes for batch size B, observation history To, horizon H, action dim A)::

    obs = {
        "images": {camera: uint8 (B, [To,] H, W, 3)  or  float (B, [To,] 3, H, W) in [0, 1]},
        "proprio": float (B, [To,] P),
        "instruction": str or list of B str,
    }
    policy.reset()
    policy.predict_action_chunk(obs) -> (B, H, A)   robot units
    policy.select_action(obs)        -> (B, A)      chunks executed by the one ChunkScheduler (sync mode)
    policy.forward(batch)            -> (loss, metrics)   batch = obs + "actions" (B, H, A), "action_is_pad" (B, H)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vla_core.config import PolicyConfig
from vla_core.normalize import Normalizer
from vla_core.policy.encoders import CNNEncoder, HFVisionEncoder, LanguageEncoder, ProprioEncoder
from vla_core.policy.factory import head_class
from vla_core.policy.heads import masked_mean
from vla_core.policy.layers import EncoderBlock
from vla_core.runtime.scheduler import ChunkScheduler, SchedulerConfig
from vla_core.spec import PolicySpec

# Modality types of the fusion tokens.
TOKEN_LANGUAGE, TOKEN_PROPRIO, TOKEN_IMAGE = 0, 1, 2


class Fusion(nn.Module):
    """Transformer over modality tokens with modality-type and camera embeddings.

    Input tokens: language (B, 1, D), proprioception (B, 1, D), image tokens (B, C * To * N, D).
    Output: memory (B, 2 + C * To * N, D) for the action head.
    """

    def __init__(self, config: PolicyConfig, lang_dim: int, n_cameras: int):
        super().__init__()
        f = config.fusion
        self.lang_proj = nn.Linear(lang_dim, f.dim)
        self.type_emb = nn.Parameter(torch.randn(3, f.dim) * 0.02)
        self.camera_emb = nn.Parameter(torch.randn(n_cameras, f.dim) * 0.02)
        self.time_emb = nn.Parameter(torch.randn(config.n_obs_steps, f.dim) * 0.02)
        self.blocks = nn.ModuleList([EncoderBlock(f.dim, f.heads, f.ff_mult, f.dropout) for _ in range(f.layers)])
        self.norm = nn.LayerNorm(f.dim)

    def forward(self, lang: torch.Tensor, proprio: torch.Tensor, images: list[torch.Tensor]) -> torch.Tensor:
        """Lang (B, E), proprio (B, D), images: per camera (B, To, N, D) -> memory (B, M, D)."""
        parts = [
            (self.lang_proj(lang) + self.type_emb[TOKEN_LANGUAGE]).unsqueeze(1),
            (proprio + self.type_emb[TOKEN_PROPRIO]).unsqueeze(1),
        ]
        for c, tokens in enumerate(images):
            tokens = tokens + self.camera_emb[c] + self.time_emb[:, None, :] + self.type_emb[TOKEN_IMAGE]
            parts.append(tokens.flatten(1, 2))
        x = torch.cat(parts, dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class VLAPolicy(nn.Module):
    """Vision-language-action policy (see the module docstring for the contract)."""

    def __init__(self, config: PolicyConfig, spec: PolicySpec, stats: dict[str, np.ndarray]):
        super().__init__()
        self.config = config
        self.spec = spec
        self.cameras = list(spec.cameras)
        d = config.fusion.dim
        self.normalizer = Normalizer(stats)
        self.language = LanguageEncoder(config.language)
        film_dim = self.language.dim if (config.fusion.film and config.vision.type == "cnn") else 0
        if config.vision.type == "cnn":
            self.vision = CNNEncoder(config.vision, d, film_dim)
        else:
            self.vision = HFVisionEncoder(config.vision, d)
        self.proprio = ProprioEncoder(spec.proprio_dim * config.n_obs_steps, config.proprio_hidden, d)
        self.fusion = Fusion(config, self.language.dim, len(self.cameras))
        self.head = head_class(config.head)(config, spec.action_dim)
        self._scheduler = ChunkScheduler(SchedulerConfig(mode="sync", execute_steps=config.n_action_steps))
        self._tick = 0

    # ------------------------------------------------------------------ inputs
    @property
    def device(self) -> torch.device:
        """Device of the policy's parameters."""
        return self.fusion.type_emb.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point type of the policy's parameters (float32, or float16 for an fp16 export)."""
        return self.fusion.type_emb.dtype

    def _images(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Any accepted image layout -> float (B, To, 3, S, S) in [0, 1] on the policy's device."""
        x = torch.as_tensor(images, device=self.device)
        if x.dtype == torch.uint8:  # (B, [To,] H, W, 3); explicit permutes export cleanly to ONNX
            x = x.to(self.dtype) / 255.0
            x = x.permute(0, 1, 4, 2, 3) if x.dim() == 5 else x.permute(0, 3, 1, 2)
        if x.dim() == 4:
            x = x.unsqueeze(1)
        b, t = x.shape[:2]
        size = self.vision.image_size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x.flatten(0, 1), size=(size, size), mode="bilinear", align_corners=False).unflatten(0, (b, t))
        return self._history(x)

    def _history(self, x: torch.Tensor) -> torch.Tensor:
        """Pad or crop the time axis (dim 1) to ``n_obs_steps`` by repeating the oldest frame."""
        to = self.config.n_obs_steps
        if x.shape[1] < to:
            x = torch.cat([x[:, :1].expand(-1, to - x.shape[1], *x.shape[2:]), x], dim=1)
        return x[:, -to:]

    def encode_instruction(self, instruction: str | list[str], batch: int) -> torch.Tensor:
        """Instruction(s) -> language embedding (B, E) (cached when the encoder is frozen)."""
        texts = [instruction] * batch if isinstance(instruction, str) else list(instruction)
        if len(texts) != batch:
            raise ValueError(f"got {len(texts)} instructions for a batch of {batch}")
        return self.language(texts)

    def encode(self, obs: dict, lang: torch.Tensor | None = None) -> torch.Tensor:
        """Observation -> fused memory tokens (B, M, D). ``lang`` (B, E) skips the language encoder."""
        proprio = torch.as_tensor(obs["proprio"], device=self.device, dtype=self.dtype)
        if proprio.dim() == 2:
            proprio = proprio.unsqueeze(1)
        proprio = self._history(proprio)
        b = proprio.shape[0]
        if lang is None:
            lang = self.encode_instruction(obs["instruction"], b).to(self.dtype)
        noise = self.config.language.noise
        if self.training and noise > 0:
            lang = lang + torch.randn_like(lang) * (noise * lang.norm(dim=-1, keepdim=True) / math.sqrt(lang.shape[-1]))
        film = lang if self.config.fusion.film else None
        image_tokens = []
        for cam in self.cameras:
            imgs = self._images(obs["images"][cam])  # (B, To, 3, S, S)
            to = imgs.shape[1]
            cond = None if film is None else film.repeat_interleave(to, dim=0)
            tokens = self.vision(imgs.flatten(0, 1), cond)  # (B * To, N, D)
            image_tokens.append(tokens.reshape(-1, to, *tokens.shape[1:]))
        p = self.proprio(self.normalizer.normalize_proprio(proprio).flatten(1))
        return self.fusion(lang, p, image_tokens)

    # ------------------------------------------------------------------ contract
    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss on a batch; the batch is not modified."""
        return self.head.loss(self.encode(batch), *self._targets(batch))

    @torch.no_grad()
    def validation_figures(self, batch: dict, generator: torch.Generator | None = None) -> tuple[float, float]:
        """(training loss, action error) on a batch.

        The action error is the mean absolute difference between the chunk the head decodes (as at inference)
        and the demonstrated one, in normalised units, padding excluded: one figure for every head (the losses
        differ: L1, noise error, cross-entropy). For regression it is the loss.
        """
        memory = self.encode(batch)
        actions, is_pad = self._targets(batch)
        loss, _ = self.head.loss(memory, actions, is_pad)
        error = masked_mean((self.head.sample(memory, generator) - actions).abs(), is_pad)
        return float(loss), float(error)

    def _targets(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's demonstrated chunk (normalised) and its padding mask."""
        actions = self.normalizer.normalize_action(torch.as_tensor(batch["actions"], device=self.device, dtype=torch.float32))
        return actions, torch.as_tensor(batch["action_is_pad"], device=self.device, dtype=torch.bool)

    @torch.no_grad()
    def predict_action_chunk(self, obs: dict, generator: torch.Generator | None = None,
                             noise: torch.Tensor | None = None) -> torch.Tensor:
        """A chunk of future actions in robot units: (B, H, A).

        ``generator`` / ``noise`` (B, H, A) fix the initial sample of the iterative heads.
        """
        memory = self.encode(obs)
        return self.normalizer.unnormalize_action(self.head.sample(memory, generator, noise))

    @torch.no_grad()
    def select_action(self, obs: dict) -> torch.Tensor:
        """The next action (B, A); a new chunk is predicted every ``n_action_steps`` calls.

        Synchronous execution through :class:`~vla_core.runtime.scheduler.ChunkScheduler`, the class
        the robot's executor and ``vla eval`` run.
        """
        t = self._tick
        if self._scheduler.wants_chunk(t):
            self._scheduler.request(t)
            chunk = self.predict_action_chunk(obs)  # (B, H, A)
            self._scheduler.insert(chunk.transpose(0, 1).float().cpu().numpy(), t, t)
        self._tick += 1
        return torch.from_numpy(self._scheduler.pop(t).astype(np.float32)).to(self.device)

    def reset(self) -> None:
        """Forget planned actions (call at the start of every episode or on a new instruction)."""
        self._scheduler.reset()
        self._tick = 0

    # ------------------------------------------------------------------ bookkeeping
    def module_groups(self) -> dict[str, nn.Module]:
        """Named parameter groups used by freezing and per-group learning rates."""
        return {"vision": self.vision, "language": self.language, "proprio": self.proprio,
                "fusion": self.fusion, "head": self.head}

    def trainable_state_keys(self) -> set[str]:
        """State-dict keys a checkpoint must store (frozen pretrained encoders are referenced, not copied)."""
        keys = set(self.state_dict().keys())
        if self.language.frozen:
            keys = {k for k in keys if not k.startswith("language.")}
        if getattr(self.vision, "frozen", False):
            keys = {k for k in keys if not k.startswith("vision.model.")}
        return keys
