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


def test_refuses_non_lerobot_and_video(tmp_path, tiny_data):
    with pytest.raises(DatasetError, match="missing meta/info.json"):
        import_lerobot(tmp_path, tmp_path / "x")
    out = export_lerobot(tiny_data, tmp_path / "lr")
    info = json.loads((out / "meta" / "info.json").read_text())
    info["features"]["observation.images.front"]["dtype"] = "video"
    (out / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="as videos"):
        import_lerobot(out, tmp_path / "x")
