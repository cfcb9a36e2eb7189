"""The local pipeline (threads preparing images ahead, batches) gives the plain loop's detections, image for image;
failures are reported, counted and skipped."""

from __future__ import annotations

import pytest
import torch
from collection_helpers import loop_records, read_lines

from audiodetic.collection import RunOptions, detect_collection
from audiodetic.collection.pipeline import PipelineOptions, run_pipeline
from audiodetic.collection.progress import RunProgress
from audiodetic.collection.session import DetectionSession
from audiodetic.collection.sources import list_images


@pytest.mark.parametrize(("workers", "batch_size"), [(1, 1), (3, 1)])
def test_pipelined_results_equal_the_plain_loop(assets, settings, plain_loop, tmp_path, workers, batch_size):
    out = tmp_path / "out.jsonl"
    summary = detect_collection([str(assets["photos"])], settings, out,
                                RunOptions(workers=workers, batch_size=batch_size, progress=False))
    assert summary.processed == 6 and summary.failed_total == 0
    lines = read_lines(out)
    assert [line["image"] for line in lines] == [str(p) for p in assets["images"]]  # in the run's order
    for line in lines:
        assert line == plain_loop[line["image"]]


def test_batched_pipeline_equals_the_plain_loop(assets, settings, tmp_path):
    """Images of equal input shape share a backbone pass; native CPU convolutions compute each image of a batch
    as alone (oneDNN rounds batches differently: detector/test_batching.py), so the lines are equal bit for bit."""
    import audiodetic

    model = audiodetic.load(assets["checkpoint"])
    batches = []
    model.detector.backbone.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    with torch.backends.mkldnn.flags(enabled=False):
        summary = detect_collection([str(assets["photos"])], settings, tmp_path / "out.jsonl",
                                    RunOptions(workers=2, batch_size=4, progress=False), model=model)
        expected = loop_records(assets, settings)
    assert summary.processed == 6
    assert max(batches) > 1 and sum(batches) == 6  # the pipeline did batch, each image once
    lines = read_lines(tmp_path / "out.jsonl")
    assert [line["image"] for line in lines] == [str(p) for p in assets["images"]]
    for line in lines:
        assert line == expected[line["image"]]


def test_unreadable_images_are_reported_counted_and_skipped(assets, settings, plain_loop, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    names = []
    for index, path in enumerate(assets["images"][:4]):
        names.append(f"{index}a.png")
        (folder / names[-1]).write_bytes(path.read_bytes())
        if index in (1, 2):
            names.append(f"{index}b.png")
            (folder / names[-1]).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out.jsonl"
    summary = detect_collection([str(folder)], settings, out, RunOptions(workers=2, progress=False))
    err = capsys.readouterr().err
    assert summary.failed_total == 2 and summary.processed == 4
    assert sorted(image for image, _ in summary.failures) == [str(folder / "1b.png"), str(folder / "2b.png")]
    assert f"{folder / '1b.png'}: failed: image: cannot read" in err
    lines = read_lines(out)
    assert [line["image"] for line in lines] == [str(folder / n) for n in ("0a.png", "1a.png", "2a.png", "3a.png")]
    for line, original in zip(lines, assets["images"]):
        assert line["detections"] == plain_loop[str(original)]["detections"]


def test_a_failing_batch_is_retried_image_by_image(assets, settings, tmp_path):
    session = DetectionSession(settings)
    real = session.detect
    poisoned = str(assets["images"][2])

    def detect(prepared, *, batch_size=1):
        if any(p.item.path == poisoned for p in prepared):
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(prepared, batch_size=batch_size)

    session.detect = detect
    items, _ = list_images([str(assets["photos"])])
    written = []

    class Sink:
        def add(self, item, record):
            written.append(item.image)
            return True

    progress = RunProgress(len(items), enabled=False)
    run_pipeline(session, items, Sink(), progress, PipelineOptions(batch_size=3, workers=2))
    assert written == [i.image for i in items if i.path != poisoned]
    assert progress.failures == [(poisoned, "RuntimeError: CUDA out of memory (simulated)")]


def test_fail_fast_stops_at_the_first_failure(assets, settings, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(assets["images"][0].read_bytes())
    (folder / "b.png").write_bytes(b"not an image")
    (folder / "c.png").write_bytes(assets["images"][1].read_bytes())
    with pytest.raises(ValueError, match=r"b\.png: image: cannot read .* \(stopped by --fail-fast\)"):
        detect_collection([str(folder)], settings, tmp_path / "out.jsonl",
                          RunOptions(workers=1, fail_fast=True, progress=False))
    assert [line["image"] for line in read_lines(tmp_path / "out.jsonl")] == [str(folder / "a.png")]


def test_a_run_never_builds_full_size_masks(assets, settings, plain_loop, tmp_path, monkeypatch):
    from audiodetic.rle_masks import RleMasks

    def refuse(*args, **kwargs):
        raise AssertionError("a full-size (H, W) mask was built")

    monkeypatch.setattr(RleMasks, "to_dense", refuse)
    monkeypatch.setattr(RleMasks, "mask", refuse)
    images = [str(p) for p in assets["images"][:2]]
    summary = detect_collection(images, settings, tmp_path / "out.jsonl", RunOptions(workers=1, progress=False))
    assert summary.processed == 2 and summary.failed_total == 0
    assert [line for line in read_lines(tmp_path / "out.jsonl")] == [plain_loop[i] for i in images]
