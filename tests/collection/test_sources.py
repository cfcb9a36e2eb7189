"""Which images a run covers: folders, globs, list files (relative to their folder), duplicates once."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from audiodetic.collection.sources import list_images


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)
    return path


def test_folders_globs_files_and_duplicates(tmp_path):
    for name in ("b.png", "a.jpg", "c.JPEG"):
        _image(tmp_path / "shots" / name)
    (tmp_path / "shots" / "notes.md").write_text("not an image")
    _image(tmp_path / "shots" / "deep" / "d.png")
    os.symlink(tmp_path / "shots" / "a.jpg", tmp_path / "link.jpg")
    items, missing = list_images([str(tmp_path / "shots"), str(tmp_path / "shots/**/*.png"),
                                  str(tmp_path / "link.jpg"), str(tmp_path / "shots" / ".." / "shots" / "b.png")])
    assert [os.path.relpath(i.image, tmp_path) for i in items] == ["shots/a.jpg", "shots/b.png", "shots/c.JPEG",
                                                                   "shots/deep/d.png"]
    assert [i.index for i in items] == [0, 1, 2, 3] and all(os.path.isabs(i.path) for i in items)
    assert missing == []


def test_list_file_entries_are_relative_to_the_list(tmp_path, monkeypatch):
    _image(tmp_path / "data" / "x.png")
    _image(tmp_path / "data" / "sub" / "y.png")
    (tmp_path / "data" / "folder").mkdir()
    listing = tmp_path / "data" / "list.txt"
    listing.write_text(f"# a comment\nx.png\n\n  sub/y.png  \ngone.png\nfolder\n{tmp_path / 'data' / 'x.png'}\n")
    monkeypatch.chdir(tmp_path)
    items, missing = list_images(["data/list.txt"])
    assert [i.image for i in items] == [os.path.join("data", "x.png"), os.path.join("data", "sub/y.png")]
    assert [(m.where, os.path.basename(m.image), m.reason) for m in missing] == [
        ("data/list.txt:5", "gone.png", "no such file"),
        ("data/list.txt:6", "folder", "is a folder, not an image file")]


def test_what_finds_nothing_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        list_images([str(tmp_path / "empty")])
    with pytest.raises(FileNotFoundError, match="no files match"):
        list_images([str(tmp_path / "*.jpg")])
    with pytest.raises(FileNotFoundError, match="image not found: .*nope.png"):
        list_images([str(tmp_path / "nope.png")])
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not UTF-8"):
        list_images([str(tmp_path / "bad.txt")])
    with pytest.raises(ValueError, match="no images given"):
        list_images([])
