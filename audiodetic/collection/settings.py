"""What a collection run computes: the model, the prompts and the detection options, checked once.

:class:`DetectionSettings` travels to every worker (threads, ``torchrun`` ranks, Ray actors) and decides whether
an existing results file may be resumed: :meth:`DetectionSettings.identity` is what must not change between two
runs writing one file. It records file paths as absolute paths and the SHA-256 of every prompt file (sounds, a
vocabulary, a saved bridge), and the absolute path and size of local weights files; known model names stand as
they are. How the run is spread (engine, workers, batch size, device) is not part of it: every engine gives the
same detections.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from audiodetic.api import DEFAULT_AUDIO_WEIGHTS, DEFAULT_BRIDGE, DEFAULT_DETECTOR, DEFAULT_TEXT_WEIGHTS
from audiodetic.bridge.files import check_bridge_to_use
from audiodetic.errors import InputError, MissingFileError
from audiodetic.inputs import check_input_size, check_positive_int, check_threshold


def _absolute_if_file(value: str | None) -> str | None:
    """A path that exists becomes absolute (workers may run elsewhere); a model name stays as it is."""
    if value is None:
        return None
    return os.path.abspath(value) if os.path.exists(value) else value


def _known_model(name: str) -> bool:
    from audiodetic.weights.table import find_model

    return find_model(name) is not None


@dataclass(frozen=True)
class DetectionSettings:
    """The model, prompts and options of a collection run.

    Attributes:
        detector: a known detector name or a checkpoint path.
        audio: ``((name, (sound file, ...)), ...)``: sound prompts, several files of one name are averaged.
        text: ``((name, phrase), ...)``: text prompts.
        vocabulary: a ``(C, 512)`` ``.npy`` or an audiodetic ``.npz`` vocabulary file; ``names`` its row names.
        bridge, audio_weights, text_weights: the prompt encoders (names or files), as ``audiodetic.load`` takes.
        score_threshold: keep scores strictly above this, in ``[0, 1]``.
        input_size: ``(min_size, max_size)`` of the shortest-edge resize, or ``None`` for the detector's.
        with_masks, all_classes, max_detections: as ``Predictor.predict``.
        half: float16 inference (CUDA only).

    Entries of the vocabulary are ordered sounds, texts, then the vocabulary file, as ``model.vocabulary`` does.
    """

    detector: str = DEFAULT_DETECTOR
    audio: tuple[tuple[str, tuple[str, ...]], ...] = ()
    text: tuple[tuple[str, str], ...] = ()
    vocabulary: str | None = None
    names: tuple[str, ...] | None = None
    bridge: str = DEFAULT_BRIDGE
    audio_weights: str = DEFAULT_AUDIO_WEIGHTS
    text_weights: str = DEFAULT_TEXT_WEIGHTS
    score_threshold: float = 0.5
    input_size: tuple[int, int] | None = None
    with_masks: bool = True
    all_classes: bool = False
    max_detections: int = 300
    half: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "score_threshold", check_threshold(self.score_threshold, argument="score threshold"))
        check_positive_int(self.max_detections, argument="max detections")
        if self.input_size is not None:
            object.__setattr__(self, "input_size", check_input_size(self.input_size, argument="input size"))
        if not (self.audio or self.text or self.vocabulary):
            raise InputError("no prompts: give sound prompts (--audio NAME=FILE), text prompts (--text NAME) "
                             "and/or a vocabulary file (--vocabulary FILE)")
        if self.names is not None and self.vocabulary is None:
            raise InputError("names name the rows of a vocabulary file; give the vocabulary file too")
        audio = tuple((str(name), tuple(_absolute_if_file(f) or f for f in files)) for name, files in self.audio)
        for name, files in audio:
            for file in files:
                if not Path(file).is_file():
                    raise MissingFileError(f"sound prompt {name!r}: file not found: {file}")
        object.__setattr__(self, "audio", audio)
        object.__setattr__(self, "text", tuple((str(n), str(p)) for n, p in self.text))
        if self.vocabulary is not None and not Path(self.vocabulary).is_file():
            raise MissingFileError(f"vocabulary file not found: {self.vocabulary}")
        check_bridge_to_use(self.bridge, argument="--bridge")
        for option, value, used in (("--detector", self.detector, True),
                                    ("--audio-weights", self.audio_weights, bool(audio)),
                                    ("--text-weights", self.text_weights, bool(self.text))):
            if used and not os.path.exists(value) and not _known_model(value):
                raise MissingFileError(f"{option} {value}: neither a known model name (see `audiodetic models`) "
                                       "nor an existing file")
        for key in ("detector", "vocabulary", "bridge", "audio_weights", "text_weights"):
            object.__setattr__(self, key, _absolute_if_file(getattr(self, key)))
        if self.names is not None:
            object.__setattr__(self, "names", tuple(str(n) for n in self.names))

    @property
    def prompt_files(self) -> list[str]:
        """Every file the prompts read (the outputs must be none of them)."""
        files = [f for _, group in self.audio for f in group]
        return files + [f for f in (self.vocabulary, self.bridge) if f is not None and os.path.isfile(f)]

    @staticmethod
    def _digest(path: str) -> str:
        """The file's SHA-256 now (not cached: a prompt file edited between two runs must change the identity)."""
        from audiodetic.weights.cache import sha256_file

        return sha256_file(Path(path))

    def _weights(self, value: str) -> Any:
        return {"path": value, "bytes": os.path.getsize(value)} if os.path.isfile(value) else value

    def identity(self) -> dict[str, Any]:
        """A JSON-ready description of everything that changes the detections (see the module docstring)."""
        uses_audio = bool(self.audio)
        return {
            "detector": self._weights(self.detector),
            "audio": [[name, [[f, self._digest(f)] for f in files]] for name, files in self.audio],
            "text": [list(item) for item in self.text],
            "vocabulary": None if self.vocabulary is None else [self.vocabulary, self._digest(self.vocabulary)],
            "names": None if self.names is None else list(self.names),
            "bridge": (self.bridge if not os.path.isfile(self.bridge) else [self.bridge, self._digest(self.bridge)])
            if uses_audio else None,
            "audio_weights": self._weights(self.audio_weights) if uses_audio else None,
            "text_weights": self._weights(self.text_weights) if self.text else None,
            "score_threshold": float(self.score_threshold),
            "input_size": None if self.input_size is None else list(self.input_size),
            "with_masks": bool(self.with_masks),
            "all_classes": bool(self.all_classes),
            "max_detections": int(self.max_detections),
            "half": bool(self.half),
        }


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``["score_threshold: 0.5 -> 0.3", ...]``: the entries of two identities that differ."""
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            changes.append(f"{key}: {_short(old.get(key))} -> {_short(new.get(key))}")
    return changes


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
