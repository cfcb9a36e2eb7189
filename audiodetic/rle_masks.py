"""Instance masks held as COCO compressed RLE: memory that follows a mask's outline, not the picture's area.

A binary mask of an ``(H, W)`` image is read in column-major order (down the first column, then the next) as
alternating runs of 0s and 1s, starting with 0s; COCO's compressed form writes each run length as a difference to
the run two before it, in 6-bit characters (pycocotools' ``counts`` string). A mask pasted from a mask head's
28 x 28 probabilities has a few runs per column of its box whose lengths change little from column to column, so
it costs **about 1 to 5 bytes per column of its box** (measured: 1.1 for a single blob, 4.9 for a wavy mask; up to
~35 for 28 x 28 probabilities of pure noise), e.g. 14 to 60 KB for a box 12000 pixels wide, where a full
``(H, W)`` bool array costs ``H * W`` bytes (144 MB at 12000 x 12000). The cost follows the box's width, never
the picture's area.

:class:`RleMasks` holds ``N`` such strings for one image; :class:`ColumnRunEncoder` builds one string from the
columns of a mask's box region (any number of column bands, left to right), so no full-size array is ever made.
pycocotools is imported on use.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from audiodetic.errors import InputError, InputTypeError


def _check_size(image_size: Sequence[int]) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise InputError(f"mask image size must be (H, W), got {image_size!r}") from None
    if height <= 0 or width <= 0:
        raise InputError(f"mask image size must be (H, W) with positive sides, got {image_size!r}")
    return height, width


def compress_counts(counts: np.ndarray, image_size: tuple[int, int]) -> bytes:
    """COCO's compressed ``counts`` string (as bytes) of uncompressed run lengths (first run: 0s)."""
    from pycocotools import mask as mask_utils

    height, width = image_size
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": np.asarray(counts, np.int64).tolist()},
                                 height, width)
    return bytes(rle["counts"])


class ColumnRunEncoder:
    """Builds the RLE of one mask of an ``(H, W)`` image from its box region, column band by column band.

    Call :meth:`add_columns` with the region's columns, left to right, in bands of any width; pixels outside them
    are 0. Memory: the positions where the mask switches (a few per column), never the image.
    """

    def __init__(self, image_size: tuple[int, int]) -> None:
        self.height, self.width = _check_size(image_size)
        self._switches: list[np.ndarray] = []
        self._next_column = 0

    def add_columns(self, columns: np.ndarray, y0: int, x: int) -> None:
        """Add image columns ``x .. x + k - 1``: ``columns`` is ``(k, rows)`` bool, column ``j``'s pixels from row
        ``y0`` down (column-major, as the RLE reads them). Columns must come left to right."""
        columns = np.asarray(columns, dtype=bool)
        count, rows = columns.shape
        if x < self._next_column or y0 < 0 or y0 + rows > self.height or x + count > self.width:
            raise InputError(f"{count} columns of {rows} rows at row {y0}, column {x} do not fit a "
                             f"{self.height}x{self.width} image after column {self._next_column}")
        self._next_column = x + count
        padded = np.zeros((count, rows + 2), np.int8)
        padded[:, 1:-1] = columns
        column, row = np.nonzero(np.diff(padded, axis=1))  # in column-major order: sorted positions
        if column.size:
            self._switches.append((column.astype(np.int64) + x) * self.height + y0 + row)

    def finish(self) -> bytes:
        """The compressed COCO ``counts`` of the mask."""
        total = self.height * self.width
        switches = np.concatenate(self._switches) if self._switches else np.zeros(0, np.int64)
        if switches.size > 1:  # a run ending at the bottom of a column may go on at the top of the next one
            joined = np.zeros(switches.size, bool)
            same = switches[1:] == switches[:-1]
            joined[1:] |= same
            joined[:-1] |= same
            switches = switches[~joined]
        counts = np.diff(np.concatenate([[0], switches, [total]]))
        if counts.size > 1 and counts[-1] == 0:
            counts = counts[:-1]
        return compress_counts(counts, (self.height, self.width))


class RleMasks:
    """``N`` binary masks of one ``(H, W)`` image as COCO compressed RLE strings (see the module docstring).

    Args:
        counts: ``N`` compressed ``counts`` strings (``bytes`` or ASCII ``str``), pycocotools' format.
        image_size: ``(H, W)`` of the image (all masks share it).

    Memory: :attr:`nbytes` (the strings' lengths) — about 1 to 5 bytes per column of each mask's box.
    Dense arrays are made only by :meth:`to_dense` (``(N, H, W)`` bool, ``N * H * W`` bytes) and :meth:`mask`
    (one ``(H, W)`` bool).
    """

    __slots__ = ("_counts", "image_size")

    def __init__(self, counts: Iterable[bytes | str], image_size: Sequence[int]) -> None:
        self.image_size = _check_size(image_size)
        items = []
        for index, value in enumerate(counts):
            if isinstance(value, str):
                value = value.encode("ascii")
            if not isinstance(value, (bytes, bytearray)):
                raise InputTypeError(f"RLE counts[{index}] must be a COCO compressed string, got "
                                     f"{type(value).__name__}")
            items.append(bytes(value))
        self._counts = tuple(items)

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_dense(cls, masks: np.ndarray) -> "RleMasks":
        """Encode ``(N, H, W)`` bool masks."""
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3:
            raise InputError(f"dense masks must have shape (N, H, W), got {masks.shape}")
        size = masks.shape[1:]
        if masks.shape[0] == 0:
            return cls((), size)
        from pycocotools import mask as mask_utils

        encoded = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
        return cls((rle["counts"] for rle in encoded), size)

    @classmethod
    def from_coco(cls, rles: Sequence[Mapping[str, Any]], image_size: Sequence[int]) -> "RleMasks":
        """From ``[{"size": [H, W], "counts": str}]`` records (every size must equal ``image_size``)."""
        size = _check_size(image_size)
        counts = []
        for index, rle in enumerate(rles):
            try:
                rle_size, value = tuple(int(v) for v in rle["size"]), rle["counts"]
            except (KeyError, TypeError, ValueError):
                raise InputError(f"mask {index} is not a COCO RLE {{'size': [H, W], 'counts': str}}: "
                                 f"{str(rle)[:80]}") from None
            if rle_size != size:
                raise InputError(f"mask {index} has size {list(rle_size)} but the image is {list(size)}")
            if not isinstance(value, (str, bytes)):
                raise InputError(f"mask {index}: only compressed RLE (a counts string) is accepted, got "
                                 f"{type(value).__name__}")
            counts.append(value)
        return cls(counts, size)

    @classmethod
    def concatenate(cls, parts: Sequence["RleMasks"]) -> "RleMasks":
        """The masks of ``parts`` (same image size) one after another."""
        if not parts:
            raise InputError("RleMasks.concatenate needs at least one part")
        if any(part.image_size != parts[0].image_size for part in parts):
            raise InputError("RleMasks.concatenate: all parts must share the image size")
        return cls((c for part in parts for c in part._counts), parts[0].image_size)

    # -- access ---------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._counts)

    def __getitem__(self, index: Any) -> "RleMasks":
        """The masks selected by an int, a slice, an integer array or a boolean ``(N,)`` array."""
        if isinstance(index, slice):
            return RleMasks(self._counts[index], self.image_size)
        positions = np.arange(len(self))[index]
        return RleMasks((self._counts[i] for i in np.atleast_1d(positions)), self.image_size)

    def __repr__(self) -> str:
        height, width = self.image_size
        return f"RleMasks(n={len(self)}, image_size=({height}, {width}), nbytes={self.nbytes})"

    @property
    def counts(self) -> tuple[bytes, ...]:
        """The compressed ``counts`` strings."""
        return self._counts

    @property
    def nbytes(self) -> int:
        """Bytes held by the masks' strings."""
        return sum(len(c) for c in self._counts)

    def _records(self) -> list[dict[str, Any]]:
        return [{"size": list(self.image_size), "counts": c} for c in self._counts]

    def to_coco(self) -> list[dict[str, Any]]:
        """``[{"size": [H, W], "counts": str}]``, the COCO results format (JSON-ready)."""
        return [{"size": list(self.image_size), "counts": c.decode("ascii")} for c in self._counts]

    def to_dense(self) -> np.ndarray:
        """``(N, H, W)`` bool: all masks at full size (``N * H * W`` bytes)."""
        height, width = self.image_size
        if not self._counts:
            return np.zeros((0, height, width), bool)
        from pycocotools import mask as mask_utils

        return mask_utils.decode(self._records()).transpose(2, 0, 1).astype(bool)

    def mask(self, index: int) -> np.ndarray:
        """Mask ``index`` as an ``(H, W)`` bool array."""
        from pycocotools import mask as mask_utils

        return mask_utils.decode({"size": list(self.image_size), "counts": self._counts[index]}).astype(bool)

    def areas(self) -> np.ndarray:
        """``(N,)`` int64 pixel count of each mask (without decoding)."""
        if not self._counts:
            return np.zeros(0, np.int64)
        from pycocotools import mask as mask_utils

        records = self._records()
        # pycocotools sizes its result array with a uint8 from the count: ask for at most 255 masks at a time
        chunks = [mask_utils.area(records[i : i + 255]) for i in range(0, len(records), 255)]
        return np.concatenate([np.asarray(c, np.int64).reshape(-1) for c in chunks])
