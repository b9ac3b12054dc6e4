"""The episode file format, its one writer (streaming), its reader and crash recovery.

One HDF5 file per episode::

    images/<camera>   uint8 (T, H, W, 3) RGB frames, one chunk per frame, compressed losslessly
                      (lzf / gzip / none), or vlen uint8 (T,) JPEG bytes with attrs encoding="jpeg",
                      shape=(H, W, 3)
    proprio           float32 (T, P)   robot state at each frame
    actions           float32 (T, A)   command sent after each frame
    attrs: instruction, success, fps (the control rate the actions were recorded at), robot, task,
           action_names, proprio_names, finished (False for an episode recovered after a crash),
           dropped_frames, format_version, extra_*

:class:`EpisodeWriter` is the only code that writes episodes (``vla collect``, the ROS teleop
collector, LeRobot / bag import and :func:`write_episode` all go through it). It streams: frames are
appended to resizable chunked datasets of a temporary file ``.<name>.partial`` next to the
destination as they arrive, so memory stays bounded whatever the episode length, and the file is
renamed into place on :meth:`EpisodeWriter.finish`. The temporary file is written in HDF5's
single-writer / multiple-reader (SWMR) mode and flushed every ``flush_s`` seconds, so after a crash
or ``kill -9`` it still opens and :func:`recover` turns it into an episode marked unfinished. With
``threaded=True`` (the ROS collector) frames go through a bounded queue to a writer thread: the
caller never waits on the disk; when the disk cannot keep up, frames are dropped and counted.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from vla_core.errors import EpisodeError
from vla_core.image_codec import decode_compressed, encode_compressed

FORMAT_VERSION = 2
EPISODE_SUFFIX = ".h5"
PARTIAL_SUFFIX = ".partial"
COMPRESSIONS = ("lzf", "gzip", "none", "jpeg")

log = logging.getLogger(__name__)


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
    finished: bool = True  # False: recovered after a crash, the demonstration may stop mid-motion

    def __len__(self) -> int:
        """Number of frames."""
        return int(self.actions.shape[0])

    @property
    def cameras(self) -> dict[str, tuple[int, int, int]]:
        """Camera name -> frame shape (H, W, 3)."""
        return {cam: tuple(frames.shape[1:]) for cam, frames in self.images.items()}

    def frames(self, camera: str, index) -> np.ndarray:
        """Frames ``index`` of ``camera`` (the same call as :meth:`EpisodeFile.frames`)."""
        return self.images[camera][np.asarray(index)]

    def validate(self) -> None:
        """Raise :class:`EpisodeError` naming the first inconsistency found."""
        name = self.path.name if self.path else "episode"
        for cam, frames in self.images.items():
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise EpisodeError(f"{name}: camera '{cam}' must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        _validate(name, self.instruction, self.proprio, self.actions, {c: f.shape[0] for c, f in self.images.items()},
                  self.action_names, self.proprio_names)


def parse_compression(compression: str) -> tuple[str, int]:
    """``lzf`` | ``gzip`` | ``none`` | ``jpeg`` | ``jpeg:QUALITY`` -> (kind, quality)."""
    kind, _, quality = str(compression).partition(":")
    if kind not in COMPRESSIONS or (quality and (kind != "jpeg" or not quality.isdigit() or not 1 <= int(quality) <= 100)):
        raise EpisodeError(f"unknown image compression '{compression}'; expected lzf, gzip, none, jpeg or jpeg:QUALITY (1-100)")
    return kind, int(quality or 90)


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, H, W, 3) -> (T, *size, 3): centre crop to the target aspect ratio, then area-resample."""
    from PIL import Image

    h, w = frames.shape[1:3]
    th, tw = size
    if (h, w) == (th, tw):
        return frames
    if h * tw > w * th:  # too tall
        ch, cw = round(w * th / tw), w
    else:
        ch, cw = h, round(h * tw / th)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(f[y:y + ch, x:x + cw])).resize((tw, th), Image.BOX))
                     for f in frames])


def partial_path(path: str | Path) -> Path:
    """Where the episode destined for ``path`` is written until it is finished."""
    path = Path(path)
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


class EpisodeWriter:
    """Streams one episode to disk frame by frame (see the module docstring).

    Usage::

        writer = EpisodeWriter("data/ep_0001.h5", fps=30, instruction="open the drawer", robot="sawyer",
                               action_names=[...], proprio_names=[...], compression="jpeg:90", threaded=True)
        for each tick: writer.add_frame({"front": rgb}, proprio, action)    # returns False if dropped
        writer.finish(success=True)   # or writer.discard()

    ``queue_frames`` bounds the frames waiting for the writer thread (memory: that many frames of
    every camera); ``flush_s`` bounds what a crash can lose.
    """

    def __init__(self, path: str | Path, fps: float, instruction: str = "", robot: str = "", task: str = "",
                 action_names: list[str] | None = None, proprio_names: list[str] | None = None,
                 compression: str = "lzf", threaded: bool = False, queue_frames: int = 64, flush_s: float = 0.5,
                 partial: str | Path | None = None, image_size: tuple[int, int] | None = None):
        if not fps or fps <= 0:
            raise EpisodeError(f"episode fps must be a positive control rate in Hz, got {fps}")
        self.path = Path(path)
        self.partial = Path(partial) if partial else partial_path(self.path)
        self.fps = float(fps)
        self.instruction = instruction
        self.robot = robot
        self.task = task
        self.action_names = list(action_names or [])
        self.proprio_names = list(proprio_names or [])
        self.compression, self.quality = parse_compression(compression)
        self.flush_s = float(flush_s)
        self.image_size = tuple(int(x) for x in image_size) if image_size else None
        self.dropped = 0
        self.written = 0
        self._accepted = 0
        self._file: h5py.File | None = None
        self._shapes: dict[str, tuple] = {}
        self._dims: tuple[int, int] | None = None
        self._last_flush = 0.0
        self._jpeg_bytes: dict[str, int] = {}
        self._error: BaseException | None = None
        self._closed = self._finishing = False
        self.done = threading.Event()  # set once the finished episode is in place
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=max(1, int(queue_frames)))
            self._thread = threading.Thread(target=self._drain, name=f"episode-writer {self.path.name}", daemon=True)
            self._thread.start()

    def __len__(self) -> int:
        """Frames accepted so far (written or waiting in the queue)."""
        return self._accepted

    # ------------------------------------------------------------------ input
    def _check(self, images: dict, proprio: np.ndarray, action: np.ndarray) -> None:
        if self._closed:
            raise EpisodeError(f"{self.path.name}: the episode is already finished or discarded")
        if self._error is not None:
            raise EpisodeError(f"{self.path.name}: writing failed earlier ({self._error})")
        if not images:
            raise EpisodeError(f"{self.path.name}: a frame needs at least one camera image")
        if self._shapes and set(images) != set(self._shapes):
            raise EpisodeError(f"{self.path.name}: frame {self._accepted} has cameras {sorted(images)}, "
                               f"expected {sorted(self._shapes)}")
        dims = (proprio.shape[-1], action.shape[-1])
        if self._dims is not None and dims != self._dims:
            raise EpisodeError(f"{self.path.name}: frame {self._accepted} has {dims[0]} proprio / {dims[1]} action dims, "
                               f"expected {self._dims[0]} / {self._dims[1]}")
        if not (np.isfinite(proprio).all() and np.isfinite(action).all()):
            raise EpisodeError(f"{self.path.name}: frame {self._accepted} has NaN or inf in proprio or action")
        for cam, img in images.items():
            shape = img.shape[-3:]
            if img.dtype != np.uint8 or len(shape) != 3 or shape[-1] != 3:
                raise EpisodeError(f"{self.path.name}: camera '{cam}' must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
            if cam in self._shapes and shape != self._shapes[cam]:
                raise EpisodeError(f"{self.path.name}: camera '{cam}' changed size from {self._shapes[cam]} to {shape}")
        if not self._shapes:
            self._shapes = {cam: img.shape[-3:] for cam, img in images.items()}
            self._dims = dims

    def add_frame(self, images: dict[str, np.ndarray], proprio, action) -> bool:
        """Append one synchronised frame: images camera -> (H, W, 3) uint8, proprio (P,), action (A,).

        Returns False when the frame was dropped because the writer thread's queue is full.
        """
        images = {cam: np.asarray(img) for cam, img in images.items()}
        proprio = np.asarray(proprio, np.float32).reshape(-1)
        action = np.asarray(action, np.float32).reshape(-1)
        self._check(images, proprio, action)
        frame = ({cam: img[None] for cam, img in images.items()}, proprio[None], action[None])
        if self._queue is None:
            self._write(*frame)
        else:
            try:
                self._queue.put_nowait(frame)
            except queue.Full:
                self.dropped += 1
                return False
        self._accepted += 1
        return True

    def add_frames(self, images: dict[str, np.ndarray], proprio, actions) -> None:
        """Append a block of T frames at once (images camera -> (T, H, W, 3)); synchronous."""
        images = {cam: np.asarray(img) for cam, img in images.items()}
        proprio = np.asarray(proprio, np.float32)
        actions = np.asarray(actions, np.float32)
        if proprio.ndim != 2 or actions.ndim != 2:
            raise EpisodeError(f"{self.path.name}: 'actions' and 'proprio' must be 2-D (frames x dims)")
        n = actions.shape[0]
        for name, arr in [("proprio", proprio), *((f"camera '{c}'", im) for c, im in images.items())]:
            if arr.shape[0] != n:
                raise EpisodeError(f"{self.path.name}: length mismatch: {n} actions but {arr.shape[0]} frames of {name}")
        if n == 0:
            return
        self._check({c: im[0] for c, im in images.items()}, proprio[0], actions[0])
        if not (np.isfinite(proprio).all() and np.isfinite(actions).all()):
            raise EpisodeError(f"{self.path.name}: proprio or actions contain NaN or inf")
        self._sync()
        self._write(images, proprio, actions)
        self._accepted += n

    # ------------------------------------------------------------------ disk
    def _open(self, images: dict, proprio: np.ndarray, actions: np.ndarray) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(self.partial, "w", libver="latest")
        try:
            grp = f.create_group("images")
            for cam, frames in images.items():
                shape = frames.shape[1:]
                if self.compression == "jpeg":
                    d = grp.create_dataset(cam, shape=(0,), maxshape=(None,), chunks=(16,), dtype=h5py.vlen_dtype(np.uint8))
                    d.attrs["encoding"], d.attrs["quality"], d.attrs["shape"] = "jpeg", self.quality, list(shape)
                else:
                    comp = {"lzf": {"compression": "lzf"}, "gzip": {"compression": "gzip", "compression_opts": 4}}.get(self.compression, {})
                    d = grp.create_dataset(cam, shape=(0, *shape), maxshape=(None, *shape), chunks=(1, *shape), dtype=np.uint8, **comp)
                    d.attrs["encoding"] = "raw"
            rows = max(1, int(self.fps * 4))  # a chunk holds about four seconds of a low-dimensional stream
            f.create_dataset("proprio", shape=(0, proprio.shape[1]), maxshape=(None, proprio.shape[1]),
                             chunks=(rows, proprio.shape[1]), dtype=np.float32)
            f.create_dataset("actions", shape=(0, actions.shape[1]), maxshape=(None, actions.shape[1]),
                             chunks=(rows, actions.shape[1]), dtype=np.float32)
            attrs = {"instruction": self.instruction, "success": False, "fps": self.fps, "robot": self.robot,
                     "task": self.task, "action_names": list(self.action_names), "proprio_names": list(self.proprio_names),
                     "finished": False, "dropped_frames": 0, "compression": self.compression,
                     "format_version": FORMAT_VERSION, "final_name": self.path.name}
            for key, value in attrs.items():
                f.attrs[key] = value
            f.swmr_mode = True  # from here on the file stays readable whatever happens to this process
        except BaseException:
            f.close()
            self.partial.unlink(missing_ok=True)
            raise
        self._file = f
        self._last_flush = time.monotonic()

    def _write(self, images: dict, proprio: np.ndarray, actions: np.ndarray) -> None:
        if self.image_size is not None:
            images = {cam: resize_frames(frames, self.image_size) for cam, frames in images.items()}
        if self._file is None:
            self._open(images, proprio, actions)
        f, n, k = self._file, self.written, actions.shape[0]
        for cam, frames in images.items():
            d = f["images"][cam]
            d.resize(n + k, axis=0)
            if self.compression == "jpeg":
                for i in range(k):
                    data = np.frombuffer(encode_compressed(frames[i], "JPEG", self.quality), np.uint8)
                    d[n + i] = data
                    self._jpeg_bytes[cam] = self._jpeg_bytes.get(cam, 0) + data.size
            else:
                d[n:n + k] = frames
        # actions last: recovery trusts a frame once every dataset holds it
        for name, arr in (("proprio", proprio), ("actions", actions)):
            f[name].resize(n + k, axis=0)
            f[name][n:n + k] = arr
        self.written = n + k
        if time.monotonic() - self._last_flush >= self.flush_s:
            f.flush()
            self._last_flush = time.monotonic()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if item[0] == "finish":
                    self._finalize(*item[1:])
                    return
                if self._error is None:
                    self._write(*item)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller on its next call
                self._error = exc
                log.error("episode writer for %s failed: %s (its frames stay in %s for 'vla data recover')",
                          self.path.name, exc, self.partial.name)
            finally:
                self._queue.task_done()

    def _sync(self) -> None:
        """Wait until the writer thread has written everything queued."""
        if self._queue is not None:
            self._queue.join()
        if self._error is not None:
            raise EpisodeError(f"{self.path.name}: writing failed ({self._error})")

    def _stop_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._queue.put(None)
            self._thread.join()

    # ------------------------------------------------------------------ end
    def finish(self, success: bool = True, extra: dict | None = None, finished: bool = True, wait: bool = True) -> Path:
        """Write what is queued, mark the episode finished and rename it into place; returns its path.

        ``wait=False`` (threaded writers) returns at once and lets the writer thread finish the file;
        :attr:`done` is set when it is in place. A failure keeps the partial file for ``vla data recover``.
        """
        if self._closed:
            raise EpisodeError(f"{self.path.name}: the episode is already finished or discarded")
        if self._accepted == 0:
            self.discard()
            raise EpisodeError(f"{self.path.name}: cannot finish an episode with no frames")
        self._closed = self._finishing = True
        if self._queue is not None and not wait:
            self._queue.put(("finish", success, extra, finished))
            return self.path
        self._sync()
        self._finalize(success, extra, finished)
        self._stop_thread()
        return self.path

    def _finalize(self, success: bool, extra: dict | None, finished: bool) -> None:
        if self._error is not None:
            raise EpisodeError(f"{self.path.name}: writing failed ({self._error})")
        self._file.close()
        self._file = None
        with h5py.File(self.partial, "r+") as f:  # attributes cannot change under SWMR: reopen normally
            f.attrs["success"] = bool(success)
            f.attrs["finished"] = bool(finished)
            f.attrs["dropped_frames"] = int(self.dropped)
            for cam, nbytes in self._jpeg_bytes.items():  # HDF5 cannot size a vlen dataset's heap
                f["images"][cam].attrs["stored_bytes"] = nbytes
            for key, value in (extra or {}).items():
                f.attrs[f"extra_{key}"] = value
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.partial, 0o666 & ~umask)
        os.replace(self.partial, self.path)
        self.done.set()

    def discard(self, force: bool = False) -> None:
        """Drop the episode: nothing is left on disk (once :meth:`finish` was called, only with ``force``)."""
        if self._finishing and not force:
            return
        self._closed = True
        if self._queue is not None:
            while True:  # what is still queued is not wanted
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()
                except queue.Empty:
                    break
        self._stop_thread()
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass
            self._file = None
        self.partial.unlink(missing_ok=True)


def write_episode(path: str | Path, episode: Episode, compression: str = "lzf") -> Path:
    """Validate ``episode`` and write it with :class:`EpisodeWriter` (atomically: partial file, then rename)."""
    episode.validate()
    writer = EpisodeWriter(path, fps=episode.fps, instruction=episode.instruction, robot=episode.robot, task=episode.task,
                           action_names=episode.action_names, proprio_names=episode.proprio_names, compression=compression)
    try:
        writer.add_frames(episode.images, episode.proprio, episode.actions)
        return writer.finish(episode.success, episode.extra, finished=episode.finished)
    except BaseException:
        writer.discard(force=True)  # the caller still holds the episode: no partial file to recover
        raise


def _as_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Handles:
    """Open read handles by path, at most ``size`` at a time (episodes of a large dataset outnumber file descriptors)."""

    def __init__(self, size: int = 64):
        self.size = size
        self._open: OrderedDict[tuple[int, str], h5py.File] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> h5py.File:
        key = (os.getpid(), str(path))  # a forked DataLoader worker opens its own
        with self._lock:
            f = self._open.pop(key, None)
            if f is None:
                f = h5py.File(path, "r")
            self._open[key] = f
            while len(self._open) > self.size:
                (pid, _), old = self._open.popitem(last=False)
                if pid == os.getpid():
                    old.close()
            return f


_HANDLES = _Handles()


class EpisodeFile:
    """One episode file opened for reading: metadata, proprio and actions in memory, images read on demand.

    Raises :class:`EpisodeError` naming the file when it is not a consistent episode.
    """

    def __init__(self, path: str | Path):
        self.path = path = Path(path)
        try:
            with h5py.File(path, "r") as f:
                if "actions" not in f or "proprio" not in f or "images" not in f:
                    raise EpisodeError(f"{path.name}: not an episode file (expected 'images', 'proprio' and 'actions')")
                attrs = dict(f.attrs)
                self.proprio = f["proprio"][()].astype(np.float32)
                self.actions = f["actions"][()].astype(np.float32)
                self.cameras: dict[str, tuple[int, int, int]] = {}
                self.encodings: dict[str, str] = {}
                self.stored_bytes: dict[str, int] = {}
                first_camera = next(iter(f["images"].values()), None)
                # what the writer recorded; files older than format 2 only show it on the dataset
                self.compression = _as_str(f.attrs.get("compression", "")) or (
                    (first_camera.compression or "none") if first_camera is not None else "none")
                lengths = {}
                for cam, d in f["images"].items():
                    enc = _as_str(d.attrs.get("encoding", "raw"))
                    self.encodings[cam] = enc
                    self.cameras[cam] = tuple(int(x) for x in (d.attrs["shape"] if enc == "jpeg" else d.shape[1:]))
                    self.stored_bytes[cam] = int(d.attrs.get("stored_bytes", d.id.get_storage_size()))
                    lengths[cam] = d.shape[0]
                    if enc == "raw" and (d.dtype != np.uint8 or d.ndim != 4 or d.shape[-1] != 3):
                        raise EpisodeError(f"{path.name}: camera '{cam}' must be uint8 (T, H, W, 3), got {d.dtype} {d.shape}")
        except EpisodeError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise EpisodeError(f"{path.name}: cannot be read as an HDF5 episode ({exc.__class__.__name__}: {exc})") from None
        self.instruction = _as_str(attrs.get("instruction", ""))
        self.success = bool(attrs.get("success", True))
        self.fps = float(attrs.get("fps", 30.0))
        self.robot = _as_str(attrs.get("robot", ""))
        self.task = _as_str(attrs.get("task", ""))
        self.action_names = [_as_str(x) for x in attrs.get("action_names", [])]
        self.proprio_names = [_as_str(x) for x in attrs.get("proprio_names", [])]
        self.finished = bool(attrs.get("finished", True))
        self.dropped_frames = int(attrs.get("dropped_frames", 0))
        self.extra = {k[6:]: v for k, v in attrs.items() if k.startswith("extra_")}
        _validate(path.name, self.instruction, self.proprio, self.actions, lengths, self.action_names, self.proprio_names)

    def __len__(self) -> int:
        """Number of frames."""
        return int(self.actions.shape[0])

    @property
    def image_bytes(self) -> int:
        """Decoded size of every image of the episode."""
        return len(self) * sum(int(np.prod(s)) for s in self.cameras.values())

    @property
    def images(self) -> dict[str, np.ndarray]:
        """Every frame of every camera, decoded: loads the whole episode (datasets use :meth:`frames`)."""
        everything = np.arange(len(self))
        return {cam: self.frames(cam, everything) for cam in self.cameras}

    def frames(self, camera: str, index) -> np.ndarray:
        """Decoded frames ``index`` (any order, repeats allowed) of ``camera``: uint8 (len(index), H, W, 3)."""
        index = np.asarray(index, dtype=np.int64)
        unique, inverse = np.unique(index, return_inverse=True)
        return _read_frames(_HANDLES.get(self.path)["images"][camera], unique)[inverse]

    def to_episode(self) -> Episode:
        """Everything, images included, in memory."""
        return Episode(images=self.images, proprio=self.proprio,
                       actions=self.actions, instruction=self.instruction, success=self.success, fps=self.fps,
                       robot=self.robot, task=self.task, action_names=self.action_names, proprio_names=self.proprio_names,
                       extra=dict(self.extra), path=self.path, finished=self.finished)


def _read_frames(dataset: h5py.Dataset, index: np.ndarray) -> np.ndarray:
    """Frames ``index`` (increasing, unique) of one camera dataset, decoded: uint8 (len(index), H, W, 3)."""
    if _as_str(dataset.attrs.get("encoding", "raw")) == "jpeg":
        return np.stack([decode_compressed(dataset[int(i)]) for i in index])
    # One slice read per run of consecutive frames, into one array: h5py's fancy indexing (dataset[index]) took
    # about 30 ms a frame of random training batches at 224 px, 70 times as long as this.
    out = np.empty((len(index), *dataset.shape[1:]), dataset.dtype)
    done = 0
    for run in np.split(index, np.flatnonzero(np.diff(index) != 1) + 1):
        dataset.read_direct(out, np.s_[int(run[0]):int(run[-1]) + 1], np.s_[done:done + len(run)])
        done += len(run)
    return out


def _validate(name, instruction, proprio, actions, lengths: dict, action_names, proprio_names) -> None:
    if not isinstance(instruction, str) or not instruction.strip():
        raise EpisodeError(f"{name}: missing instruction (expected a non-empty string attribute 'instruction')")
    if actions.ndim != 2 or proprio.ndim != 2:
        raise EpisodeError(f"{name}: 'actions' and 'proprio' must be 2-D (frames x dims)")
    n = actions.shape[0]
    if n == 0:
        raise EpisodeError(f"{name}: has no frames")
    if proprio.shape[0] != n:
        raise EpisodeError(f"{name}: length mismatch: {n} actions but {proprio.shape[0]} proprio frames")
    if not lengths:
        raise EpisodeError(f"{name}: has no camera images (expected group 'images/<camera>')")
    for cam, length in lengths.items():
        if length != n:
            raise EpisodeError(f"{name}: length mismatch: {n} actions but {length} frames of camera '{cam}'")
    if not np.isfinite(actions).all():
        raise EpisodeError(f"{name}: actions contain NaN or inf")
    if not np.isfinite(proprio).all():
        raise EpisodeError(f"{name}: proprio contains NaN or inf")
    if action_names and len(action_names) != actions.shape[1]:
        raise EpisodeError(f"{name}: {len(action_names)} action names for {actions.shape[1]} action dims")
    if proprio_names and len(proprio_names) != proprio.shape[1]:
        raise EpisodeError(f"{name}: {len(proprio_names)} proprio names for {proprio.shape[1]} dims")


def read_episode(path: str | Path) -> Episode:
    """Read and validate one episode file, images included; raise :class:`EpisodeError` naming the file on any problem."""
    return EpisodeFile(path).to_episode()


def list_episode_files(directory: str | Path) -> list[Path]:
    """Episode files in ``directory`` (sorted; partial files of unfinished writes excluded)."""
    directory = Path(directory)
    return sorted(p for p in directory.glob(f"*{EPISODE_SUFFIX}") if not p.name.startswith("."))


def recover(directory: str | Path, remove: bool = False) -> list[tuple[str, str]]:
    """Turn the partial files a crash left in ``directory`` into episodes marked unfinished (or remove them).

    Every frame that all datasets hold is kept; the recovered episode is written through
    :class:`EpisodeWriter` under the name the interrupted one would have had, with ``finished=False``
    and ``success=False``. Finished episodes are never touched. Returns (partial file, what happened).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise EpisodeError(f"'{directory}' is not a directory of episodes")
    results = []
    for partial in sorted(directory.glob(f".*{EPISODE_SUFFIX}{PARTIAL_SUFFIX}")):
        final = directory / partial.name[1:-len(PARTIAL_SUFFIX)]
        if remove:
            partial.unlink()
            results.append((partial.name, "removed"))
            continue
        if final.exists():
            results.append((partial.name, f"left alone: {final.name} already exists"))
            continue
        try:
            with h5py.File(partial, "r", libver="latest", swmr=True) as f:
                n = min([f["actions"].shape[0], f["proprio"].shape[0], *(d.shape[0] for d in f["images"].values())])
                if n == 0:
                    raise EpisodeError("no complete frame")
                attrs = dict(f.attrs)
                compression = _as_str(attrs.get("compression", "lzf"))
                if compression == "jpeg":
                    compression += f":{int(next(iter(f['images'].values())).attrs.get('quality', 90))}"
                writer = EpisodeWriter(final, fps=float(attrs["fps"]), instruction=_as_str(attrs.get("instruction", "")),
                                       robot=_as_str(attrs.get("robot", "")), task=_as_str(attrs.get("task", "")),
                                       action_names=[_as_str(x) for x in attrs.get("action_names", [])],
                                       proprio_names=[_as_str(x) for x in attrs.get("proprio_names", [])],
                                       compression=compression, partial=directory / f".{final.name}.recovering")
                try:
                    for start in range(0, n, 64):
                        stop = min(n, start + 64)
                        images = {cam: _read_frames(d, np.arange(start, stop)) for cam, d in f["images"].items()}
                        writer.add_frames(images, f["proprio"][start:stop], f["actions"][start:stop])
                    writer.finish(success=False, extra={"recovered_from": partial.name}, finished=False)
                except BaseException:
                    writer.discard()
                    raise
        except (OSError, KeyError, ValueError, EpisodeError) as exc:
            results.append((partial.name, f"not recoverable ({exc}); left in place, remove it with --remove"))
            continue
        partial.unlink()
        results.append((partial.name, f"recovered {n} frames into {final.name} (marked unfinished)"))
    return results
