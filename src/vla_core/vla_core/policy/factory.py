"""Registry of action heads and the factory that builds a policy from a configuration by name."""

from __future__ import annotations

import numpy as np

from vla_core.config import PolicyConfig
from vla_core.spec import PolicySpec

HEADS = {
    "regression": "vla_core.policy.heads:RegressionHead",
    "diffusion": "vla_core.policy.heads:DiffusionHead",
    "flow": "vla_core.policy.heads:FlowHead",
    "tokens": "vla_core.policy.heads:TokenHead",
}


def head_class(name: str):
    """Import the head class registered under ``name`` (lazily, like LeRobot's factory)."""
    import importlib

    module, cls = HEADS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_policy(config: PolicyConfig, spec: PolicySpec, stats: dict[str, np.ndarray]):
    """Build a :class:`~vla_core.policy.modeling.VLAPolicy` for ``spec`` with normalisation ``stats``."""
    from vla_core.policy.modeling import VLAPolicy

    return VLAPolicy(config, spec, stats)
