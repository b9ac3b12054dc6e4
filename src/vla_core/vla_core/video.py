"""Rollout videos a person can read: frames with the instruction and the outcome written on them.

    frames = [task.render_view(256) for each step]          # a viewer camera, not the policy's input
    save_rollout_gif(path, frames, "open the drawer", success=True, fps=20)

The text band is drawn into the frame (top: instruction; bottom: outcome, green or red), so the GIF
stands on its own in a report, a chat or a slide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BAND = 22  # pixels of each text band


def annotate(frame: np.ndarray, top: str, bottom: str = "", bottom_color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) uint8 with ``top`` and ``bottom`` text on dark bands."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(image, "RGBA")
    font = ImageFont.load_default(size=max(10, frame.shape[0] // 18))
    w, h = image.size
    draw.rectangle([0, 0, w, BAND], fill=(0, 0, 0, 160))
    draw.text((6, 4), top, fill=(255, 255, 255), font=font)
    if bottom:
        draw.rectangle([0, h - BAND, w, h], fill=(0, 0, 0, 160))
        draw.text((6, h - BAND + 4), bottom, fill=bottom_color, font=font)
    return np.asarray(image)


def save_rollout_gif(path: str | Path, frames: list[np.ndarray], instruction: str, success: bool | None,
                     fps: float = 20.0, label: str = "") -> Path:
    """Write ``frames`` as a looping GIF with the instruction on every frame and the outcome at the end.

    ``success`` None writes no outcome (a rollout still running); ``label`` (e.g. the agent) goes beside it.
    """
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(frames)
    out = []
    for i, f in enumerate(frames):
        status = f"{label}  step {i + 1}/{n}".strip()
        color = (255, 255, 255)
        if success is not None and i == n - 1:
            status, color = f"{label}  {'SUCCESS' if success else 'FAILURE'}".strip(), ((90, 230, 90) if success else (240, 90, 90))
        out.append(annotate(f, f'"{instruction}"', status, color))
    if out:
        out += [out[-1]] * int(fps)  # hold the outcome for a second before the loop restarts
    imageio.mimsave(path, out, duration=1.0 / fps, loop=0)
    return path
