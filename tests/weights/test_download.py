"""Downloads through ``audiodetic.weights.resolve`` against a loopback server with injected faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from weights_server import DATA, PATH, SHA, Fault, WeightsServer, tiny_model

from audiodetic.errors import DownloadError
from audiodetic.weights import ModelFile, resolve
from audiodetic.weights.cache import MANIFEST_NAME


def manifest(cache: Path) -> dict:
    return json.loads((cache / MANIFEST_NAME).read_text())["files"]


def test_download_success_records_manifest_and_then_uses_cache(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server)
    path = resolve(model, cache_dir=cache, progress=False)
    assert path == cache / "tiny.bin"
    assert path.read_bytes() == DATA
    assert not (cache / "tiny.bin.part").exists()
    entry = manifest(cache)["tiny.bin"]
    assert entry["sha256"] == SHA and entry["size"] == len(DATA) and entry["pinned"] is False
    assert resolve(model, cache_dir=cache, progress=False) == path
    assert len(server.gets()) == 1  # the second call did not touch the network


def test_progress_bar_goes_to_stderr(server, weights_env, capsys):
    resolve(tiny_model(server), cache_dir=weights_env / "c", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "tiny.bin" in captured.err


def test_resume_after_cut_connection(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server, sha256=SHA)
    server.faults[PATH] = Fault(cut_after=70_000, cut_times=1)
    with pytest.raises(DownloadError, match="resume") as info:
        resolve(model, cache_dir=cache, progress=False)
    assert PATH in str(info.value)
    part = cache / "tiny.bin.part"
    assert part.stat().st_size == 70_000 and not (cache / "tiny.bin").exists()
    path = resolve(model, cache_dir=cache, progress=False)
    assert path.read_bytes() == DATA and not part.exists()
    assert [r.range for r in server.gets()] == [None, "bytes=70000-"]
    assert server.gets()[1].status == 206


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_name_url_and_status(server, weights_env, status):
    model = tiny_model(server)
    server.faults[PATH] = Fault(status=status)
    with pytest.raises(DownloadError) as info:
        resolve(model, cache_dir=weights_env / "c", progress=False)
    assert model.url in str(info.value) and f"HTTP {status}" in str(info.value)
    assert not (weights_env / "c" / "tiny.bin").exists()


def test_wrong_bytes_fail_checksum_and_leave_nothing(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server, sha256=SHA)
    server.files[PATH] = DATA[:-1] + b"x"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        resolve(model, cache_dir=cache, progress=False)
    assert not (cache / "tiny.bin").exists() and not (cache / "tiny.bin.part").exists()


def test_wrong_size_fails(server, weights_env):
    model = tiny_model(server, size=len(DATA) + 1)
    with pytest.raises(DownloadError, match="size mismatch"):
        resolve(model, cache_dir=weights_env / "c", progress=False)
    assert list((weights_env / "c").glob("tiny.bin*")) == []


def test_truncated_body_keeps_part_for_resume(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server)
    server.faults[PATH] = Fault(cut_after=1000, cut_times=2)
    for expected_size in (1000, 2000):
        with pytest.raises(DownloadError, match="closed early"):
            resolve(model, cache_dir=cache, progress=False)
        assert (cache / "tiny.bin.part").stat().st_size == expected_size
    assert not (cache / "tiny.bin").exists()
    assert resolve(model, cache_dir=cache, progress=False).read_bytes() == DATA


def test_server_ignoring_range_restarts_from_zero(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server, sha256=SHA)
    server.faults[PATH] = Fault(cut_after=50_000, cut_times=1, ignore_range=True)
    with pytest.raises(DownloadError):
        resolve(model, cache_dir=cache, progress=False)
    path = resolve(model, cache_dir=cache, progress=False)
    assert path.read_bytes() == DATA
    last = server.gets()[-1]
    assert last.range == "bytes=50000-" and last.status == 200


def test_file_changed_on_server_is_fetched_whole_not_spliced(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server)
    server.faults[PATH] = Fault(cut_after=60_000, cut_times=1)
    with pytest.raises(DownloadError):
        resolve(model, cache_dir=cache, progress=False)
    assert (cache / "tiny.bin.part.etag").exists()
    changed = DATA[::-1]
    server.files[PATH] = changed
    path = resolve(model, cache_dir=cache, progress=False)
    assert path.read_bytes() == changed
    first, second = server.gets()
    assert second.range == "bytes=60000-" and second.if_range is not None and second.status == 200
    assert list(cache.glob("tiny.bin.part*")) == []


def test_complete_part_answered_416_is_verified_and_kept(server, weights_env):
    cache = weights_env / "cache"
    cache.mkdir()
    (cache / "tiny.bin.part").write_bytes(DATA)
    path = resolve(tiny_model(server, sha256=SHA), cache_dir=cache, progress=False)
    assert path.read_bytes() == DATA
    assert [r.status for r in server.gets()] == [416]


def test_overlong_part_is_discarded(server, weights_env):
    cache = weights_env / "cache"
    cache.mkdir()
    (cache / "tiny.bin.part").write_bytes(DATA + b"junk")
    path = resolve(tiny_model(server), cache_dir=cache, progress=False)
    assert path.read_bytes() == DATA
    assert [r.status for r in server.gets()] == [416, 200]


def test_corrupt_part_is_retried_from_zero_once(server, weights_env):
    cache = weights_env / "cache"
    cache.mkdir()
    (cache / "tiny.bin.part").write_bytes(b"\0" * 5000)  # wrong prefix: the resumed file fails the checksum
    path = resolve(tiny_model(server, sha256=SHA), cache_dir=cache, progress=False)
    assert path.read_bytes() == DATA
    assert [r.range for r in server.gets()] == ["bytes=5000-", None]


def test_timeout_is_a_download_error(server, weights_env):
    model = tiny_model(server)
    server.faults[PATH] = Fault(delay_s=1.0)
    with pytest.raises(DownloadError, match="timed out"):
        resolve(model, cache_dir=weights_env / "c", progress=False, timeout=0.2)
    assert not (weights_env / "c" / "tiny.bin").exists()


def test_connection_refused_is_a_download_error(weights_env):
    with WeightsServer() as dead:
        url = dead.url(PATH)
    model = ModelFile(name="gone", url=url, filename="gone.bin", licence="MIT", kind="text", description="",
                      architecture="none")
    with pytest.raises(DownloadError, match="cannot connect"):
        resolve(model, cache_dir=weights_env / "c", progress=False, timeout=2)


def test_a_failed_download_says_where_the_file_goes_and_the_other_ways_to_provide_it(server, weights_env):
    model = tiny_model(server)
    server.faults[PATH] = Fault(status=503)
    cache = weights_env / "cache"
    with pytest.raises(DownloadError) as info:
        resolve(model, cache_dir=cache, progress=False)
    message = str(info.value)
    for part in (model.url, f"looked for: {cache / 'tiny.bin'}", "to place it by hand", "AUDIODETIC_CACHE",
                 "--detector PATH", "AUDIODETIC_OFFLINE=1"):
        assert part in message, part


def test_verifying_a_large_file_writes_one_line_to_a_log(server, weights_env, monkeypatch, capsys):
    import audiodetic.weights as weights_module

    cache = weights_env / "cache"
    path = resolve(tiny_model(server), cache_dir=cache, progress=False)
    with open(path, "r+b") as handle:  # same bytes, new mtime: verified again by hashing
        handle.write(DATA[:4])
    monkeypatch.setattr(weights_module, "_HASH_PROGRESS_MIN_BYTES", 1)
    resolve(tiny_model(server), cache_dir=cache, progress=True)
    err = capsys.readouterr().err  # pytest's captured stderr is not a terminal
    assert err == "audiodetic: verifying tiny.bin (0 MiB)\n"
