"""Guidance coefficients of real-time chunking, shared by the torch heads and the graph back ends.

Real-time chunking (Black, Galliker and Levine 2025) samples a new chunk so that it agrees with the
actions already planned: at every denoising step the prediction of the clean chunk is pulled
towards the planned actions ``Y`` under a soft mask ``W`` with pseudo-inverse guidance (Pokle et
al. 2023, "PiGDM")::

    g = (W * (Y - A_hat))^T  dA_hat / dx        (a vector-Jacobian product)

Flow matching (time t from 0 = noise to 1 = actions, A_hat = x + (1 - t) v):
    v <- v + min(beta, (1 - t) / (t * r2)) * g,   r2 = (1 - t)^2 / (t^2 + (1 - t)^2)
DDIM (epsilon prediction, A_hat = x0): our adaptation of the same rule to a variance-preserving
schedule, where r2 = 1 - alpha_bar:
    eps <- eps - min(beta, 1 / sqrt(1 - alpha_bar)) * g

The torch heads compute ``dA_hat / dx`` exactly with autograd. Graph back ends (ONNX Runtime,
TensorRT) have no gradients and use the Jacobian of the update without the network's own term
(identity for flow, 1 / sqrt(alpha_bar) for DDIM): cheaper and slightly weaker; measured in the
README's delay-robustness table.
"""

from __future__ import annotations

import math

DEFAULT_MAX_GUIDANCE = 5.0  # beta of the paper


def flow_guidance_scale(t: float, beta: float = DEFAULT_MAX_GUIDANCE) -> float:
    """Weight of the guidance term at flow time ``t`` in [0, 1)."""
    if t <= 0.0:
        return beta
    r2 = (1 - t) ** 2 / (t ** 2 + (1 - t) ** 2)
    return min(beta, (1 - t) / (t * r2))


def ddim_guidance_scale(alpha_bar: float, beta: float = DEFAULT_MAX_GUIDANCE) -> float:
    """Weight of the guidance term at a DDIM step whose cumulative alpha is ``alpha_bar``."""
    return min(beta, 1.0 / math.sqrt(max(1.0 - alpha_bar, 1e-8)))
