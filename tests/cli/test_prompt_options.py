"""``audiodetic detect`` with sound/text prompts, folders, globs and drawings, on random checkpoint files in the
official layouts (Detic tiny, ImageBind tiny), a saved random bridge and a tiny CLIP text checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from surfaces_fixtures import scene, write_tone

from audiodetic.cli import main
from audiodetic.collection.pipeline import drawing_paths
from audiodetic.collection.sources import list_images
from audiodetic.inputs import parse_audio_options, parse_text_options


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from audiodetic.bridge import LinearBridge
    from audiodetic.encoders.clip_text import ClipTextEncoder
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint

    root = tmp_path_factory.mktemp("cli_prompts")
    detector = make_detic_checkpoint(root / "detic_tiny.pth", "tiny", seed=0)
    imagebind = write_imagebind_checkpoint(root / "imagebind_tiny.pth", "tiny", seed=0)
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

    audio_dim = ImageBindAudioEncoder.from_checkpoint(imagebind).embed_dim
    bridge = root / "bridge.npz"
    LinearBridge.random(audio_dim, 512, seed=0).save(bridge)
    clip = root / "clip_tiny.pt"
    torch.save(ClipTextEncoder.tiny(seed=0).model.state_dict(), clip)
    photos = root / "photos"
    photos.mkdir()
    for index, size in enumerate([(90, 120), (64, 80)]):
        Image.fromarray(scene(*size, seed=index)).save(photos / f"shot{index}.png")
    (photos / "notes.txt").write_text("not an image")
    sounds = root / "sounds"
    sounds.mkdir()
    write_tone(sounds / "bark.wav", 300.0)
    write_tone(sounds / "bark2.wav", 350.0)
    write_tone(sounds / "siren.wav", 1100.0, sample_rate=22050)
    return {"root": root, "detector": detector, "imagebind": imagebind, "bridge": bridge, "clip": clip,
            "photos": photos, "sounds": sounds}


def _common(files) -> list[str]:
    return ["--detector", str(files["detector"]), "--audio-weights", str(files["imagebind"]),
            "--bridge", str(files["bridge"]), "--text-weights", str(files["clip"]), "--no-progress"]


def test_sounds_texts_folder_and_drawings(files, capsys) -> None:
    out = files["root"] / "out.json"
    drawn = files["root"] / "drawn"
    sounds = files["sounds"]
    code = main(["detect", str(files["photos"]), *_common(files),
                 "--audio", f"dog={sounds / 'bark.wav'}", "--audio", f"dog={sounds / 'bark2.wav'}",
                 "--audio", str(sounds / "siren.wav"), "--text", "car", "--score-threshold", "0.3",
                 "--output", str(out), "--draw", str(drawn)])
    assert code == 0, capsys.readouterr().err
    results = json.loads(out.read_text())
    assert [r["image"] for r in results] == [str(files["photos"] / "shot0.png"), str(files["photos"] / "shot1.png")]
    labels = {d["label"] for r in results for d in r["detections"]}
    assert labels and labels <= {"dog", "siren", "car"}
    ids = {d["label"]: d["class_id"] for r in results for d in r["detections"]}
    assert all(["dog", "siren", "car"].index(label) == class_id for label, class_id in ids.items())
    for result in results:
        drawing = Image.open(drawn / (result["image"].rsplit("/", 1)[1]))
        assert drawing.size == (result["width"], result["height"])
        original = np.asarray(Image.open(result["image"]).convert("RGB"))
        assert (np.asarray(drawing) != original).any() == bool(result["detections"])


def test_glob_and_stdout_with_vocabulary_file(files, capsys) -> None:
    vocabulary = files["root"] / "vocab.npy"
    np.save(vocabulary, np.random.default_rng(0).normal(size=(2, 512)).astype(np.float32))
    pattern = str(files["photos"] / "*1.png")
    code = main(["detect", pattern, *_common(files), "--vocabulary", str(vocabulary), "--names", "a,b",
                 "--text", "pet=a small dog", "--score-threshold", "0.3", "--output", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = json.loads(captured.out)
    assert len(results) == 1 and results[0]["image"].endswith("shot1.png")
    assert {d["label"] for d in results[0]["detections"]} <= {"pet", "a", "b"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--audio", "dog=missing.wav"], "missing.wav"),
        (["--audio", "=x.wav"], "NAME=FILE"),
        (["--text", "a=", "--text", "b"], "NAME=PHRASE"),
        ([], "no prompts"),
        (["--text", "car", "--names", "a,b"], "--vocabulary"),
        (["--text", "car", "--bridge", "nope.npz"], "nope.npz"),
    ],
)
def test_errors_exit_1_with_a_message(files, capsys, argv, message) -> None:
    bridge = [] if "--bridge" in argv else ["--bridge", str(files["bridge"])]
    code = main(["detect", str(files["photos"]), "--detector", str(files["detector"]), "--audio-weights",
                 str(files["imagebind"]), "--text-weights", str(files["clip"]), "--no-progress", *bridge, *argv,
                 "--output", str(files["root"] / "never.json")])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (files["root"] / "never.json").exists()


def test_missing_weights_and_bad_images_fail_fast(files, capsys, tmp_path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["detect", str(bad), "--text", "car", "--output", str(tmp_path / "o.json")]) == 1
    assert "bad.png" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "*.jpg"), "--text", "car", "--output", str(tmp_path / "o.json")]) == 1
    assert "no files match" in capsys.readouterr().err
    code = main(["detect", str(files["photos"]), "--detector", str(tmp_path / "absent.pth"), "--text", "car",
                 "--output", str(tmp_path / "o.json")])
    assert code == 1 and "absent.pth" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "--output"])
    assert exit_info.value.code == 2


def test_argument_helpers(tmp_path) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    assert parse_audio_options([f"x={tmp_path / 'a.wav'}", str(tmp_path / "a.wav")]) == {
        "x": [str(tmp_path / "a.wav")], "a": [str(tmp_path / "a.wav")]}
    assert parse_text_options(["car", "pet = a dog"]) == {"car": "car", "pet": "a dog"}
    with pytest.raises(ValueError, match="twice"):
        parse_text_options(["car", "car"])
    for name in ("b.png", "a.jpg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    found, missing = list_images([str(tmp_path), str(tmp_path / "a.jpg")])
    assert [item.image for item in found] == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")] and not missing
    from audiodetic.collection.sources import ImageItem

    same_stem = [ImageItem(str(tmp_path / "x" / "a.png"), "", 0), ImageItem(str(tmp_path / "y" / "a.jpg"), "", 1)]
    assert drawing_paths(same_stem, tmp_path) == {0: tmp_path / "a.png", 1: tmp_path / "a-2.png"}


def test_load_from_files_matches_the_command(files, capsys) -> None:
    import audiodetic

    model = audiodetic.load({"detector": files["detector"], "audio": files["imagebind"], "text": files["clip"],
                             "bridge": str(files["bridge"])})
    image = files["photos"] / "shot0.png"
    siren = files["sounds"] / "siren.wav"
    result = model.detect(image, siren, text_prompts="car", score_threshold=0.3)
    assert result.names == ("siren", "car")
    assert main(["detect", str(image), *_common(files), "--audio", f"siren={siren}", "--text", "car",
                 "--score-threshold", "0.3", "--output", "-"]) == 0
    from_cli = json.loads(capsys.readouterr().out)[0]
    assert from_cli == result.to_json_dict(image=str(image))


def test_demo_command_loads_explicit_files(files, monkeypatch) -> None:
    pytest.importorskip("gradio")
    from audiodetic.demo import page

    launched = {}

    class FakeDemo:
        local_url = "http://127.0.0.1:7999/"

        def launch(self, **kwargs):
            launched.update(kwargs)

        def block_thread(self):
            launched["blocked"] = True

    def fake_build(backend, **kwargs):
        launched["model"] = backend.model(None)
        return FakeDemo()

    monkeypatch.setattr(page, "build_demo", fake_build)
    assert main(["demo", "--detector", str(files["detector"]), "--audio-weights", str(files["imagebind"]),
                 "--bridge", str(files["bridge"]), "--host", "127.0.0.1", "--port", "7999"]) == 0
    assert launched["server_name"] == "127.0.0.1" and launched["server_port"] == 7999 and launched["blocked"]
    model = launched["model"]
    assert model.name == str(files["detector"]) and model.audio_encoder().embed_dim > 0
