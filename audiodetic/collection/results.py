"""The results file of a collection run: one JSON line per finished image, resumable, never someone else's file.

For ``--output results.jsonl`` the run writes::

    results.jsonl            one line per image, as it finishes: {"image", "width", "height", "detections": [...]}
    results.jsonl.run.json   what was run (settings, the folder relative image paths start from); needed to resume

Each line is flushed and fsynced as it is written (:class:`audiodetic.io.JsonLinesAppender`). Running the same
command again resumes: images already in the file are skipped, a torn last line (a killed write) is cut off, and
a run whose settings differ is refused unless ``overwrite`` (the message lists what changed), which starts over.
A ``.jsonl`` file without its ``.run.json`` (or holding lines that are not per-image results) is not ours and is
never written to, ``overwrite`` or not. For ``--output results.json`` the lines go to ``results.json.partial.jsonl``
(and its ``.run.json``) and, once every image is done, become today's JSON list (in the run's image order) in
``results.json``, written atomically; the partial files are then removed (if some images failed, the list holds
the others and the partial files stay, so that the next run retries the failed ones and writes the list again).
An existing ``results.json`` of no unfinished run is only replaced with ``overwrite``.

Memory stays flat in the number of images: the file is scanned once for the images it holds, keeping only each
image's key and byte offset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from audiodetic.collection.settings import describe_changes
from audiodetic.collection.sources import ImageItem, image_key
from audiodetic.errors import InputError, OutputExistsError
from audiodetic.io import (
    JsonLinesAppender,
    atomic_writer,
    check_output,
    iter_json_lines,
    read_json_line,
    repair_json_lines,
    write_json,
)

RUN_FORMAT = "audiodetic.detect/1"
RECORD_FIELDS = ("image", "width", "height", "detections")


def run_file(lines: Path) -> Path:
    """The ``.run.json`` beside a lines file."""
    return lines.with_name(lines.name + ".run.json")


class ResultLines:
    """An append-only JSON Lines file of per-image records and the byte offset of each image's line.

    Args:
        path: the file (it need not exist yet).
        base: the folder relative ``image`` paths in the file start from.
        repair: cut a torn last line off (only the process that appends may do so).
    """

    def __init__(self, path: Path, base: str, *, repair: bool = True) -> None:
        self.path = Path(path)
        self.base = base
        self.offsets: dict[str, int] = {}
        self._appender: JsonLinesAppender | None = None
        if not self.path.exists():
            return
        if repair:
            repair_json_lines(self.path)
        for number, offset, record in iter_json_lines(self.path):
            if not isinstance(record, dict) or any(key not in record for key in RECORD_FIELDS):
                raise OutputExistsError(f"{self.path}: line {number} is not an audiodetic detections record "
                                        f"(needs {', '.join(RECORD_FIELDS)}); refusing to write to this file")
            self.offsets.setdefault(self.key(str(record["image"])), offset)

    def key(self, image: str) -> str:
        """The key of an ``image`` path as written in this file."""
        return image_key(os.path.join(self.base, image))

    def __contains__(self, key: str) -> bool:
        return key in self.offsets

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, key: str, record: Mapping[str, Any]) -> bool:
        """Write one image's record unless its key is already there; returns whether it was written."""
        if key in self.offsets:
            return False
        if self._appender is None:
            self._appender = JsonLinesAppender(self.path)
        self.offsets[key] = self._appender.append(record)
        return True

    def line(self, key: str) -> bytes:
        """The raw JSON of ``key``'s line."""
        return read_json_line(self.path, self.offsets[key])

    def close(self) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None


class ResultsFile:
    """The ``--output`` of a run (see the module docstring).

    Args:
        output: ``*.jsonl`` (lines) or ``*.json`` (a JSON list at the end).
        identity: ``DetectionSettings.identity()`` of this run.
        overwrite: start over even if the settings differ, and replace an existing ``.json``.
        inputs: files the run reads (prompt files, list files); the outputs may be none of them.
        image_keys: keys of the run's images (``sources.image_key``); the outputs may be none of them.
        owner: whether this process prepares the files (starting over, writing ``.run.json``, cutting a torn
            line) and appends to them; ``torchrun`` ranks other than 0 only check and read.

    The checks run here; :meth:`open` then reads which images are done (after the owner has prepared).
    """

    def __init__(self, output: Path, identity: Mapping[str, Any], *, overwrite: bool = False,
                 inputs: Iterable[str] = (), image_keys: Iterable[str] = (), owner: bool = True) -> None:
        output = Path(output)
        self.output = output
        self.owner = owner
        self.as_list = output.suffix.lower() == ".json"
        if not self.as_list and output.suffix.lower() != ".jsonl":
            raise InputError(f"--output {output}: give a .jsonl file (one line per image, resumable) or a .json "
                             "file (one JSON list, written at the end), or '-' for standard output")
        self.lines_path = output.with_name(output.name + ".partial.jsonl") if self.as_list else output
        self.run_path = run_file(self.lines_path)
        self.parts_dir = self.lines_path.with_name(self.lines_path.name + ".parts")
        inputs = list(inputs)
        keys = set(image_keys)
        for path in (output, self.lines_path, self.run_path):
            check_output(path, inputs=inputs, what="--output")
            if image_key(str(path)) in keys:
                raise OutputExistsError(f"--output {path} is one of the images of the run; choose another path")
        previous = self._read_run_info()
        if self.as_list and output.exists() and previous is None and not overwrite:
            raise OutputExistsError(f"--output {output} already exists; pass --overwrite to replace it (or write "
                                    f"a .jsonl, which resumes)")
        self.base = os.getcwd()
        info = {"format": RUN_FORMAT, "settings": json.loads(json.dumps(identity)), "base": self.base}
        if previous is not None and not overwrite:
            changes = describe_changes(previous["settings"], info["settings"])
            if changes:
                raise InputError(f"{self.lines_path} holds a run with other settings ({'; '.join(changes)}); "
                                 "use another --output, or --overwrite to start over")
            self.base = str(previous.get("base", self.base))
        self.fresh = previous is None or overwrite
        if owner and self.fresh:
            self.lines_path.unlink(missing_ok=True)
            for part in self.part_files():
                part.unlink()
            write_json(self.run_path, info)
        self.lines: ResultLines | None = None

    def _read_run_info(self) -> dict[str, Any] | None:
        if not self.run_path.exists():
            if self.lines_path.exists() and self.lines_path.stat().st_size > 0:
                raise OutputExistsError(f"{self.lines_path} exists but was not written by this command (no "
                                        f"{self.run_path.name} beside it); refusing to write to it - choose "
                                        "another --output or move the file away")
            return None
        try:
            info = json.loads(self.run_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise OutputExistsError(f"{self.run_path} is not a run description written by audiodetic "
                                    f"({error}); refusing to write over it") from None
        if not isinstance(info, dict) or info.get("format") != RUN_FORMAT or "settings" not in info:
            raise OutputExistsError(f"{self.run_path} is not a run description of `audiodetic detect` "
                                    f"(format {RUN_FORMAT}); refusing to write over it")
        return info

    def part_files(self) -> list[Path]:
        """The ``torchrun`` ranks' part files (``<lines>.parts/rank-R-of-W.jsonl``) that exist."""
        return sorted(self.parts_dir.glob("rank-*-of-*.jsonl")) if self.parts_dir.is_dir() else []

    def open(self) -> "ResultsFile":
        """Read which images the file holds (cutting a torn last line when this process owns the file)."""
        self.lines = ResultLines(self.lines_path, self.base, repair=self.owner)
        return self

    def _open_lines(self) -> ResultLines:
        if self.lines is None:
            raise RuntimeError("ResultsFile.open() must be called first")
        return self.lines

    def label(self, item: ImageItem) -> str:
        """The ``image`` path to write for ``item``: as given, or relative to the file's base folder when the
        run resumes from another working directory."""
        if os.path.isabs(item.image) or os.path.realpath(self.base) == os.path.realpath(os.getcwd()):
            return item.image
        return os.path.relpath(item.path, self.base)

    @staticmethod
    def key(item: ImageItem) -> str:
        return image_key(item.path)

    def is_done(self, item: ImageItem) -> bool:
        return self.key(item) in self._open_lines()

    def add(self, item: ImageItem, record: Mapping[str, Any]) -> bool:
        """Write ``item``'s record (its ``image`` field set to :meth:`label`); ``False`` if it was there."""
        return self._open_lines().append(self.key(item), {**record, "image": self.label(item)})

    def finish(self, items: Sequence[ImageItem]) -> None:
        """For ``.json`` output: write the JSON list of the done ``items`` in their order; when all are done, remove
        the partial files (else they stay, and the next run resumes them and writes the list again)."""
        lines = self._open_lines()
        lines.close()
        if not self.as_list:
            return
        done = [item for item in items if self.key(item) in lines]
        with atomic_writer(self.output) as handle:
            handle.write(b"[")
            for position, item in enumerate(done):
                handle.write((b", " if position else b"") + lines.line(self.key(item)))
            handle.write(b"]")
        if len(done) == len(items):
            self.lines_path.unlink(missing_ok=True)
            self.run_path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.lines is not None:
            self.lines.close()


class StreamedList:
    """``--output -``: the JSON list written to a text stream as images finish (nothing to resume)."""

    fresh = True

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._count = 0

    def open(self) -> "StreamedList":
        return self

    def is_done(self, item: ImageItem) -> bool:
        return False

    def add(self, item: ImageItem, record: Mapping[str, Any]) -> bool:
        self._stream.write(("[" if not self._count else ", ") + json.dumps(dict(record)))
        self._stream.flush()
        self._count += 1
        return True

    def finish(self, items: Sequence[ImageItem]) -> None:
        self._stream.write(("[" if not self._count else "") + "]\n")
        self._stream.flush()

    def close(self) -> None:
        pass
