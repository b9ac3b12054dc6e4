"""Transformer building blocks shared by the fusion encoder and the action decoders.

Attention keeps separate ``q_proj`` / ``k_proj`` / ``v_proj`` / ``out_proj`` linear layers (instead of
``nn.MultiheadAttention``'s fused input projection) so LoRA adapters can target them by name and
the ONNX export is a plain graph of matmuls.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention. x: (B, N, D), context: (B, M, D) or None (self-attention) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Attend from ``x`` to ``context`` (or to itself)."""
        ctx = x if context is None else context
        # Batch stays -1 in every reshape so exported graphs keep a dynamic batch dimension.
        _, n, d = x.shape
        m = ctx.shape[1]
        h = self.heads
        q = self.q_proj(x).reshape(-1, n, h, d // h).transpose(1, 2)
        k = self.k_proj(ctx).reshape(-1, m, h, d // h).transpose(1, 2)
        v = self.v_proj(ctx).reshape(-1, m, h, d // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(-1, n, d))


class FeedForward(nn.Module):
    """Two-layer MLP with GELU: (..., D) -> (..., D)."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP."""
        return self.net(x)


class EncoderBlock(nn.Module):
    """Pre-norm self-attention + feed-forward: (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int, ff_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.ff(self.norm2(x)))


class DecoderBlock(nn.Module):
    """Pre-norm self-attention over queries, cross-attention to memory, feed-forward.

    x: (B, H, D) action queries, memory: (B, M, D) fused observation tokens -> (B, H, D).
    """

    def __init__(self, dim: int, heads: int, ff_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads, dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        x = x + self.drop(self.self_attn(self.norm1(x)))
        x = x + self.drop(self.cross_attn(self.norm2(x), memory))
        return x + self.drop(self.ff(self.norm3(x)))


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of scalar times. t: (B,) float -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
