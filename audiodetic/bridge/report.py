"""The bridge benchmark's outputs: ``bridge_eval.json``, a Markdown table and a PNG of top-1 per bridge.

Fractions are written as fractions in JSON and as percentages in the table and the plot. The plot draws one bar per
bridge (top-1 in the detector space), a line at the native ImageBind zero-shot of the same clips (the ceiling) and,
for ESC-50, a dotted line at ImageBind's published ESC-50 zero-shot top-1 (66.9 %, measured with ImageBind's own
prompts; the native line here uses plain class names).
"""

from __future__ import annotations

import io as _bytes
from pathlib import Path
from typing import Any, Mapping

from audiodetic.bridge.evaluate import IMAGEBIND_ESC50_TOP1
from audiodetic.io import atomic_writer, write_json, write_text

ANCHOR_TEXT = "ImageBind's published ESC-50 zero-shot top-1: 66.9 % (Girdhar et al., CVPR 2023, Table 2)"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}"


def markdown_report(result: Mapping[str, Any], *, layout: str = "") -> str:
    """The benchmark as Markdown: a header with the dataset, the native ceiling and skipped clips, then one row per
    bridge (top-1, top-5, mean per-class accuracy, retention, split)."""
    from audiodetic.eval.reports import markdown_table

    native = result["native"]
    lines = [f"# Bridge benchmark: {result['dataset']}", "",
             f"{result['num_clips']} clips, {result['num_classes']} classes; zero-shot classification in the "
             f"detector's space (CLIP ViT-B/32 text of `\"a \" + name`).", "",
             f"Native ImageBind zero-shot (clip vs ImageBind text of the names; the ceiling): top-1 "
             f"{_pct(native['top1'])} %, top-5 {_pct(native['top5'])} %."]
    if "native_class_disjoint" in result:
        lines.append(f"Native on the class-disjoint task (each half's clips among that half's classes): top-1 "
                     f"{_pct(result['native_class_disjoint']['top1'])} %.")
    if layout == "esc50":
        lines.append(f"{ANCHOR_TEXT}.")
    skipped = result.get("skipped", {})
    if skipped.get("count"):
        shown = "; ".join(f"{c['path']}: {c['reason']}" for c in skipped["clips"][:5])
        lines.append(f"Skipped {skipped['count']} clips that cannot be used ({shown}).")
    rows = [{"bridge": name, "top-1 %": entry["top1"], "top-5 %": entry["top5"],
             "mean class acc %": entry["mean_class_acc"],
             "retention": "–" if entry["retention"] is None else f"{entry['retention']:.3f}",
             "split": entry["split"]} for name, entry in result["bridges"].items()]
    table = markdown_table(rows, percent_columns=("top-1 %", "top-5 %", "mean class acc %"))
    return "\n".join(lines) + "\n\n" + table


def plot_report(result: Mapping[str, Any], path: Path, *, layout: str = "") -> Path:
    """Bars of top-1 per bridge with the native ceiling (and the published ESC-50 anchor); written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["bridges"])
    values = [100 * result["bridges"][n]["top1"] for n in names]
    figure, axes = plt.subplots(figsize=(max(5.0, 1.0 + 0.9 * len(names)), 4.2))
    axes.bar(range(len(names)), values, color="#3b75af")
    for x, value in enumerate(values):
        axes.text(x, value + 1, f"{value:.1f}", ha="center", fontsize=8)
    axes.axhline(100 * result["native"]["top1"], color="#c44e52", label="native ImageBind zero-shot (ceiling)")
    if layout == "esc50":
        axes.axhline(100 * IMAGEBIND_ESC50_TOP1, color="#555555", linestyle=":", label="ImageBind paper, ESC-50")
    axes.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    axes.set_ylim(0, 105)
    axes.set_ylabel("zero-shot top-1 (%)")
    axes.set_title(f"{result['dataset']}: {result['num_clips']} clips, {result['num_classes']} classes", fontsize=9)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    buffer = _bytes.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    with atomic_writer(path) as handle:
        handle.write(buffer.getvalue())
    return path


def write_eval_report(folder: Path, result: Mapping[str, Any], *, layout: str = "") -> dict[str, Path]:
    """Write ``bridge_eval.json``, ``bridge_eval.md`` and (with matplotlib) ``bridge_eval.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {"json": write_json(folder / "bridge_eval.json", dict(result, layout=layout)),
               "markdown": write_text(folder / "bridge_eval.md", markdown_report(result, layout=layout))}
    try:
        import matplotlib  # noqa: F401 - the [eval] extra
    except ImportError:
        return written
    written["png"] = plot_report(result, folder / "bridge_eval.png", layout=layout)
    return written
