"""One machine, all cores busy: images are read and preprocessed ahead of the model, then detected in batches.

``workers`` threads read, decode (EXIF orientation applied), resize and normalise the next images while the model
works on the current ones; at most ``prefetch`` prepared images wait (each holds its network input, and its
pixels only when drawing), so memory does not grow with the collection. Pillow's decoding and resizing and
PyTorch's kernels release the GIL, so threads run them in parallel. The model takes up to ``batch_size`` images
at a time (one backbone pass for images of equal input shape, see :mod:`audiodetic.detector.batching`). Results
come out in the run's order and go to the sink (the results file) one image at a time, as each finishes.

A failed image (unreadable, or the model raised on it) is reported and counted and the run goes on; when a
batch fails, its images are retried one by one so that only the culprit fails.
"""

from __future__ import annotations

import collections
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from audiodetic.collection.progress import RunProgress, describe_error
from audiodetic.collection.session import DetectionSession, PreparedImage, detect_each, read_pixels
from audiodetic.collection.sources import ImageItem


class ResultSink(Protocol):
    def add(self, item: ImageItem, record: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class PipelineOptions:
    """How the local pipeline runs (none of this changes the detections).

    Attributes:
        batch_size: images per model call (default: 8 on CUDA, 1 on the CPU, where batching gains little).
        workers: threads that prepare images (default: the CPU count, at most 4).
        prefetch: prepared images that may wait for the model (default ``2 * max(workers, batch_size)``).
        draw: ``{image index: PNG path}`` of the drawings to write, or ``None``.
    """

    batch_size: int | None = None
    workers: int | None = None
    prefetch: int | None = None
    draw: Mapping[int, Path] | None = None

    def resolved(self, device: str) -> tuple[int, int, int]:
        """``(batch_size, workers, prefetch)`` with the defaults filled in for ``device``."""
        batch = self.batch_size or (8 if device.startswith("cuda") else 1)
        workers = self.workers or max(1, min(4, os.cpu_count() or 1))
        return batch, workers, self.prefetch or 2 * max(workers, batch)


class _LoadFailed(Exception):
    """The model could not be loaded: fatal for the run, not a failure of one image."""


class LazySession:
    """Builds the :class:`DetectionSession` on first use, once, for whichever thread asks first, so that a run
    whose images all fail to read never loads a model and the first images decode while it loads."""

    def __init__(self, make: Callable[[], DetectionSession] | DetectionSession) -> None:
        self._make = make
        self._session = make if isinstance(make, DetectionSession) else None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def get(self) -> DetectionSession:
        with self._lock:
            if self._session is None and self._error is None:
                try:
                    self._session = self._make()  # type: ignore[operator]
                except BaseException as error:
                    self._error = error
            if self._error is not None:
                raise _LoadFailed() from self._error
            return self._session  # type: ignore[return-value]


def _prepare(model: LazySession, item: ImageItem, keep_pixels: bool) -> PreparedImage:
    pixels = read_pixels(item.path)
    return model.get().prepare(pixels, item, keep_pixels=keep_pixels)


def run_pipeline(session: Callable[[], DetectionSession] | DetectionSession, items: Sequence[ImageItem],
                 sink: ResultSink, progress: RunProgress, options: PipelineOptions = PipelineOptions(), *,
                 device: str = "cpu") -> None:
    """Detect on every item and hand each image's JSON record to ``sink.add`` in ``items`` order.

    Args:
        session: a :class:`DetectionSession`, or a function making one (called once, when the first image has
            been read; its errors stop the run).
        device: where the model runs (decides the default batch size).

    Records are ``Detections.to_json_dict``'s (``image`` set by the sink). Drawings, when asked for, are written
    (atomically) before the image's record, so a recorded image has its drawing.
    """
    model = LazySession(session)
    batch_size, workers, prefetch = options.resolved(device)
    keep_pixels = bool(options.draw)
    pending: collections.deque[tuple[ImageItem, Future[PreparedImage]]] = collections.deque()
    queue = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audiodetic-prepare") as pool:
        try:
            def refill() -> None:
                while len(pending) < prefetch:
                    item = next(queue, None)
                    if item is None:
                        return
                    pending.append((item, pool.submit(_prepare, model, item, keep_pixels)))

            refill()
            while pending:
                batch: list[PreparedImage] = []
                while pending and len(batch) < batch_size:
                    item, future = pending.popleft()
                    refill()
                    try:
                        batch.append(future.result())
                    except _LoadFailed as error:
                        raise error.__cause__ from None  # type: ignore[misc]
                    except Exception as error:  # noqa: BLE001 - any failure of one image is reported, not fatal
                        progress.failed(item.image, describe_error(error))
                if batch:
                    _detect_and_record(model.get(), batch, batch_size, sink, progress, options.draw)
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise


def _detect_and_record(session: DetectionSession, batch: list[PreparedImage], batch_size: int, sink: ResultSink,
                       progress: RunProgress, draw: Mapping[int, Path] | None) -> None:
    for prepared, found in zip(batch, detect_each(session, batch, batch_size=batch_size)):
        item: ImageItem = prepared.item
        if isinstance(found, Exception):
            progress.failed(item.image, describe_error(found))
            continue
        if draw and item.index in draw:  # a failed write (disk full...) stops the run
            write_drawing(draw[item.index], prepared.pixels, found)
        sink.add(item, found.to_json_dict(image=item.image))
        progress.done()


def write_drawing(path: Path, pixels: Any, detections: Any) -> None:
    """The image with its detections drawn (``audiodetic.viz.draw``), written atomically (``io.save_image``)."""
    from audiodetic.io import save_image
    from audiodetic.viz import draw

    save_image(path, draw(pixels, detections))


def drawing_paths(items: Iterable[ImageItem], folder: Path) -> dict[int, Path]:
    """``{index: folder/<stem>.png}``; repeated stems get ``-2``, ``-3``... in the run's order."""
    used: dict[str, int] = {}
    paths = {}
    for item in items:
        stem = Path(item.image).stem
        count = used.get(stem, 0) + 1
        used[stem] = count
        paths[item.index] = folder / (f"{stem}.png" if count == 1 else f"{stem}-{count}.png")
    return paths
