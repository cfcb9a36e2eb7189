"""Running a :class:`~audiodetic.video.pipeline.VideoRun` into its files: JSON Lines, the track table, the video.

:func:`write_outputs` is the one loop the CLI and the demo backend share. When the input turns out to be damaged
part-way, everything up to the damage is kept (the JSON Lines so far, an annotated video of the frames so far, a
track table marked ``"complete": false`` with the error) and the error is returned for the caller to report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from audiodetic.errors import VideoDecodeError
from audiodetic.io import JsonLinesAppender, write_json
from audiodetic.video.writer import AnnotatedVideoWriter


@dataclass
class RunOutputs:
    """What :func:`write_outputs` wrote: paths (``None`` when not asked for), frame count, tracks, the error."""

    jsonl: Path | None
    tracks_json: Path | None
    video: Path | None
    frames: int
    tracks: list[dict[str, Any]]
    error: VideoDecodeError | None


def tracks_document(run: Any, *, frames: int, error: Exception | None, tracks: list[dict[str, Any]]
                    ) -> dict[str, Any]:
    """The track table with the run's settings: ``{"source", "fps", "start_s", "end_s", "frames", ...,
    "tracks": [{"track_id", "label", "start_s", "end_s", ...}]}``; ``tracks`` is ``run.tracks()``."""
    info = run.reader.info
    return {
        "source": info.path, "source_fps": info.fps, "source_duration_s": info.duration_s,
        "width": info.width, "height": info.height, "rotation": info.rotation,
        "fps": run.fps, "start_s": run.start_s, "end_s": run.end_s, "frames": frames,
        "silent_frames": run.stats.silent_frames if run.window_s is not None else None,
        "soundtrack_window_s": run.window_s, "silence_dbfs": run.silence_dbfs if run.window_s is not None else None,
        "complete": error is None, "error": None if error is None else str(error), "tracks": tracks,
    }


def write_outputs(run: Any, *, jsonl: str | os.PathLike[str] | None = None,
                  tracks_json: str | os.PathLike[str] | None = None, video: str | os.PathLike[str] | None = None,
                  heatmap: bool = False, on_frame: Callable[[Any], None] | None = None) -> RunOutputs:
    """Consume ``run``, writing the files asked for (paths already checked by the caller).

    ``video`` is written at the sampling rate (the source's average rate when every frame is sampled) with the
    source's audio; ``on_frame(result)`` is called after each frame (progress bars). ``jsonl`` starts empty
    (an existing file there is replaced) and gets one durable line per frame.
    """
    lines = _fresh_lines(jsonl) if jsonl is not None else None
    writer: AnnotatedVideoWriter | None = None
    frames = 0
    error: VideoDecodeError | None = None
    audio_path = _audio_path(run) if video is not None else None
    try:
        try:
            for result in run:
                if lines is not None:
                    lines.append(result.to_json())
                if video is not None:
                    if writer is None:
                        height, width = result.image.shape[:2]
                        writer = AnnotatedVideoWriter(video, fps=run.sample_fps, size=(width, height),
                                                      audio_path=audio_path, start_s=result.time_s, heatmap=heatmap)
                    writer.add(result)
                frames += 1
                if on_frame is not None:
                    on_frame(result)
        except VideoDecodeError as damage:
            if frames == 0:
                raise
            error = damage
        written_video = writer.close() if writer is not None else None
        writer = None
    finally:
        if writer is not None:
            writer.abort()
        if lines is not None:
            lines.close()
    tracks = run.tracks()
    if tracks_json is not None:
        write_json(tracks_json, tracks_document(run, frames=frames, error=error, tracks=tracks))
    return RunOutputs(Path(jsonl) if jsonl is not None else None, Path(tracks_json) if tracks_json else None,
                      written_video, frames, tracks, error)


def _fresh_lines(path: str | os.PathLike[str]) -> JsonLinesAppender:
    """An appender on ``path`` emptied first (the caller has checked that it may be replaced)."""
    path = Path(path)
    if path.parent.is_dir():  # else the appender names the missing folder
        path.write_bytes(b"")
    return JsonLinesAppender(path)


def _audio_path(run: Any) -> Path | None:
    """The file whose audio the annotated video carries (the video, or a frame folder's audio file)."""
    info = run.reader.info
    if not info.has_audio:
        return None
    audio = getattr(run.reader, "audio", None)
    return Path(audio) if audio is not None else Path(info.path)
