"""Export to and import from the LeRobotDataset v3 layout, so data moves to and from LeRobot.

Layout written (v3.0)::

    meta/info.json                                  features, fps, totals, path templates
    meta/stats.json                                 per-feature min / max / mean / std
    meta/tasks.parquet                              task_index, task (the instruction)
    meta/episodes/chunk-000/file-000.parquet        one row per episode: length, tasks, data ranges, success
    data/chunk-000/file-000.parquet                 one row per frame

    videos/<key>/chunk-000/file-000.mp4             with video=True: every episode of a camera, back to back

Camera frames are ``image`` features (PNG bytes inside the parquet, lossless) or, with
``video=True``, ``video`` features the way LeRobot stores them: one AV1 (SVT-AV1, yuv420p, GOP 2
for random access) MP4 per camera, the episode rows carrying ``videos/<key>/chunk_index``,
``file_index``, ``from_timestamp`` and ``to_timestamp``. Import reads both, decoding videos with
PyAV (any codec FFmpeg decodes: AV1, H.264, HEVC ...).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vla_core.data.dataset import load_episodes
from vla_core.data.episode import Episode, write_episode
from vla_core.errors import DatasetError
from vla_core.image_codec import decode_compressed, encode_compressed

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
VIDEO_CODEC, VIDEO_CRF, VIDEO_GOP = "libsvtav1", 30, 2


class _VideoWriter:
    """Frames of one camera, every episode back to back, into one MP4 (PyAV)."""

    def __init__(self, path: Path, fps: float, shape: tuple[int, int, int]):
        import av

        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise
        h, w = shape[:2]
        if h % 2 or w % 2:
            raise DatasetError(f"video features need even image sizes (yuv420p), got {h}x{w}; export without --video")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        from fractions import Fraction

        self.stream = self.container.add_stream(VIDEO_CODEC, rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height, self.stream.pix_fmt = w, h, "yuv420p"
        self.stream.options = {"crf": str(VIDEO_CRF), "g": str(VIDEO_GOP), "preset": "12"}
        self.frames = 0

    def write(self, frames: np.ndarray) -> None:
        import av

        for f in frames:
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                self.container.mux(packet)
            self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class _VideoReader:
    """Sequential frames of one MP4 by frame number (re-opened when asked to go back)."""

    def __init__(self, path: Path, fps: float):
        if not path.is_file():
            raise DatasetError(f"video file '{path}' is missing")
        self.path, self.fps = path, fps
        self._open()

    def _open(self) -> None:
        import av

        self.container = av.open(str(self.path))
        self._frames = self.container.decode(video=0)
        self.position = 0

    def read(self, start: int, count: int) -> np.ndarray:
        if start < self.position:
            self.container.close()
            self._open()
        out = []
        for frame in self._frames:
            index = round(float(frame.pts * frame.time_base) * self.fps) if frame.pts is not None else self.position
            self.position = index + 1
            if index >= start:
                out.append(frame.to_ndarray(format="rgb24"))
                if len(out) == count:
                    break
        if len(out) != count:
            raise DatasetError(f"{self.path.name}: expected frames {start}..{start + count - 1}, the video ends at {self.position}")
        return np.stack(out)


def _stats(x: np.ndarray) -> dict:
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(), "std": x.std(0).tolist(),
            "count": [int(x.shape[0])]}


def _write_tasks(tasks: list[str], path: Path) -> None:
    """Write meta/tasks.parquet as LeRobot does: a pandas frame indexed by the task text, column task_index.

    LeRobot looks a frame's task up as ``tasks.iloc[task_index].name``.
    """
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {"index_columns": ["task"], "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                                                  "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                                "metadata": None},
                               {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                                "metadata": None}],
                   "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)


def export_lerobot(directory: str | Path, out: str | Path, repo_id: str = "local/vla_dataset", video: bool = False) -> Path:
    """Write the episodes of ``directory`` as a LeRobotDataset v3 directory ``out`` (cameras as videos with ``video``)."""
    episodes = load_episodes(directory).episodes
    out = Path(out)
    (out / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    (out / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
    first = episodes[0]
    cams = sorted(first.cameras)
    tasks = sorted({e.instruction for e in episodes})
    task_index = {t: i for i, t in enumerate(tasks)}
    columns: dict[str, list] = {k: [] for k in ["observation.state", "action", "timestamp", "frame_index",
                                                "episode_index", "index", "task_index"]}
    if not video:
        for cam in cams:
            columns[f"observation.images.{cam}"] = []
    videos = {cam: _VideoWriter(out / VIDEO_PATH.format(video_key=f"observation.images.{cam}", chunk_index=0, file_index=0),
                                first.fps, first.cameras[cam]) for cam in cams} if video else {}
    ep_rows, index = [], 0
    for e_idx, ep in enumerate(episodes):
        n = len(ep)
        columns["observation.state"] += ep.proprio.tolist()
        columns["action"] += ep.actions.tolist()
        columns["timestamp"] += (np.arange(n) / ep.fps).astype(np.float32).tolist()
        columns["frame_index"] += list(range(n))
        columns["episode_index"] += [e_idx] * n
        columns["index"] += list(range(index, index + n))
        columns["task_index"] += [task_index[ep.instruction]] * n
        row = {"episode_index": e_idx, "tasks": [ep.instruction], "length": n, "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": index, "dataset_to_index": index + n, "success": bool(ep.success), "task": ep.task}
        for cam in cams:
            frames = ep.frames(cam, np.arange(n))
            if video:
                key, start = f"observation.images.{cam}", videos[cam].frames
                videos[cam].write(frames)
                row |= {f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                        f"videos/{key}/from_timestamp": start / ep.fps, f"videos/{key}/to_timestamp": (start + n) / ep.fps}
            else:
                columns[f"observation.images.{cam}"] += [{"bytes": encode_compressed(f, "PNG"), "path": None} for f in frames]
        ep_rows.append(row)
        index += n
    for writer in videos.values():
        writer.close()
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema_fields = [(f"observation.images.{c}", image_type) for c in cams if not video] + [
        ("observation.state", pa.list_(pa.float32())), ("action", pa.list_(pa.float32())),
        ("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
        ("index", pa.int64()), ("task_index", pa.int64())]
    schema = pa.schema(schema_fields)
    pq.write_table(pa.table({name: columns[name] for name, _ in schema_fields}, schema=schema),
                   out / DATA_PATH.format(chunk_index=0, file_index=0))
    pq.write_table(pa.Table.from_pylist(ep_rows), out / EPISODES_PATH.format(chunk_index=0, file_index=0))
    _write_tasks(tasks, out / "meta" / "tasks.parquet")
    names_state = first.proprio_names or [f"p{i}" for i in range(first.proprio.shape[1])]
    names_action = first.action_names or [f"a{i}" for i in range(first.actions.shape[1])]
    features = {}
    for c in cams:
        h, w, ch = first.cameras[c]
        features[f"observation.images.{c}"] = {"dtype": "video" if video else "image", "shape": [h, w, ch],
                                               "names": ["height", "width", "channels"]}
        if video:
            features[f"observation.images.{c}"]["info"] = {
                "video.fps": first.fps, "video.height": h, "video.width": w, "video.channels": ch, "video.codec": "av1",
                "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "has_audio": False}
    features |= {
        "observation.state": {"dtype": "float32", "shape": [len(names_state)], "names": names_state},
        "action": {"dtype": "float32", "shape": [len(names_action)], "names": names_action},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": first.robot or None, "repo_id": repo_id,
            "total_episodes": len(episodes), "total_frames": index, "total_tasks": len(tasks),
            "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500, "fps": first.fps,
            "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if video else None, "features": features}
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    all_actions = np.concatenate([e.actions for e in episodes])
    all_state = np.concatenate([e.proprio for e in episodes])
    (out / "meta" / "stats.json").write_text(json.dumps({"action": _stats(all_actions), "observation.state": _stats(all_state)}, indent=2))
    return out


def import_lerobot(directory: str | Path, out: str | Path) -> list[Path]:
    """Convert a LeRobotDataset v3 directory (image or video features) into episode files in ``out``."""
    directory = Path(directory)
    info_path = directory / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetError(f"'{directory}' is not a LeRobotDataset (missing meta/info.json)")
    info = json.loads(info_path.read_text())
    if not str(info.get("codebase_version", "")).startswith("v3"):
        raise DatasetError(f"'{directory}' is LeRobotDataset {info.get('codebase_version')}; only v3.x is supported")
    features = info["features"]
    cams = sorted(k for k, v in features.items() if v.get("dtype") == "image")
    video_keys = sorted(k for k, v in features.items() if v.get("dtype") == "video")
    if video_keys and not info.get("video_path"):
        raise DatasetError(f"'{directory}' has video features {video_keys} but no 'video_path' template in meta/info.json")
    readers: dict[tuple[str, str], _VideoReader] = {}
    for key in ("observation.state", "action"):
        if key not in features:
            raise DatasetError(f"'{directory}' has no '{key}' feature")
    data = pa.concat_tables([pq.read_table(p) for p in sorted((directory / "data").glob("chunk-*/file-*.parquet"))])
    tasks_tbl = pq.read_table(directory / "meta" / "tasks.parquet").to_pydict()
    tasks = dict(zip(tasks_tbl["task_index"], tasks_tbl["task"]))
    ep_files = sorted((directory / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    ep_meta = {r["episode_index"]: r for p in ep_files for r in pq.read_table(p).to_pylist()}
    cols = data.to_pydict()
    ep_idx = np.asarray(cols["episode_index"])
    out = Path(out)
    paths = []
    for e in sorted(set(ep_idx.tolist())):
        rows = np.flatnonzero(ep_idx == e)
        rows = rows[np.argsort(np.asarray(cols["frame_index"])[rows])]
        meta = ep_meta.get(e, {})
        images = {c.removeprefix("observation.images."): np.stack([decode_compressed(cols[c][i]["bytes"])
                                                                  for i in rows]) for c in cams}
        for key in video_keys:
            if f"videos/{key}/from_timestamp" not in meta:
                raise DatasetError(f"'{directory}': episode {e} has no 'videos/{key}/...' columns in meta/episodes")
            path = directory / info["video_path"].format(video_key=key, chunk_index=meta[f"videos/{key}/chunk_index"],
                                                         file_index=meta[f"videos/{key}/file_index"])
            reader = readers.setdefault((key, str(path)), _VideoReader(path, float(info["fps"])))
            start = round(meta[f"videos/{key}/from_timestamp"] * float(info["fps"]))
            images[key.removeprefix("observation.images.")] = reader.read(start, len(rows))
        episode = Episode(
            images=images,
            proprio=np.asarray([cols["observation.state"][i] for i in rows], dtype=np.float32),
            actions=np.asarray([cols["action"][i] for i in rows], dtype=np.float32),
            instruction=tasks[cols["task_index"][rows[0]]],
            success=bool(meta.get("success", True)),
            fps=float(info["fps"]),
            robot=info.get("robot_type") or "",
            task=meta.get("task") or "",
            action_names=list(features["action"].get("names") or []),
            proprio_names=list(features["observation.state"].get("names") or []),
        )
        paths.append(write_episode(out / f"episode_{e:06d}.h5", episode))
    for reader in readers.values():
        reader.container.close()
    return paths
