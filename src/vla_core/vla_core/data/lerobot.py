"""Export to and import from the LeRobotDataset v3 layout, so data moves to and from LeRobot.

Layout written (v3.0)::

    meta/info.json                                  features, fps, totals, path templates
    meta/stats.json                                 per-feature min / max / mean / std
    meta/tasks.parquet                              task_index, task (the instruction)
    meta/episodes/chunk-000/file-000.parquet        one row per episode: length, tasks, data ranges, success
    data/chunk-000/file-000.parquet                 one row per frame

Camera frames are ``image`` features (PNG bytes inside the parquet, LeRobot's non-video image
storage). Importing ``video`` features needs a video decoder and is refused with a clear message.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from vla_core.data.dataset import load_episodes
from vla_core.data.episode import Episode, write_episode
from vla_core.errors import DatasetError

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def _png(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _stats(x: np.ndarray) -> dict:
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(), "std": x.std(0).tolist(),
            "count": [int(x.shape[0])]}


def export_lerobot(directory: str | Path, out: str | Path, repo_id: str = "local/vla_dataset") -> Path:
    """Write the episodes of ``directory`` as a LeRobotDataset v3 directory ``out``."""
    episodes = load_episodes(directory).episodes
    out = Path(out)
    (out / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    (out / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
    first = episodes[0]
    cams = sorted(first.images)
    tasks = sorted({e.instruction for e in episodes})
    task_index = {t: i for i, t in enumerate(tasks)}
    columns: dict[str, list] = {k: [] for k in ["observation.state", "action", "timestamp", "frame_index",
                                                "episode_index", "index", "task_index"]}
    for cam in cams:
        columns[f"observation.images.{cam}"] = []
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
        for cam in cams:
            columns[f"observation.images.{cam}"] += [{"bytes": _png(f), "path": None} for f in ep.images[cam]]
        ep_rows.append({"episode_index": e_idx, "tasks": [ep.instruction], "length": n,
                        "data/chunk_index": 0, "data/file_index": 0,
                        "dataset_from_index": index, "dataset_to_index": index + n,
                        "success": bool(ep.success), "task": ep.task})
        index += n
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema_fields = [(f"observation.images.{c}", image_type) for c in cams] + [
        ("observation.state", pa.list_(pa.float32())), ("action", pa.list_(pa.float32())),
        ("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
        ("index", pa.int64()), ("task_index", pa.int64())]
    schema = pa.schema(schema_fields)
    pq.write_table(pa.table({name: columns[name] for name, _ in schema_fields}, schema=schema),
                   out / DATA_PATH.format(chunk_index=0, file_index=0))
    pq.write_table(pa.Table.from_pylist(ep_rows), out / EPISODES_PATH.format(chunk_index=0, file_index=0))
    pq.write_table(pa.table({"task_index": list(range(len(tasks))), "task": tasks}), out / "meta" / "tasks.parquet")
    names_state = first.proprio_names or [f"p{i}" for i in range(first.proprio.shape[1])]
    names_action = first.action_names or [f"a{i}" for i in range(first.actions.shape[1])]
    features = {f"observation.images.{c}": {"dtype": "image", "shape": list(first.images[c].shape[1:]),
                                            "names": ["height", "width", "channel"]} for c in cams}
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
            "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH, "video_path": None, "features": features}
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    all_actions = np.concatenate([e.actions for e in episodes])
    all_state = np.concatenate([e.proprio for e in episodes])
    (out / "meta" / "stats.json").write_text(json.dumps({"action": _stats(all_actions), "observation.state": _stats(all_state)}, indent=2))
    return out


def import_lerobot(directory: str | Path, out: str | Path) -> list[Path]:
    """Convert a LeRobotDataset v3 directory (image features) into episode files in ``out``."""
    directory = Path(directory)
    info_path = directory / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetError(f"'{directory}' is not a LeRobotDataset (missing meta/info.json)")
    info = json.loads(info_path.read_text())
    if not str(info.get("codebase_version", "")).startswith("v3"):
        raise DatasetError(f"'{directory}' is LeRobotDataset {info.get('codebase_version')}; only v3.x is supported")
    features = info["features"]
    videos = [k for k, v in features.items() if v.get("dtype") == "video"]
    if videos:
        raise DatasetError(f"'{directory}' stores {videos} as videos; decode them to image features first")
    cams = sorted(k for k, v in features.items() if v.get("dtype") == "image")
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
        episode = Episode(
            images={c.removeprefix("observation.images."): np.stack([np.asarray(Image.open(io.BytesIO(cols[c][i]["bytes"])).convert("RGB"))
                                                                    for i in rows]) for c in cams},
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
    return paths
