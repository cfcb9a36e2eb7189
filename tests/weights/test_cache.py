"""Cache location, offline mode, mirror, local paths, digest pinning/manifest, and the download lock."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from weights_server import DATA, PATH, SHA, Fault, tiny_model

from audiodetic.errors import CheckpointError, DownloadError, WeightsNotFoundError
from audiodetic.weights import MODELS, cached_path, resolve
from audiodetic.weights.cache import MANIFEST_NAME, is_offline, mirror_url, resolve_cache_dir

REPO = Path(__file__).resolve().parents[2]


# --- cache directory ----------------------------------------------------------------------------------------

def test_cache_dir_order(weights_env, monkeypatch):
    home = weights_env / "home"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_cache_dir() == home / ".cache" / "audiodetic"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # ignored: the XDG spec wants absolute paths
    assert resolve_cache_dir() == home / ".cache" / "audiodetic"
    monkeypatch.setenv("XDG_CACHE_HOME", str(weights_env / "xdg"))
    assert resolve_cache_dir() == weights_env / "xdg" / "audiodetic"
    monkeypatch.setenv("AUDIODETIC_CACHE", str(weights_env / "env"))
    assert resolve_cache_dir() == weights_env / "env"
    assert resolve_cache_dir(weights_env / "arg") == weights_env / "arg"


def test_default_download_goes_to_env_cache_not_cwd(server, weights_env, monkeypatch):
    monkeypatch.chdir(weights_env)
    monkeypatch.setenv("AUDIODETIC_CACHE", str(weights_env / "env-cache"))
    path = resolve(tiny_model(server), progress=False)
    assert path == weights_env / "env-cache" / "tiny.bin"
    assert not (weights_env / "tiny.bin").exists()


# --- offline ------------------------------------------------------------------------------------------------

def test_offline_env_never_touches_network_and_explains(server, weights_env, monkeypatch):
    monkeypatch.setenv("AUDIODETIC_OFFLINE", "1")
    model = tiny_model(server)
    cache = weights_env / "cache"
    with pytest.raises(WeightsNotFoundError) as info:
        resolve(model, cache_dir=cache, progress=False)
    message = str(info.value)
    assert "tiny.bin" in message and str(cache / "tiny.bin") in message and model.url in message
    assert "by hand" in message
    assert server.requests == []
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(DATA)  # placed by hand: accepted and recorded
    assert resolve(model, cache_dir=cache, progress=False).read_bytes() == DATA
    assert server.requests == []
    assert json.loads((cache / MANIFEST_NAME).read_text())["files"]["tiny.bin"]["sha256"] == SHA


def test_offline_argument_overrides_env(server, weights_env, monkeypatch):
    monkeypatch.setenv("AUDIODETIC_OFFLINE", "0")
    with pytest.raises(WeightsNotFoundError):
        resolve(tiny_model(server), cache_dir=weights_env / "c", offline=True, progress=False)
    monkeypatch.setenv("AUDIODETIC_OFFLINE", "yes")
    assert resolve(tiny_model(server), cache_dir=weights_env / "c", offline=False, progress=False).is_file()
    assert len(server.gets()) == 1


def test_offline_env_must_be_boolean(weights_env, monkeypatch):
    monkeypatch.setenv("AUDIODETIC_OFFLINE", "maybe")
    with pytest.raises(ValueError, match="AUDIODETIC_OFFLINE"):
        is_offline()


# --- mirror -------------------------------------------------------------------------------------------------

def test_mirror_url_rewrites_origin_and_keeps_path():
    url = MODELS["clip-vit-b32"].url
    expected = "http://127.0.0.1:9/m/clip/models/" + MODELS["clip-vit-b32"].sha256 + "/ViT-B-32.pt"
    assert mirror_url(url, "http://127.0.0.1:9/m/") == expected
    assert mirror_url(url, "http://127.0.0.1:9/m") == expected
    assert mirror_url("https://a.example/x/y.pth?v=1", "https://127.0.0.1/") == "https://127.0.0.1/x/y.pth?v=1"
    assert mirror_url(url, "") == url
    for bad in ("ftp://127.0.0.1/", "127.0.0.1/m", "http://127.0.0.1/?q=1"):
        with pytest.raises(ValueError, match="AUDIODETIC_MIRROR"):
            mirror_url(url, bad)


def test_known_model_downloads_through_mirror(server, weights_env, monkeypatch):
    model = MODELS["Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size"]
    mirrored = "/mirror/detic/" + model.filename
    server.files[mirrored] = DATA
    monkeypatch.setenv("AUDIODETIC_MIRROR", server.url("/mirror/"))
    cache = weights_env / "cache"
    path = resolve("detic-r50", cache_dir=cache, progress=False)
    assert path == cache / model.filename == cached_path("detic-r50", cache_dir=cache)
    assert path.read_bytes() == DATA
    assert [r.path for r in server.gets()] == [mirrored]


def test_mirror_with_wrong_bytes_for_published_digest(server, weights_env, monkeypatch):
    model = MODELS["clip-vit-b32"]
    server.files["/clip/models/" + model.sha256 + "/ViT-B-32.pt"] = DATA
    monkeypatch.setenv("AUDIODETIC_MIRROR", server.url("/"))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        resolve("clip-vit-b32", cache_dir=weights_env / "c", progress=False)
    assert not (weights_env / "c" / "ViT-B-32.pt").exists()


# --- local paths and names ------------------------------------------------------------------------------------

def test_local_path_is_returned_as_given(weights_env):
    path = weights_env / "mine.pth"
    path.write_bytes(DATA)
    assert resolve(path) == path
    assert resolve(str(path)) == path
    assert resolve(str(path), sha256=SHA) == path
    with pytest.raises(CheckpointError, match="sha256"):
        resolve(path, sha256="0" * 64)


def test_missing_local_path_and_directory_and_unknown_name(weights_env):
    with pytest.raises(WeightsNotFoundError, match="not found"):
        resolve(weights_env / "missing.pth")
    with pytest.raises(WeightsNotFoundError, match="not a regular file"):
        resolve(weights_env)
    with pytest.raises(WeightsNotFoundError, match="detic-r50") as info:
        resolve("detic-r5O")
    assert "Did you mean" in str(info.value) and "imagebind_huge" in str(info.value)
    with pytest.raises(ValueError, match="not a SHA-256"):
        resolve(weights_env, sha256="abc")
    with pytest.raises(TypeError):
        resolve(3)  # type: ignore[arg-type]


# --- manifest and pinning -------------------------------------------------------------------------------------

def test_recorded_digest_is_enforced_on_redownload(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server)
    path = resolve(model, cache_dir=cache, progress=False)
    path.unlink()
    server.files[PATH] = b"a different file"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        resolve(model, cache_dir=cache, progress=False)
    assert not path.exists()


def test_modified_cached_file_is_removed_and_downloaded_again(server, weights_env, capsys):
    cache = weights_env / "cache"
    model = tiny_model(server)
    path = resolve(model, cache_dir=cache, progress=False)
    with open(path, "r+b") as handle:
        handle.write(b"XXXX")  # same size, new mtime: re-hashed and rejected
    assert resolve(model, cache_dir=cache, progress=False).read_bytes() == DATA
    assert len(server.gets()) == 2
    assert "removed cached" in capsys.readouterr().err
    path.unlink()  # the record of the first download still binds: a changed server file is refused
    server.files[PATH] = DATA[::-1]
    with pytest.raises(DownloadError, match="checksum mismatch"):
        resolve(model, cache_dir=cache, progress=False)


def test_pin_argument_is_recorded_and_enforced(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        resolve(model, cache_dir=cache, progress=False, sha256="ab" * 32)
    assert not (cache / "tiny.bin").exists()
    path = resolve(model, cache_dir=cache, progress=False, sha256=SHA.upper())
    entry = json.loads((cache / MANIFEST_NAME).read_text())["files"]["tiny.bin"]
    assert entry["pinned"] is True and entry["sha256"] == SHA
    # a different pin for the cached file: offline, the file is rejected (never silently used) and kept aside,
    # since it cannot be downloaded again
    with pytest.raises(WeightsNotFoundError, match=r"failed verification: its sha256 is .* but the pinned sha256 is "
                                                   r"(cd)+\. It was kept aside as .*tiny\.bin\.rejected-"):
        resolve(model, cache_dir=cache, progress=False, offline=True, sha256="cd" * 32)
    assert not path.exists()
    kept = list(cache.glob("tiny.bin.rejected-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == DATA


def test_pin_from_environment(server, weights_env, monkeypatch):
    model = tiny_model(server, name="tiny-model.v2")
    monkeypatch.setenv("AUDIODETIC_SHA256_TINY_MODEL_V2", "ef" * 32)
    with pytest.raises(DownloadError, match="ef" * 32):
        resolve(model, cache_dir=weights_env / "c", progress=False)
    monkeypatch.setenv("AUDIODETIC_SHA256_TINY_MODEL_V2", "not hex")
    with pytest.raises(ValueError, match="AUDIODETIC_SHA256_TINY_MODEL_V2"):
        resolve(model, cache_dir=weights_env / "c", progress=False)


def test_corrupt_manifest_is_set_aside(server, weights_env):
    cache = weights_env / "cache"
    cache.mkdir()
    (cache / MANIFEST_NAME).write_text("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        resolve(tiny_model(server), cache_dir=cache, progress=False)
    assert (cache / (MANIFEST_NAME + ".corrupt")).exists()
    assert json.loads((cache / MANIFEST_NAME).read_text())["files"]["tiny.bin"]["sha256"] == SHA


# --- lock -----------------------------------------------------------------------------------------------------

def test_two_threads_download_once(server, weights_env):
    cache = weights_env / "cache"
    model = tiny_model(server, sha256=SHA)
    server.faults[PATH] = Fault(delay_s=0.03)  # ~13 chunks: ~0.4 s, long enough for the threads to overlap
    results: list[Path | BaseException] = []

    def work() -> None:
        try:
            results.append(resolve(model, cache_dir=cache, progress=False))
        except BaseException as error:  # noqa: BLE001 (reported by the assertion below)
            results.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert results == [cache / "tiny.bin"] * 2
    assert (cache / "tiny.bin").read_bytes() == DATA
    assert len(server.gets()) == 1


def test_two_processes_download_once(server, weights_env):
    cache = weights_env / "cache"
    server.files[PATH] = DATA
    server.faults[PATH] = Fault(delay_s=0.08)  # ~1 s download: both processes start while it runs
    script = (
        "import sys; from audiodetic.weights import ModelFile, resolve\n"
        f"m = ModelFile(name='tiny-model', url={server.url(PATH)!r}, filename='tiny.bin', licence='MIT',"
        " kind='text', description='', architecture='none')\n"
        f"print(resolve(m, cache_dir={str(cache)!r}, progress=False))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [str(cache / "tiny.bin")] * 2
    assert hashlib.sha256((cache / "tiny.bin").read_bytes()).hexdigest() == SHA
    assert len(server.gets()) == 1
