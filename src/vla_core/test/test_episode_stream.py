"""The streaming episode writer: threaded queue, counted drops, crash recovery after kill -9, compression, resize."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import h5py
import numpy as np
import pytest

from vla_core.cli import main as vla
from vla_core.data.episode import EpisodeFile, EpisodeWriter, read_episode, recover, resize_frames, write_episode
from vla_core.data.inspect import summarize
from vla_core.data.synthetic import make_episode
from vla_core.errors import EpisodeError


def _frame(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = t % 256
    img[..., 1] = np.arange(w, dtype=np.uint8)[None, :]
    return img


def test_threaded_writer_keeps_every_frame_in_order(tmp_path):
    w = EpisodeWriter(tmp_path / "e.h5", fps=50, instruction="x", threaded=True, queue_frames=1000)
    for t in range(200):
        assert w.add_frame({"a": _frame(t), "b": _frame(t + 1, 8, 8)}, [t], [t, 2 * t])
    w.finish(success=True)
    ep = read_episode(tmp_path / "e.h5")
    assert len(ep) == 200 and ep.extra == {} and ep.fps == 50
    np.testing.assert_array_equal(ep.images["a"][:, 0, 0, 0], np.arange(200) % 256)
    np.testing.assert_array_equal(ep.actions[:, 1], 2 * np.arange(200))
    assert EpisodeFile(tmp_path / "e.h5").dropped_frames == 0


def test_a_full_queue_drops_and_counts_frames_never_blocks(tmp_path, monkeypatch):
    slow_write = EpisodeWriter._write

    def slow(self, *args):
        time.sleep(0.02)  # a disk slower than the frame rate
        slow_write(self, *args)

    monkeypatch.setattr(EpisodeWriter, "_write", slow)
    w = EpisodeWriter(tmp_path / "e.h5", fps=30, instruction="x", threaded=True, queue_frames=4)
    accepted, t0 = 0, time.perf_counter()
    for t in range(100):
        accepted += w.add_frame({"a": _frame(t)}, [t], [t])
    assert time.perf_counter() - t0 < 1.0  # 100 x 20 ms of writing did not happen in the caller
    w.finish()
    ep = EpisodeFile(tmp_path / "e.h5")
    assert w.dropped > 0 and accepted + w.dropped == 100
    assert len(ep) == accepted and ep.dropped_frames == w.dropped
    # the frames that were kept are in order (no reordering through the queue)
    assert (np.diff(ep.actions[:, 0]) > 0).all()


def test_finish_without_waiting_returns_at_once_and_the_file_appears(tmp_path):
    w = EpisodeWriter(tmp_path / "e.h5", fps=30, instruction="x", threaded=True, queue_frames=500)
    for t in range(300):
        w.add_frame({"a": _frame(t, 240, 320)}, [t], [t])
    path = w.finish(success=True, wait=False)
    assert w.done.wait(30)
    assert len(read_episode(path)) == 300


RECORDER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from vla_core.data.episode import EpisodeWriter
    w = EpisodeWriter(sys.argv[1], fps=50, instruction="pick up the cube", compression=sys.argv[2], threaded=True,
                      flush_s=0.2)
    t = 0
    while True:
        frame = np.zeros((120, 160, 3), np.uint8); frame[..., 0] = t % 256
        w.add_frame({"top": frame, "wrist": frame[:60, :80]}, [t, -t], [t])
        print(t, flush=True)
        t += 1
        time.sleep(0.02)
""")


@pytest.mark.parametrize("compression", ["lzf", "jpeg:95"])
def test_kill_9_mid_episode_then_recover_gives_back_the_frames(tmp_path, compression):
    finished = write_episode(tmp_path / "done.h5", make_episode(0, length=10))
    before = finished.read_bytes()
    script = tmp_path / "rec.py"
    script.write_text(RECORDER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "live.h5"), compression],
                            stdout=subprocess.PIPE, text=True)
    printed = []
    for line in proc.stdout:  # let it record about 2 s, then kill it without warning
        printed.append(int(line))
        if printed[-1] >= 100:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "live.h5").exists() and (tmp_path / ".live.h5.partial").exists()
    results = dict(recover(tmp_path))
    assert "recovered" in results[".live.h5.partial"]
    ep = read_episode(tmp_path / "live.h5")
    # everything up to a second before the kill (50 frames at 50 Hz) is back, in order, and marked
    assert len(ep) >= printed[-1] - 50 and not ep.finished and not ep.success
    np.testing.assert_array_equal(ep.actions[:, 0], np.arange(len(ep)))
    assert set(ep.images) == {"top", "wrist"} and ep.images["wrist"].shape[1:] == (60, 80, 3)
    assert abs(int(ep.images["top"][-1, 5, 5, 0]) - (len(ep) - 1) % 256) <= 3  # JPEG is lossy, slightly
    assert finished.read_bytes() == before  # finished episodes are never touched
    assert not list(tmp_path.glob(".*partial")) and recover(tmp_path) == []


def test_recover_remove_and_cli(tmp_path, capsys):
    w = EpisodeWriter(tmp_path / "a.h5", fps=30, instruction="x")
    w.add_frame({"a": _frame(0)}, [0], [0])
    w._file.flush()
    w._file.close()  # as if the process died: the partial file stays
    assert vla(["data", "recover", str(tmp_path), "--remove"]) == 0
    assert "removed" in capsys.readouterr().out and list(tmp_path.iterdir()) == []
    (tmp_path / ".b.h5.partial").write_bytes(b"not hdf5")
    assert vla(["data", "recover", str(tmp_path)]) == 1
    assert "not recoverable" in capsys.readouterr().out and (tmp_path / ".b.h5.partial").exists()
    with pytest.raises(EpisodeError, match="not a directory"):
        recover(tmp_path / "missing")


def test_jpeg_and_lossless_compression_sizes_are_reported(tmp_path):
    x = np.linspace(0, 255, 128)
    smooth = np.stack([np.broadcast_to(x, (96, 128)), np.broadcast_to(x[::-1], (96, 128)),
                       np.full((96, 128), 90.0)], -1).astype(np.uint8)  # a smooth image, as cameras see
    sizes = {}
    for comp in ["none", "lzf", "jpeg:90"]:
        d = tmp_path / comp.replace(":", "")
        w = EpisodeWriter(d / "e.h5", fps=30, instruction="x", compression=comp)
        for t in range(10):
            w.add_frame({"front": smooth}, [t], [t])
        w.finish()
        s = summarize(d)
        sizes[comp] = s["bytes_per_frame"]["front"]
        back = read_episode(d / "e.h5").images["front"]
        err = np.abs(back.astype(int) - smooth).mean()
        assert err == 0 if comp != "jpeg:90" else err < 8
        assert s["compression"] == comp.split(":")[0]
    assert sizes["none"] == 96 * 128 * 3 and max(sizes["jpeg:90"], sizes["lzf"]) < sizes["none"] / 4


def test_resize_at_record_time():
    frames = np.zeros((2, 480, 640, 3), np.uint8)
    frames[:, :, 320:] = 200
    out = resize_frames(frames, (64, 64))
    assert out.shape == (2, 64, 64, 3)
    # centre crop 480x480 of a left/right split image keeps the split in the middle
    assert out[0, 32, 10, 0] == 0 and out[0, 32, 54, 0] == 200


@pytest.mark.parametrize("shape, crop", [((6, 2), (slice(2, 4), slice(0, 2))),    # too tall: rows 2-3 kept
                                         ((2, 6), (slice(0, 2), slice(2, 4))),    # too wide: columns 2-3 kept
                                         ((3, 9), (slice(0, 3), slice(3, 6)))])   # odd sizes: the exact centre
def test_resize_crops_the_exact_centre_to_the_target_aspect(shape, crop):
    h, w = shape
    frames = (np.arange(h * w, dtype=np.uint8).reshape(1, h, w, 1) * 7).repeat(3, axis=-1)
    side = crop[0].stop - crop[0].start
    out = resize_frames(frames, (side, side))  # a square target of the crop's size: the crop itself comes back
    np.testing.assert_array_equal(out[0], frames[0][crop])


def test_frames_read_any_selection_exactly(tmp_path):
    frames = np.stack([_frame(40 * t, 8, 8) for t in range(6)])  # frames 40 grey levels apart
    for comp in ("lzf", "jpeg:100"):
        w = EpisodeWriter(tmp_path / f"{comp[:3]}.h5", fps=10, instruction="x", compression=comp)
        w.add_frames({"main": frames}, np.zeros((6, 1)), np.zeros((6, 1)))
        f = EpisodeFile(w.finish())
        tol = 0 if comp == "lzf" else 8
        for index in ([4], [1, 3], [5, 0, 5], [4, 0, 1, 3], list(range(6))):   # runs of consecutive frames, gaps, repeats
            got = f.frames("main", index)
            assert got.shape == (len(index), 8, 8, 3)
            assert np.abs(got.astype(int) - frames[index].astype(int)).max() <= tol, (comp, index)
        assert f.image_bytes == 6 * 8 * 8 * 3


def test_success_defaults_to_true_when_finishing_and_when_reading_files_without_it(tmp_path):
    w = EpisodeWriter(tmp_path / "a.h5", fps=10, instruction="x")
    w.add_frame({"main": _frame(0, 4, 4)}, [0], [0])
    path = w.finish()
    assert EpisodeFile(path).success is True
    with h5py.File(path, "a") as f:  # an episode from before the attribute existed
        f.attrs["success"] = False
        del f.attrs["success"]
    assert EpisodeFile(path).success is True


def test_a_raw_camera_that_is_not_uint8_rgb_is_refused(tmp_path):
    path = write_episode(tmp_path / "e.h5", make_episode(0, length=3, image_size=4, camera="main"), compression="none")
    with h5py.File(path, "a") as f:
        del f["images/main"]
        f["images"].create_dataset("main", data=np.zeros((3, 4, 4, 3), np.float32))
    with pytest.raises(EpisodeError, match="camera 'main' must be uint8"):
        EpisodeFile(path)


def test_the_handle_cache_closes_its_own_oldest_handles_but_never_a_parent_process_handle(tmp_path):
    from vla_core.data.episode import _Handles

    paths = [write_episode(tmp_path / f"{i}.h5", make_episode(i, length=2, image_size=4)) for i in range(3)]
    cache = _Handles(size=1)
    first = cache.get(paths[0])
    inherited = h5py.File(paths[1], "r")  # what a forked DataLoader worker finds in the cache
    cache._open[(os.getpid() + 1, str(paths[1]))] = inherited
    cache._open.move_to_end((os.getpid(), str(paths[0])))
    cache.get(paths[2])
    assert not first.id.valid            # evicted and closed: it was this process's
    assert inherited.id.valid            # evicted but left open: the parent still uses it
    assert cache.get(paths[2]) is cache.get(paths[2]) and len(cache._open) == 1
    inherited.close()


def test_writer_resizes_and_keeps_memory_bounded(tmp_path):
    w = EpisodeWriter(tmp_path / "e.h5", fps=30, instruction="x", threaded=True, queue_frames=8, image_size=(96, 128))
    frame = np.zeros((480, 640, 3), np.uint8)  # 0.9 MB a frame, 300 frames = 276 MB if buffered
    tracemalloc.start()
    for t in range(300):
        frame[..., 0] = t % 256
        while not w.add_frame({"a": frame.copy()}, [t], [t]):
            time.sleep(0.005)  # this test wants every frame: wait for room instead of dropping
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    w.finish()
    assert peak < 40e6, f"writer held {peak / 1e6:.0f} MB"
    ep = EpisodeFile(tmp_path / "e.h5")
    assert len(ep) == 300 and ep.cameras["a"] == (96, 128, 3)
    with h5py.File(tmp_path / "e.h5") as f:
        assert f["images/a"].chunks == (1, 96, 128, 3)


def test_compression_names_and_fps_are_checked(tmp_path):
    from vla_core.data.episode import parse_compression

    assert parse_compression("jpeg:75") == ("jpeg", 75) and parse_compression("lzf") == ("lzf", 90)
    for bad in ("lzf:50", "gzip:4", "jpeg:abc", "jpeg:0", "jpeg:101", "png"):  # a quality only for jpeg, in 1-100
        with pytest.raises(EpisodeError, match="unknown image compression"):
            parse_compression(bad)
    for fps in (0, -30.0, None):
        with pytest.raises(EpisodeError, match="positive control rate"):
            EpisodeWriter(tmp_path / "e.h5", fps=fps)


def test_frames_of_the_wrong_type_or_rank_are_refused_and_blocks_are_counted(tmp_path):
    w = EpisodeWriter(tmp_path / "e.h5", fps=10, instruction="x")
    for img in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4), np.uint8)):
        with pytest.raises(EpisodeError, match="must be uint8 \\(H, W, 3\\)"):
            w.add_frame({"main": img}, [0], [0])
    frames = np.stack([_frame(t, 4, 4) for t in range(5)])
    with pytest.raises(EpisodeError, match="must be 2-D"):
        w.add_frames({"main": frames}, np.zeros(5), np.zeros((5, 1)))   # 1-D proprio
    with pytest.raises(EpisodeError, match="must be 2-D"):
        w.add_frames({"main": frames}, np.zeros((5, 1)), np.zeros(5))   # 1-D actions
    w.add_frames({"main": frames}, np.zeros((5, 1)), np.arange(5.0)[:, None])
    w.add_frame({"main": _frame(5, 4, 4)}, [0], [5])
    assert len(w) == 6
    assert len(read_episode(w.finish())) == 6


def test_a_file_cut_off_mid_episode_says_unfinished_and_unsuccessful(tmp_path):
    w = EpisodeWriter(tmp_path / "a.h5", fps=30, instruction="x")
    w.add_frame({"a": _frame(0)}, [0], [0])
    w._file.flush()
    w._file.close()  # as if the process died before finish()
    partial = EpisodeFile(tmp_path / ".a.h5.partial")
    assert (partial.finished, partial.success, partial.dropped_frames, len(partial)) == (False, False, 0, 1)


def test_finish_without_waiting_on_an_unthreaded_writer_and_discard_closes_the_file(tmp_path):
    fds = len(os.listdir("/proc/self/fd"))
    w = EpisodeWriter(tmp_path / "a.h5", fps=30, instruction="x")
    w.add_frame({"a": _frame(0)}, [0], [0])
    assert len(os.listdir("/proc/self/fd")) > fds          # the partial file is open
    w.discard()
    assert len(os.listdir("/proc/self/fd")) == fds and not list(tmp_path.iterdir())
    w = EpisodeWriter(tmp_path / "b.h5", fps=30, instruction="x")
    w.add_frame({"a": _frame(0)}, [0], [0])
    path = w.finish(wait=False)                              # nothing queued: written at once
    assert path.exists() and w.done.is_set() and len(read_episode(path)) == 1


def test_stored_jpeg_bytes_are_the_encoded_sizes(tmp_path):
    from vla_core.image_codec import encode_compressed

    frames = [_frame(t) for t in range(4)]
    w = EpisodeWriter(tmp_path / "e.h5", fps=30, instruction="x", compression="jpeg:80")
    for t, img in enumerate(frames):
        w.add_frame({"a": img}, [t], [t])
    f = EpisodeFile(w.finish())
    assert f.stored_bytes["a"] == sum(len(encode_compressed(img, "JPEG", 80)) for img in frames)


def test_files_missing_a_part_or_older_attributes(tmp_path):
    path = write_episode(tmp_path / "e.h5", make_episode(0, length=3, image_size=4, camera="main"), compression="lzf")
    with h5py.File(path, "a") as f:  # format 1: no compression or finished attributes
        del f.attrs["compression"]
        del f.attrs["finished"]
    old = EpisodeFile(path)
    assert old.compression == "lzf" and old.finished is True
    with h5py.File(path, "a") as f:
        del f["images"]
    with pytest.raises(EpisodeError, match="not an episode file"):
        EpisodeFile(path)
