"""Append-only JSON Lines in audiodetic.io: durable lines, torn tails skipped and repaired, damage reported."""

from __future__ import annotations

import pytest

from audiodetic.errors import InputError
from audiodetic.io import JsonLinesAppender, iter_json_lines, read_json_line, repair_json_lines


def test_lines_round_trip_with_offsets(tmp_path):
    path = tmp_path / "a.jsonl"
    with JsonLinesAppender(path) as lines:
        offsets = [lines.append({"i": i, "text": "é" * i}) for i in range(3)]
    found = list(iter_json_lines(path))
    assert [value for _, _, value in found] == [{"i": i, "text": "é" * i} for i in range(3)]
    assert [offset for _, offset, _ in found] == offsets
    assert read_json_line(path, offsets[2]) == b'{"i": 2, "text": "\\u00e9\\u00e9"}'
    with JsonLinesAppender(path) as lines:  # appending again keeps what is there
        lines.append([1, 2])
    assert [number for number, _, _ in iter_json_lines(path)] == [1, 2, 3, 4]


def test_torn_tail_is_skipped_then_repaired(tmp_path):
    path = tmp_path / "a.jsonl"
    with JsonLinesAppender(path) as lines:
        lines.append({"i": 0})
    complete = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(b'{"i": 1, "tor')
    assert [value for _, _, value in iter_json_lines(path)] == [{"i": 0}]
    assert repair_json_lines(path) == len(b'{"i": 1, "tor')
    assert path.read_bytes() == complete
    assert repair_json_lines(path) == 0
    path.write_bytes(b'{"no newline at all"')
    assert repair_json_lines(path) == len(b'{"no newline at all"') and path.read_bytes() == b""
    assert repair_json_lines(tmp_path / "missing.jsonl") == 0


def test_a_damaged_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"i": 0}\n\nnot json\n{"i": 2}\n')
    with pytest.raises(InputError, match=r"a\.jsonl: line 3 is not JSON"):
        list(iter_json_lines(path))


def test_appender_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        JsonLinesAppender(tmp_path / "nope" / "a.jsonl")
