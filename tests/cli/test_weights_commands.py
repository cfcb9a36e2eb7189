"""``audiodetic download`` and ``audiodetic models`` through the command-line dispatcher, on a loopback mirror."""

from __future__ import annotations

import argparse
import json

import pytest
from weights_server import DATA, SHA

from audiodetic.cli import download as download_cli
from audiodetic.cli import main
from audiodetic.weights import MODELS

R50 = MODELS["Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size"]
BOXSUP = MODELS["BoxSup-C2_L_CLIP_R5021k_640b64_4x"]


@pytest.fixture
def mirror(server, weights_env, monkeypatch):
    """Serve the R50 and BoxSup files (fake bytes) under /m/ and point AUDIODETIC_MIRROR there."""
    server.files["/m/detic/" + R50.filename] = DATA
    server.files["/m/detic/" + BOXSUP.filename] = DATA[::-1]
    monkeypatch.setenv("AUDIODETIC_MIRROR", server.url("/m/"))
    return server


def test_register_adds_both_subcommands():
    parser = argparse.ArgumentParser(prog="audiodetic")
    subparsers = parser.add_subparsers(dest="command")
    download_cli.register(subparsers)
    args = parser.parse_args(["download", "detic-r50", "boxsup-r50", "--cache-dir", "/x", "--no-progress"])
    assert args.func is download_cli.run and args.names == ["detic-r50", "boxsup-r50"]
    args = parser.parse_args(["models", "--json"])
    assert args.func is download_cli.run and args.json


def test_download_prints_paths_and_models_lists_them(mirror, weights_env, capsys):
    cache = weights_env / "cache"
    assert main(["download", "detic-r50", "boxsup-r50", "--cache-dir", str(cache)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [str(cache / R50.filename), str(cache / BOXSUP.filename)]
    assert R50.filename in err  # the progress bar
    assert (cache / R50.filename).read_bytes() == DATA
    assert main(["download", "detic-r50", "--cache-dir", str(cache), "--no-progress"]) == 0  # re-verified
    assert len(mirror.gets()) == 2

    assert main(["models", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert str(cache) in out.splitlines()[0]
    assert "detic-r50" in lines[R50.name] and str(cache / R50.filename) in lines[R50.name]
    assert "Apache-2.0" in lines[R50.name] and "195.3 KiB" in lines[R50.name]
    assert lines["imagebind_huge"].split()[-1] == "no" and "CC-BY-NC-4.0" in lines["imagebind_huge"]
    assert "clip-vit-b32" in lines and "MIT" in lines["clip-vit-b32"]

    assert main(["models", "--json", "--cache-dir", str(cache)]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_name = {row["name"]: row for row in listing["models"]}
    assert by_name[R50.name]["cached"] is True and by_name[R50.name]["size"] == len(DATA)
    assert by_name["imagebind_huge"]["cached"] is False and by_name["clip-vit-b32"]["sha256"] == MODELS[
        "clip-vit-b32"].sha256


def test_download_sha256_pin(mirror, weights_env, capsys):
    cache = weights_env / "cache"
    assert main(["download", "detic-r50", "--cache-dir", str(cache), "--no-progress", "--sha256", "0" * 64]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert not (cache / R50.filename).exists()
    assert main(["download", "detic-r50", "--cache-dir", str(cache), "--no-progress", "--sha256", SHA]) == 0
    manifest = json.loads((cache / "manifest.json").read_text())["files"][R50.filename]
    assert manifest["pinned"] is True and manifest["sha256"] == SHA


def test_download_usage_errors(mirror, weights_env, capsys):
    cache = str(weights_env / "cache")
    assert main(["download", "detic-r50", "boxsup-r50", "--sha256", SHA, "--cache-dir", cache]) == 1
    assert "--sha256" in capsys.readouterr().err
    assert main(["download", "detic-r50", "nonsense-model", "--cache-dir", cache]) == 1
    err = capsys.readouterr().err
    assert "nonsense-model" in err and "imagebind_huge" in err
    assert mirror.requests == []  # nothing downloaded before the names were checked


def test_download_offline_reports_where_to_put_the_file(mirror, weights_env, monkeypatch, capsys):
    monkeypatch.setenv("AUDIODETIC_OFFLINE", "1")
    cache = weights_env / "cache"
    assert main(["download", "boxsup-r50", "--cache-dir", str(cache)]) == 1
    err = capsys.readouterr().err
    assert str(cache / BOXSUP.filename) in err and BOXSUP.url in err
    assert mirror.requests == []
