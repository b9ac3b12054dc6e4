"""``sensor_msgs/Image`` <-> numpy, the stand-in for ``cv_bridge`` (not installable here).

ROS-free: :func:`image_to_numpy` reads any object with the Image fields (``height``, ``width``,
``encoding``, ``is_bigendian``, ``step``, ``data``); :func:`numpy_to_image_fields` returns those
fields as a dict, so a node builds its message with ``Image(header=..., **fields)``.

Supported encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16 / 16UC1, 32FC1. Rows may be padded
(``step`` > width * bytes per pixel); multi-byte pixels honour ``is_bigendian``.
"""

from __future__ import annotations

import sys

import numpy as np

from vla_core.errors import VLAError

# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


class ImageConversionError(VLAError):
    """An image message cannot be converted (unknown encoding, wrong size)."""


def _spec(encoding: str) -> tuple[np.dtype, int]:
    if encoding not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding '{encoding}'; expected one of {', '.join(ENCODINGS)}")
    return ENCODINGS[encoding]


def image_to_numpy(msg) -> np.ndarray:
    """Image message -> array (H, W, C) or (H, W) for single-channel encodings, native byte order."""
    dtype, channels = _spec(msg.encoding)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(f"image step {step} is smaller than width {w} x {channels} channels x {dtype.itemsize} bytes")
    data = bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray, memoryview, np.ndarray)) else msg.data
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != step * h:
        raise ImageConversionError(f"image data has {buf.size} bytes, expected step {step} x height {h} = {step * h}")
    rows = buf.reshape(h, step)[:, :row_bytes]
    order = ">" if msg.is_bigendian else "<"
    arr = np.ascontiguousarray(rows).view(dtype.newbyteorder(order) if dtype.itemsize > 1 else dtype)
    arr = arr.reshape(h, w, channels) if channels > 1 else arr.reshape(h, w)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="), copy=False)
    return arr


def numpy_to_image_fields(array: np.ndarray, encoding: str) -> dict:
    """Array (H, W[, C]) -> dict of Image fields (height, width, encoding, is_bigendian, step, data)."""
    dtype, channels = _spec(encoding)
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1 and channels == 1:
        a = a[:, :, 0]
    expected = 3 if channels > 1 else 2
    if a.ndim != expected or (channels > 1 and a.shape[2] != channels):
        want = f"(H, W, {channels})" if channels > 1 else "(H, W)"
        raise ImageConversionError(f"encoding '{encoding}' needs an array of shape {want}, got {a.shape}")
    if a.dtype != dtype:
        raise ImageConversionError(f"encoding '{encoding}' needs dtype {dtype}, got {a.dtype}")
    a = np.ascontiguousarray(a)
    return {"height": int(a.shape[0]), "width": int(a.shape[1]), "encoding": encoding,
            "is_bigendian": int(sys.byteorder == "big" and dtype.itemsize > 1),
            "step": int(a.shape[1] * channels * dtype.itemsize), "data": a.tobytes()}


def to_rgb(array: np.ndarray, encoding: str) -> np.ndarray:
    """Any colour or mono8 image -> uint8 RGB (H, W, 3), what the policy consumes."""
    if encoding in ("rgb8",):
        return array
    if encoding == "bgr8":
        return array[:, :, ::-1]
    if encoding == "rgba8":
        return array[:, :, :3]
    if encoding == "bgra8":
        return array[:, :, 2::-1]
    if encoding in ("mono8", "8UC1"):
        return np.repeat(array[:, :, None], 3, axis=2)
    raise ImageConversionError(f"cannot turn a '{encoding}' image into RGB for the policy")


def encode_compressed(image: np.ndarray, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """uint8 RGB (H, W, 3) -> JPEG or PNG bytes (PNG: fast level 1; ``quality`` applies to JPEG)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    options = {"quality": quality} if fmt.upper() == "JPEG" else {"compress_level": 1}
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format=fmt, **options)
    return buf.getvalue()


def decode_compressed(data) -> np.ndarray:
    """JPEG / PNG / any format PIL reads (bytes, or a uint8 array of them) -> uint8 RGB (H, W, 3)."""
    import io

    from PIL import Image

    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
