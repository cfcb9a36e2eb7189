"""``audiodetic eval sound-localisation``: run the soundtrack prompt on benchmark frames and score its maps.

Per sample: the frame is encoded once; the audio window (the encoder's clip length, centred on the sample's time -
the middle of the audio file for VGG-SS and Flickr-SoundNet, ``k - 0.5`` s for S4 frame ``k``) becomes the
``soundtrack`` prompt; the map is the one video results carry (:func:`audiodetic.video.model_access.soundtrack_map`:
every region, up to :data:`~audiodetic.video.model_access.HEATMAP_REGIONS`, scored against the prompt, the
per-cell maximum of region scores) - over boxes on the 224 x 224 grid for the single-frame protocol, over masks at
the mask's resolution for S4. A sample's truth map is built from its boxes when it is scored. A silent window
(below the stated threshold) gives an empty map, which the single-frame protocol's median threshold turns into the
whole image.

Reports (like the COCO evaluation): ``metrics.json`` (summary, settings, per-sample values), ``per_sample.csv``,
``report.md`` (with published numbers of trained methods for context) and, for the single-frame protocol,
``success_curve.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from audiodetic.errors import InputError
from audiodetic.eval.localisation_data import Loaded, read_mask
from audiodetic.eval.localisation_metrics import GRID, localisation_ciou, success_rates, summarise_ciou, summarise_s4
from audiodetic.eval.reports import _clean, markdown_table, write_csv
from audiodetic.io import save_figure, write_json, write_text
from audiodetic.video import model_access
from audiodetic.video.frame_folder import file_audio_blocks
from audiodetic.video.soundtrack import SILENCE_DBFS, WindowedAudio

PUBLISHED = (
    {"dataset": "VGG-Sound Source", "metric": "cIoU@0.5 (%)", "range": "39-53",
     "methods": "EZ-VSL, SSL-alignment, ACL-SSL, SOUPLE (trained on audio-visual data)"},
    {"dataset": "Flickr-SoundNet", "metric": "cIoU@0.5 (%)", "range": "84-86",
     "methods": "EZ-VSL, SSL-alignment, ACL-SSL, SOUPLE (trained on audio-visual data)"},
)
"""Published ranges, for context only: training-free methods exist but report lower; not measured here."""


def _window(sample: Any, length_s: float) -> Any:
    """The audio window of a sample (centred on ``sample.centre_s`` or the middle of the file)."""
    from audiodetic.encoders.audio.io import audio_info

    centre = sample.centre_s if sample.centre_s is not None else audio_info(sample.audio).duration / 2
    blocks = file_audio_blocks(sample.audio, max(0.0, centre - length_s / 2 - 1.0))
    return WindowedAudio(blocks, length_s, grid_s=1e-3).window(centre)


def sample_map(model: Any, encoder: Any, sample: Any, *, input_size: tuple[int, int] | None = None,
               masks_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, bool]:
    """``(map, silent)`` of one sample: the 224 x 224 box map, or with ``masks_shape`` the mask map."""
    from audiodetic.inputs import as_rgb_array

    window = _window(sample, encoder.clip_seconds)
    grid = masks_shape if masks_shape is not None else (GRID, GRID)
    if window.silent:
        return np.zeros(grid, np.float32), True
    image = as_rgb_array(sample.image, argument=str(sample.image))
    embedding = encoder.embed([(window.samples, window.rate)])[0]
    encoded = model_access.encode_frame(model, image, input_size=input_size)
    values = model_access.soundtrack_map(encoded, embedding, image.shape[:2], grid, with_masks=masks_shape is not None)
    return values, False


def evaluate_localisation(model: Any, loaded: Loaded, kind: str, output: Path, *,
                          input_size: tuple[int, int] | None = None, max_samples: int | None = None,
                          plots: bool = True, progress: bool = True,
                          described: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score ``loaded`` samples with ``model``'s soundtrack prompt; write the reports into ``output``."""
    from tqdm.auto import tqdm

    encoder = model_access.SoundtrackEncoder(model)
    samples = loaded.samples[:max_samples] if max_samples else loaded.samples
    if not samples:
        raise InputError("no samples to evaluate (all were missing, or the split is empty)")
    rows: list[dict[str, Any]] = []
    videos: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for sample in tqdm(samples, desc=kind, unit="frame", file=sys.stderr, disable=not progress):
        if kind == "s4":
            mask = read_mask(sample.mask)
            values, silent = sample_map(model, encoder, sample, input_size=input_size, masks_shape=mask.shape)
            videos.setdefault(sample.video, []).append((values, mask))
            rows.append({"name": sample.name, "video": sample.video, "category": sample.category, "silent": silent,
                         "max_score": float(values.max())})
        else:
            values, silent = sample_map(model, encoder, sample, input_size=input_size)
            rows.append({"name": sample.name, "category": sample.category, "silent": silent,
                         "cIoU": localisation_ciou(values, sample.gt), "max_score": float(values.max())})
    summary = summarise_s4(list(videos.values())) if kind == "s4" else summarise_ciou([r["cIoU"] for r in rows])
    summary["silent_samples"] = int(sum(r["silent"] for r in rows))
    summary["missing_samples"] = len(loaded.missing)
    settings = {"dataset": kind, "soundtrack_window_s": encoder.clip_seconds, "silence_dbfs": SILENCE_DBFS,
                "regions": model_access.HEATMAP_REGIONS, "map": "masks" if kind == "s4" else "boxes",
                "input_size": input_size, **(described or {})}
    write_report(output, kind, summary, rows, settings, plots=plots)
    return summary


def write_report(output: Path, kind: str, summary: dict[str, Any], rows: list[dict[str, Any]],
                 settings: dict[str, Any], *, plots: bool = True) -> dict[str, Path]:
    """``metrics.json``, ``per_sample.csv``, ``report.md`` and (single-frame protocol) ``success_curve.png``."""
    output.mkdir(parents=True, exist_ok=True)
    written = {"metrics": write_json(output / "metrics.json", _clean({"summary": summary, "settings": settings,
                                                                       "samples": rows}))}
    written["csv"] = write_csv(output / "per_sample.csv", rows)
    percent = [k for k in ("cIoU@0.5", "AUC", "mean_cIoU", "mIoU") if k in summary]
    table = markdown_table([{k: summary[k] for k in summary}], percent_columns=percent)
    lines = [f"# Sound-source localisation: {kind}", "", "## Result (%, F-score as a fraction)", "", table,
             "## Settings", "", markdown_table([{k: str(v) for k, v in settings.items()}]), ]
    if kind != "s4":
        lines += ["## Published numbers (context, not measured here)", "", markdown_table(list(PUBLISHED)),
                  "Trained methods; training-free methods exist but report lower. audiodetic is training-free.", ""]
    written["markdown"] = write_text(output / "report.md", "\n".join(lines))
    if plots and kind != "s4":
        written["plot"] = _plot_success(output / "success_curve.png", [r["cIoU"] for r in rows], kind)
    return written


def _plot_success(path: Path, cious: list[float], kind: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds, rates = success_rates(cious)
    figure, axes = plt.subplots(figsize=(4.5, 3.5))
    axes.plot(thresholds, rates, marker="o", markersize=3)
    axes.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("cIoU threshold")
    axes.set_ylabel("fraction of samples with cIoU >= threshold")
    axes.set_title(f"{kind}: success rate (area = AUC)", fontsize=9)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    try:
        return save_figure(path, figure, dpi=110)
    finally:
        plt.close(figure)
