"""The episode file format and its single writer.

One HDF5 file per episode::

    images/<camera>   uint8   (T, H, W, 3)   RGB frames, LZF-compressed
    proprio           float32 (T, P)         robot state at each frame
    actions           float32 (T, A)         command sent after each frame
    attrs: instruction (str), success (bool), fps (Hz), robot, task,
           action_names, proprio_names, format_version

:class:`EpisodeWriter` is the only code that writes episodes (``vla collect`` and the ROS teleop
collector both use it). It writes a temporary file in the destination directory and renames it
into place, so a crash never leaves a half episode under the final name.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from vla_core.errors import EpisodeError

FORMAT_VERSION = 1
EPISODE_SUFFIX = ".h5"


@dataclass
class Episode:
    """One demonstration held in memory.

    ``images``: camera -> (T, H, W, 3) uint8. ``proprio``: (T, P) float32. ``actions``: (T, A) float32.
    """

    images: dict[str, np.ndarray]
    proprio: np.ndarray
    actions: np.ndarray
    instruction: str
    success: bool = True
    fps: float = 30.0
    robot: str = ""
    task: str = ""
    action_names: list[str] = field(default_factory=list)
    proprio_names: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        """Number of frames."""
        return int(self.actions.shape[0])

    def validate(self) -> None:
        """Raise :class:`EpisodeError` naming the first inconsistency found."""
        name = self.path.name if self.path else "episode"
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise EpisodeError(f"{name}: missing instruction (expected a non-empty string attribute 'instruction')")
        if self.actions.ndim != 2 or self.proprio.ndim != 2:
            raise EpisodeError(f"{name}: 'actions' and 'proprio' must be 2-D (frames x dims)")
        n = self.actions.shape[0]
        if n == 0:
            raise EpisodeError(f"{name}: has no frames")
        if self.proprio.shape[0] != n:
            raise EpisodeError(f"{name}: length mismatch: {n} actions but {self.proprio.shape[0]} proprio frames")
        if not self.images:
            raise EpisodeError(f"{name}: has no camera images (expected group 'images/<camera>')")
        for cam, frames in self.images.items():
            if frames.shape[0] != n:
                raise EpisodeError(f"{name}: length mismatch: {n} actions but {frames.shape[0]} frames of camera '{cam}'")
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise EpisodeError(f"{name}: camera '{cam}' must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        if not np.isfinite(self.actions).all():
            raise EpisodeError(f"{name}: actions contain NaN or inf")
        if not np.isfinite(self.proprio).all():
            raise EpisodeError(f"{name}: proprio contains NaN or inf")
        if self.action_names and len(self.action_names) != self.actions.shape[1]:
            raise EpisodeError(f"{name}: {len(self.action_names)} action names for {self.actions.shape[1]} action dims")
        if self.proprio_names and len(self.proprio_names) != self.proprio.shape[1]:
            raise EpisodeError(f"{name}: {len(self.proprio_names)} proprio names for {self.proprio.shape[1]} dims")


def write_episode(path: str | Path, episode: Episode) -> Path:
    """Validate and atomically write ``episode`` to ``path`` (temporary file, then rename)."""
    episode.validate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp_name, "w") as f:
            grp = f.create_group("images")
            for cam, frames in episode.images.items():
                grp.create_dataset(cam, data=np.ascontiguousarray(frames, dtype=np.uint8),
                                   chunks=(1,) + frames.shape[1:], compression="lzf")
            f.create_dataset("proprio", data=np.asarray(episode.proprio, dtype=np.float32))
            f.create_dataset("actions", data=np.asarray(episode.actions, dtype=np.float32))
            f.attrs["instruction"] = episode.instruction
            f.attrs["success"] = bool(episode.success)
            f.attrs["fps"] = float(episode.fps)
            f.attrs["robot"] = episode.robot
            f.attrs["task"] = episode.task
            f.attrs["action_names"] = list(episode.action_names)
            f.attrs["proprio_names"] = list(episode.proprio_names)
            f.attrs["format_version"] = FORMAT_VERSION
            for key, value in episode.extra.items():
                f.attrs[f"extra_{key}"] = value
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp creates 0600; episodes are ordinary data files
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _as_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_episode(path: str | Path) -> Episode:
    """Read and validate one episode file; raise :class:`EpisodeError` naming the file on any problem."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "actions" not in f or "proprio" not in f or "images" not in f:
                raise EpisodeError(f"{path.name}: not an episode file (expected 'images', 'proprio' and 'actions')")
            attrs = dict(f.attrs)
            episode = Episode(
                images={cam: f["images"][cam][()] for cam in f["images"]},
                proprio=f["proprio"][()].astype(np.float32),
                actions=f["actions"][()].astype(np.float32),
                instruction=_as_str(attrs.get("instruction", "")),
                success=bool(attrs.get("success", True)),
                fps=float(attrs.get("fps", 30.0)),
                robot=_as_str(attrs.get("robot", "")),
                task=_as_str(attrs.get("task", "")),
                action_names=[_as_str(x) for x in attrs.get("action_names", [])],
                proprio_names=[_as_str(x) for x in attrs.get("proprio_names", [])],
                extra={k[6:]: v for k, v in attrs.items() if k.startswith("extra_")},
                path=path,
            )
    except EpisodeError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise EpisodeError(f"{path.name}: cannot be read as an HDF5 episode ({exc.__class__.__name__}: {exc})") from None
    episode.validate()
    return episode


def list_episode_files(directory: str | Path) -> list[Path]:
    """Episode files in ``directory`` (sorted; temporary files of interrupted writes excluded)."""
    directory = Path(directory)
    return sorted(p for p in directory.glob(f"*{EPISODE_SUFFIX}") if not p.name.startswith("."))


class EpisodeWriter:
    """Records one episode frame by frame, then writes it atomically.

    Usage::

        writer = EpisodeWriter(fps=30, instruction="open the drawer", robot="sawyer",
                               action_names=[...], proprio_names=[...])
        for each tick: writer.add_frame({"corner": rgb}, proprio, action)
        writer.finish(path, success=True)   # or writer.discard()
    """

    def __init__(self, fps: float, instruction: str = "", robot: str = "", task: str = "",
                 action_names: list[str] | None = None, proprio_names: list[str] | None = None):
        self.fps = float(fps)
        self.instruction = instruction
        self.robot = robot
        self.task = task
        self.action_names = list(action_names or [])
        self.proprio_names = list(proprio_names or [])
        self._images: dict[str, list[np.ndarray]] = {}
        self._proprio: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []

    def __len__(self) -> int:
        """Frames recorded so far."""
        return len(self._actions)

    def add_frame(self, images: dict[str, np.ndarray], proprio: np.ndarray, action: np.ndarray) -> None:
        """Append one synchronised frame: images camera -> (H, W, 3) uint8, proprio (P,), action (A,)."""
        if self._actions and set(images) != set(self._images):
            raise EpisodeError(f"frame {len(self)} has cameras {sorted(images)}, expected {sorted(self._images)}")
        for cam, img in images.items():
            self._images.setdefault(cam, []).append(np.asarray(img, dtype=np.uint8))
        self._proprio.append(np.asarray(proprio, dtype=np.float32).reshape(-1))
        self._actions.append(np.asarray(action, dtype=np.float32).reshape(-1))

    def to_episode(self, success: bool = True, extra: dict | None = None) -> Episode:
        """The recorded frames as an :class:`Episode` (not yet written)."""
        if not self._actions:
            raise EpisodeError("cannot finish an episode with no frames")
        return Episode(
            images={cam: np.stack(frames) for cam, frames in self._images.items()},
            proprio=np.stack(self._proprio),
            actions=np.stack(self._actions),
            instruction=self.instruction,
            success=success,
            fps=self.fps,
            robot=self.robot,
            task=self.task,
            action_names=self.action_names,
            proprio_names=self.proprio_names,
            extra=dict(extra or {}),
        )

    def finish(self, path: str | Path, success: bool = True, extra: dict | None = None) -> Path:
        """Write the episode atomically to ``path`` and clear the buffer."""
        out = write_episode(path, self.to_episode(success, extra))
        self.discard()
        return out

    def discard(self) -> None:
        """Drop everything recorded so far."""
        self._images.clear()
        self._proprio.clear()
        self._actions.clear()
