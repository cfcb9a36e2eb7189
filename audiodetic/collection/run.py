"""A collection run end to end: list the images, open (or resume) the results, run an engine, finish the file.

Engines, all writing the same results file (:mod:`audiodetic.collection.results`) with the same detections:

* ``local``: this process, images prepared ahead by worker threads (:mod:`audiodetic.collection.pipeline`);
* ``torchrun``: chosen by itself when launched by ``torchrun`` (:mod:`audiodetic.collection.distributed`);
* ``ray``: Ray Data actors, on a local Ray runtime or a cluster (:mod:`audiodetic.integrations.ray`).

Everything the user gave is checked before any model loads: images, prompt files, the output, the drawings.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from audiodetic.collection.pipeline import PipelineOptions, drawing_paths, run_pipeline
from audiodetic.collection.progress import RunProgress, RunSummary
from audiodetic.collection.results import ResultsFile, StreamedList
from audiodetic.collection.session import DetectionSession
from audiodetic.collection.settings import DetectionSettings
from audiodetic.collection.sources import ImageItem, image_key, list_images
from audiodetic.errors import InputError, OutputExistsError
from audiodetic.io import check_output
from audiodetic.sharding import device_for, distributed_env

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class RunOptions:
    """How a collection is run (none of this changes the detections).

    Attributes:
        engine: ``"local"`` or ``"ray"`` (``torchrun`` is recognised from its environment).
        workers: local: threads preparing images; ray: actors, each with its own model.
        batch_size: images per model call (default 8 on CUDA, 1 on the CPU).
        address: ray: the cluster to join (``ray://host:10001``, ``host:6379`` or ``auto``); ``None`` starts a
            local Ray runtime.
        device: ``cpu``, ``cuda`` or ``cuda:N``; default ``cuda[:LOCAL_RANK]`` when CUDA is available, else ``cpu``.
        draw_dir: also write each image with its detections drawn, as ``DIR/<stem>.png``.
        overwrite: start over (and replace existing outputs) instead of resuming.
        fail_fast: stop at the first image that fails instead of reporting it and going on.
        progress: show the progress bar.
    """

    engine: str = "local"
    workers: int | None = None
    batch_size: int | None = None
    address: str | None = None
    device: str | None = None
    draw_dir: Path | None = None
    overwrite: bool = False
    fail_fast: bool = False
    progress: bool = True


def _check_options(options: RunOptions) -> None:
    if options.engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {options.engine!r}")
    for name in ("workers", "batch_size"):
        value = getattr(options, name)
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise InputError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if options.engine != "ray" and options.address is not None:
        raise InputError("--address names a Ray cluster; use it with --engine ray")
    if options.engine == "ray" and options.draw_dir is not None:
        raise InputError("--draw needs the pixels in this process: use it with the local engine or torchrun")


def _drawings(options: RunOptions, items: Sequence[ImageItem], sink: Any, keys: set[str],
              inputs: Sequence[str]) -> dict[int, Path] | None:
    if options.draw_dir is None:
        return None
    folder = Path(options.draw_dir)
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"--draw {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    paths = drawing_paths(items, folder)
    for item in items:
        if sink.is_done(item):
            continue  # drawn when it was detected
        path = paths[item.index]
        if image_key(str(path)) in keys:
            raise OutputExistsError(f"--draw {path} would replace the image {item.image}; choose another folder")
        # a fresh run never replaces files (unless --overwrite); a resumed one redraws its unfinished images
        check_output(path, inputs=inputs, overwrite=options.overwrite or not sink.fresh, what="--draw")
    return paths


def detect_collection(sources: Sequence[str], settings: DetectionSettings, output: str | os.PathLike[str],
                      options: RunOptions = RunOptions(), *, model: Any = None) -> RunSummary:
    """Detect on every image of ``sources`` (files, folders, globs, ``.txt`` lists) into ``output``.

    Args:
        sources: what to run on (see :mod:`audiodetic.collection.sources`).
        settings: the model, prompts and options; they decide whether ``output`` can be resumed.
        output: ``*.jsonl`` (a line per image, resumable), ``*.json`` (today's JSON list) or ``"-"`` (the JSON
            list on standard output).
        options: engine, workers, batch size, device... (:class:`RunOptions`).
        model: an already loaded ``AudiodeticModel`` for the local engine (tests, notebooks).

    Returns: a :class:`~audiodetic.collection.progress.RunSummary`; failed images are reported on standard error
    as they happen.
    """
    _check_options(options)
    env = distributed_env()
    if env is not None and options.engine == "ray":
        raise InputError("this process was started by torchrun; --engine ray starts its own workers - use one")
    items, missing = list_images(sources)
    keys = {image_key(item.path) for item in items}
    inputs = [*settings.prompt_files, *(s for s in sources if str(s).lower().endswith(".txt"))]
    if str(output) == "-":
        if env is not None:
            raise InputError("under torchrun give --output FILE.jsonl or FILE.json (ranks cannot share stdout)")
        sink: Any = StreamedList(sys.stdout)
    else:
        sink = ResultsFile(Path(output), settings.identity(), overwrite=options.overwrite, inputs=inputs,
                           image_keys=keys, owner=env is None or env.is_main)
    device = device_for(env, options.device)
    if env is not None:
        from audiodetic.collection.distributed import run_ranks

        return run_ranks(env, items, missing, sink, lambda: DetectionSession(settings, device=device),
                         PipelineOptions(batch_size=options.batch_size, workers=options.workers),
                         device=device, progress_enabled=options.progress, fail_fast=options.fail_fast,
                         drawings=lambda results: _drawings(options, items, results, keys, inputs))
    sink.open()
    draw = _drawings(options, items, sink, keys, inputs)
    todo = [item for item in items if not sink.is_done(item)]
    progress = RunProgress(len(items) + len(missing), skipped=len(items) - len(todo), enabled=options.progress,
                           fail_fast=options.fail_fast)
    try:
        for entry in missing:
            progress.failed(f"{entry.where}: {entry.image}", entry.reason)
        if todo and options.engine == "ray":
            from audiodetic.integrations.ray import run_on_ray

            run_on_ray(todo, settings, sink, progress, workers=options.workers, address=options.address,
                       batch_size=options.batch_size, device=options.device)
        elif todo:
            run_pipeline(lambda: DetectionSession(settings, device=device, model=model), todo, sink, progress,
                         PipelineOptions(batch_size=options.batch_size, workers=options.workers, draw=draw),
                         device=device)
    finally:
        progress.close()
        sink.close()
    sink.finish(items)
    return RunSummary(images=len(items) + len(missing), processed=progress.processed,
                      skipped=len(items) - len(todo), failures=list(progress.failures),
                      failed_total=len(progress.failures))
