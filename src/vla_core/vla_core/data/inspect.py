"""``vla data inspect DIR``: what a directory of episodes holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from vla_core.data.dataset import load_episodes


def summarize(directory: str | Path) -> dict:
    """Episodes, frames, instructions, cameras, success rate and per-dimension action ranges."""
    report = load_episodes(directory, warn=False)
    eps = report.episodes
    actions = np.concatenate([e.actions for e in eps])
    names = eps[0].action_names or [f"a{i}" for i in range(actions.shape[1])]
    return {
        "directory": str(directory),
        "episodes": len(eps),
        "frames": int(sum(len(e) for e in eps)),
        "fps": eps[0].fps,
        "robot": eps[0].robot,
        "cameras": {cam: list(shape) for cam, shape in eps[0].cameras.items()},
        "compression": eps[0].compression,
        "bytes_per_frame": {cam: round(sum(e.stored_bytes[cam] for e in eps) / max(1, sum(len(e) for e in eps)))
                            for cam in eps[0].cameras},
        "unfinished": [e.path.name for e in eps if not e.finished],
        "dropped_frames": int(sum(e.dropped_frames for e in eps)),
        "success_rate": float(np.mean([e.success for e in eps])),
        "episode_length": {"min": int(min(len(e) for e in eps)), "max": int(max(len(e) for e in eps)),
                           "mean": float(np.mean([len(e) for e in eps]))},
        "instructions": dict(Counter(e.instruction for e in eps).most_common()),
        "action_ranges": {n: [float(actions[:, i].min()), float(actions[:, i].max())] for i, n in enumerate(names)},
        "skipped": [{"file": f, "reason": r} for f, r in report.skipped],
    }


def format_summary(s: dict) -> str:
    """Human-readable form of :func:`summarize`."""
    lines = [
        f"{s['directory']}: {s['episodes']} episodes, {s['frames']} frames at {s['fps']:g} Hz"
        + (f", robot {s['robot']}" if s["robot"] else ""),
        "cameras: " + ", ".join(f"{k} {'x'.join(map(str, v))} ({s['bytes_per_frame'][k] / 1024:.1f} kB/frame stored)"
                                for k, v in s["cameras"].items()) + f", compression {s['compression']}",
        f"success: {100 * s['success_rate']:.0f}%   length: min {s['episode_length']['min']}, "
        f"mean {s['episode_length']['mean']:.1f}, max {s['episode_length']['max']}",
        "instructions:",
        *[f"  {n:5d}  {text}" for text, n in s["instructions"].items()],
        "action ranges:",
        *[f"  {name:>12s}  [{lo:+.4f}, {hi:+.4f}]" for name, (lo, hi) in s["action_ranges"].items()],
    ]
    if s["unfinished"]:
        lines.append(f"unfinished (recovered after a crash): {', '.join(s['unfinished'])}")
    if s["dropped_frames"]:
        lines.append(f"frames dropped while recording (disk too slow): {s['dropped_frames']}")
    if s["skipped"]:
        lines.append(f"skipped {len(s['skipped'])} unusable episodes:")
        lines += [f"  {x['reason']}" for x in s["skipped"]]
    return "\n".join(lines)
