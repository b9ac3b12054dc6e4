"""What a policy consumes and produces: cameras, proprioception, actions and control rate.

The spec travels with every checkpoint and export; loading compares it with what the caller
provides (a dataset, a simulator, a robot) and refuses a mismatch with one clear sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vla_core.errors import CheckpointError


@dataclass
class PolicySpec:
    """Observation and action interface of a policy.

    ``cameras``: camera name -> image shape ``[height, width, 3]`` (uint8 RGB).
    ``proprio_names`` / ``action_names``: one name per dimension (units are the robot's).
    ``fps``: control rate in Hz (one action per control tick).
    """

    cameras: dict[str, list[int]]
    proprio_names: list[str]
    action_names: list[str]
    fps: float
    robot: str = ""
    action_low: list[float] = field(default_factory=list)
    action_high: list[float] = field(default_factory=list)

    @property
    def action_dim(self) -> int:
        """Number of action dimensions."""
        return len(self.action_names)

    @property
    def proprio_dim(self) -> int:
        """Number of proprioception dimensions."""
        return len(self.proprio_names)

    def to_dict(self) -> dict:
        """Plain JSON-able form."""
        return {
            "cameras": {k: list(v) for k, v in self.cameras.items()},
            "proprio_names": list(self.proprio_names),
            "action_names": list(self.action_names),
            "fps": float(self.fps),
            "robot": self.robot,
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
        }

    @classmethod
    def from_dict(cls, data: dict) -> PolicySpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            cameras={k: [int(x) for x in v] for k, v in data["cameras"].items()},
            proprio_names=list(data["proprio_names"]),
            action_names=list(data["action_names"]),
            fps=float(data["fps"]),
            robot=data.get("robot", ""),
            action_low=list(data.get("action_low", [])),
            action_high=list(data.get("action_high", [])),
        )

    def check_compatible(self, other: PolicySpec, what: str = "the caller") -> None:
        """Raise :class:`CheckpointError` unless ``other`` provides what this spec expects."""
        missing = sorted(set(self.cameras) - set(other.cameras))
        if missing:
            raise CheckpointError(
                f"the policy expects camera(s) {missing} but {what} provides {sorted(other.cameras)}"
            )
        for name in self.cameras:
            if list(self.cameras[name])[:2] != list(other.cameras[name])[:2]:
                raise CheckpointError(
                    f"camera '{name}': the policy expects images of {self.cameras[name]} "
                    f"but {what} provides {other.cameras[name]}"
                )
        if self.proprio_dim != other.proprio_dim:
            raise CheckpointError(
                f"the policy expects {self.proprio_dim} proprioception values {self.proprio_names} "
                f"but {what} provides {other.proprio_dim} {other.proprio_names}"
            )
        if other.fps and self.fps and abs(self.fps - other.fps) > 1e-6 * max(self.fps, other.fps):
            raise CheckpointError(
                f"the policy was trained on actions at {self.fps:g} Hz but {what} runs at {other.fps:g} Hz: its chunks "
                f"would play back at the wrong speed; record demonstrations at the control rate"
            )
        if self.action_dim != other.action_dim:
            raise CheckpointError(
                f"the policy produces {self.action_dim} actions {self.action_names} "
                f"but {what} expects {other.action_dim} {other.action_names}"
            )
