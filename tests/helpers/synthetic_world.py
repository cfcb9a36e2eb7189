"""A synthetic world with a known answer, for testing bridges (importable by any test; not a test module).

Latent *concepts* ``z_k`` (``latent_dim``) are seen by two text towers as two different noisy maps:

* ImageBind-like text: ``t_k = unit(m_ib + z_k A_ib + e_k)`` (``imagebind_dim``),
* CLIP-like text: ``c_k = unit(m_clip + z_k A_clip + f_k)`` (``clip_dim``), the detector's space,

with ``m_*`` a common direction (embeddings of one modality share a cone), ``A_*`` random maps and ``e_k``, ``f_k``
fixed per-concept noise of size ``text_noise``. A clip of concept ``k`` is encoded by the ImageBind-like audio
tower as ``unit(t_k + g + clip_noise * n)`` with ``g`` one constant *gap* vector of norm ``gap`` (the modality gap:
ImageBind's audio does not sit where its text sits) and ``n`` per-clip noise. The label bank is all
``num_concepts`` names; the labelled dataset uses the first ``num_classes`` concepts, ``clips_per_class`` clips
each, in ``num_folds`` folds. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiodetic.bridge.evaluate import EmbeddedClips, LabelBank


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and noise levels of a :class:`SyntheticWorld`."""

    latent_dim: int = 16
    imagebind_dim: int = 64
    clip_dim: int = 48
    num_concepts: int = 400
    num_classes: int = 40
    clips_per_class: int = 30
    num_folds: int = 5
    cone: float = 1.5
    text_noise: float = 0.35
    clip_noise: float = 0.4
    gap: float = 2.0
    seed: int = 0


class SyntheticWorld:
    """Draws the concepts, the three towers' outputs and the dataset of a :class:`WorldConfig`."""

    def __init__(self, config: WorldConfig = WorldConfig()) -> None:
        self.config = c = config
        rng = np.random.default_rng(c.seed)
        z = rng.standard_normal((c.num_concepts, c.latent_dim))
        a_ib = rng.standard_normal((c.latent_dim, c.imagebind_dim)) / np.sqrt(c.latent_dim)
        a_clip = rng.standard_normal((c.latent_dim, c.clip_dim)) / np.sqrt(c.latent_dim)
        m_ib = c.cone * _unit(rng.standard_normal(c.imagebind_dim))
        m_clip = c.cone * _unit(rng.standard_normal(c.clip_dim))
        e = c.text_noise * rng.standard_normal((c.num_concepts, c.imagebind_dim)) / np.sqrt(c.imagebind_dim / 16)
        f = c.text_noise * rng.standard_normal((c.num_concepts, c.clip_dim)) / np.sqrt(c.clip_dim / 16)
        self.names = tuple(f"concept {k:03d}" for k in range(c.num_concepts))
        self.imagebind_text = _unit(m_ib + z @ a_ib + e)
        self.clip_text = _unit(m_clip + z @ a_clip + f)
        self.gap_vector = c.gap * _unit(rng.standard_normal(c.imagebind_dim))
        n = c.num_classes * c.clips_per_class
        self.labels = np.repeat(np.arange(c.num_classes), c.clips_per_class)
        self.folds = np.tile(np.arange(c.clips_per_class) % c.num_folds + 1, c.num_classes)
        noise = c.clip_noise * rng.standard_normal((n, c.imagebind_dim)) / np.sqrt(c.imagebind_dim / 16)
        self.audio = _unit(self.imagebind_text[self.labels] + self.gap_vector + noise)

    def bank(self) -> LabelBank:
        """Every concept name with both text towers' embeddings."""
        return LabelBank(self.names, self.imagebind_text, self.clip_text)

    def dataset(self) -> EmbeddedClips:
        """The labelled clips as :class:`EmbeddedClips` (class names = the first ``num_classes`` concepts)."""
        classes = slice(0, self.config.num_classes)
        return EmbeddedClips("synthetic", self.audio, self.labels, self.folds, self.names[classes],
                             self.imagebind_text[classes], self.clip_text[classes])
