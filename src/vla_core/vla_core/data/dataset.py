"""Training dataset over episode files: every timestep indexed, action windows with padding masks.

An item at (episode e, frame t) holds::

    images[cam]       uint8  (To, H, W, 3)  frames t-To+1 .. t (the first frame repeats at the start)
    proprio           float  (To, P)
    actions           float  (H, A)         actions t .. t+H-1 (the last action repeats past the end)
    action_is_pad     bool   (H,)           True where the action is padding past the episode end
    instruction       str

Episodes are loaded into memory once; corrupt or inconsistent ones are reported by name and
skipped, never trained on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vla_core.data.episode import Episode, list_episode_files, read_episode
from vla_core.errors import DatasetError, EpisodeError
from vla_core.normalize import compute_stats
from vla_core.spec import PolicySpec

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What loading a directory found: usable episodes and the skipped ones with their reason."""

    episodes: list[Episode]
    skipped: list[tuple[str, str]]


def load_episodes(directory: str | Path, warn: bool = True) -> LoadReport:
    """Read every episode in ``directory``; corrupt ones are skipped and reported by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"dataset directory '{directory}' does not exist")
    files = list_episode_files(directory)
    if not files:
        raise DatasetError(f"dataset directory '{directory}' holds no episode files (*.h5)")
    episodes, skipped = [], []
    for path in files:
        try:
            episodes.append(read_episode(path))
        except EpisodeError as exc:
            skipped.append((path.name, str(exc)))
            if warn:
                log.warning("skipping episode %s", exc)
    if not episodes:
        raise DatasetError(f"dataset directory '{directory}': all {len(files)} episodes are unusable")
    first = episodes[0]
    for ep in episodes[1:]:
        if ep.actions.shape[1] != first.actions.shape[1] or ep.proprio.shape[1] != first.proprio.shape[1]:
            raise DatasetError(
                f"{ep.path.name}: has {ep.actions.shape[1]} action / {ep.proprio.shape[1]} proprio dims, "
                f"but {first.path.name} has {first.actions.shape[1]} / {first.proprio.shape[1]}"
            )
    return LoadReport(episodes, skipped)


def split_by_episode(episodes: list[Episode], val_fraction: float, seed: int = 0) -> tuple[list[Episode], list[Episode]]:
    """Deterministic train/validation split by whole episodes (at least one training episode)."""
    order = np.random.default_rng(seed).permutation(len(episodes))
    n_val = int(round(len(episodes) * val_fraction))
    n_val = min(n_val, len(episodes) - 1)
    val = [episodes[i] for i in sorted(order[:n_val])]
    train = [episodes[i] for i in sorted(order[n_val:])]
    return train, val


def spec_from_episodes(episodes: list[Episode], cameras: list[str] | None = None) -> PolicySpec:
    """The observation/action spec the episodes provide (names default to ``a0``, ``p0``, ...)."""
    first = episodes[0]
    cams = list(cameras) if cameras else sorted(first.images)
    for cam in cams:
        if cam not in first.images:
            raise DatasetError(f"camera '{cam}' is not in the episodes; they have {sorted(first.images)}")
    return PolicySpec(
        cameras={cam: list(first.images[cam].shape[1:]) for cam in cams},
        proprio_names=first.proprio_names or [f"p{i}" for i in range(first.proprio.shape[1])],
        action_names=first.action_names or [f"a{i}" for i in range(first.actions.shape[1])],
        fps=first.fps,
        robot=first.robot,
    )


def dataset_stats(episodes: list[Episode]) -> dict[str, np.ndarray]:
    """Normalisation statistics over all frames of ``episodes`` (computed once per training run)."""
    return compute_stats([e.actions for e in episodes], [e.proprio for e in episodes])


class EpisodeDataset(Dataset):
    """Every timestep of every episode, with action windows of ``horizon`` steps."""

    def __init__(self, episodes: list[Episode], horizon: int, n_obs_steps: int = 1,
                 cameras: list[str] | None = None):
        if not episodes:
            raise DatasetError("no episodes to build a dataset from")
        self.episodes = episodes
        self.horizon = horizon
        self.n_obs_steps = n_obs_steps
        self.cameras = list(cameras) if cameras else sorted(episodes[0].images)
        lengths = np.array([len(e) for e in episodes])
        self._ep_index = np.repeat(np.arange(len(episodes)), lengths)
        self._frame_index = np.concatenate([np.arange(n) for n in lengths])

    def __len__(self) -> int:
        """Total number of frames."""
        return int(self._ep_index.shape[0])

    def __getitem__(self, idx: int) -> dict:
        """One training sample (see module docstring for shapes)."""
        ep = self.episodes[int(self._ep_index[idx])]
        t = int(self._frame_index[idx])
        n = len(ep)
        obs_t = np.clip(np.arange(t - self.n_obs_steps + 1, t + 1), 0, n - 1)
        act_t = np.arange(t, t + self.horizon)
        is_pad = act_t >= n
        act_t = np.minimum(act_t, n - 1)
        return {
            "images": {cam: torch.from_numpy(ep.images[cam][obs_t]) for cam in self.cameras},
            "proprio": torch.from_numpy(ep.proprio[obs_t]),
            "actions": torch.from_numpy(ep.actions[act_t]),
            "action_is_pad": torch.from_numpy(is_pad),
            "instruction": ep.instruction,
        }

    def instructions(self) -> list[str]:
        """Distinct instructions in the dataset."""
        return sorted({e.instruction for e in self.episodes})
