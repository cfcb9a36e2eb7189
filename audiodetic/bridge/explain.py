"""What each sound prompt was heard as: the labels a retrieval bridge mixed, with their weights.

This is the backend of ``audiodetic detect --explain`` and of the demo's "heard as" line. A sound prompt is built
exactly as :func:`audiodetic.prompts.build_vocabulary` builds it (clips through the audio tower, each L2-normalised,
averaged in the audio space), then :meth:`RetrievalBridge.explain` gives the labels and softmax weights the prompt's
detector embedding was made of. Clip embeddings go through the same per-process cache, so explaining prompts that
were just used costs no encoding.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from audiodetic.errors import InputTypeError
from audiodetic.spaces import l2_normalize


def explain_sounds(audio_prompts: Mapping[str, Sequence[Any]], *, audio_encoder: Any, bridge: Any, top: int = 3,
                   cache: Any = None) -> dict[str, list[tuple[str, float]]]:
    """``{prompt name: [(label, weight), ...]}``: the ``top`` heaviest labels of each sound prompt, heaviest first.

    Args:
        audio_prompts: ``{name: [source, ...]}`` (paths, bytes or ``(waveform, rate)`` pairs; several clips of one
            prompt are averaged as the vocabulary does). audio_encoder: the model's audio tower. bridge: a bridge
            with ``explain`` (:class:`~audiodetic.bridge.RetrievalBridge`). cache: an
            :class:`~audiodetic.encoders.cache.EmbeddingCache` (default: the process-wide one).
    Weights are the retrieval softmax weights (over its ``top_k`` labels; the ``top`` shown sum to at most 1).

    Raises:
        InputTypeError: the bridge cannot explain itself (a linear or paired map mixes no labels).
    """
    if not hasattr(bridge, "explain"):
        raise InputTypeError(f"--explain shows the labels a retrieval bridge mixed; this {type(bridge).__name__} "
                             f"is a map that mixes no labels (use the retrieval bridge to see what a sound is "
                             f"heard as)")
    from audiodetic.encoders.cache import encode_sounds

    out: dict[str, list[tuple[str, float]]] = {}
    for name, sources in audio_prompts.items():
        raw = encode_sounds(list(sources), audio_encoder, cache=cache)
        prototype = l2_normalize(l2_normalize(raw.astype("float64")).mean(axis=0), what=f"sound prompt {name!r}")
        out[name] = bridge.explain(prototype[None, :])[0][: int(top)]
    return out


def format_explanation(explained: Mapping[str, Sequence[tuple[str, float]]]) -> list[str]:
    """One line per prompt: ``"dog: heard as dog 0.61, puppy 0.22, cat 0.05"``."""
    return [f"{name}: heard as " + ", ".join(f"{label} {weight:.2f}" for label, weight in labels)
            for name, labels in explained.items()]
