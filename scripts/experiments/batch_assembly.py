"""Median milliseconds to assemble one training batch (images, proprio, action windows) from a dataset.

    python scripts/experiments/batch_assembly.py data/mt10
    # the code before the batched fetch (commit 1ba3160), for comparison:
    git worktree add /tmp/before 1ba3160 && PYTHONPATH=/tmp/before/src/vla_core:$PYTHONPATH \\
        python scripts/experiments/batch_assembly.py data/mt10

Prints one JSON line: frames, batch size, median ms per batch over 50 batches.
"""

import argparse
import json
import time

import numpy as np

from vla_core.data.dataset import EpisodeDataset, load_episodes


def main() -> None:
    """Entry point."""
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--horizon", type=int, default=16)
    args = p.parse_args()
    ds = EpisodeDataset(load_episodes(args.data).episodes, args.horizon, 1, None)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(50):
        idx = rng.integers(0, len(ds), args.batch)
        t = time.perf_counter()
        if hasattr(ds, "batch"):  # batched gather
            ds[idx]
        else:  # one __getitem__ per sample, then collate
            from torch.utils.data import default_collate

            default_collate([ds[int(i)] for i in idx])
        times.append(time.perf_counter() - t)
    print(json.dumps({"frames": len(ds), "batch": args.batch, "batched": hasattr(ds, "batch"),
                      "batch_ms_median": round(1e3 * float(np.median(times)), 2)}))


if __name__ == "__main__":
    main()
