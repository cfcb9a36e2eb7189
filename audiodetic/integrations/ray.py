"""Ray Data for large collections: detection as a ``Dataset.map_batches`` stage, one model per actor.

Install with ``pip install 'audiodetic[ray]'`` (Ray Data and pyarrow). Importing audiodetic (or this module)
never imports Ray; the functions below do.

::

    import ray
    from audiodetic.collection import DetectionSettings
    from audiodetic.integrations.ray import detections_dataset, images_dataset, write_detections

    settings = DetectionSettings(audio=(("dog", ("bark.wav",)),), text=(("car", "car"),))
    images = images_dataset(["photos/"])                      # or ray.data.read_binary_files("s3://...")
    found = detections_dataset(images, settings, workers=4)   # one RayDetector actor (model) per worker
    write_detections(found, "out/", file_format="parquet")    # or "jsonl"

:class:`RayDetector` is the callable class: its constructor builds the detector, the prompt encoders and the
vocabulary once per actor (:class:`~audiodetic.collection.session.DetectionSession`); each call takes a batch
with a ``path`` column (image files every worker can read) and/or a ``bytes`` column (encoded images, as
``ray.data.read_binary_files`` gives them; a row's bytes, when not null, are used and its path only names it),
and returns one row per image: ``image``, ``width``, ``height``, ``detections`` (``label``, ``class_id``, ``score``, ``box``, ``mask`` as
COCO RLE ``{size, counts}``) and ``error`` (null, or why that image failed; the other images of the batch are
unaffected). Rows equal ``Detections.to_json_dict`` of the plain loop.

``audiodetic detect ... --engine ray --workers N [--address ADDR]`` runs the same stage and streams the rows back
into the resumable results file (:func:`run_on_ray`); without ``--address`` it starts a local Ray runtime.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from audiodetic.collection.progress import RunProgress, describe_error
from audiodetic.collection.session import DetectionSession, detect_each, read_pixels
from audiodetic.collection.settings import DetectionSettings
from audiodetic.collection.sources import ImageItem, list_images
from audiodetic.errors import InputError, OutputExistsError

DEFAULT_BATCH = 4


def _require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("the Ray engine needs Ray Data: pip install 'audiodetic[ray]'") from None
    return ray


def row_schema() -> Any:
    """The pyarrow schema of :class:`RayDetector`'s rows (explicit, so empty batches and masks keep their types)."""
    import pyarrow as pa

    mask = pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])
    detection = pa.struct([("label", pa.string()), ("class_id", pa.int64()), ("score", pa.float64()),
                           ("box", pa.list_(pa.float64())), ("mask", mask)])
    return pa.schema([("index", pa.int64()), ("image", pa.string()), ("width", pa.int64()),
                      ("height", pa.int64()), ("detections", pa.list_(detection)), ("error", pa.string())])


def record_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """A result row back as the CLI's JSON record (``Detections.to_json_dict``): masks only where present."""
    detections = []
    for item in row["detections"] or []:
        found = {key: item[key] for key in ("label", "class_id", "score", "box")}
        if item.get("mask") is not None:
            found["mask"] = {"size": list(item["mask"]["size"]), "counts": item["mask"]["counts"]}
        detections.append(found)
    return {"image": row["image"], "width": row["width"], "height": row["height"], "detections": detections}


class RayDetector:
    """A ``map_batches`` callable class that detects with one model per actor (see the module docstring).

    Args:
        settings: a :class:`DetectionSettings` (or its fields as a dict).
        device: ``"cpu"``/``"cuda"``/``"cuda:<i>"``; default ``cuda`` when this actor sees a GPU, else ``cpu``.
        batch_size: images per backbone pass inside one call (default: all of the call's batch on CUDA, 1 on CPU).
    """

    def __init__(self, settings: DetectionSettings | Mapping[str, Any], *, device: str | None = None,
                 batch_size: int | None = None) -> None:
        import torch

        if not isinstance(settings, DetectionSettings):
            settings = DetectionSettings(**dict(settings))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.session = DetectionSession(settings, device=self.device)

    def __call__(self, batch: Mapping[str, Any]) -> Any:
        import pyarrow as pa

        count = len(next(iter(batch.values())))
        blank = [None] * count
        data, paths = batch.get("bytes", blank), batch.get("path", blank)
        names = batch["image"] if "image" in batch else paths
        indices = batch.get("index", blank)
        rows: list[dict[str, Any]] = []
        prepared, slots = [], []
        for position in range(count):
            source = data[position] if data[position] is not None else paths[position]
            label = str(names[position]) if names[position] is not None else f"#{position}"
            row = {"index": None if indices[position] is None else int(indices[position]), "image": label,
                   "width": None, "height": None, "detections": None, "error": None}
            rows.append(row)
            try:
                source = bytes(source) if not isinstance(source, str) else source
                prepared.append(self.session.prepare(read_pixels(source), label))
                slots.append(row)
            except Exception as error:  # noqa: BLE001 - reported in the row
                row["error"] = describe_error(error)
        batch_size = self.batch_size or (len(prepared) if self.device.startswith("cuda") else 1)
        for row, found in zip(slots, detect_each(self.session, prepared, batch_size=batch_size)):
            if isinstance(found, Exception):
                row["error"] = describe_error(found)
            else:
                row.update(found.to_json_dict(image=row["image"]))
        return pa.Table.from_pylist(rows, schema=row_schema())


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, naming the address, when nothing listens where a Ray cluster should be."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    port = parts.port or (10001 if parts.scheme == "ray" else 6379)
    host = parts.hostname or "127.0.0.1"
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as error:
        raise InputError(f"--address {address}: no Ray cluster answers at {host}:{port} ({error}); start one with "
                         "`ray start --head`, or leave out --address to run a local Ray runtime") from None


def connect(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` (``ray://host:10001``, ``host:6379`` or ``auto``), or start a local Ray
    runtime when ``address`` is ``None``; reuse a connection this process already has. Returns whether this
    call connected (and so should :func:`ray.shutdown` when done)."""
    ray = _require_ray()
    if ray.is_initialized():
        return False
    if address is not None:
        _check_reachable(address)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray runtime"
        raise InputError(f"cannot connect to {where}: {error}") from None
    return True


def images_dataset(sources: Sequence[str] | Sequence[ImageItem], *, as_bytes: bool = False) -> Any:
    """A Ray dataset of images with columns ``index``, ``image`` (the name in the results) and ``path`` (absolute),
    from files, folders, globs or ``.txt`` lists (:func:`audiodetic.collection.sources.list_images`) or
    ``ImageItem`` s; ``as_bytes`` reads the files into a ``bytes`` column on the driver's side instead."""
    ray = _require_ray()
    if sources and isinstance(sources[0], ImageItem):
        items = list(sources)  # type: ignore[arg-type]
    else:
        items, missing = list_images([str(s) for s in sources])
        if missing:
            raise InputError(f"{missing[0].where}: {missing[0].image}: {missing[0].reason}"
                             f" ({len(missing)} list entries name no file)")
    rows = [{"index": item.index, "image": item.image, "path": item.path} for item in items]
    if as_bytes:
        for row in rows:
            with open(row["path"], "rb") as handle:
                row["bytes"] = handle.read()
    return ray.data.from_items(rows)


def detections_dataset(images: Any, settings: DetectionSettings, *, workers: int = 1, batch_size: int | None = None,
                       device: str | None = None, detector_class: type = RayDetector) -> Any:
    """``images.map_batches(RayDetector, ...)`` on ``workers`` actors (one model each). Each actor takes a CPU, and
    a GPU when ``device`` is ``cuda...`` (or, with no ``device``, when the cluster has GPUs).

    Actors that die (a killed worker process) are restarted and their batches retried (Ray Data's defaults for
    actor pools: unlimited restarts and task retries), so no image is lost.
    """
    ray = _require_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    on_gpu = device.startswith("cuda") if device else ray.cluster_resources().get("GPU", 0) >= 1
    return images.map_batches(
        detector_class, fn_constructor_kwargs={"settings": settings, "device": device, "batch_size": batch_size},
        batch_size=batch_size or DEFAULT_BATCH, compute=ray.data.ActorPoolStrategy(size=int(workers)),
        num_cpus=1, num_gpus=1 if on_gpu else 0, batch_format="default",
    )


def write_detections(dataset: Any, folder: str | os.PathLike[str], *, file_format: str = "jsonl",
                     overwrite: bool = False) -> None:
    """Write a :func:`detections_dataset` as JSON Lines or Parquet files into ``folder`` (Ray names the files).

    A non-empty ``folder`` is refused unless ``overwrite`` (its files are then left, and new ones added).
    """
    folder = os.fspath(folder)
    if file_format not in ("jsonl", "parquet"):
        raise InputError(f"file_format must be 'jsonl' or 'parquet', got {file_format!r}")
    if os.path.isdir(folder) and os.listdir(folder) and not overwrite:
        raise OutputExistsError(f"{folder} already holds files; choose an empty folder or pass overwrite=True")
    if file_format == "parquet":
        dataset.write_parquet(folder)
    else:
        dataset.write_json(folder)


def run_on_ray(items: Sequence[ImageItem], settings: DetectionSettings, sink: Any, progress: RunProgress, *,
               workers: int | None = None, address: str | None = None, batch_size: int | None = None,
               device: str | None = None, detector_class: type = RayDetector) -> None:
    """The ``--engine ray`` run: rows stream back to this process and into ``sink`` (the results file) as each
    batch finishes; failed images are reported to ``progress``. ``device`` is where the actors run (default: a
    GPU each when the cluster has GPUs)."""
    workers = workers or 1
    started = connect(address)
    try:
        by_index = {item.index: item for item in items}
        found = detections_dataset(images_dataset(list(items)), settings, workers=workers, batch_size=batch_size,
                                   device=device, detector_class=detector_class)
        for batch in found.iter_batches(batch_format="pyarrow", batch_size=None):
            for row in batch.to_pylist():
                item = by_index[row["index"]]
                if row["error"] is not None:
                    progress.failed(item.image, row["error"])
                elif sink.add(item, record_of(row)):
                    progress.done()
    finally:
        if started:
            import ray

            ray.shutdown()
