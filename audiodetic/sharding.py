"""Splitting a run over many images (an evaluation, a collection to detect) over processes, GPUs and machines.

A run over ``M`` images is cut into ``N`` shards; shard ``i`` (0-based) takes images ``i, i+N, i+2N, ...`` of
the run's ordered list, so shards differ in size by at most one image. Each shard writes its own results file;
a merge step joins them once every shard has finished.

Under ``torchrun`` (environment ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) every process takes one shard and
uses ``cuda:LOCAL_RANK`` when CUDA is available. No ``torch.distributed`` process group is needed: processes
coordinate through files (each shard writes a ``.done`` marker; rank 0 waits for all markers, then merges).
``--shard I/N`` combined with ``torchrun`` splits shard ``I`` further: rank ``r`` of ``W`` processes runs global
shard ``I*W + r`` of ``N*W`` (one ``torchrun`` per machine, one ``--shard`` per machine).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence, TypeVar

from audiodetic.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise InputError(f"shard must satisfy 0 <= index < count, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"I/N"`` (0-based ``I``), e.g. ``"0/4"`` .. ``"3/4"``."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not match:
            raise InputError(f"--shard must look like I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def name(self) -> str:
        """File-name tag, e.g. ``shard-002-of-008``."""
        width = max(3, len(str(self.count)))
        return f"shard-{self.index:0{width}d}-of-{self.count:0{width}d}"

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's items: ``items[index::count]``."""
        return list(items[self.index::self.count])

    def split(self, parts: int, part: int) -> "Shard":
        """Sub-shard ``part`` of ``parts`` of this shard, as a shard of the whole run."""
        return Shard(self.index * parts + part, self.count * parts)


@dataclass(frozen=True)
class DistributedEnv:
    """What ``torchrun`` tells each process."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that merges and reports."""
        return self.rank == 0


def distributed_env(environ: Mapping[str, str] | None = None) -> DistributedEnv | None:
    """The ``torchrun`` environment, or ``None`` when not launched by it (or with ``WORLD_SIZE=1``)."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        local = int(environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise InputError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers, got {environ.get('RANK')!r}, "
                         f"{environ.get('WORLD_SIZE')!r}, {environ.get('LOCAL_RANK')!r}") from None
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"invalid torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return None if world == 1 else DistributedEnv(rank, world, local)


def effective_shard(requested: Shard | None, env: DistributedEnv | None) -> Shard:
    """The shard this process runs: ``requested`` (default the whole run) split by the ``torchrun`` rank."""
    base = requested or Shard()
    return base if env is None else base.split(env.world_size, env.rank)


def device_for(env: DistributedEnv | None, requested: str | None = None) -> str:
    """``requested`` if given; else ``cuda:LOCAL_RANK`` (or ``cuda``) when CUDA is available, else ``cpu``."""
    if requested:
        return requested
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    if env is None:
        return "cuda"
    return f"cuda:{env.local_rank % max(torch.cuda.device_count(), 1)}"


def wait_for_files(paths: Iterable[Path], *, timeout_s: float = 86400.0, poll_s: float = 2.0,
                   what: str = "shards") -> None:
    """Block until every file in ``paths`` exists (the file-based barrier of ``.done`` markers).

    Raises ``TimeoutError`` naming up to five missing files after ``timeout_s`` seconds.
    """
    paths = list(paths)
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [path for path in paths if not path.exists()]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} still running after {timeout_s:.0f} s: no {[str(p) for p in missing[:5]]}")
        time.sleep(poll_s)
