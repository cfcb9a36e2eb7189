"""The sound-prompt benchmark: how well do sounds work as class prompts, compared with text?

Protocol (for a dataset, a sound map and an audio dataset):

1. The mapped categories are the sound map's categories present in the dataset. Each is prompted by clips of
   the sound classes mapped to it.
2. For each shot count ``K`` and seed ``s``, every category's prompt is built from ``K`` clips: the first ``K``
   of a permutation of its clips drawn with ``numpy.random.default_rng([s, crc32(category)])`` (so the
   ``K = 1`` clip is among the ``K = 2`` clips, and categories are sampled independently). The prompt is the
   mean of the clips' unit-norm audio embeddings, mapped by each bridge into the detector space.
3. The vocabulary is all mapped categories; the detector runs over the images the annotations cover; AP is
   averaged over the mapped categories only (other categories are not scored).
4. The same run with text prompts of the same categories is the upper bound. Reported: AP per category and
   overall for text and for every (bridge, K, seed), the seed mean and standard deviation, and the ratio
   audio AP / text AP (per category and overall; undefined where text AP is 0).

Every vocabulary shares each image's detector features (one ``encode`` per image, one ``classify`` per
vocabulary), so the whole grid costs little more than one run.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from audiodetic import io
from audiodetic.errors import InputError
from audiodetic.eval.datasets import EvalDataset
from audiodetic.eval.mappings import ClipIndex, SoundMapping
from audiodetic.eval.runner import Variant
from audiodetic.spaces import DETECTOR_SPACE, l2_normalize
from audiodetic.vocabulary import Vocabulary

AudioEmbedder = Callable[[Sequence[Path]], np.ndarray]
"""``embed(paths) -> (len(paths), D_audio)`` float32 audio embeddings (any norm)."""

DEFAULT_SHOTS: tuple[int, ...] = (1, 2, 4, 8)
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)


@dataclass(frozen=True)
class BenchmarkPlan:
    """What to run: shot counts, seeds, and which mapped categories (dataset names and ids) take part."""

    shots: tuple[int, ...]
    seeds: tuple[int, ...]
    categories: tuple[str, ...]
    category_ids: tuple[int, ...]
    clips: dict[str, tuple[Path, ...]]

    def __post_init__(self) -> None:
        if not self.shots or min(self.shots) < 1:
            raise InputError(f"shots must be positive integers, got {self.shots}")
        if not self.seeds:
            raise InputError("at least one seed is needed")
        if not self.categories:
            raise InputError("no mapped category is present in the dataset and has clips")


def plan_benchmark(dataset: EvalDataset, mapping: SoundMapping, clip_index: ClipIndex, *,
                   shots: Sequence[int] = DEFAULT_SHOTS, seeds: Sequence[int] = DEFAULT_SEEDS) -> BenchmarkPlan:
    """Mapped categories that exist in ``dataset`` and have at least ``max(shots)`` clips.

    Raises ``ValueError`` naming categories that are missing from the dataset (a map for another dataset) or
    that have too few clips.
    """
    names = mapping.categories
    known = set(dataset.category_names) | {s for c in dataset.data["categories"] for s in c.get("synonyms", [])}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(f"sound map {mapping.source} names categories that are not in the {dataset.kind} "
                         f"annotations: {unknown[:10]}")
    clips = {name: clip_index.for_classes(mapping.sound_classes(name)) for name in names}
    need = max(shots)
    short = {name: len(found) for name, found in clips.items() if len(found) < need}
    if short:
        raise InputError(f"categories with fewer clips than the largest shot count {need}: {short}; "
                         f"check --audio-root/--audio-meta (index {clip_index.source}) or lower --shots")
    ids = dataset.category_ids_for_names(names)
    return BenchmarkPlan(tuple(int(k) for k in shots), tuple(int(s) for s in seeds), tuple(names),
                         tuple(ids), clips)


def sample_clips(clips: Sequence[Path], k: int, seed: int, category: str) -> list[Path]:
    """``k`` clips for ``category``: the first ``k`` of a seeded permutation (nested across ``k``)."""
    if k > len(clips):
        raise InputError(f"{category!r} has {len(clips)} clips; cannot sample {k}")
    rng = np.random.default_rng([int(seed), zlib.crc32(category.encode("utf-8"))])
    order = rng.permutation(len(clips))
    return [clips[int(i)] for i in order[:k]]


def audio_embeddings(paths: Sequence[Path], embed: AudioEmbedder, *, cache: Path | None = None,
                     encoder_id: str = "", batch_size: int = 16) -> dict[Path, np.ndarray]:
    """Unit-norm embedding of every clip, computed once (and kept in ``cache``, an ``.npz`` keyed by the clip path
    and ``encoder_id``, so reruns and resumed runs skip the audio encoder)."""
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            if str(data["encoder_id"]) == encoder_id:
                known = dict(zip((str(p) for p in data["paths"]), np.array(data["embeddings"])))
    todo = sorted({str(p) for p in paths} - set(known))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        matrix = np.asarray(embed([Path(p) for p in chunk]), np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(chunk):
            raise InputError(f"audio embedder returned shape {matrix.shape} for {len(chunk)} clips")
        known.update(zip(chunk, l2_normalize(matrix)))
    if cache is not None and todo:
        keys = sorted(known)  # ranks may write at once: each publishes a whole file
        io.save_npz(cache, {"paths": np.array(keys), "embeddings": np.stack([known[k] for k in keys]),
                            "encoder_id": np.array(encoder_id)}, make_parents=True)
    return {Path(p): known[str(p)] for p in paths}


def audio_prompt(clip_embeddings: np.ndarray, bridge: Any) -> np.ndarray:
    """One prompt vector: mean of ``(K, D_audio)`` unit-norm clip embeddings -> ``bridge.apply`` -> unit ``(D,)``."""
    mean = l2_normalize(np.asarray(clip_embeddings, np.float32).mean(axis=0, keepdims=True))
    return l2_normalize(np.asarray(bridge.apply(mean), np.float32).reshape(1, -1))[0]


def variant_name(bridge: str, shots: int, seed: int) -> str:
    """Output folder name of one audio run, e.g. ``audio-linear-k4-s1``."""
    return f"audio-{bridge}-k{shots}-s{seed}"


def benchmark_variants(plan: BenchmarkPlan, text: Vocabulary, bridges: Mapping[str, Any], embed: AudioEmbedder,
                       *, cache: Path | None = None, encoder_id: str = "") -> tuple[dict[str, Variant],
                                                                                    dict[str, Any]]:
    """The text variant and one audio variant per (bridge, K, seed), plus the sampled clips (for the record).

    ``text`` must hold the mapped categories in ``plan.categories`` order; names of every variant are the
    dataset's category names.
    """
    if tuple(text.names) != plan.categories:
        raise InputError(f"text vocabulary names {text.names[:5]}... must be the mapped categories in order")
    for name in bridges:
        if not name or "/" in name:
            raise InputError(f"bridge names become folder names; got {name!r}")
    samples = {(k, s, c): sample_clips(plan.clips[c], k, s, c)
               for k in plan.shots for s in plan.seeds for c in plan.categories}
    embedded = audio_embeddings(sorted({p for paths in samples.values() for p in paths}), embed, cache=cache,
                                encoder_id=encoder_id)
    variants = {"text": Variant(text, plan.category_ids)}
    for bridge_name, bridge in bridges.items():
        for k in plan.shots:
            for s in plan.seeds:
                rows = [audio_prompt(np.stack([embedded[p] for p in samples[k, s, c]]), bridge)
                        for c in plan.categories]
                vocabulary = Vocabulary(plan.categories, np.stack(rows), space=DETECTOR_SPACE)
                vocabulary.check_compatible(dim=text.dim)
                variants[variant_name(bridge_name, k, s)] = Variant(vocabulary, plan.category_ids)
    record = {f"k{k}-s{s}": {c: [p.name for p in samples[k, s, c]] for c in plan.categories}
              for k in plan.shots for s in plan.seeds}
    return variants, record


def write_clip_record(path: Path, record: Mapping[str, Any]) -> None:
    """The clips each prompt was built from (``{"k4-s1": {category: [file names]}}``)."""
    io.write_text(path, json.dumps(record, indent=1, sort_keys=True))
