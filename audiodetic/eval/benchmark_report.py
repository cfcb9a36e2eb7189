"""Tables and a plot for the sound-prompt benchmark: audio AP vs. text AP per category and overall."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from audiodetic import io
from audiodetic.eval.reports import _clean, markdown_table, write_csv
from audiodetic.eval.scoring import IouTypeScores
from audiodetic.eval.sound_benchmark import variant_name

Scores = Mapping[str, Mapping[str, IouTypeScores]]  # {variant: {iou_type: scores}}


def _ratio(audio: float, text: float) -> float:
    return audio / text if text > 0 and math.isfinite(audio) else math.nan


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return float(np.mean(finite)), float(np.std(finite))


def _per_category_ap(scores: IouTypeScores) -> dict[str, float]:
    return {row["name"]: float(row["AP"]) for row in scores.per_category}


def summarize(scores: Scores, *, bridges: Sequence[str], shots: Sequence[int], seeds: Sequence[int],
              iou_type: str = "bbox") -> dict[str, Any]:
    """``{"overall": [rows], "per_category": [rows]}`` for one IoU type.

    Overall rows: ``bridge, shots, AP_mean, AP_std`` (over seeds), ``text_AP``, ``ratio`` (mean audio AP / text
    AP), ``AP_per_seed``. Per-category rows: ``category, num_gt, text_AP``, then per bridge and K
    ``<bridge>_k<K>_AP`` (seed mean) and ``<bridge>_k<K>_ratio``. APs are fractions; the overall AP of a run is
    its summary AP over the mapped categories (the mean of the defined per-category APs).
    """
    text = scores["text"][iou_type]
    text_overall = float(text.summary["AP"])
    text_per_category = _per_category_ap(text)
    overall, per_category = [], []
    columns: dict[str, dict[str, float]] = {}
    for bridge in bridges:
        for k in shots:
            runs = [scores[variant_name(bridge, k, s)][iou_type] for s in seeds]
            per_seed = [float(run.summary["AP"]) for run in runs]
            mean, std = _mean_std(per_seed)
            overall.append({"bridge": bridge, "shots": k, "AP_mean": mean, "AP_std": std, "text_AP": text_overall,
                            "ratio": _ratio(mean, text_overall), "AP_per_seed": per_seed})
            category_means = {}
            for name in text_per_category:
                category_means[name] = _mean_std([_per_category_ap(run)[name] for run in runs])[0]
            columns[f"{bridge}_k{k}"] = category_means
    for row in text.per_category:
        name = row["name"]
        item: dict[str, Any] = {"category": name, "num_gt": row["num_gt"], "text_AP": text_per_category[name]}
        for key, means in columns.items():
            item[f"{key}_AP"] = means[name]
            item[f"{key}_ratio"] = _ratio(means[name], text_per_category[name])
        per_category.append(item)
    return {"iou_type": iou_type, "text_AP": text_overall, "overall": overall, "per_category": per_category}


def plot_ap_vs_shots(summary: Mapping[str, Any], path: Path, *, title: str) -> Path:
    """Audio AP (seed mean, std as error bars) against K for each bridge, with the text AP as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    bridges = list(dict.fromkeys(row["bridge"] for row in summary["overall"]))
    for bridge in bridges:
        rows = [row for row in summary["overall"] if row["bridge"] == bridge]
        axes.errorbar([row["shots"] for row in rows], [100 * row["AP_mean"] for row in rows],
                      yerr=[100 * (row["AP_std"] if math.isfinite(row["AP_std"]) else 0) for row in rows],
                      marker="o", capsize=3, label=f"audio, {bridge} bridge")
    axes.axhline(100 * summary["text_AP"], color="black", linestyle="--", label="text prompts (upper bound)")
    axes.set_xscale("log", base=2)
    shots = sorted({row["shots"] for row in summary["overall"]})
    axes.set_xticks(shots, [str(k) for k in shots])
    axes.set_xlabel("clips per prompt (K)")
    axes.set_ylabel(f"{summary['iou_type']} AP over mapped categories (%)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    io.save_figure(path, figure, make_parents=True)
    plt.close(figure)
    return path


def write_benchmark_report(folder: Path, scores: Scores, *, bridges: Sequence[str], shots: Sequence[int],
                           seeds: Sequence[int], title: str, extra: Mapping[str, Any] | None = None,
                           plots: bool = True) -> dict[str, Any]:
    """Write ``benchmark.json``, ``benchmark_<iou>_overall.csv``, ``benchmark_<iou>_per_category.csv``,
    ``benchmark.md`` and ``benchmark_<iou>_ap_vs_shots.png``; returns the summaries by IoU type."""
    iou_types = [t for t in ("bbox", "segm") if all(t in s for s in scores.values())]
    summaries = {t: summarize(scores, bridges=bridges, shots=shots, seeds=seeds, iou_type=t) for t in iou_types}
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"title": title, "bridges": list(bridges), "shots": list(shots), "seeds": list(seeds),
               **dict(extra or {}), "results": summaries}
    io.write_json(folder / "benchmark.json", _clean(payload), indent=1)
    lines = [f"# {title}\n", "AP in %, averaged over the mapped categories; audio AP is the mean (± std) over "
             f"seeds {list(seeds)}; ratio = audio AP / text AP.\n"]
    for iou_type, summary in summaries.items():
        overall = [{k: v for k, v in row.items() if k != "AP_per_seed"} for row in summary["overall"]]
        write_csv(folder / f"benchmark_{iou_type}_overall.csv", overall)
        write_csv(folder / f"benchmark_{iou_type}_per_category.csv", summary["per_category"])
        shown = [{"bridge": r["bridge"], "K": r["shots"],
                  "audio AP": f"{100 * r['AP_mean']:.1f} ± {100 * r['AP_std']:.1f}" if math.isfinite(r["AP_mean"])
                  else "–", "text AP": r["text_AP"], "ratio": r["ratio"]} for r in overall]
        lines += [f"\n## {iou_type}: overall\n", markdown_table(shown, percent_columns=["text AP"])]
        per_category = summary["per_category"]
        percent = [c for c in (per_category[0] if per_category else {}) if c.endswith("_AP")]
        lines += [f"\n## {iou_type}: per category (ratio as a fraction)\n",
                  markdown_table(per_category, percent_columns=percent)]
        if plots:
            plot_ap_vs_shots(summary, folder / f"benchmark_{iou_type}_ap_vs_shots.png", title=f"{title} ({iou_type})")
    io.write_text(folder / "benchmark.md", "\n".join(lines))
    return summaries
