"""Exceptions raised by audiodetic.

Every error a user can cause derives from :class:`AudiodeticError` and also from the built-in exception a caller
would expect (``ValueError`` for bad values, ``FileNotFoundError`` for missing files), so both styles of
``except`` work.
"""

from __future__ import annotations


class AudiodeticError(Exception):
    """Base class of audiodetic's own errors."""


class CheckpointError(AudiodeticError, ValueError):
    """A checkpoint file is unreadable or does not match the expected tensor layout."""


class WeightsNotFoundError(AudiodeticError, FileNotFoundError):
    """A model file is neither cached nor downloadable (e.g. offline mode) nor a local path."""


class DownloadError(AudiodeticError, OSError):
    """A download failed (HTTP error, truncated body, checksum mismatch)."""


class AudioDecodeError(AudiodeticError, ValueError):
    """An audio source cannot be decoded or is unusable (empty, too short, non-finite, absurd rate)."""


class VocabularyError(AudiodeticError, ValueError):
    """A vocabulary is malformed or does not match the space/dimension it is used with."""
