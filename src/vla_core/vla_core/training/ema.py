"""Exponential moving average of a model's trainable parameters.

``torch.optim.swa_utils.AveragedModel`` copies and averages every parameter and buffer, which for a
VLA policy includes the frozen pretrained language model (22.7 M parameters of MiniLM against
1.3 M trained ones): a tenth of every CPU training step went to averaging weights that never
change. This EMA keeps shadow copies of the trainable parameters only and swaps them in where the
averaged model is needed (validation, checkpoints).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class ParameterEMA:
    """``shadow = decay * shadow + (1 - decay) * param`` for every parameter that requires a gradient."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for _, p in self._params(model)]
        self.updates = 0

    def _params(self, model: nn.Module) -> list[tuple[str, nn.Parameter]]:
        named = dict(model.named_parameters())
        return [(n, named[n]) for n in self.names]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One averaging step after an optimiser step (the first one copies, as AveragedModel does)."""
        live = [p.detach() for _, p in self._params(model)]
        if self.updates == 0:
            torch._foreach_copy_(self.shadow, live)
        else:
            torch._foreach_lerp_(self.shadow, live, 1.0 - self.decay)
        self.updates += 1

    @contextmanager
    def applied(self, model: nn.Module):
        """Within the block, ``model`` holds the averaged parameters; its own are restored afterwards."""
        params = [p for _, p in self._params(model)]
        live = [p.detach().clone() for p in params]
        with torch.no_grad():
            torch._foreach_copy_(params, self.shadow)
        try:
            yield model
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, live)

    def state_dict(self) -> dict:
        """Shadow parameters by name, and the update count."""
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(zip(self.names, self.shadow))}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.updates = int(state["updates"])
        for i, name in enumerate(self.names):
            self.shadow[i].copy_(state["shadow"][name])
