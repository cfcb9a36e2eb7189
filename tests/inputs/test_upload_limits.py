"""The limits on uploaded files (size, picture pixels, sound duration): checked from the file's size and header,
before anything is decoded, with the limit in the message."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image
from surfaces_fixtures import write_tone
from upload_media import header_only_png, text_file

from audiodetic.errors import AudioDecodeError, InputError, MissingFileError
from audiodetic.inputs import check_file_size, check_image_file, check_sound_file, format_size


def test_file_size_limit_names_file_size_and_limit(tmp_path) -> None:
    path = tmp_path / "big.wav"
    path.write_bytes(b"\0" * 3000)
    assert check_file_size(path, max_bytes=3000) == 3000
    with pytest.raises(InputError, match=r"sound: .*big\.wav is 2\.9 kB; files of at most 2\.0 kB are accepted"):
        check_file_size(path, max_bytes=2048, argument="sound")
    with pytest.raises(MissingFileError, match="gone.wav"):
        check_file_size(tmp_path / "gone.wav", max_bytes=10)
    assert [format_size(n) for n in (5, 2048, 50 * 1024 * 1024)] == ["5 bytes", "2.0 kB", "50.0 MB"]


def test_pixel_limit_is_read_from_the_header_without_decoding(tmp_path) -> None:
    claimed = header_only_png(tmp_path / "huge.png", 8000, 8000)  # 64 megapixels in ~70 bytes
    assert claimed.stat().st_size < 200
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"huge\.png is 8000 x 8000 = 64,000,000 pixels \(64 megapixels\), above "
                                         r"the limit of 40,000,000 pixels \(40 megapixels\)"):
        check_image_file(claimed, max_pixels=40_000_000)
    assert time.perf_counter() - started < 1.0
    assert check_image_file(claimed) == claimed  # no limit given: the header is all that is read
    with pytest.raises(InputError, match=r"bomb\.png is 30000 x 30000 = 900,000,000 pixels .* above the limit of "
                                         r"178,956,970 pixels"):  # the default limit: Pillow's own refusal point
        check_image_file(header_only_png(tmp_path / "bomb.png", 30000, 30000))

    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(small)
    assert check_image_file(small, max_pixels=20_000) == small
    with pytest.raises(InputError, match="200 x 100 = 20,000 pixels"):
        check_image_file(small, max_pixels=19_999)


def test_pictures_that_are_not_pictures(tmp_path) -> None:
    with pytest.raises(InputError, match=r"image: cannot read .*notes\.png as an image"):
        check_image_file(text_file(tmp_path / "notes.png"), max_pixels=10**6)
    with pytest.raises(MissingFileError, match="absent.png"):
        check_image_file(tmp_path / "absent.png")


def test_sound_duration_limit_and_sounds_that_are_not_audio(tmp_path) -> None:
    two_seconds = write_tone(tmp_path / "tone.wav", 440.0, seconds=2.0, sample_rate=8000)
    info = check_sound_file(two_seconds, max_seconds=2.0)
    assert (info.sample_rate, info.frames, info.channels) == (8000, 16000, 1)
    with pytest.raises(AudioDecodeError, match=r"sound 'x': .*tone\.wav is 2\.0 s long; sounds of at most 1\.5 s are "
                                               r"accepted"):
        check_sound_file(two_seconds, max_seconds=1.5, argument="sound 'x'")
    with pytest.raises(AudioDecodeError, match=r"sound: .*notes\.wav.*cannot decode audio"):
        check_sound_file(text_file(tmp_path / "notes.wav"))
    with pytest.raises(MissingFileError, match="absent.wav"):
        check_sound_file(tmp_path / "absent.wav")
