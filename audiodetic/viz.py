"""Drawing detections: translucent masks, box outlines and score labels that stay readable on busy photos.

Coordinate frame: the same as :class:`~audiodetic.structures.Detections` — boxes are ``x1, y1, x2, y2`` in the
pixels of the image passed in (``(0, 0)`` is the top-left corner of the top-left pixel), masks are ``(N, H, W)``.

Colours: every prompt name gets a colour from a fixed palette of 20 distinct hues (:data:`PALETTE`), chosen by a
hash of the name (so ``"dog"`` has the same colour in every call and every process); when two names of one
vocabulary hash to the same palette entry, the later name (in vocabulary order) takes the next free entry, so up to
20 names always get 20 different colours (beyond 20, colours repeat).
"""

from __future__ import annotations

import zlib
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from audiodetic.errors import InputError, InputTypeError
from audiodetic.inputs import as_pil_rgb
from audiodetic.structures import Detections

# Twenty colours of twenty different hues, in the perceptual OKLCH space (Oklab in polar form): hues 25, 43, ...,
# 367 degrees, 18 degrees apart, alternating between a light (L = 0.78) and a deep (L = 0.56) colour, each as
# saturated as sRGB allows up to a chroma of 0.17. So any two entries differ by at least 36 degrees of hue, or by
# 18 degrees and 0.22 of lightness; none is grey. Listed by hue.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (254, 150, 142), (191, 75, 8), (254, 157, 62), (152, 107, 8), (212, 182, 20), (115, 124, 8), (139, 206, 82),
    (11, 140, 68), (24, 214, 166), (11, 134, 126), (23, 207, 223), (10, 129, 160), (105, 193, 254), (46, 112, 214),
    (165, 177, 254), (126, 90, 204), (218, 152, 254), (170, 71, 161), (254, 140, 199), (193, 61, 99),
)


def colors_for(names: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """A palette colour per name: hash-chosen, with collisions within ``names`` moved to the next free entry."""
    taken: set[int] = set()
    colors: dict[str, tuple[int, int, int]] = {}
    for name in names:
        if name in colors:
            continue
        index = zlib.crc32(name.encode("utf-8")) % len(PALETTE)
        if len(taken) < len(PALETTE):
            while index in taken:
                index = (index + 1) % len(PALETTE)
        taken.add(index)
        colors[name] = PALETTE[index]
    return colors


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    red, green, blue = background
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def _load_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _mask_edges(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` (``(H, W)`` bool) that touch a background pixel (4-neighbourhood)."""
    interior = mask.copy()
    interior[1:, :] &= mask[:-1, :]
    interior[:-1, :] &= mask[1:, :]
    interior[:, 1:] &= mask[:, :-1]
    interior[:, :-1] &= mask[:, 1:]
    return mask & ~interior


def draw(
    image: Any,
    detections: Detections,
    *,
    alpha: float = 0.45,
    show_masks: bool = True,
    show_boxes: bool = True,
    show_labels: bool = True,
    font_size: int | None = None,
) -> Image.Image:
    """Draw ``detections`` on a copy of ``image``.

    Args:
        image: path, ``PIL.Image`` or ``(H, W, 3)`` uint8 RGB array; its size must equal ``detections.image_size``.
        detections: boxes (``(N, 4)`` xyxy in image pixels), scores, names and optional ``(N, H, W)`` masks.
        alpha: mask opacity in ``[0, 1]``.
        show_masks, show_boxes, show_labels: what to draw.
        font_size: label text height in pixels (default: about 2.5 % of the shorter image side, at least 12).

    Returns:
        A new RGB ``PIL.Image`` of the same size; lower-scoring detections are drawn first so the best ones stay
        on top. With no detections the result equals the input (as RGB).
    """
    if not isinstance(detections, Detections):
        raise InputTypeError(f"detections: expected audiodetic.Detections, got {type(detections).__name__}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise InputError(f"alpha must lie in [0, 1], got {alpha}")
    if font_size is not None and int(font_size) < 1:
        raise InputError(f"font_size must be a positive number of pixels, got {font_size}")
    canvas = as_pil_rgb(image)
    width, height = canvas.size
    if detections.image_size != (height, width):
        raise InputError(
            f"detections were made for an image of (H, W) = {detections.image_size} but the image is {(height, width)}"
        )
    if len(detections) == 0:
        return canvas

    colors = colors_for(detections.names)
    order = np.argsort(detections.scores, kind="stable")  # ascending: best drawn last
    short_side = min(width, height)
    line_width = max(2, round(short_side / 300))

    if show_masks and detections.has_masks and alpha > 0:
        pixels = np.asarray(canvas, dtype=np.float32).copy()
        edges = np.zeros((height, width), bool)
        edge_colors = np.zeros((height, width, 3), np.float32)
        for i in order:
            mask = detections.mask(i)  # one (H, W) mask at a time
            if not mask.any():
                continue
            color = np.array(colors[detections.names[detections.class_ids[i]]], np.float32)
            pixels[mask] = (1.0 - alpha) * pixels[mask] + alpha * color
            edge = _mask_edges(mask)
            edges |= edge
            edge_colors[edge] = color
        pixels[edges] = edge_colors[edges]
        canvas = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))

    pen = ImageDraw.Draw(canvas)
    if show_boxes:
        for i in order:
            x1, y1, x2, y2 = (float(v) for v in detections.boxes[i])
            color = colors[detections.names[detections.class_ids[i]]]
            pen.rectangle(_clamp_box((x1, y1, x2, y2), width, height), outline=color, width=line_width)

    if show_labels:
        size = int(font_size) if font_size is not None else max(12, round(short_side * 0.025))
        font = _load_font(size)
        for i in order:
            name = detections.names[detections.class_ids[i]]
            _draw_label(pen, f"{name} {detections.scores[i]:.2f}", detections.boxes[i], colors[name], font,
                        width, height)
    return canvas


def _clamp_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, ...]:
    x1, y1, x2, y2 = box
    return (min(max(x1, 0.0), width - 1.0), min(max(y1, 0.0), height - 1.0),
            min(max(x2, 0.0), width - 1.0), min(max(y2, 0.0), height - 1.0))


def _draw_label(pen: ImageDraw.ImageDraw, text: str, box: np.ndarray, color: tuple[int, int, int],
                font: Any, width: int, height: int) -> None:
    """A filled label above the box's top-left corner (inside the box when there is no room above), kept inside
    the image."""
    left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
    pad = max(2, (bottom - top) // 5)
    label_w = right - left + 2 * pad
    label_h = bottom - top + 2 * pad
    x1, y1 = float(box[0]), float(box[1])
    x = min(max(x1, 0.0), max(width - label_w, 0.0))
    y = y1 - label_h if y1 - label_h >= 0 else max(y1, 0.0)
    y = min(y, max(height - label_h, 0.0))
    pen.rectangle((x, y, x + label_w - 1, y + label_h - 1), fill=color)
    pen.text((x + pad - left, y + pad - top), text, fill=_text_color(color), font=font)
