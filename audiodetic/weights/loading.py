"""Reading checkpoints safely: ``torch.load(weights_only=True)``, memory-mapped when the format allows it."""

from __future__ import annotations

import logging
import os
import re
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiodetic.errors import CheckpointError, InputError, InputTypeError, WeightsNotFoundError

if TYPE_CHECKING:
    import torch

__all__ = ["load_state_dict"]

_log = logging.getLogger(__name__)
_CONTAINER_KEYS = ("model", "state_dict", "model_state", "module")
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def load_state_dict(
    path: str | os.PathLike[str],
    *,
    map_location: Any = "cpu",
    mmap: bool = True,
    prefixes: Sequence[str] | None = None,
) -> dict[str, "torch.Tensor"]:
    """The tensors of the checkpoint at ``path`` as a flat ``{name: tensor}`` dict (file order kept).

    - Loads with ``torch.load(weights_only=True)``, so no Python code in the file runs. With ``mmap=True`` (the
      default) tensors of zip-format files (everything ``torch.save`` has written since PyTorch 1.6) are mapped
      from disk on ``map_location="cpu"``: reading one tower of a large file costs only the pages touched. Legacy
      (pre-zip) files cannot be mapped and are read into memory, with an INFO log saying so.
    - TorchScript archives (e.g. OpenAI's ``ViT-B-32.pt``) are read with ``torch.jit.load`` and their
      ``state_dict()`` returned; ``mmap`` does not apply.
    - Containers ``{"model": sd}``, ``{"state_dict": sd}``, ``{"model_state": sd}``, ``{"module": sd}`` (detectron2,
      Lightning, ...) are unwrapped; a ``module.`` prefix shared by every key (DataParallel) is removed; entries
      that are not tensors (iteration counters, optimizer state, metadata) are dropped.
    - ``prefixes``: keep only keys starting with one of these (after unwrapping), e.g.
      ``("modality_preprocessors.audio.", "modality_trunks.audio.")``. The file is then mapped on the CPU and
      only the kept tensors are moved to ``map_location``, so the rest of a large file is never read into RAM
      nor copied to a GPU. CheckpointError if nothing matches.

    Tensors keep their stored dtypes and shapes. Raises :class:`WeightsNotFoundError` when ``path`` is not a file
    and :class:`CheckpointError` (a ``ValueError``) when it is not a readable PyTorch checkpoint or holds no
    tensors.
    """
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint not found: {path}" + (" (a directory)" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); it is not a checkpoint")
    if isinstance(prefixes, str):
        raise InputTypeError("prefixes must be a sequence of strings, not a single string (wrap it in a tuple)")
    wanted = tuple(prefixes) if prefixes is not None else None
    target = map_location
    if wanted is not None:
        if target is not None and not isinstance(target, (str, torch.device)):
            raise InputError(f"with prefixes, map_location must be a device (str or torch.device), got {target!r}")
        map_location = "cpu"  # filter first, then move only what is kept
    is_zip = zipfile.is_zipfile(path)
    if is_zip and _is_torchscript(path):
        loaded: Any = _load_torchscript(path, map_location)
    else:
        if not is_zip:
            magic = _first_bytes(path, 4)
            if magic == b"PK\x03\x04":
                raise CheckpointError(f"{path} is a truncated or damaged zip checkpoint (no zip directory at its "
                                      "end); download or copy it again")
            if magic[:1] != b"\x80":  # PROTO opcode: every pickle of protocol >= 2 starts with it
                raise CheckpointError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")
        use_mmap = mmap and is_zip
        if mmap and not is_zip:
            _log.info("%s is a legacy (non-zip) torch file: it cannot be memory-mapped and is read into memory", path)
        loaded = _torch_load(path, map_location, use_mmap)
    tensors = _tensors_of(loaded, path)
    if wanted is None:
        return tensors
    kept = {key: value for key, value in tensors.items() if key.startswith(wanted)}
    if not kept:
        sample = ", ".join(list(tensors)[:5])
        raise CheckpointError(f"{path} has no tensor whose name starts with {' or '.join(wanted)} "
                              f"(first keys: {sample})")
    if target is not None and str(target) != "cpu":
        kept = {key: value.to(target) for key, value in kept.items()}
    return kept


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _first_bytes(path: Path, count: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(count)


def _load_torchscript(path: Path, map_location: Any) -> dict[str, Any]:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            module = torch.jit.load(str(path), map_location=map_location)
    except Exception as error:  # noqa: BLE001 (torch raises many types; report them uniformly)
        raise CheckpointError(f"{path} looks like a TorchScript archive but cannot be read: "
                              f"{_first_line(error)}") from None
    return dict(module.state_dict())


def _torch_load(path: Path, map_location: Any, use_mmap: bool) -> Any:
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=use_mmap)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 (pickle/zip/torch errors of many types)
        text = str(error)
        unsupported = _UNSUPPORTED_GLOBAL.search(text)
        if unsupported is not None:
            reason = (f"it stores Python objects other than tensors (first: {unsupported.group(1)}), which "
                      "weights_only loading refuses to run; re-save its state_dict with torch.save if you trust "
                      "its source")
        elif "weights only load failed" in text.lower():
            reason = "it stores Python objects other than tensors, which weights_only loading refuses to run"
        else:
            reason = f"{type(error).__name__}: {_first_line(error)}"
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({reason})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else "no details"
    return line[:300]


def _tensors_of(loaded: Any, path: Path) -> dict[str, "torch.Tensor"]:
    import torch

    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a state dict of tensors")
    state: Mapping[Any, Any] = loaded
    if not any(isinstance(value, torch.Tensor) for value in state.values()):
        for key in _CONTAINER_KEYS:
            inner = state.get(key)
            if isinstance(inner, Mapping):
                state = inner
                break
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    dropped = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if dropped:
        _log.debug("%s: dropped %d non-tensor entries: %s", path, len(dropped), dropped[:10])
    if not tensors:
        keys = ", ".join(map(str, list(loaded.keys())[:10]))
        raise CheckpointError(f"{path} contains no tensors (top-level keys: {keys or 'none'})")
    prefix = "module."
    if all(key.startswith(prefix) for key in tensors):
        tensors = {key[len(prefix):]: value for key, value in tensors.items()}
    return tensors
