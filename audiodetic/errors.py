"""Exceptions raised by audiodetic.

Every error a user can cause derives from :class:`AudiodeticError` and also from the built-in exception a caller
would expect (``ValueError`` for bad values, ``TypeError`` for values of the wrong kind, ``FileNotFoundError`` for
missing files, ``FileExistsError`` for outputs that would replace something), so both styles of ``except`` work.
Messages name the argument, file or row at fault and say what is allowed.
"""

from __future__ import annotations


class AudiodeticError(Exception):
    """Base class of audiodetic's own errors."""


class InputError(AudiodeticError, ValueError):
    """A value the caller gave is not allowed (out of range, malformed, inconsistent with another one)."""


class InputTypeError(AudiodeticError, TypeError):
    """A value the caller gave is of a kind the function does not take."""


class MissingFileError(AudiodeticError, FileNotFoundError):
    """A file or folder the caller named does not exist."""


class OutputExistsError(AudiodeticError, FileExistsError):
    """Writing an output would replace one of the run's inputs, or a file audiodetic did not write."""


class CheckpointError(AudiodeticError, ValueError):
    """A checkpoint file is unreadable or does not match the expected tensor layout."""


class WeightsNotFoundError(MissingFileError):
    """A model file is neither cached nor downloadable (e.g. offline mode) nor a local path."""


class DownloadError(AudiodeticError, OSError):
    """A download failed (HTTP error, truncated body, checksum mismatch)."""


class AudioDecodeError(InputError):
    """An audio source cannot be decoded or is unusable (empty, too short, non-finite, absurd rate)."""


class VocabularyError(InputError):
    """A vocabulary is malformed or does not match the space/dimension it is used with."""


class VideoDecodeError(InputError):
    """A video source cannot be opened or decoded, lacks a needed stream, or is damaged part-way
    (``time_s``: seconds decoded correctly before the damage, when known)."""

    def __init__(self, message: str, *, time_s: float | None = None) -> None:
        super().__init__(message)
        self.time_s = time_s
