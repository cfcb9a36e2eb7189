"""Evaluation reports: all metrics as JSON, a per-category AP table (CSV, Markdown), plots as PNG.

AP values are written as fractions in ``[0, 1]`` in JSON/CSV and as percentages in Markdown tables (the way
papers print them). Plots use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import csv
import math
from io import StringIO
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from audiodetic import io
from audiodetic.eval.scoring import IouTypeScores

MAX_BARS = 60


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> None, numpy scalars -> Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metrics_dict(scores: Mapping[str, IouTypeScores], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything as plain JSON data: ``{"<iou_type>": {"summary", "per_category"}, ...extra}``."""
    payload: dict[str, Any] = dict(extra or {})
    for iou_type, result in scores.items():
        payload[iou_type] = {"summary": result.summary, "per_category": result.per_category}
    return _clean(payload)


def per_category_rows(scores: Mapping[str, IouTypeScores]) -> list[dict[str, Any]]:
    """One row per category: id, name, (LVIS frequency), num_gt, then ``<iou_type>_AP``/``_AP50``/``_AP75``."""
    rows: dict[int, dict[str, Any]] = {}
    for iou_type, result in scores.items():
        for item in result.per_category:
            row = rows.setdefault(item["category_id"], {
                key: item[key] for key in ("category_id", "name", "frequency", "num_gt") if key in item})
            for key in ("AP", "AP50", "AP75"):
                row[f"{iou_type}_{key}"] = item[key]
    return [rows[k] for k in sorted(rows)]


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rows as CSV (NaN written as an empty cell)."""
    columns = list(rows[0]) if rows else []
    text = StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return io.write_text(path, text.getvalue(), make_parents=True)


def _cell(value: Any, percent: bool) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{100 * value:.1f}" if percent else f"{value:.3f}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]], *, percent_columns: Sequence[str] = ()) -> str:
    """A GitHub Markdown table; ``percent_columns`` are printed as percentages with one decimal."""
    if not rows:
        return "(no rows)\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, ""), c in percent_columns) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _summary_markdown(scores: Mapping[str, IouTypeScores]) -> str:
    rows: list[dict[str, Any]] = []
    for iou_type, result in scores.items():
        # -1 = undefined (no ground truth in that group): shown as a dash
        summary = {k: (float("nan") if v < 0 else v) for k, v in result.summary.items()}
        rows.append({"iou": iou_type, **summary})
    keys = [k for k in rows[0] if k != "iou"] if rows else []
    return markdown_table(rows, percent_columns=keys)


def plot_per_category_ap(result: IouTypeScores, path: Path, *, title: str) -> Path:
    """Horizontal bars of per-category AP, best first (the best and worst ``MAX_BARS/2`` when there are more)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = sorted(((r["AP"], r["name"]) for r in result.per_category if not math.isnan(r["AP"])), reverse=True)
    shown_title = title
    if len(items) > MAX_BARS:
        half = MAX_BARS // 2
        shown_title += f" (best and worst {half} of {len(items)})"
        items = items[:half] + items[-half:]
    height = max(2.5, 0.22 * len(items) + 1.2)
    figure, axes = plt.subplots(figsize=(7, height))
    values = [100 * ap for ap, _ in items]
    axes.barh(range(len(items)), values, color="#3b75af")
    axes.set_yticks(range(len(items)), [name for _, name in items], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("AP (%)")
    axes.set_title(shown_title, fontsize=9)
    figure.tight_layout()
    io.save_figure(path, figure, make_parents=True)
    plt.close(figure)
    return path


def plot_pr_curves(result: IouTypeScores, path: Path, *, title: str, max_categories: int = 8) -> Path:
    """Mean interpolated precision-recall curves at IoU 0.50, 0.75 and 0.50:0.95, plus the curves at IoU 0.50 of
    the ``max_categories`` categories with the most ground truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recall = result.recall_thresholds
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, curves in result.precision.items():
        masked = np.where(curves > -1, curves, np.nan)
        if np.all(np.isnan(masked)):
            continue
        with np.errstate(invalid="ignore"):
            left.plot(recall, np.nanmean(masked, axis=0), label=key)
    left.set_title(f"{title}: mean over categories", fontsize=9)
    order = sorted(range(len(result.per_category)), key=lambda k: -result.per_category[k]["num_gt"])
    for k in order[:max_categories]:
        curve = result.precision["IoU=0.50"][k]
        if np.any(curve > -1):
            row = result.per_category[k]
            right.plot(recall, np.where(curve > -1, curve, np.nan), label=f"{row['name']} (n={row['num_gt']})")
    right.set_title(f"{title}: per category, IoU=0.50", fontsize=9)
    for axes in (left, right):
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    io.save_figure(path, figure, make_parents=True)
    plt.close(figure)
    return path


def write_report(folder: Path, scores: Mapping[str, IouTypeScores], *, title: str,
                 extra: Mapping[str, Any] | None = None, plots: bool = True) -> dict[str, Path]:
    """Write ``metrics.json``, ``per_category_ap.csv``, ``per_category_ap.md`` (summary + table), ``summary.txt``
    (the evaluator's own printout) and, with
    ``plots``, ``ap_per_category_<iou>.png`` and ``pr_curves_<iou>.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    written["metrics"] = folder / "metrics.json"
    io.write_json(written["metrics"], metrics_dict(scores, extra), indent=1)
    rows = per_category_rows(scores)
    written["csv"] = write_csv(folder / "per_category_ap.csv", rows)
    percent = [c for c in (rows[0] if rows else {}) if c.split("_")[-1].startswith("AP")]
    markdown = f"# {title}\n\n## Summary (%)\n\n{_summary_markdown(scores)}\n## Per category (AP %)\n\n"
    markdown += markdown_table(rows, percent_columns=percent)
    written["markdown"] = folder / "per_category_ap.md"
    io.write_text(written["markdown"], markdown)
    written["summary"] = folder / "summary.txt"
    io.write_text(written["summary"], "".join(f"== {iou_type} ==\n{result.text.strip()}\n"
                                              for iou_type, result in scores.items()))
    if plots:
        for iou_type, result in scores.items():
            written[f"ap_{iou_type}"] = plot_per_category_ap(
                result, folder / f"ap_per_category_{iou_type}.png", title=f"{title} — {iou_type} AP per category")
            written[f"pr_{iou_type}"] = plot_pr_curves(result, folder / f"pr_curves_{iou_type}.png",
                                                       title=f"{title} ({iou_type})")
    return written
