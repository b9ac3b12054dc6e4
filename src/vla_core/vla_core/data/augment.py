"""Augmentation of training batches, in torch (there is no CPU build of torchvision here).

The image functions take and return float images (B, C, H, W) in [0, 1]; :func:`drop_words`
thins instruction strings. All draw randomness from an optional ``torch.Generator`` so training
stays deterministic under a seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad by ``pad`` pixels (replicate) and crop back at a random offset per sample (DrQ style)."""
    if pad <= 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    # Integer shifts expressed as a sampling grid: one grid_sample call for the whole batch.
    shift = torch.randint(0, 2 * pad + 1, (b, 1, 1, 2), generator=generator, device="cpu").to(images.device)
    eps_h, eps_w = 2.0 / (h + 2 * pad), 2.0 / (w + 2 * pad)
    ys = torch.linspace(-1.0 + eps_h, -1.0 + eps_h * (2 * h - 1), h, device=images.device)[:h]
    xs = torch.linspace(-1.0 + eps_w, -1.0 + eps_w * (2 * w - 1), w, device=images.device)[:w]
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0).expand(b, h, w, 2)
    offset = shift.to(images.dtype) * torch.tensor([eps_w, eps_h], device=images.device, dtype=images.dtype)
    return F.grid_sample(padded, base + offset, mode="nearest", padding_mode="zeros", align_corners=False)


def color_jitter(images: torch.Tensor, brightness: float, contrast: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale brightness and contrast by random factors in [1 - x, 1 + x] per sample."""
    b = images.shape[0]
    out = images
    if brightness > 0:
        f = 1.0 + (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * brightness
        out = out * f.to(out.device, out.dtype)
    if contrast > 0:
        f = 1.0 + (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * contrast
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * f.to(out.device, out.dtype) + mean
    return out.clamp(0.0, 1.0)


def drop_words(texts: list[str], p: float, generator: torch.Generator | None = None) -> list[str]:
    """Drop each word of each instruction with probability ``p``, keeping at least one word.

    Word dropout: a policy trained on four fixed phrasings per task can key on one exact sentence
    embedding; trained also on their fragments ("push the drawer", "drawer closed"), it has seen
    the space between phrasings that a new phrasing falls into.
    """
    if p <= 0:
        return list(texts)
    out = []
    for text in texts:
        words = text.split()
        keep = (torch.rand(len(words), generator=generator) >= p).tolist()
        if not any(keep):
            keep[int(torch.randint(len(words), (1,), generator=generator))] = True
        out.append(" ".join(w for w, k in zip(words, keep) if k))
    return out
