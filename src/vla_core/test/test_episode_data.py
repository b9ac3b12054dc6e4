import h5py
import numpy as np
import pytest
import torch

from vla_core.data.dataset import EpisodeDataset, load_episodes, split_by_episode
from vla_core.data.episode import EpisodeWriter, read_episode, write_episode
from vla_core.data.synthetic import make_episode
from vla_core.errors import DatasetError, EpisodeError


def test_round_trip(tmp_path):
    ep = make_episode(3, length=10)
    path = write_episode(tmp_path / "e.h5", ep)
    back = read_episode(path)
    assert back.instruction == ep.instruction and back.fps == ep.fps and back.action_names == ep.action_names
    np.testing.assert_array_equal(back.images["front"], ep.images["front"])
    np.testing.assert_array_equal(back.actions, ep.actions)
    assert [p.name for p in tmp_path.iterdir()] == ["e.h5"]  # no temporary file left behind


def test_writer_streams_frames_and_renames_on_finish(tmp_path):
    w = EpisodeWriter(tmp_path / "ep.h5", fps=30, instruction="open the drawer", robot="sawyer", action_names=["x", "y"],
                      proprio_names=["q"])
    for t in range(5):
        w.add_frame({"cam": np.full((8, 8, 3), t, np.uint8)}, [t], [t, -t])
    # Streamed: the frames are already in the partial file, nothing under the final name yet.
    assert not (tmp_path / "ep.h5").exists()
    with h5py.File(tmp_path / ".ep.h5.partial", "r", libver="latest", swmr=True) as f:
        assert f["actions"].shape == (5, 2) and f["images/cam"].shape == (5, 8, 8, 3)
    path = w.finish(success=False)
    ep = read_episode(path)
    assert len(ep) == 5 and ep.success is False and ep.finished and ep.images["cam"][4, 0, 0, 0] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.h5"]
    with pytest.raises(EpisodeError, match="already finished"):
        w.add_frame({"cam": np.zeros((8, 8, 3), np.uint8)}, [0], [0, 0])


def test_writer_refuses_inconsistent_frames_and_discard_leaves_nothing(tmp_path):
    w = EpisodeWriter(tmp_path / "ep.h5", fps=30, instruction="x")
    w.add_frame({"cam": np.zeros((8, 8, 3), np.uint8)}, [0], [0, 0])
    with pytest.raises(EpisodeError, match="cameras"):
        w.add_frame({"other": np.zeros((8, 8, 3), np.uint8)}, [0], [0, 0])
    with pytest.raises(EpisodeError, match="changed size"):
        w.add_frame({"cam": np.zeros((4, 8, 3), np.uint8)}, [0], [0, 0])
    with pytest.raises(EpisodeError, match="action dims"):
        w.add_frame({"cam": np.zeros((8, 8, 3), np.uint8)}, [0], [0, 0, 0])
    with pytest.raises(EpisodeError, match="NaN"):
        w.add_frame({"cam": np.zeros((8, 8, 3), np.uint8)}, [np.nan], [0, 0])
    w.discard()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(EpisodeError, match="fps"):
        EpisodeWriter(tmp_path / "e.h5", fps=0)
    with pytest.raises(EpisodeError, match="compression"):
        EpisodeWriter(tmp_path / "e.h5", fps=30, compression="png")


def test_bulk_write_failure_leaves_no_file(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(EpisodeWriter, "_finalize", boom)
    with pytest.raises(OSError, match="disk full"):
        write_episode(tmp_path / "crash.h5", make_episode(0, length=5))
    assert list(tmp_path.iterdir()) == []


def _corrupt(tmp_path):
    good = make_episode(0, length=10)
    write_episode(tmp_path / "a_good.h5", good)
    write_episode(tmp_path / "b_good.h5", make_episode(1, length=10))
    # Write the bad ones by hand: write_episode refuses them.
    with h5py.File(tmp_path / "c_mismatch.h5", "w") as f:
        f.create_dataset("images/front", data=good.images["front"][:8])
        f.create_dataset("proprio", data=good.proprio)
        f.create_dataset("actions", data=good.actions)
        f.attrs["instruction"] = "x"
    with h5py.File(tmp_path / "d_nan.h5", "w") as f:
        f.create_dataset("images/front", data=good.images["front"])
        f.create_dataset("proprio", data=good.proprio)
        f.create_dataset("actions", data=np.where(np.arange(10)[:, None] == 3, np.nan, good.actions))
        f.attrs["instruction"] = "x"
    with h5py.File(tmp_path / "e_noinstr.h5", "w") as f:
        f.create_dataset("images/front", data=good.images["front"])
        f.create_dataset("proprio", data=good.proprio)
        f.create_dataset("actions", data=good.actions)
    (tmp_path / "f_truncated.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)


def test_corrupt_episodes_are_named_and_skipped(tmp_path):
    _corrupt(tmp_path)
    report = load_episodes(tmp_path, warn=False)
    assert [e.path.name for e in report.episodes] == ["a_good.h5", "b_good.h5"]
    reasons = dict(report.skipped)
    assert "length mismatch" in reasons["c_mismatch.h5"]
    assert "NaN" in reasons["d_nan.h5"]
    assert "missing instruction" in reasons["e_noinstr.h5"]
    assert "cannot be read" in reasons["f_truncated.h5"]
    with pytest.raises(EpisodeError, match="d_nan.h5: actions contain NaN"):
        read_episode(tmp_path / "d_nan.h5")


def test_empty_or_missing_directory(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_episodes(tmp_path / "none")
    with pytest.raises(DatasetError, match="holds no episode files"):
        load_episodes(tmp_path)


def test_windows_padding_and_history(tmp_path):
    eps = [make_episode(i, length=10) for i in range(2)]
    ds = EpisodeDataset(eps, horizon=4, n_obs_steps=2)
    assert len(ds) == 20
    first = ds[0]
    assert first["images"]["front"].shape == (2, 32, 32, 3) and first["proprio"].shape == (2, 4)
    torch.testing.assert_close(first["proprio"][0], first["proprio"][1])  # history padded with the first frame
    last = ds[9]
    assert last["actions"].shape == (4, 4)
    assert last["action_is_pad"].tolist() == [False, True, True, True]
    torch.testing.assert_close(last["actions"][1], torch.from_numpy(eps[0].actions[9]))
    mid = ds[12]
    torch.testing.assert_close(mid["actions"], torch.from_numpy(eps[1].actions[2:6]))
    assert not mid["action_is_pad"].any()


def test_split_is_by_episode_and_deterministic():
    eps = [make_episode(i, length=5) for i in range(10)]
    train, val = split_by_episode(eps, 0.2, seed=1)
    assert len(val) == 2 and len(train) == 8
    assert not {id(e) for e in train} & {id(e) for e in val}
    assert [e.instruction for e in split_by_episode(eps, 0.2, seed=1)[1]] == [e.instruction for e in val]


def test_a_directory_of_mixed_rates_dims_or_cameras_is_refused_by_name(tmp_path):
    from vla_core.data.dataset import spec_from_episodes

    write_episode(tmp_path / "a.h5", make_episode(0, length=5))
    fast = make_episode(1, length=5)
    fast.fps = 80.0
    write_episode(tmp_path / "b.h5", fast)
    with pytest.raises(DatasetError, match=r"b.h5 was recorded at 80 Hz but a.h5 at 10 Hz"):
        load_episodes(tmp_path)
    (tmp_path / "b.h5").unlink()
    write_episode(tmp_path / "c.h5", make_episode(2, length=5, action_dim=3))
    with pytest.raises(DatasetError, match=r"c.h5: has 3 action / 4 proprio dims, but a.h5 has 4 / 4"):
        load_episodes(tmp_path)
    (tmp_path / "c.h5").unlink()
    write_episode(tmp_path / "d.h5", make_episode(3, length=5, proprio_dim=5))
    with pytest.raises(DatasetError, match=r"d.h5: has 4 action / 5 proprio dims"):
        load_episodes(tmp_path)
    (tmp_path / "d.h5").unlink()
    write_episode(tmp_path / "e.h5", make_episode(4, length=5, image_size=16))
    eps = load_episodes(tmp_path).episodes  # same dims and rate: loads
    with pytest.raises(DatasetError, match=r"e.h5: camera 'front' is \(16, 16, 3\), but a.h5 has \(32, 32, 3\)"):
        spec_from_episodes(eps)
    with pytest.raises(DatasetError, match=r"camera 'wrist' is not in the episodes; they have \['front'\]"):
        spec_from_episodes(eps[:1], ["wrist"])


def test_spec_names_default_and_the_split_keeps_a_training_episode():
    from vla_core.data.dataset import dataset_stats, spec_from_episodes

    ep = make_episode(0, length=6)
    ep.action_names, ep.proprio_names = [], []
    spec = spec_from_episodes([ep])
    assert spec.action_names == ["a0", "a1", "a2", "a3"] and spec.proprio_names == ["p0", "p1", "p2", "p3"]
    assert spec.fps == 10.0 and spec.robot == "synthetic" and spec.cameras == {"front": [32, 32, 3]}
    eps = [make_episode(i, length=5) for i in range(3)]
    train, val = split_by_episode(eps, 0.9)
    assert len(train) == 1 and len(val) == 2  # never all of them held out
    assert split_by_episode(eps, 0.0) == (eps, [])
    stats = dataset_stats(eps)
    np.testing.assert_allclose(stats["action_max"], np.concatenate([e.actions for e in eps]).max(0))
    ds = EpisodeDataset(eps, horizon=2)
    assert ds.instructions() == sorted({e.instruction for e in eps})


def test_windows_read_the_right_frames_everywhere():
    eps = [make_episode(i, length=10) for i in range(3)]
    ds = EpisodeDataset(eps, horizon=3)
    assert ds[0]["images"]["front"].shape[0] == 1  # one observation frame by default
    hist = EpisodeDataset(eps, horizon=3, n_obs_steps=2)
    for e, t in [(0, 0), (1, 0), (1, 4), (2, 9)]:
        item = hist[10 * e + t]
        frames = [max(t - 1, 0), t]
        torch.testing.assert_close(item["proprio"], torch.from_numpy(eps[e].proprio[frames]))
        torch.testing.assert_close(item["images"]["front"], torch.from_numpy(eps[e].images["front"][frames]))
        torch.testing.assert_close(item["actions"][0], torch.from_numpy(eps[e].actions[t]))
    single = EpisodeDataset(eps[:1], horizon=2, memory_budget_mb=0)  # one episode, read from disk or memory alike
    assert len(single) == 10 and single[9]["action_is_pad"].tolist() == [False, True]


def test_the_memory_budget_boundary(tmp_path):
    eps = [make_episode(i, length=8) for i in range(2)]
    exact = 2 * 8 * 32 * 32 * 3 / 2**20  # MB of decoded images
    assert EpisodeDataset(eps, horizon=2, memory_budget_mb=exact).resident
    assert not EpisodeDataset(eps, horizon=2, memory_budget_mb=exact * 0.9).resident
    assert EpisodeDataset(eps, horizon=2).resident  # the default budget holds small datasets


def test_skipped_episodes_are_logged_unless_asked_not_to_and_the_split_seed_defaults_to_0(tmp_path, caplog):
    _corrupt(tmp_path)
    with caplog.at_level("WARNING"):
        load_episodes(tmp_path)
    assert "skipping episode c_mismatch.h5" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        load_episodes(tmp_path, warn=False)
    assert caplog.text == ""
    eps = [make_episode(i, length=5) for i in range(10)]
    assert [e.instruction for e in split_by_episode(eps, 0.3)[1]] == [e.instruction for e in split_by_episode(eps, 0.3, 0)[1]]
    assert [id(e) for e in split_by_episode(eps, 0.3)[1]] != [id(e) for e in split_by_episode(eps, 0.3, 1)[1]]
