"""VLA policies: encoders, fusion, action heads and the policy that composes them."""

from vla_core.policy.factory import HEADS, make_policy

__all__ = ["HEADS", "make_policy"]
