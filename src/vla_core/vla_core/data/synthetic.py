"""Tiny synthetic demonstrations for tests and smoke runs (no simulator needed).

Each episode shows a coloured square moving across a dark image; the action is the square's
velocity, whose sign depends on the instruction ("move left" / "move right"), so a policy must
use both the image and the language to imitate it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_core.data.episode import Episode, write_episode

INSTRUCTIONS = ("move the block left", "move the block right")


def make_episode(seed: int, length: int = 24, image_size: int = 32, action_dim: int = 4, proprio_dim: int = 4,
                 camera: str = "front") -> Episode:
    """One synthetic episode; deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    direction = 1.0 if seed % 2 else -1.0
    instruction = INSTRUCTIONS[int(direction > 0)]
    pos = rng.uniform(0.3, 0.7, size=2)
    images = np.zeros((length, image_size, image_size, 3), np.uint8)
    proprio = np.zeros((length, proprio_dim), np.float32)
    actions = np.zeros((length, action_dim), np.float32)
    color = rng.integers(128, 255, size=3)
    for t in range(length):
        vel = np.array([direction * 0.02, 0.01 * np.sin(t / 4.0)])
        x, y = (pos * (image_size - 4)).astype(int)
        images[t, y:y + 4, x:x + 4] = color
        proprio[t, :2] = pos
        proprio[t, 2:] = np.sin(t / 5.0 + np.arange(proprio_dim - 2))
        actions[t, :2] = vel * 10
        actions[t, 2:] = np.cos(t / 6.0 + np.arange(action_dim - 2)) * 0.5
        pos = np.clip(pos + vel, 0.0, 1.0)
    return Episode(images={camera: images}, proprio=proprio, actions=actions, instruction=instruction,
                   success=True, fps=10.0, robot="synthetic", task="move",
                   action_names=[f"a{i}" for i in range(action_dim)], proprio_names=[f"p{i}" for i in range(proprio_dim)])


def make_dataset(directory: str | Path, episodes: int = 6, **kwargs) -> list[Path]:
    """Write ``episodes`` synthetic episodes into ``directory``."""
    directory = Path(directory)
    return [write_episode(directory / f"episode_{i:06d}.h5", make_episode(i, **kwargs)) for i in range(episodes)]
