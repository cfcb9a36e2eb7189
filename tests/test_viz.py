"""Tests of audiodetic.viz.draw on synthetic images and hand-made detections."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from audiodetic.inputs import as_pil_rgb
from audiodetic.structures import Detections
from audiodetic.viz import PALETTE, colors_for, draw

H, W = 120, 160


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(90, 110, size=(H, W, 3), dtype=np.uint8)  # grey, slightly noisy


def _detections(with_masks: bool = True) -> Detections:
    masks = np.zeros((2, H, W), bool)
    masks[0, 50:90, 30:70] = True
    masks[1, 10:30, 100:150] = True
    return Detections(
        boxes=np.array([[30, 50, 70, 90], [100, 10, 150, 30]], np.float32),
        scores=np.array([0.9, 0.6], np.float32),
        class_ids=np.array([0, 1], np.int64),
        names=("dog bark", "siren"),
        image_size=(H, W),
        masks=masks if with_masks else None,
    )


def test_empty_detections_return_identical_copy() -> None:
    image = _image()
    empty = Detections.empty(["dog"], (H, W))
    out = draw(image, empty)
    assert isinstance(out, Image.Image) and out.size == (W, H)
    np.testing.assert_array_equal(np.asarray(out), image)
    pil = Image.fromarray(image)
    out2 = draw(pil, empty)
    assert out2 is not pil
    np.testing.assert_array_equal(np.asarray(out2), image)


def test_input_not_mutated() -> None:
    image = _image()
    before = image.copy()
    pil = Image.fromarray(image.copy())
    draw(image, _detections())
    draw(pil, _detections())
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(np.asarray(pil), before)


def test_mask_pixels_blend_towards_class_colour() -> None:
    image = _image()
    dets = _detections()
    out = np.asarray(draw(image, dets, show_boxes=False, show_labels=False, alpha=0.5)).astype(int)
    color = np.array(colors_for(dets.names)["dog bark"])
    inside = (slice(60, 80), slice(40, 60))  # interior of mask 0, away from its edge
    expected = np.rint(0.5 * image[inside] + 0.5 * color)
    np.testing.assert_allclose(out[inside], expected, atol=1)
    # far from every detection nothing changes
    np.testing.assert_array_equal(out[100:, 0:20], image[100:, 0:20])
    # mask outline drawn in the pure colour
    np.testing.assert_array_equal(out[50, 45], color)


def test_show_masks_false_leaves_mask_interior() -> None:
    image = _image()
    out = np.asarray(draw(image, _detections(), show_boxes=False, show_labels=False, show_masks=False))
    np.testing.assert_array_equal(out, image)


def test_box_outline_drawn_at_box() -> None:
    image = _image()
    dets = _detections(with_masks=False)
    out = np.asarray(draw(image, dets, show_labels=False)).astype(int)
    color = np.array(colors_for(dets.names)["siren"])
    # left edge of box 1 (x=100, y in 10..30) and bottom edge (y=30)
    np.testing.assert_array_equal(out[20, 100], color)
    np.testing.assert_array_equal(out[30, 125], color)
    # centre of the box untouched without masks
    np.testing.assert_array_equal(out[20, 125], image[20, 125])


def test_label_background_above_box() -> None:
    image = _image()
    dets = _detections(with_masks=False)
    out = np.asarray(draw(image, dets, show_boxes=False, font_size=12)).astype(int)
    color = np.array(colors_for(dets.names)["dog bark"])
    # label of box 0 sits above y1=50 starting at x1=30; its background uses the class colour
    region = out[35:50, 30:60]
    assert (np.all(region == color, axis=-1)).mean() > 0.4
    text_color = np.array([0, 0, 0]) if color @ [0.299, 0.587, 0.114] > 140 else np.array([255, 255, 255])
    assert np.any(np.all(region == text_color, axis=-1)), "label text pixels expected in the label box"


def test_label_kept_inside_image() -> None:
    image = _image()
    dets = Detections(np.array([[150, 0, 160, 10]], np.float32), np.array([0.7], np.float32),
                      np.array([0]), ("a very long prompt name",), (H, W))
    out = np.asarray(draw(image, dets, font_size=14)).astype(int)
    color = np.array(colors_for(dets.names)["a very long prompt name"])
    # the box starts at the top edge, so the label goes inside/below and is shifted left to fit
    assert np.any(np.all(out[0:10, 0:150] == color, axis=-1))


def test_colours_stable_and_distinct() -> None:
    names = [f"sound {i}" for i in range(len(PALETTE))]
    first = colors_for(names)
    assert first == colors_for(names)
    assert len(set(first.values())) == len(PALETTE)
    assert colors_for(["dog"])["dog"] == colors_for(["dog"])["dog"]


def _oklch(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """sRGB (0-255) -> OKLCH: lightness L in [0, 1], chroma C, hue h in degrees (Ottosson's Oklab matrices)."""
    c = np.asarray(rgb, float) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lms = np.array([[0.4122214708, 0.5363325363, 0.0514459929], [0.2119034982, 0.6806995451, 0.1073969566],
                    [0.0883024619, 0.2817188376, 0.6299787005]]) @ linear
    lightness, a, b = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                                [1.9779984951, -2.4285922050, 0.4505937099],
                                [0.0259040371, 0.7827717662, -0.8086757660]]) @ np.cbrt(lms)
    return float(lightness), float(np.hypot(a, b)), float(np.degrees(np.arctan2(b, a)) % 360)


def test_twenty_label_colours_are_far_apart_in_hue_or_lightness() -> None:
    """Metric: OKLCH (perceptual). Two colours count as distinct when their hues differ by at least 30 degrees or
    their lightnesses by at least 0.15 (of L's 0..1 range); every colour has chroma >= 0.09, so its hue shows."""
    assert len(PALETTE) >= 20
    colours = list(colors_for([f"label {i}" for i in range(20)]).values())
    assert len(set(colours)) == 20
    for i, first in enumerate(colours):
        l1, c1, h1 = _oklch(first)
        assert c1 >= 0.09, f"{first} is nearly grey (chroma {c1:.3f})"
        for second in colours[i + 1:]:
            l2, _, h2 = _oklch(second)
            hue_gap = min(abs(h1 - h2), 360 - abs(h1 - h2))
            assert hue_gap >= 30 or abs(l1 - l2) >= 0.15, (first, second, round(hue_gap), round(abs(l1 - l2), 3))
    # the metric is not vacuous: yellow and lime, 21 degrees and 0.01 of lightness apart, count as the same
    l1, _, h1 = _oklch((255, 225, 25))
    l2, _, h2 = _oklch((210, 245, 60))
    assert abs(h1 - h2) < 30 and abs(l1 - l2) < 0.15


def test_accepts_path_and_rejects_bad_inputs(tmp_path) -> None:
    path = tmp_path / "x.png"
    Image.fromarray(_image()).save(path)
    out = draw(path, _detections())
    assert out.size == (W, H)
    with pytest.raises(ValueError, match="image is"):
        draw(np.zeros((10, 10, 3), np.uint8), _detections())
    with pytest.raises(ValueError, match="alpha"):
        draw(_image(), _detections(), alpha=2.0)
    with pytest.raises(ValueError, match="uint8"):
        as_pil_rgb(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        draw(tmp_path / "missing.png", _detections())
    with pytest.raises(TypeError, match="Detections"):
        draw(_image(), [])


def test_public_export() -> None:
    import audiodetic

    assert audiodetic.draw is draw


def test_paths_follow_exif_orientation(tmp_path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (200, 10, 10)).save(path, exif=exif)
    assert as_pil_rgb(path).size == (20, 40)
