"""``torchrun`` for collections: each rank detects its share of the images on ``cuda:LOCAL_RANK`` (or the CPU);
rank 0 merges.

Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``; see
:mod:`audiodetic.sharding`) every rank lists the same images. Rank 0 prepares the results file (starting over, the
``.run.json``, a torn line); after a barrier every rank reads which images the results file and the part files of
earlier runs already hold; after a second barrier each takes its :class:`~audiodetic.sharding.Shard` of the
images still to do and appends them to its own part file ``<results>.parts/rank-R-of-W.jsonl`` (one line per
image, as the local pipeline writes them). After a third barrier rank 0 appends every part's new lines to the
results file in the run's image order (skipping images it already holds) and removes the parts; a last barrier
keeps every rank alive until then (``torchrun`` stops all ranks as soon as one exits with an error, e.g. because
some of its images failed).

Ranks meet through ``torch.distributed`` barriers on a CPU (gloo) process group that carries nothing else; the
images and results travel through the files. A rank that dies stops the run (``torchrun`` ends the others); run
the same command again to resume: finished lines in the part files and the results file are kept.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from audiodetic.collection.pipeline import PipelineOptions, run_pipeline
from audiodetic.collection.progress import RunProgress, RunSummary
from audiodetic.collection.results import ResultLines, ResultsFile
from audiodetic.collection.session import DetectionSession
from audiodetic.collection.sources import ImageItem, Missing
from audiodetic.errors import InputError
from audiodetic.sharding import DistributedEnv, Shard


class _PartSink:
    """Appends to a rank's part file, labelled as the results file labels them."""

    def __init__(self, part: ResultLines, results: ResultsFile) -> None:
        self.part, self.results = part, results

    def add(self, item: ImageItem, record: Any) -> bool:
        return self.part.append(self.results.key(item), {**record, "image": self.results.label(item)})


def _process_group(env: DistributedEnv) -> Any:
    import os

    import torch.distributed as dist

    if not dist.is_available():
        raise InputError("this PyTorch build has no torch.distributed; run without torchrun")
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise InputError(f"RANK/WORLD_SIZE are set but {', '.join(missing)} is not: start the ranks with torchrun "
                         "(e.g. torchrun --nproc-per-node 2 -m audiodetic detect ...)")
    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=env.rank, world_size=env.world_size, timeout=timedelta(days=30))
    return dist


def part_path(results: ResultsFile, env: DistributedEnv) -> Any:
    width = max(3, len(str(env.world_size)))
    return results.parts_dir / f"rank-{env.rank:0{width}d}-of-{env.world_size:0{width}d}.jsonl"


def run_ranks(env: DistributedEnv, items: Sequence[ImageItem], missing: Sequence[Missing], results: ResultsFile,
              make_session: Callable[[], DetectionSession], options: PipelineOptions, *, device: str = "cpu",
              progress_enabled: bool = True, fail_fast: bool = False,
              drawings: Callable[[ResultsFile], Mapping[int, Path] | None] | None = None) -> RunSummary:
    """This rank's part of a ``torchrun`` run (see the module docstring); rank 0 also merges and finishes the
    results file. List-file entries that name no file (``missing``) are reported by rank 0.

    ``drawings(results)``, called once the results file is open, checks the drawing paths (the same rules as a
    one-process run: never an input, never an existing file of a fresh run) and returns them.

    Returns this rank's :class:`RunSummary`, with ``failed_total`` counted over all ranks.
    """
    import torch

    dist = _process_group(env)
    try:
        if env.is_main:
            results.parts_dir.mkdir(exist_ok=True)
        dist.barrier()  # rank 0 has prepared the results file
        results.open()
        if drawings is not None:
            options = dataclasses.replace(options, draw=drawings(results))
        done = set(results.lines.offsets) if results.lines is not None else set()
        for part in results.part_files():
            done.update(ResultLines(part, results.base, repair=False).offsets)
        dist.barrier()  # every rank has read the same state; appending starts now
        todo = [item for item in items if results.key(item) not in done]
        mine = Shard(env.rank, env.world_size).select(todo)
        progress = RunProgress(len(mine), enabled=progress_enabled and env.is_main, fail_fast=fail_fast,
                               label=f"detect (rank 0 of {env.world_size})")
        part = ResultLines(part_path(results, env), results.base, repair=True)
        try:
            for entry in missing if env.is_main else ():
                progress.failed(f"{entry.where}: {entry.image}", entry.reason)
            if mine:
                run_pipeline(make_session, mine, _PartSink(part, results), progress, options, device=device)
        finally:
            part.close()
            progress.close()
        failed = torch.tensor([len(progress.failures)], dtype=torch.int64)
        dist.all_reduce(failed)  # also the barrier before rank 0 merges
        if env.is_main:
            merge_parts(results, items)
            results.finish(items)
        dist.barrier()  # no rank exits (torchrun stops the others when one fails) before rank 0 has merged
        return RunSummary(images=len(items) + len(missing), processed=progress.processed,
                          skipped=len(items) - len(todo), failures=list(progress.failures),
                          failed_total=int(failed.item()))
    finally:
        dist.destroy_process_group()


def merge_parts(results: ResultsFile, items: Sequence[ImageItem]) -> int:
    """Append the part files' lines of images the results file lacks, in ``items`` order; remove the parts.

    Returns the number of lines appended. Safe to repeat after an interruption: images already appended are
    skipped, and the parts are removed only after all their lines are in the results file.
    """
    lines = results.lines if results.lines is not None else results.open().lines
    parts = [ResultLines(path, results.base, repair=False) for path in results.part_files()]
    where = {key: part for part in parts for key in part.offsets}
    appended = 0
    for item in items:
        key = results.key(item)
        part = where.get(key)
        if part is not None and key not in lines:
            lines.append(key, json.loads(part.line(key)))
            appended += 1
    lines.close()
    for part in parts:
        part.path.unlink()
    if results.parts_dir.is_dir() and not any(results.parts_dir.iterdir()):
        results.parts_dir.rmdir()
    return appended
