"""The Ray Data engine on a local Ray runtime with 2 CPUs and the tiny model: the detections equal the plain
loop's, image for image; a killed worker loses and doubles nothing; a dead address fails in seconds."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'audiodetic[ray]')")

from collection_helpers import cli_options as _options  # noqa: E402
from collection_helpers import read_lines  # noqa: E402

from audiodetic.cli import main  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray runtime takes 10-30 s to start on two shared cores

REPO = Path(__file__).resolve().parents[2]


def test_an_address_where_nothing_answers_fails_in_seconds(assets, tmp_path, capsys):
    import ray

    assert not ray.is_initialized()
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    code = main(["detect", str(assets["photos"]), *_options(assets), "--engine", "ray", "--address",
                 f"127.0.0.1:{port}", "--no-progress", "--output", str(tmp_path / "out.jsonl")])
    assert code == 1 and time.monotonic() - start < 10
    assert f"--address 127.0.0.1:{port}: no Ray cluster answers at 127.0.0.1:{port}" in capsys.readouterr().err
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def cluster():
    import ray

    before = os.environ.get("PYTHONPATH")
    # the workers import audiodetic from this tree, this module (for DiesOnce) and the helpers it imports
    paths = [REPO, REPO / "tests" / "collection", REPO / "tests" / "helpers"]
    os.environ["PYTHONPATH"] = os.pathsep.join([*map(str, paths), before or ""])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


def test_ray_rows_equal_the_plain_loop_from_paths_and_bytes(cluster, assets, settings, plain_loop, tmp_path):
    from audiodetic.integrations.ray import detections_dataset, images_dataset, record_of, write_detections

    for as_bytes in (False, True):
        found = detections_dataset(images_dataset([str(assets["photos"])], as_bytes=as_bytes), settings,
                                   workers=2, batch_size=2)
        rows = found.take_all()
        assert sorted(row["image"] for row in rows) == sorted(plain_loop)
        for row in rows:
            assert row["error"] is None
            assert record_of(row) == plain_loop[row["image"]]
    write_detections(found, tmp_path / "parquet", file_format="parquet")
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "parquet")
    assert sorted(record_of(r)["image"] for r in table.to_pylist()) == sorted(plain_loop)
    with pytest.raises(FileExistsError, match="already holds files"):
        write_detections(found, tmp_path / "parquet", file_format="parquet")


def test_cli_engine_ray_streams_into_the_resumable_file(cluster, assets, plain_loop, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    code = main(["detect", str(assets["photos"]), str(broken), *_options(assets), "--engine", "ray", "--workers",
                 "2", "--no-progress", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and f"{broken}: failed: image: cannot read {broken} as an image" in err
    assert "7 images: 6 detected now, 0 already done, 1 failed" in err
    lines = read_lines(out)
    assert sorted(line["image"] for line in lines) == sorted(plain_loop)
    assert all(line == plain_loop[line["image"]] for line in lines)
    assert main(["detect", str(assets["photos"]), *_options(assets), "--engine", "ray", "--no-progress",
                 "--output", str(out)]) == 0
    assert "6 images: 0 detected now, 6 already done, 0 failed" in capsys.readouterr().err


class DiesOnce:
    """A RayDetector whose process dies (like a killed worker) the first time it meets ``img3.png``; the marker
    file beside the checkpoint says it has died once."""

    def __new__(cls, *args, **kwargs):
        from audiodetic.integrations.ray import RayDetector

        class Dying(RayDetector):
            def __call__(self, batch):
                marker = Path(self.session.settings.detector).parent / "ray-worker-died"
                if any(str(p).endswith("img3.png") for p in batch["path"]) and not marker.exists():
                    marker.write_text(str(os.getpid()))
                    os._exit(1)
                return super().__call__(batch)

        return Dying(*args, **kwargs)


def test_a_killed_worker_loses_and_doubles_nothing(cluster, assets, settings, plain_loop, tmp_path):
    from audiodetic.collection.progress import RunProgress
    from audiodetic.collection.results import ResultsFile
    from audiodetic.collection.sources import list_images
    from audiodetic.integrations.ray import run_on_ray

    marker = Path(settings.detector).parent / "ray-worker-died"
    marker.unlink(missing_ok=True)
    items, _ = list_images([str(assets["photos"])])
    results = ResultsFile(tmp_path / "out.jsonl", settings.identity()).open()
    progress = RunProgress(len(items), enabled=False)
    run_on_ray(items, settings, results, progress, workers=2, batch_size=1, detector_class=DiesOnce)
    results.close()
    assert marker.exists() and progress.failures == [] and progress.processed == 6
    lines = read_lines(tmp_path / "out.jsonl")
    assert sorted(line["image"] for line in lines) == sorted(plain_loop)  # each image once
    assert all(line == plain_loop[line["image"]] for line in lines)

