from types import SimpleNamespace

import numpy as np
import pytest

from vla_core.image_codec import ImageConversionError, image_to_numpy, numpy_to_image_fields, to_rgb


@pytest.mark.parametrize("encoding, dtype, shape", [
    ("rgb8", np.uint8, (5, 7, 3)), ("bgr8", np.uint8, (5, 7, 3)), ("rgba8", np.uint8, (5, 7, 4)),
    ("mono8", np.uint8, (5, 7)), ("mono16", np.uint16, (5, 7)), ("16UC1", np.uint16, (5, 7)),
    ("32FC1", np.float32, (5, 7)),
])
def test_round_trip(encoding, dtype, shape):
    rng = np.random.default_rng(0)
    a = (rng.random(shape) * 60000).astype(dtype)
    fields = numpy_to_image_fields(a, encoding)
    assert fields["step"] == shape[1] * (shape[2] if len(shape) == 3 else 1) * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(image_to_numpy(SimpleNamespace(**fields)), a)


def test_row_padding_and_big_endian():
    a = np.arange(3 * 4, dtype=np.uint16).reshape(3, 4) * 257
    rows = [a[r].astype(">u2").tobytes() + b"\xff" * 6 for r in range(3)]  # 8 data bytes + 6 padding per row
    msg = SimpleNamespace(height=3, width=4, encoding="mono16", is_bigendian=1, step=14, data=b"".join(rows))
    out = image_to_numpy(msg)
    np.testing.assert_array_equal(out, a)
    assert out.dtype.isnative


def test_bgr_to_rgb_and_mono():
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255
    assert to_rgb(bgr, "bgr8")[0, 0].tolist() == [0, 0, 255]
    assert to_rgb(np.full((2, 2), 9, np.uint8), "mono8").shape == (2, 2, 3)


def test_clear_errors():
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        image_to_numpy(SimpleNamespace(height=1, width=1, encoding="yuv422", is_bigendian=0, step=2, data=b"00"))
    with pytest.raises(ImageConversionError, match="expected step 12 x height 2 = 24"):
        image_to_numpy(SimpleNamespace(height=2, width=4, encoding="rgb8", is_bigendian=0, step=12, data=b"0" * 23))
    with pytest.raises(ImageConversionError, match="smaller than width"):
        image_to_numpy(SimpleNamespace(height=2, width=4, encoding="rgb8", is_bigendian=0, step=8, data=b"0" * 16))
    with pytest.raises(ImageConversionError, match="needs dtype uint8"):
        numpy_to_image_fields(np.zeros((2, 2, 3), np.float32), "rgb8")
