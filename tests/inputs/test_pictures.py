"""Pictures at the extremes: every Pillow mode read faithfully as 8-bit RGB (hand-made pixel values), the pixel
limit (a clear error before decoding, raised by argument or environment), thin strips, and bounded memory."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from audiodetic.detector.preprocess import resized_shape
from audiodetic.inputs import as_pil_rgb, as_rgb_array, check_image_file, max_image_pixels

SAMPLES16 = np.array([[0, 257, 32768, 65535]], np.uint16)
EXPECTED16 = [0, 1, 128, 255]  # round(v * 255 / 65535)


def _gray(path) -> list[int]:
    rgb = as_rgb_array(path)
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    return rgb[..., 0].ravel().tolist()


def _png16_rgb(path, rgb: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    height, width, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def test_16_bit_grayscale_png_and_tiff_are_scaled_not_clipped(tmp_path) -> None:
    Image.fromarray(SAMPLES16).save(tmp_path / "g16.png")
    Image.fromarray(SAMPLES16).save(tmp_path / "g16.tif")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    assert _gray(tmp_path / "g16.png") == EXPECTED16  # convert("RGB") would give [0, 255, 255, 255]
    assert _gray(tmp_path / "g16.tif") == EXPECTED16


def test_16_bit_rgb_png(tmp_path) -> None:
    rgb = np.zeros((1, 4, 3), np.uint16)
    rgb[0, :, 0], rgb[0, :, 1], rgb[0, :, 2] = SAMPLES16[0], SAMPLES16[0][::-1], 40000
    _png16_rgb(tmp_path / "rgb16.png", rgb)
    out = as_rgb_array(tmp_path / "rgb16.png")
    assert out[0, :, 0].tolist() == EXPECTED16 and out[0, :, 1].tolist() == EXPECTED16[::-1]
    assert out[0, :, 2].tolist() == [156] * 4  # 40000 / 257 = 155.6; Pillow keeps the high byte (156)


def test_pgm_with_16_bit_samples(tmp_path) -> None:
    path = tmp_path / "g16.pgm"
    path.write_bytes(b"P5\n4 1\n65535\n" + SAMPLES16.astype(">u2").tobytes())
    assert Image.open(path).mode == "I"
    assert _gray(path) == EXPECTED16


def test_32_bit_float_and_integer_tiffs(tmp_path) -> None:
    floats = np.array([[0.0, 0.5, 1.0, 2.0, -1.0, np.nan]], np.float32)
    Image.fromarray(floats).save(tmp_path / "f32.tif")
    assert _gray(tmp_path / "f32.tif") == [0, 128, 255, 255, 0, 0]  # range 0..1, clipped, NaN -> 0
    signed = np.array([[-2 ** 31, 0, 2 ** 31 - 1]], np.int32)
    Image.fromarray(signed).save(tmp_path / "i32.tif")
    assert _gray(tmp_path / "i32.tif") == [0, 128, 255]  # signed 32-bit range onto 0..255


@pytest.mark.parametrize(
    "mode, value, expected",
    [
        ("1", 1, (255, 255, 255)),
        ("L", 100, (100, 100, 100)),
        ("LA", (100, 7), (100, 100, 100)),  # alpha dropped, as detectron2 reads pictures
        ("RGBA", (10, 20, 30, 0), (10, 20, 30)),
        ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
        ("HSV", (0, 255, 255), (255, 0, 0)),
    ],
)
def test_8_bit_modes_in_memory_and_from_files(tmp_path, mode, value, expected) -> None:
    picture = Image.new(mode, (2, 1), value)
    assert as_pil_rgb(picture).getpixel((1, 0)) == expected
    assert picture.mode == mode, "the caller's picture is never converted in place"
    if mode in ("1", "L", "LA", "RGBA"):
        picture.save(tmp_path / f"{mode}.png")
        assert tuple(as_rgb_array(tmp_path / f"{mode}.png")[0, 1]) == expected


def test_palette_pictures_use_their_palette(tmp_path) -> None:
    picture = Image.new("P", (3, 1))
    picture.putpalette([0, 0, 0, 200, 10, 30, 5, 250, 90] + [0] * (256 * 3 - 9))
    picture.putdata([1, 2, 0])
    picture.save(tmp_path / "p.png")
    assert as_rgb_array(tmp_path / "p.png")[0].tolist() == [[200, 10, 30], [5, 250, 90], [0, 0, 0]]


def test_the_pixel_limit_is_checked_before_decoding_and_says_how_to_raise_it(tmp_path, monkeypatch) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (200, 50)).save(path)
    for call in (lambda: as_rgb_array(path, max_pixels=5_000), lambda: check_image_file(path, max_pixels=5_000)):
        with pytest.raises(ValueError) as caught:
            call()
        message = str(caught.value)
        for part in ("wide.png", "200 x 50 = 10,000 pixels", "limit of 5,000", "--max-image-pixels",
                     "AUDIODETIC_MAX_IMAGE_PIXELS", "max_image_pixels="):
            assert part in message
    monkeypatch.setenv("AUDIODETIC_MAX_IMAGE_PIXELS", "9_999")
    assert max_image_pixels() == 9_999
    with pytest.raises(ValueError, match="limit of 9,999"):
        as_rgb_array(path)
    assert as_rgb_array(path, max_pixels=10_000).shape == (50, 200, 3)  # the argument wins over the environment
    monkeypatch.setenv("AUDIODETIC_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="AUDIODETIC_MAX_IMAGE_PIXELS must be a whole number"):
        as_rgb_array(path)


def test_pillows_own_bomb_check_never_preempts_ours(tmp_path, monkeypatch) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (40, 40)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse 1,600 > 2 * 100 pixels
    assert as_rgb_array(path).shape == (40, 40, 3)
    assert Image.MAX_IMAGE_PIXELS == 100, "Pillow's setting is restored"


def test_thin_strips_keep_at_least_one_pixel_and_are_detected(tmp_path) -> None:
    assert resized_shape(2, 5000, 800, 1333) == (1, 1333)
    assert resized_shape(5000, 2, 800, 1333) == (1333, 1)
    from surfaces_fixtures import shared_tiny_model

    strip = np.full((2, 5000, 3), 120, np.uint8)
    detections = shared_tiny_model(0).detect(strip, text_prompts=["a line"], score_threshold=0.0)
    assert detections.image_size == (2, 5000)
    assert np.all(detections.boxes[:, 2] <= 5000) and np.all(detections.boxes[:, 3] <= 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory is read from /proc (Linux)")
def test_a_large_picture_is_read_and_resized_in_bounded_memory(tmp_path) -> None:
    """Decode + resize of a 36-megapixel PNG peaks near Pillow's own 4 bytes per pixel (the earlier path, through
    a full-size numpy copy and back, needed about 10)."""
    side = 6000
    picture = np.zeros((side, side, 3), np.uint8)
    picture[::5] = 200
    path = tmp_path / "big.png"
    Image.fromarray(picture).save(path, compress_level=1)
    del picture
    code = (
        "import sys, torch\n"
        "from audiodetic.inputs import as_picture\n"
        "from audiodetic.detector.preprocess import preprocess_image\n"
        "def kb(key):\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key))\n"
        "open('/proc/self/clear_refs', 'w').write('5')  # resets the peak (VmHWM) to the current size\n"
        "base = kb('VmRSS:')\n"
        "out = preprocess_image(as_picture(sys.argv[1]), min_size=800, max_size=1333,\n"
        "                       pixel_mean=torch.zeros(3, 1, 1), pixel_std=torch.ones(3, 1, 1))\n"
        "assert out.original_size == (6000, 6000) and out.resized_size == (800, 800)\n"
        "print((kb('VmHWM:') - base) * 1024 / 6000 ** 2)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    bytes_per_pixel = float(done.stdout.strip())
    print(f"decode + resize peak: {bytes_per_pixel:.2f} bytes per pixel")
    assert bytes_per_pixel < 7.0
