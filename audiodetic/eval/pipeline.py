"""One evaluation end to end: run (resumable, sharded), merge, score, report. The CLI is a thin layer on this."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from audiodetic import io
from audiodetic.errors import InputError
from audiodetic.eval.datasets import EvalDataset
from audiodetic.eval.reports import write_report
from audiodetic.eval.runner import (
    ImageHook,
    Variant,
    merge_predictions,
    prepare_output,
    refuse_other_run,
    run_predictions,
    wait_for_shards,
)
from audiodetic.eval.scoring import IouTypeScores, score_results
from audiodetic.inputs import check_input_size, check_positive_int, check_threshold
from audiodetic.sharding import DistributedEnv, Shard, effective_shard


@dataclass(frozen=True)
class RunSettings:
    """How the detector is run. Defaults follow Detic's evaluation configs: score > 0.02, every class above
    threshold per proposal (no one-class-per-proposal), at most 300 detections per image."""

    score_threshold: float = 0.02
    max_detections: int = 300
    all_classes: bool = True
    max_images: int | None = None
    input_size: tuple[int, int] | None = None
    """``(shortest edge, longest-edge cap)`` of the resize; ``None`` = the detector's (800, 1333 as Detic)."""
    with_masks: bool = True
    """``False`` skips the mask head (box AP only, like Detic's ``MODEL.MASK_ON False``)."""

    def __post_init__(self) -> None:
        if self.input_size is not None:
            object.__setattr__(self, "input_size", check_input_size(self.input_size, argument="input size"))
        object.__setattr__(self, "score_threshold", check_threshold(self.score_threshold, argument="score threshold"))
        check_positive_int(self.max_detections, argument="max detections")
        if self.max_images is not None:
            check_positive_int(self.max_images, argument="max images")


def select_image_ids(dataset: EvalDataset, max_images: int | None) -> list[int]:
    """The run's images: all ids ascending, or the first ``max_images`` of them."""
    ids = list(dataset.image_ids)
    return ids if max_images is None else ids[:max_images]


def run_info(dataset: EvalDataset, variants: Mapping[str, Variant], settings: RunSettings,
             **described: Any) -> dict[str, Any]:
    """The ``run.json`` payload: dataset, settings, each variant's vocabulary fingerprint, plus ``described``."""
    return {"kind": dataset.kind,
            "annotations": str(Path(dataset.annotation_path).resolve()) if dataset.annotation_path else None,
            "settings": asdict(settings),
            "variants": {name: variant.fingerprint() for name, variant in variants.items()},
            **described}


def check_resume(output_dir: Path, dataset: EvalDataset, settings: RunSettings, *, overwrite: bool,
                 **described: Any) -> None:
    """Refuse, before any model loads, to resume into ``output_dir`` when its ``run.json`` differs in what is known
    already (dataset, settings, ``described``). Vocabulary fingerprints are compared later, once encoded."""
    path = output_dir / "run.json"
    if overwrite or not path.is_file():
        return
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path} is unreadable ({error}); use a new --output or --overwrite") from None
    known = json.loads(json.dumps(run_info(dataset, {}, settings, **described)))
    known.pop("variants")
    refuse_other_run(output_dir, existing, known, keys=known)


def score_and_report(dataset: EvalDataset, results: list[dict[str, Any]], folder: Path, *, title: str,
                     image_ids: Sequence[int] | None = None, category_ids: Sequence[int] | None = None,
                     plots: bool = True, extra: Mapping[str, Any] | None = None) -> dict[str, IouTypeScores]:
    """Score ``results`` and write the report files into ``folder``."""
    scores = score_results(dataset, results, image_ids=image_ids, category_ids=category_ids)
    info = {"dataset": dataset.kind, "images": len(image_ids) if image_ids is not None else len(dataset.image_ids),
            "detections": len(results), **(extra or {})}
    write_report(folder, scores, title=title, extra=info, plots=plots)
    return scores


def merge_and_score(output_dirs: Sequence[Path], dataset: EvalDataset, info: Mapping[str, Any], *,
                    destination: Path, plots: bool = True) -> dict[str, dict[str, IouTypeScores]]:
    """Merge every variant's finished shards (from ``output_dirs``), write ``<variant>/results.json`` and its report
    under ``destination``; ``info`` is the run's ``run.json``."""
    image_ids = select_image_ids(dataset, info["settings"].get("max_images"))
    all_scores = {}
    for name, variant in info["variants"].items():
        results = merge_predictions(output_dirs, name, image_ids)
        folder = destination / name
        folder.mkdir(parents=True, exist_ok=True)
        io.write_text(folder / "results.json", json.dumps(results))
        all_scores[name] = score_and_report(
            dataset, results, folder, title=f"{dataset.kind.upper()} {name}", image_ids=image_ids,
            category_ids=sorted(set(variant["category_ids"])), plots=plots)
    return all_scores


def evaluate(detector: Any, dataset: EvalDataset, variants: Mapping[str, Variant], output_dir: Path, *,
             settings: RunSettings = RunSettings(), shard: Shard | None = None, env: DistributedEnv | None = None,
             described: Mapping[str, Any] | None = None, overwrite: bool = False, progress: bool = True,
             plots: bool = True, merge_timeout_s: float = 86400.0,
             on_image_done: ImageHook | None = None) -> dict[str, dict[str, IouTypeScores]] | None:
    """Run ``detector`` for every variant over this process's shard, then merge and score when this process is
    the one to do it: a plain run (no ``shard``, no ``torchrun``), or rank 0 of a ``torchrun`` without ``shard``
    (after waiting for the other ranks' ``.done`` markers). Otherwise returns ``None``; run
    ``audiodetic eval merge`` once all shards have finished."""
    info = run_info(dataset, variants, settings, **dict(described or {}))
    mine = effective_shard(shard, env)
    prepare_output(output_dir, info, overwrite=overwrite, shard=mine)
    image_ids = select_image_ids(dataset, settings.max_images)
    counts = run_predictions(detector, dataset, variants, output_dir, image_ids=image_ids, shard=mine,
                             score_threshold=settings.score_threshold, max_detections=settings.max_detections,
                             all_classes=settings.all_classes, input_size=settings.input_size,
                             with_masks=settings.with_masks, progress=progress,
                             on_image_done=on_image_done)
    print(f"{mine.name}: {counts['processed']} images run, {counts['skipped']} already done", file=sys.stderr)
    if shard is not None or (env is not None and not env.is_main):
        return None
    if env is not None:
        wait_for_shards(output_dir, list(variants), mine.count, timeout_s=merge_timeout_s)
    info = json.loads((output_dir / "run.json").read_text(encoding="utf-8"))
    return merge_and_score([output_dir], dataset, info, destination=output_dir, plots=plots)


def report_benchmark(output_dir: Path, all_scores: Mapping[str, Mapping[str, IouTypeScores]],
                     info: Mapping[str, Any], *, plots: bool = True) -> dict[str, Any]:
    """Write the sound benchmark's tables (``benchmark.*``) from merged scores and ``run.json``'s ``benchmark``."""
    from audiodetic.eval.benchmark_report import write_benchmark_report

    spec = info["benchmark"]
    return write_benchmark_report(output_dir, all_scores, bridges=spec["bridges"], shots=spec["shots"],
                                  seeds=spec["seeds"], plots=plots,
                                  title=f"Sound prompts vs. text on {str(info['kind']).upper()} ({spec['map']})",
                                  extra={"map": spec["map"], "categories": spec["categories"]})


def run_sound_benchmark(detector: Any, dataset: EvalDataset, plan: Any, text: Any, bridges: Mapping[str, Any],
                        embed: Any, output_dir: Path, *, map_name: str, encoder_id: str = "",
                        settings: RunSettings = RunSettings(), shard: Shard | None = None,
                        env: DistributedEnv | None = None, described: Mapping[str, Any] | None = None,
                        overwrite: bool = False, progress: bool = True, plots: bool = True,
                        merge_timeout_s: float = 86400.0,
                        on_image_done: ImageHook | None = None) -> dict[str, Any] | None:
    """The sound-prompt protocol (see :mod:`audiodetic.eval.sound_benchmark`) as one resumable, shardable run.

    Args:
        plan: from ``plan_benchmark`` (categories, clips, shots, seeds).
        text: text :class:`~audiodetic.vocabulary.Vocabulary` of ``plan.categories`` (the upper bound).
        bridges: ``{name: bridge}``; each has ``apply((B, D_audio)) -> (B, D)``.
        embed: ``embed(paths) -> (n, D_audio)`` audio embeddings; results are cached in
            ``output_dir/audio_embeddings.npz`` under ``encoder_id``.

    Returns the benchmark summaries by IoU type, or ``None`` when another process or ``eval merge`` finishes.
    """
    from audiodetic.eval.sound_benchmark import benchmark_variants, write_clip_record

    output_dir.mkdir(parents=True, exist_ok=True)
    variants, record = benchmark_variants(plan, text, bridges, embed, cache=output_dir / "audio_embeddings.npz",
                                          encoder_id=encoder_id)
    write_clip_record(output_dir / "clips.json", record)
    spec = {"map": map_name, "bridges": list(bridges), "shots": list(plan.shots), "seeds": list(plan.seeds),
            "categories": list(plan.categories), "audio_encoder": encoder_id}
    all_scores = evaluate(detector, dataset, variants, output_dir, settings=settings, shard=shard, env=env,
                          described={"benchmark": spec, **dict(described or {})}, overwrite=overwrite,
                          progress=progress, plots=False, merge_timeout_s=merge_timeout_s,
                          on_image_done=on_image_done)
    if all_scores is None:
        return None
    info = json.loads((output_dir / "run.json").read_text(encoding="utf-8"))
    return report_benchmark(output_dir, all_scores, info, plots=plots)
