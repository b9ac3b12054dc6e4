"""Training dataset over episode files: every timestep indexed, action windows with padding masks.

An item at (episode e, frame t) holds::

    images[cam]       uint8  (To, H, W, 3)  frames t-To+1 .. t (the first frame repeats at the start)
    proprio           float  (To, P)
    actions           float  (H, A)         actions t .. t+H-1 (the last action repeats past the end)
    action_is_pad     bool   (H,)           True where the action is padding past the episode end
    instruction       str

Episode files are opened lazily (:class:`EpisodeFile`: metadata, proprio and actions in memory,
images on demand); corrupt or inconsistent ones are reported by name and skipped, never trained on.
The images of a dataset that fits ``memory_budget_mb`` are decoded once into one array per camera;
a larger one is read from disk per batch (HDF5 chunk per frame, read grouped by episode), so its
size is bounded by the disk, not the memory. Either way a batch is assembled with a handful of
vectorised gathers (:meth:`EpisodeDataset.batch`), not one Python call per sample, and DataLoader
workers fetch whole batches (``dataset[list_of_indices]``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vla_core.data.episode import Episode, EpisodeFile, list_episode_files
from vla_core.errors import DatasetError, EpisodeError
from vla_core.normalize import compute_stats
from vla_core.spec import PolicySpec

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What loading a directory found: usable episodes and the skipped ones with their reason."""

    episodes: list[EpisodeFile]
    skipped: list[tuple[str, str]]


def load_episodes(directory: str | Path, warn: bool = True) -> LoadReport:
    """Open every episode in ``directory`` (images stay on disk); corrupt ones are skipped and reported by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"dataset directory '{directory}' does not exist")
    files = list_episode_files(directory)
    if not files:
        raise DatasetError(f"dataset directory '{directory}' holds no episode files (*.h5)")
    episodes, skipped = [], []
    for path in files:
        try:
            episodes.append(EpisodeFile(path))
        except EpisodeError as exc:
            skipped.append((path.name, str(exc)))
            if warn:
                log.warning("skipping episode %s", exc)
    if not episodes:
        raise DatasetError(f"dataset directory '{directory}': all {len(files)} episodes are unusable")
    first = episodes[0]
    rates = sorted({e.fps for e in episodes})
    if len(rates) > 1:
        slow = next(e for e in episodes if e.fps != first.fps)
        raise DatasetError(f"{slow.path.name} was recorded at {slow.fps:g} Hz but {first.path.name} at {first.fps:g} Hz: "
                           f"a policy runs at one control rate; keep episodes of one rate per dataset directory")
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
    cams = list(cameras) if cameras else sorted(first.cameras)
    for cam in cams:
        if cam not in first.cameras:
            raise DatasetError(f"camera '{cam}' is not in the episodes; they have {sorted(first.cameras)}")
    for ep in episodes[1:]:
        for cam in cams:
            if tuple(ep.cameras.get(cam, ())) != tuple(first.cameras[cam]):
                raise DatasetError(f"{getattr(ep.path, 'name', 'an episode')}: camera '{cam}' is {ep.cameras.get(cam, 'missing')}, "
                                   f"but {getattr(first.path, 'name', 'the first')} has {tuple(first.cameras[cam])}")
    return PolicySpec(
        cameras={cam: list(first.cameras[cam]) for cam in cams},
        proprio_names=first.proprio_names or [f"p{i}" for i in range(first.proprio.shape[1])],
        action_names=first.action_names or [f"a{i}" for i in range(first.actions.shape[1])],
        fps=first.fps,
        robot=first.robot,
    )


def dataset_stats(episodes: list[Episode]) -> dict[str, np.ndarray]:
    """Normalisation statistics over all frames of ``episodes`` (computed once per training run)."""
    return compute_stats([e.actions for e in episodes], [e.proprio for e in episodes])


class EpisodeDataset(Dataset):
    """Every timestep of every episode, with action windows of ``horizon`` steps.

    ``dataset[i]`` is one sample; ``dataset[indices]`` (a list or array) is a whole batch, stacked
    (what the trainer and DataLoader workers use). Images are resident when they fit
    ``memory_budget_mb`` (decoded size), else read from the episode files per batch.
    """

    def __init__(self, episodes: list, horizon: int, n_obs_steps: int = 1, cameras: list[str] | None = None,
                 memory_budget_mb: float = 2048.0):
        if not episodes:
            raise DatasetError("no episodes to build a dataset from")
        self.episodes = episodes
        self.horizon = horizon
        self.n_obs_steps = n_obs_steps
        self.cameras = list(cameras) if cameras else sorted(episodes[0].cameras)
        self.lengths = np.array([len(e) for e in episodes])
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self._ep_index = np.repeat(np.arange(len(episodes)), self.lengths)
        self._frame_index = np.concatenate([np.arange(n) for n in self.lengths])
        self._proprio = np.concatenate([e.proprio for e in episodes]).astype(np.float32)
        self._actions = np.concatenate([e.actions for e in episodes]).astype(np.float32)
        self._instructions = [e.instruction for e in episodes]
        frame_bytes = sum(int(np.prod(episodes[0].cameras[c])) for c in self.cameras)
        self.image_bytes = int(self.lengths.sum()) * frame_bytes
        self.memory_budget_bytes = int(memory_budget_mb * 2**20)
        self.resident = self.image_bytes <= self.memory_budget_bytes
        self._images: dict[str, np.ndarray] = {}
        if self.resident:
            for cam in self.cameras:
                arr = np.empty((int(self.lengths.sum()), *episodes[0].cameras[cam]), np.uint8)
                for ep, start, n in zip(episodes, self.offsets, self.lengths):
                    arr[start:start + n] = ep.frames(cam, np.arange(n))
                self._images[cam] = arr
        else:
            log.info("dataset images (%.0f MB decoded) exceed the memory budget (%.0f MB): reading them from disk per batch",
                     self.image_bytes / 2**20, memory_budget_mb)

    def __len__(self) -> int:
        """Total number of frames."""
        return int(self._ep_index.shape[0])

    def __getitem__(self, idx) -> dict:
        """One sample (an int) or a stacked batch (a list / array of ints); shapes in the module docstring."""
        if np.ndim(idx) == 0:
            one = self.batch(np.array([int(idx)]))
            return {k: ({c: t[0] for c, t in v.items()} if isinstance(v, dict) else v[0]) for k, v in one.items()}
        return self.batch(np.asarray(idx))

    def batch(self, idx: np.ndarray) -> dict:
        """A batch of samples, gathered with one indexing operation per array."""
        idx = np.asarray(idx, dtype=np.int64)
        ep = self._ep_index[idx]
        t = self._frame_index[idx]
        n = self.lengths[ep][:, None]
        start = self.offsets[ep][:, None]
        obs_t = np.clip(t[:, None] + np.arange(1 - self.n_obs_steps, 1), 0, n - 1)
        act_t = t[:, None] + np.arange(self.horizon)
        is_pad = act_t >= n
        act_t = np.minimum(act_t, n - 1)
        return {
            "images": {cam: torch.from_numpy(self._frames(cam, ep, obs_t, start)) for cam in self.cameras},
            "proprio": torch.from_numpy(self._proprio[start + obs_t]),
            "actions": torch.from_numpy(self._actions[start + act_t]),
            "action_is_pad": torch.from_numpy(is_pad),
            "instruction": [self._instructions[e] for e in ep],
        }

    def _frames(self, cam: str, ep: np.ndarray, obs_t: np.ndarray, start: np.ndarray) -> np.ndarray:
        if self.resident:
            return self._images[cam][start + obs_t]
        out = np.empty((*obs_t.shape, *self.episodes[0].cameras[cam]), np.uint8)
        for e in np.unique(ep):  # one read per episode in the batch
            rows = np.nonzero(ep == e)[0]
            out[rows] = self.episodes[e].frames(cam, obs_t[rows].reshape(-1)).reshape(len(rows), *out.shape[1:])
        return out

    def instructions(self) -> list[str]:
        """Distinct instructions in the dataset."""
        return sorted(set(self._instructions))
