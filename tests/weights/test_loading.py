"""``load_state_dict``: containers, mmap, legacy and TorchScript files, and clear errors for bad files."""

from __future__ import annotations

import warnings
import zipfile

import pytest
import torch

from audiodetic.errors import CheckpointError, WeightsNotFoundError
from audiodetic.weights import load_state_dict


def _state() -> dict[str, torch.Tensor]:
    return {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a.bias": torch.zeros(2),
            "count": torch.tensor(3, dtype=torch.int64)}


def _assert_same(loaded: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert list(loaded) == list(expected)
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value)


@pytest.mark.parametrize("wrap", [
    lambda sd: sd,
    lambda sd: {"model": sd, "iteration": 90000, "__author__": "someone"},
    lambda sd: {"state_dict": sd, "epoch": 3},
    lambda sd: {"model_state": sd},
    lambda sd: {f"module.{k}": v for k, v in sd.items()},
])
def test_containers_are_unwrapped(tmp_path, wrap):
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(_state()), path)
    _assert_same(load_state_dict(path), _state())


def test_mmap_used_for_zip_files_and_not_for_legacy(tmp_path, monkeypatch, caplog):
    calls: list[bool] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs["mmap"])
        assert kwargs["weights_only"] is True
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    torch.save(_state(), tmp_path / "new.pth")
    torch.save(_state(), tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    _assert_same(load_state_dict(tmp_path / "new.pth"), _state())
    with caplog.at_level("INFO", logger="audiodetic.weights.loading"):
        _assert_same(load_state_dict(tmp_path / "legacy.pth"), _state())
    assert "legacy" in caplog.text
    _assert_same(load_state_dict(tmp_path / "new.pth", mmap=False), _state())
    assert calls == [True, False, False]


def test_torchscript_archive(tmp_path):
    module = torch.nn.Linear(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), str(tmp_path / "ts.pt"))
    _assert_same(load_state_dict(tmp_path / "ts.pt"), dict(module.state_dict()))


class _Payload:
    """An arbitrary Python object: weights_only loading must refuse it."""


def _write_bad_files(tmp_path):
    torch.save({"model": _state(), "trainer": _Payload()}, tmp_path / "objects.pth")
    (tmp_path / "text.pth").write_text("this is not a checkpoint\n")
    (tmp_path / "empty.pth").write_bytes(b"")
    whole = (tmp_path / "whole.pth")
    torch.save(_state(), whole)
    (tmp_path / "truncated.pth").write_bytes(whole.read_bytes()[:300])
    with zipfile.ZipFile(tmp_path / "other.zip.pth", "w") as archive:
        archive.writestr("readme.txt", "hello")
    torch.save({"iteration": 5, "config": "x"}, tmp_path / "no_tensors.pth")
    torch.save([torch.ones(1)], tmp_path / "list.pth")


@pytest.mark.parametrize("name, message", [
    ("objects.pth", "_Payload"),
    ("text.pth", "not a PyTorch checkpoint"),
    ("empty.pth", "empty"),
    ("truncated.pth", "truncated or damaged"),
    ("other.zip.pth", "not a readable PyTorch checkpoint"),
    ("no_tensors.pth", "no tensors"),
    ("list.pth", "not a state dict"),
])
def test_bad_files_raise_checkpoint_error_without_traceback_chain(tmp_path, name, message):
    _write_bad_files(tmp_path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_state_dict(tmp_path / name)
    assert str(tmp_path / name) in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
    assert isinstance(info.value, ValueError)


def test_missing_path(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="not found"):
        load_state_dict(tmp_path / "missing.pth")
    with pytest.raises(WeightsNotFoundError, match="directory"):
        load_state_dict(tmp_path)


def test_prefixes_keep_only_matching_tensors(tmp_path, monkeypatch):
    state = {"audio.w": torch.ones(2), "audio.b": torch.zeros(1), "vision.w": torch.ones(3), "text.w": torch.ones(1)}
    torch.save({"model": state}, tmp_path / "towers.pth")
    kept = load_state_dict(tmp_path / "towers.pth", prefixes=("audio.", "text."))
    assert list(kept) == ["audio.w", "audio.b", "text.w"]
    moved: list[object] = []
    real_to = torch.Tensor.to

    def spy_to(self, *args, **kwargs):
        moved.append(args[0] if args else kwargs)
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy_to)
    load_state_dict(tmp_path / "towers.pth", prefixes=["audio."], map_location="meta")
    assert moved == ["meta", "meta"]  # only the two kept tensors leave the CPU mapping
    with pytest.raises(CheckpointError, match="imu"):
        load_state_dict(tmp_path / "towers.pth", prefixes=("imu.",))
    with pytest.raises(TypeError, match="sequence"):
        load_state_dict(tmp_path / "towers.pth", prefixes="audio.")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="map_location"):
        load_state_dict(tmp_path / "towers.pth", prefixes=["audio."], map_location={"cpu": "cpu"})
