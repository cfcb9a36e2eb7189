"""Progress of a collection run, the same for every engine: one bar over images (images/s) and failure reports.

A failed image is reported as ``PATH: failed: REASON`` on standard error, counted, and the run goes on; with
``fail_fast`` the first failure stops the run with an error naming the image and the reason.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from audiodetic.errors import InputError


class ImageFailed(InputError):
    """An image of the collection could not be detected on (``--fail-fast`` stops the run with it)."""


def describe_error(error: BaseException) -> str:
    """A one-line reason: the error's message, with its kind when the message does not say it."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (ValueError, OSError, InputError)):
        return message
    return f"{type(error).__name__}: {message}"


class RunProgress:
    """One progress bar over a run's images and the count of finished, skipped and failed ones.

    Args:
        total: images in the run (or in this process's share).
        skipped: of those, already done before this run (the bar starts there).
        enabled: show the bar (it is also hidden when standard error is not a terminal, or for one image).
        fail_fast: raise :class:`ImageFailed` at the first failure.
        label: the bar's title.
    """

    def __init__(self, total: int, *, skipped: int = 0, enabled: bool = True, fail_fast: bool = False,
                 label: str = "detect", stream: TextIO | None = None) -> None:
        from tqdm.auto import tqdm

        self.total, self.skipped, self.fail_fast = total, skipped, fail_fast
        self.processed = 0
        self.failures: list[tuple[str, str]] = []
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Any = tqdm(total=total, initial=skipped, desc=label, unit="image", file=self._stream,
                              disable=True if not enabled or total - skipped < 1 else None, dynamic_ncols=True)

    def done(self, count: int = 1) -> None:
        """``count`` more images finished."""
        self.processed += count
        self._bar.update(count)

    def failed(self, image: str, reason: str) -> None:
        """Report and count a failed image (or stop the run with ``fail_fast``)."""
        self.failures.append((image, reason))
        if self.fail_fast:
            self.close()
            raise ImageFailed(f"{image}: {reason} (stopped by --fail-fast)")
        self.write(f"{image}: failed: {reason}")
        self._bar.update(1)

    def write(self, text: str) -> None:
        """A line above the bar."""
        self._bar.write(text, file=self._stream)

    def close(self) -> None:
        self._bar.close()


@dataclass
class RunSummary:
    """What a run (or one ``torchrun`` rank) did.

    Attributes:
        images: images of the collection (list-file entries that name no file included).
        processed: detected by this run (this rank, under ``torchrun``).
        skipped: already in the results file before this run.
        failures: ``(image, reason)`` of the images this process could not detect on.
        failed_total: failed images over all ranks (= ``len(failures)`` outside ``torchrun``).
    """

    images: int
    processed: int
    skipped: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    failed_total: int = 0

    def line(self) -> str:
        """``"10 images: 7 detected now, 2 already done, 1 failed"``."""
        return (f"{self.images} images: {self.processed} detected now, {self.skipped} already done, "
                f"{self.failed_total} failed")
