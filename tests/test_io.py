"""audiodetic.io: atomic writes (whole file or nothing, no temporary files left) and outputs never replace inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from audiodetic import io
from audiodetic.errors import InputError, MissingFileError, OutputExistsError


def test_writers_publish_whole_files_and_leave_no_temporaries(tmp_path) -> None:
    io.write_json(tmp_path / "a.json", {"x": [1, 2]})
    io.write_text(tmp_path / "b.txt", "héllo")
    io.save_npz(tmp_path / "c.npz", {"a": np.arange(4)})
    io.save_npy(tmp_path / "d.data", np.ones(3))  # the name is kept as given, no .npy appended
    io.save_image(tmp_path / "e.png", Image.new("RGB", (3, 2), (9, 8, 7)))
    assert (tmp_path / "a.json").read_text() == '{\n  "x": [\n    1,\n    2\n  ]\n}\n'
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert np.load(tmp_path / "c.npz")["a"].tolist() == [0, 1, 2, 3]
    assert np.load(tmp_path / "d.data").tolist() == [1.0, 1.0, 1.0]
    assert Image.open(tmp_path / "e.png").getpixel((2, 1)) == (9, 8, 7)
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.txt", "c.npz", "d.data", "e.png"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path) -> None:
    target = io.write_text(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError, match="boom"):
        with io.atomic_writer(target) as handle:
            handle.write(b"new, half written")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_missing_folder_and_unknown_picture_suffix(tmp_path) -> None:
    with pytest.raises(MissingFileError, match="does not exist"):
        io.write_text(tmp_path / "nope" / "x.txt", "x")
    io.write_text(tmp_path / "made" / "x.txt", "x", make_parents=True)
    assert (tmp_path / "made" / "x.txt").read_text() == "x"
    with pytest.raises(InputError, match="unknown picture suffix '.xyz'"):
        io.save_image(tmp_path / "a.xyz", Image.new("RGB", (1, 1)))


def test_check_output_refuses_inputs_existing_files_and_folders(tmp_path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"pixels")
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    for spelling in (photo, tmp_path / "." / "photo.png", link):
        with pytest.raises(OutputExistsError, match="one of the inputs"):
            io.check_output(spelling, inputs=[photo], what="--output")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        io.check_output(photo, overwrite=False)
    with pytest.raises(OutputExistsError, match="is a folder"):
        io.check_output(tmp_path)
    with pytest.raises(MissingFileError, match="does not exist"):
        io.check_output(tmp_path / "no" / "out.json")
    assert io.check_output(tmp_path / "new.json", inputs=[photo], overwrite=False) == tmp_path / "new.json"
    assert photo.read_bytes() == b"pixels"
