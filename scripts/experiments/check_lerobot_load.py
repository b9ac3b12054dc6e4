"""Does LeRobot itself load our LeRobotDataset v3 video export? A manual check in a side environment.

LeRobot cannot be installed beside our pins (0.4.4 wants huggingface-hub < 0.36 and torch < 2.11;
later versions need Python 3.12), so it runs in a throwaway venv that sees our packages through a
.pth file, with lerobot, torchvision and datasets on top:

    python3 -m venv /tmp/lrenv
    .venv/bin/python -c "import site; print(site.getsitepackages()[0])" \
        > $(/tmp/lrenv/bin/python -c "import site; print(site.getsitepackages()[0])")/main_venv.pth
    /tmp/lrenv/bin/pip install --no-deps lerobot==0.4.4 torchvision==0.28.0 && /tmp/lrenv/bin/pip install datasets draccus jsonlines
    # torchvision's CUDA build cannot register its operators against the CPU torch: empty its _meta_registrations.py
    vla data to-lerobot SRC --out /tmp/lrcheck/local/vla --video --repo-id local/vla
    /tmp/lrenv/bin/python scripts/experiments/check_lerobot_load.py SRC /tmp/lrcheck/local/vla

LeRobot's own video decoders cannot run there either (torchvision 0.28 has no VideoReader;
torchcodec's native library does not load against torch 2.13), so the frames LeRobot asks for -
the file and timestamps it computes from our metadata - are decoded with PyAV, as its 'pyav'
backend would. Everything else is LeRobot's code: info.json, the episodes and tasks tables, the
data parquet, episode / frame indices and the task lookup. Result 2026-11-22 (synthetic data, 3
episodes of 30 frames at 10 Hz): task, action, episode and frame index equal for all 90 frames;
video frames 0.28 grey levels from the originals on average (0.77 at most). The first run found a
real mismatch - LeRobot looks tasks up by the pandas index of tasks.parquet - now fixed.
"""

import sys

import av
import numpy as np
import torch

import lerobot.datasets.lerobot_dataset as lds
from vla_core.data.dataset import load_episodes


def decode_with_pyav(video_path, timestamps, tolerance_s, backend=None):
    """Frames of ``video_path`` at ``timestamps`` (s) as float (N, 3, H, W) in [0, 1], LeRobot's convention."""
    with av.open(str(video_path)) as c:
        frames = {round(float(f.pts * f.time_base), 4): f.to_ndarray(format="rgb24") for f in c.decode(video=0)}
    out = []
    for ts in timestamps:
        key = min(frames, key=lambda k: abs(k - ts))
        if abs(key - ts) > tolerance_s:
            raise AssertionError(f"no frame within {tolerance_s} s of {ts} s in {video_path}")
        out.append(torch.from_numpy(frames[key]).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def main() -> int:
    """Compare every frame LeRobot returns with the episode it came from."""
    source, root = sys.argv[1], sys.argv[2]
    lds.decode_video_frames = decode_with_pyav
    ds = lds.LeRobotDataset("local/vla", root=root)
    eps = load_episodes(source).episodes
    errors = []
    for index in range(len(ds)):
        item = ds[index]
        e, t = int(item["episode_index"]), int(item["frame_index"])
        ep = eps[e]
        assert item["task"] == ep.instruction, (index, item["task"], ep.instruction)
        assert np.allclose(item["action"].numpy(), ep.actions[t]), index
        for key in [k for k in item if k.startswith("observation.images.")]:
            ref = ep.frames(key.removeprefix("observation.images."), [t])[0].astype(float)
            errors.append(float(np.abs(ref - 255 * item[key].permute(1, 2, 0).numpy()).mean()))
    print(f"LeRobot {lds.__name__}: {ds.num_episodes} episodes, {ds.num_frames} frames at {ds.fps} Hz: tasks, actions, "
          f"indices equal; video frames mean abs error {np.mean(errors):.2f} (max {np.max(errors):.2f}) grey levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
