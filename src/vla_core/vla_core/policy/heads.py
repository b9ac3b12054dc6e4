"""Action heads: each turns fused observation tokens into a chunk of normalised actions.

All heads share :class:`ChunkDecoder` (transformer decoder over ``horizon`` query tokens that
cross-attend the fused observation tokens) and expose the same two methods::

    loss(memory (B, M, D), actions (B, H, A) in [-1, 1], is_pad (B, H) bool) -> (loss, metrics)
    sample(memory (B, M, D), generator, noise, guidance) -> actions (B, H, A) in [-1, 1]

The iterative heads (diffusion, flow) also expose ``denoise_step`` - the per-step network that an
export runs inside a fixed sampling loop - and accept ``guidance = (targets (B, H, A) in [-1, 1],
weights (H,))``: real-time chunking's inpainting of the actions already planned
(:mod:`vla_core.policy.guidance`). The other heads are deterministic and ignore it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vla_core.config import PolicyConfig
from vla_core.policy.guidance import ddim_guidance_scale, flow_guidance_scale
from vla_core.policy.layers import DecoderBlock, sinusoidal_embedding

Guidance = tuple[torch.Tensor, torch.Tensor]  # targets (B, H, A) in [-1, 1], weights (H,)


def guided_gradient(x: torch.Tensor, predict_clean, guidance: Guidance) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``predict_clean(x) -> (output, clean estimate)`` and the guidance gradient at ``x``.

    Returns (output, g) with g = (W * (Y - clean))^T d clean / d x: one vector-Jacobian product.
    The policy's parameters must not require gradients (runtimes freeze them).
    """
    targets, weights = guidance
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        out, clean = predict_clean(xg)
        err = (targets - clean) * weights.view(1, -1, 1)
        (g,) = torch.autograd.grad(clean, xg, grad_outputs=err)
    return out.detach(), g


def masked_mean(values: torch.Tensor, is_pad: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (B, H, ...) over the steps where ``is_pad`` (B, H) is False."""
    keep = (~is_pad).to(values.dtype)
    while keep.dim() < values.dim():
        keep = keep.unsqueeze(-1)
    denom = keep.expand_as(values).sum().clamp_min(1.0)
    return (values * keep).sum() / denom


class ChunkDecoder(nn.Module):
    """Decoder over H query tokens: queries (B, H, D), memory (B, M, D) -> (B, H, D)."""

    def __init__(self, dim: int, heads: int, layers: int, horizon: int, ff_mult: int, dropout: float):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, horizon, dim) * 0.02)
        self.blocks = nn.ModuleList([DecoderBlock(dim, heads, ff_mult, dropout) for _ in range(max(1, layers))])
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Decode the queries against the memory."""
        x = queries + self.pos
        for block in self.blocks:
            x = block(x, memory)
        return self.norm(x)


class RegressionHead(nn.Module):
    """Learned action queries decoded to a chunk, L1 loss (ACT style, without the CVAE)."""

    iterative = False

    def __init__(self, config: PolicyConfig, action_dim: int):
        super().__init__()
        f, k = config.fusion, config.regression.steps_per_query
        n = config.horizon // k
        self.horizon, self.action_dim = config.horizon, action_dim
        self.queries = nn.Parameter(torch.randn(1, n, f.dim) * 0.02)
        self.decoder = ChunkDecoder(f.dim, f.heads, config.regression.decoder_layers, n, f.ff_mult, f.dropout)
        self.out = nn.Linear(f.dim, k * action_dim)   # query i -> steps i*k .. i*k + k - 1

    def predict(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, M, D) -> (B, H, A)."""
        decoded = self.out(self.decoder(self.queries.expand(memory.shape[0], -1, -1), memory))
        return decoded.reshape(memory.shape[0], self.horizon, self.action_dim)

    def loss(self, memory, actions, is_pad):
        """L1 between predicted and demonstrated normalised actions, padding excluded."""
        l1 = masked_mean((self.predict(memory) - actions).abs(), is_pad)
        return l1, {"l1": l1.detach()}

    def sample(self, memory, generator=None, noise=None, guidance=None):
        """Deterministic: the regressed chunk."""
        return self.predict(memory)


class _Denoiser(nn.Module):
    """Per-step network of the iterative heads: (x_t (B, H, A), t (B,), memory) -> (B, H, A)."""

    def __init__(self, config: PolicyConfig, action_dim: int, layers: int):
        super().__init__()
        f = config.fusion
        self.dim = f.dim
        self.inp = nn.Linear(action_dim, f.dim)
        self.time_mlp = nn.Sequential(nn.Linear(f.dim, f.dim), nn.GELU(), nn.Linear(f.dim, f.dim))
        self.decoder = ChunkDecoder(f.dim, f.heads, layers, config.horizon, f.ff_mult, f.dropout)
        self.out = nn.Linear(f.dim, action_dim)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """``t`` is a float time per sample, in the head's own units."""
        temb = self.time_mlp(sinusoidal_embedding(t, self.dim)).unsqueeze(1)
        return self.out(self.decoder(self.inp(x_t) + temb, memory))


class DiffusionHead(nn.Module):
    """DDPM training (epsilon prediction, squared-cosine schedule), DDIM sampling (eta = 0)."""

    iterative = True

    def __init__(self, config: PolicyConfig, action_dim: int):
        super().__init__()
        self.horizon, self.action_dim = config.horizon, action_dim
        dc = config.diffusion
        self.train_timesteps = dc.train_timesteps
        self.inference_steps = dc.inference_steps
        self.net = _Denoiser(config, action_dim, dc.decoder_layers)
        # Squared-cosine schedule (Nichol & Dhariwal 2021), betas capped at 0.999.
        steps = torch.arange(dc.train_timesteps + 1, dtype=torch.float64) / dc.train_timesteps
        f = torch.cos((steps + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0).float())

    def denoise_step(self, x_t, t, memory):
        """Predicted noise for x_t at integer timesteps t (B,)."""
        return self.net(x_t, t.float(), memory)

    def loss(self, memory, actions, is_pad):
        """MSE between true and predicted noise at a random timestep."""
        b = actions.shape[0]
        t = torch.randint(0, self.train_timesteps, (b,), device=actions.device)
        noise = torch.randn_like(actions)
        ac = self.alphas_cumprod[t].view(b, 1, 1)
        x_t = ac.sqrt() * actions + (1 - ac).sqrt() * noise
        mse = masked_mean((self.denoise_step(x_t, t, memory) - noise) ** 2, is_pad)
        return mse, {"mse": mse.detach()}

    def timesteps(self) -> list[int]:
        """The DDIM schedule: ``inference_steps`` timesteps from noisy to clean."""
        return torch.linspace(self.train_timesteps - 1, 0, self.inference_steps).round().long().tolist()

    def initial_noise(self, batch: int, device, generator=None) -> torch.Tensor:
        """x_T ~ N(0, I): (B, H, A)."""
        return torch.randn(batch, self.horizon, self.action_dim, generator=generator).to(device)

    def ddim_update(self, x, eps, t: int, t_prev: int) -> torch.Tensor:
        """One deterministic DDIM step from timestep t to t_prev (-1 = clean)."""
        ac = self.alphas_cumprod[t]
        ac_prev = self.alphas_cumprod[t_prev] if t_prev >= 0 else torch.ones((), device=x.device)
        x0 = ((x - (1 - ac).sqrt() * eps) / ac.sqrt()).clamp(-1.0, 1.0)
        eps = (x - ac.sqrt() * x0) / (1 - ac).sqrt()
        return ac_prev.sqrt() * x0 + (1 - ac_prev).sqrt() * eps

    def sample(self, memory, generator=None, noise=None, guidance: Guidance | None = None):
        """DDIM sampling in ``inference_steps`` network evaluations (``noise``: optional x_T (B, H, A)).

        ``guidance``: real-time chunking (see the module docstring).
        """
        b = memory.shape[0]
        x = self.initial_noise(b, memory.device, generator) if noise is None else noise.to(memory.device)
        ts = self.timesteps()
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            tt = torch.full((b,), t, device=memory.device)
            if guidance is None:
                eps = self.denoise_step(x, tt, memory)
            else:
                ac = self.alphas_cumprod[t]

                def clean(xg, tt=tt, ac=ac):
                    eps = self.denoise_step(xg, tt, memory)
                    return eps, (xg - (1 - ac).sqrt() * eps) / ac.sqrt()

                eps, g = guided_gradient(x, clean, guidance)
                eps = eps - ddim_guidance_scale(float(ac)) * g
            x = self.ddim_update(x, eps, t, t_prev)
        return x


class FlowHead(nn.Module):
    """Flow matching (pi0 style): learn the velocity from noise (t=0) to actions (t=1); Euler sampling."""

    iterative = True
    TIME_SCALE = 1000.0  # the sinusoidal time embedding expects values on the scale of diffusion timesteps

    def __init__(self, config: PolicyConfig, action_dim: int):
        super().__init__()
        self.horizon, self.action_dim = config.horizon, action_dim
        self.inference_steps = config.flow.inference_steps
        self.net = _Denoiser(config, action_dim, config.flow.decoder_layers)
        # pi0 samples training times from a Beta distribution that favours the noisy end;
        # we do the same with Beta(1.5, 1) mirrored onto our t = 0 (noise) convention.
        self._beta = torch.distributions.Beta(torch.tensor(1.5), torch.tensor(1.0))

    def denoise_step(self, x_t, t, memory):
        """Velocity at x_t for flow times t (B,) in [0, 1]."""
        return self.net(x_t, t * self.TIME_SCALE, memory)

    def loss(self, memory, actions, is_pad):
        """MSE between the predicted and the straight-line velocity."""
        b = actions.shape[0]
        t = (1.0 - self._beta.sample((b,))).clamp(0.0, 0.999).to(actions.device)
        noise = torch.randn_like(actions)
        tt = t.view(b, 1, 1)
        x_t = (1 - tt) * noise + tt * actions
        mse = masked_mean((self.denoise_step(x_t, t, memory) - (actions - noise)) ** 2, is_pad)
        return mse, {"mse": mse.detach()}

    def initial_noise(self, batch: int, device, generator=None) -> torch.Tensor:
        """x_0 ~ N(0, I): (B, H, A)."""
        return torch.randn(batch, self.horizon, self.action_dim, generator=generator).to(device)

    def sample(self, memory, generator=None, noise=None, guidance: Guidance | None = None):
        """``inference_steps`` Euler steps of the learned velocity field (``noise``: optional x_0 (B, H, A)).

        ``guidance``: real-time chunking (see the module docstring).
        """
        b = memory.shape[0]
        x = self.initial_noise(b, memory.device, generator) if noise is None else noise.to(memory.device)
        dt = 1.0 / self.inference_steps
        for i in range(self.inference_steps):
            t = torch.full((b,), i * dt, device=memory.device)
            if guidance is None:
                v = self.denoise_step(x, t, memory)
            else:
                def clean(xg, t=t, s=i * dt):
                    v = self.denoise_step(xg, t, memory)
                    return v, xg + (1 - s) * v

                v, g = guided_gradient(x, clean, guidance)
                v = v + flow_guidance_scale(i * dt) * g
            x = x + dt * v
        return x.clamp(-1.0, 1.0)


class TokenHead(nn.Module):
    """Discrete action tokens: ``bins`` uniform bins per dimension over [-1, 1], cross-entropy.

    Deviation from RT-1 / OpenVLA: all H x A tokens are decoded in parallel from learned queries
    (as in OpenVLA-OFT's parallel decoding) instead of autoregressively, which keeps latency flat.
    """

    iterative = False

    def __init__(self, config: PolicyConfig, action_dim: int):
        super().__init__()
        f = config.fusion
        self.bins, self.action_dim = config.tokens.bins, action_dim
        self.queries = nn.Parameter(torch.randn(1, config.horizon, f.dim) * 0.02)
        self.decoder = ChunkDecoder(f.dim, f.heads, config.tokens.decoder_layers, config.horizon, f.ff_mult, f.dropout)
        self.out = nn.Linear(f.dim, action_dim * self.bins)

    def logits(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, M, D) -> (B, H, A, bins)."""
        x = self.decoder(self.queries.expand(memory.shape[0], -1, -1), memory)
        return self.out(x).unflatten(-1, (self.action_dim, self.bins))

    def tokenize(self, actions: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> bin indices (long)."""
        return ((actions.clamp(-1, 1) + 1) / 2 * (self.bins - 1)).round().long()

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """Bin indices -> bin centres in [-1, 1]."""
        return tokens.float() / (self.bins - 1) * 2 - 1

    def loss(self, memory, actions, is_pad):
        """Cross-entropy over bins, padding excluded; also reports token accuracy."""
        logits = self.logits(memory)
        target = self.tokenize(actions)
        ce = F.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none").view_as(target)
        loss = masked_mean(ce, is_pad)
        acc = masked_mean((logits.argmax(-1) == target).float(), is_pad)
        return loss, {"ce": loss.detach(), "token_acc": acc.detach()}

    def sample(self, memory, generator=None, noise=None, guidance=None):
        """Most likely bin of every dimension and step."""
        return self.detokenize(self.logits(memory).argmax(-1))
