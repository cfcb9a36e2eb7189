"""What the demo's Video tab calls: a video and prompts in, the annotated video and the track table out."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from audiodetic.errors import InputError
from audiodetic.video.outputs import write_outputs
from audiodetic.video.pipeline import detect_video

TRACK_COLUMNS: tuple[str, ...] = ("track", "label", "start (s)", "end (s)", "detections", "best score")


def track_rows(tracks: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Rows of the track table (:data:`TRACK_COLUMNS`), longest-lived tracks first."""
    ordered = sorted(tracks, key=lambda t: (-(t["end_s"] - t["start_s"]), t["track_id"]))
    return [[t["track_id"], t["label"], t["start_s"], t["end_s"], t["detections"], t["max_score"]] for t in ordered]


def annotate_video(video: str | os.PathLike[str], *, model: Any, audio_prompts: Any = None, text_prompts: Any = None,
                   soundtrack: bool = True, fps: float = 2.0, end_s: float | None = None,
                   score_threshold: float = 0.5, heatmap: bool = True,
                   output_dir: str | os.PathLike[str] | None = None) -> tuple[Path, list[list[Any]]]:
    """Annotate ``video`` for the demo; returns ``(annotated .mp4 path, track rows)``.

    The annotated video (sampled frames at ``fps``, the original audio) is written into ``output_dir`` (default: a
    new temporary folder) under a name derived from the input's, never over the input.
    """
    source = Path(video)
    folder = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="audiodetic-video-"))
    target = folder / f"{source.stem}.annotated.mp4"
    run = detect_video(source, audio_prompts, text_prompts=text_prompts, soundtrack=soundtrack, fps=fps, end_s=end_s,
                       model=model, score_threshold=score_threshold)
    outputs = write_outputs(run, video=target, heatmap=heatmap and soundtrack)
    if outputs.error is not None:
        raise outputs.error
    if outputs.video is None:
        raise InputError(f"{source}: no frame was sampled, so there is no annotated video")
    return outputs.video, track_rows(outputs.tracks)
