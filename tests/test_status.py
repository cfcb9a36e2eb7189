"""Status lines for long steps: said on standard error by default, silent with set_quiet / AUDIODETIC_QUIET / -q."""

from __future__ import annotations

import pytest

import audiodetic
from audiodetic import status
from audiodetic.model import Deferred, _Slot


@pytest.fixture()
def loud(monkeypatch):
    monkeypatch.delenv("AUDIODETIC_QUIET", raising=False)
    monkeypatch.setattr(status, "_state", {"quiet": None})


def test_loading_a_detector_says_so_and_quiet_silences_it(tmp_path, capsys, loud, monkeypatch) -> None:
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    checkpoint = make_detic_checkpoint(tmp_path / "tiny.pth", "tiny")
    audiodetic.load(checkpoint)
    assert f"audiodetic: loading the detector {checkpoint}" in capsys.readouterr().err
    monkeypatch.setenv("AUDIODETIC_QUIET", "1")
    audiodetic.load(checkpoint)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("AUDIODETIC_QUIET")
    status.set_quiet(True)
    audiodetic.load(checkpoint)
    assert capsys.readouterr().err == ""


def test_deferred_components_say_what_they_load_and_how_long_it_took(capsys, loud, monkeypatch) -> None:
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(status.time, "perf_counter", lambda: next(clock))
    slot = _Slot(Deferred(lambda: "tower", "ImageBind audio tower from x.pth"), "audio encoder")
    assert slot.get() == "tower" and slot.get() == "tower"  # built once, said once
    assert capsys.readouterr().err == ("audiodetic: loading the ImageBind audio tower from x.pth\n"
                                       "audiodetic:   done in 2.5 s\n")


def test_the_cli_quiet_switch_has_three_spellings() -> None:
    from audiodetic.cli import build_parser

    for flag in ("-q", "--quiet", "--no-progress"):
        args = build_parser().parse_args(["video", "in.mp4", "--output", "o.jsonl", "--soundtrack", flag])
        assert args.no_progress is True
