import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from vla_core.data.dataset import load_episodes
from vla_core.data.lerobot import export_lerobot, import_lerobot
from vla_core.errors import DatasetError


def test_round_trip(tiny_data, tmp_path):
    out = export_lerobot(tiny_data, tmp_path / "lerobot")
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 6
    assert info["features"]["observation.images.front"]["dtype"] == "image"
    frames = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    assert frames.num_rows == info["total_frames"] == 6 * 24
    assert set(pq.read_table(out / "meta" / "tasks.parquet").column("task").to_pylist()) == \
        {"move the block left", "move the block right"}
    # LeRobot reads tasks.parquet with pandas and looks a task up by the frame's index: the task text is the index
    pandas_meta = json.loads(pq.read_schema(out / "meta" / "tasks.parquet").metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["task"]

    import_lerobot(out, tmp_path / "back")
    original = load_episodes(tiny_data).episodes
    back = load_episodes(tmp_path / "back").episodes
    assert len(back) == len(original)
    for a, b in zip(original, back):
        assert a.instruction == b.instruction and a.success == b.success and a.fps == b.fps
        assert a.action_names == b.action_names and a.proprio_names == b.proprio_names
        np.testing.assert_array_equal(a.images["front"], b.images["front"])  # PNG is lossless
        np.testing.assert_allclose(a.actions, b.actions)
        np.testing.assert_allclose(a.proprio, b.proprio)


def test_video_round_trip(tmp_path):
    from vla_core.data.synthetic import make_dataset

    make_dataset(tmp_path / "src", episodes=3, length=30, image_size=32)
    out = export_lerobot(tmp_path / "src", tmp_path / "lr", video=True)
    info = json.loads((out / "meta" / "info.json").read_text())
    feature = info["features"]["observation.images.front"]
    assert feature["dtype"] == "video" and feature["info"]["video.codec"] == "av1" and feature["shape"] == [32, 32, 3]
    video = out / info["video_path"].format(video_key="observation.images.front", chunk_index=0, file_index=0)
    assert video.is_file()
    assert "observation.images.front" not in pq.read_table(out / "data" / "chunk-000" / "file-000.parquet").column_names
    rows = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [r["videos/observation.images.front/from_timestamp"] for r in rows] == [0.0, 3.0, 6.0]  # 30 frames at 10 Hz

    import av

    with av.open(str(video)) as c:  # what LeRobot decodes: one AV1 stream holding every episode
        assert c.streams.video[0].codec_context.name in ("libdav1d", "av1", "libaom-av1") and c.streams.video[0].frames in (0, 90)
    import_lerobot(out, tmp_path / "back")
    original, back = load_episodes(tmp_path / "src").episodes, load_episodes(tmp_path / "back").episodes
    assert len(back) == 3
    for a, b in zip(original, back):
        assert a.instruction == b.instruction and len(a) == len(b)
        np.testing.assert_allclose(a.actions, b.actions)
        fa, fb = a.frames("front", np.arange(len(a))).astype(int), b.frames("front", np.arange(len(b))).astype(int)
        err, shifted = np.abs(fa - fb).mean(), np.abs(fa[1:] - fb[:-1]).mean()
        # lossy (measured 0.2-0.4 grey levels), but the same frames in order: one frame off costs 3x more
        assert err < 0.6 and shifted > 2 * err, (err, shifted)


def test_refuses_non_lerobot_and_broken_video_metadata(tmp_path, tiny_data):
    with pytest.raises(DatasetError, match="missing meta/info.json"):
        import_lerobot(tmp_path, tmp_path / "x")
    out = export_lerobot(tiny_data, tmp_path / "lr")
    info = json.loads((out / "meta" / "info.json").read_text())
    info["features"]["observation.images.front"]["dtype"] = "video"
    (out / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="no 'video_path'"):
        import_lerobot(out, tmp_path / "x")
