"""What the rest of audiodetic needs from an encoder: the protocols sound, text and image encoders satisfy.

Every encoder names the embedding space it writes into (``space``, one of :mod:`audiodetic.spaces`), its output
width (``embed_dim``) and a content ``fingerprint`` of its weights (keys of the embedding cache), and returns *raw*
outputs - unnormalised ``(N, embed_dim)`` float32 (numpy array or CPU tensor) - which the prompt builders
normalise and, where :func:`audiodetic.spaces.needs_bridge` says so, bridge into the detector space.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable


@runtime_checkable
class AudioEncoder(Protocol):
    """Sounds -> raw embeddings. ``encode_sources`` takes paths (``str``), bytes or ``(waveform, rate)`` pairs."""

    space: str

    @property
    def embed_dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode_sources(self, sources: Sequence[Any]) -> Any: ...


@runtime_checkable
class TextEncoder(Protocol):
    """Phrases -> raw embeddings (a template such as Detic's ``"a {}"`` is the encoder's business)."""

    space: str

    @property
    def embed_dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> Any: ...


@runtime_checkable
class ImageEncoder(Protocol):
    """Pictures (paths, ``PIL.Image`` or ``(H, W, 3)`` uint8 RGB arrays) -> raw embeddings."""

    space: str

    @property
    def embed_dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(self, images: Sequence[Any]) -> Any: ...
