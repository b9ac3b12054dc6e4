"""Normalisation statistics and the module that applies them.

Actions are scaled per dimension from [min, max] to [-1, 1] (what the diffusion clamp and the
256-bin tokeniser need); proprioception is standardised (mean / std). The statistics are buffers
of :class:`Normalizer`, so they move with the policy's device, are saved with its weights and
are baked into exported graphs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

EPS = 1e-6


def compute_stats(actions: list[np.ndarray], proprio: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-dimension statistics over all frames: ``actions`` and ``proprio`` are lists of (T, D)."""
    a = np.concatenate(actions, axis=0).astype(np.float64)
    p = np.concatenate(proprio, axis=0).astype(np.float64)
    return {
        "action_min": a.min(0).astype(np.float32),
        "action_max": a.max(0).astype(np.float32),
        "action_mean": a.mean(0).astype(np.float32),
        "action_std": a.std(0).astype(np.float32),
        "proprio_mean": p.mean(0).astype(np.float32),
        "proprio_std": p.std(0).astype(np.float32),
    }


class Normalizer(nn.Module):
    """Applies stored statistics. Shapes: actions (..., A), proprio (..., P)."""

    STAT_KEYS = ("action_min", "action_max", "action_mean", "action_std", "proprio_mean", "proprio_std")

    def __init__(self, stats: dict[str, np.ndarray | torch.Tensor]):
        super().__init__()
        for key in self.STAT_KEYS:
            self.register_buffer(key, torch.as_tensor(np.asarray(stats[key]), dtype=torch.float32).clone())

    def stats(self) -> dict[str, np.ndarray]:
        """The statistics as numpy arrays."""
        return {k: getattr(self, k).detach().cpu().numpy() for k in self.STAT_KEYS}

    def _scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        center = (self.action_max + self.action_min) / 2
        half_range = ((self.action_max - self.action_min) / 2).clamp_min(EPS)
        return center, half_range

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        """Robot units -> [-1, 1]."""
        center, half_range = self._scale()
        return (action - center) / half_range

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> robot units."""
        center, half_range = self._scale()
        return action * half_range + center

    def normalize_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        """Robot units -> zero mean, unit variance."""
        return (proprio - self.proprio_mean) / self.proprio_std.clamp_min(1e-3)
