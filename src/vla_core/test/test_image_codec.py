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


@pytest.mark.parametrize("encoding, channels", [("bgra8", 4), ("8UC1", 1), ("rgba8", 4), ("bgr8", 3)])
def test_every_encoding_has_its_channel_count(encoding, channels):
    shape = (3, 5, channels) if channels > 1 else (3, 5)
    a = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    fields = numpy_to_image_fields(a, encoding)
    assert fields["step"] == 5 * channels and len(fields["data"]) == 15 * channels
    np.testing.assert_array_equal(image_to_numpy(SimpleNamespace(**fields)), a)


def test_alpha_is_dropped_and_bgra_reordered():
    px = np.array([[[10, 20, 30, 255]]], np.uint8)
    assert to_rgb(px, "rgba8").tolist() == [[[10, 20, 30]]]
    assert to_rgb(px, "bgra8").tolist() == [[[30, 20, 10]]]
    with pytest.raises(ImageConversionError, match="cannot turn a '32FC1' image into RGB"):
        to_rgb(np.zeros((2, 2), np.float32), "32FC1")


def test_big_endian_16_and_32_bit_pixels():
    for encoding, dtype in [("mono16", np.uint16), ("32FC1", np.float32)]:
        a = (np.arange(6).reshape(2, 3) * 1000 + 7).astype(dtype)
        msg = SimpleNamespace(height=2, width=3, encoding=encoding, is_bigendian=1, step=3 * a.itemsize,
                              data=a.astype(np.dtype(dtype).newbyteorder(">")).tobytes())
        out = image_to_numpy(msg)
        np.testing.assert_array_equal(out, a)
        assert out.dtype.isnative and out.dtype == dtype


def test_single_channel_arrays_with_a_trailing_axis_and_wrong_shapes():
    a = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    fields = numpy_to_image_fields(a, "mono8")
    np.testing.assert_array_equal(image_to_numpy(SimpleNamespace(**fields)), a[:, :, 0])
    with pytest.raises(ImageConversionError, match=r"needs an array of shape \(H, W\), got \(2, 3, 2\)"):
        numpy_to_image_fields(np.zeros((2, 3, 2), np.uint8), "mono8")
    with pytest.raises(ImageConversionError, match=r"needs an array of shape \(H, W, 3\), got \(2, 3\)"):
        numpy_to_image_fields(np.zeros((2, 3), np.uint8), "rgb8")
    with pytest.raises(ImageConversionError, match=r"needs an array of shape \(H, W, 3\), got \(2, 3, 4\)"):
        numpy_to_image_fields(np.zeros((2, 3, 4), np.uint8), "rgb8")
    with pytest.raises(ImageConversionError, match=r"needs an array of shape \(H, W, 4\)"):
        numpy_to_image_fields(np.zeros((2, 3, 3), np.uint8), "bgra8")


def test_message_data_as_a_python_sequence():
    # rclpy hands uint8[] fields over as array.array; some drivers build lists
    import array

    a = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    for data in (array.array("B", a.tobytes()), list(a.tobytes())):
        msg = SimpleNamespace(height=2, width=2, encoding="rgb8", is_bigendian=0, step=6, data=data)
        np.testing.assert_array_equal(image_to_numpy(msg), a)
