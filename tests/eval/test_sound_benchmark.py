"""The sound-prompt protocol end to end: generated tone clips, tiny random ImageBind/CLIP/Detic models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_fixtures import make_dataset, make_esc50, write_map

from audiodetic.cli import main
from audiodetic.eval.datasets import EvalDataset
from audiodetic.eval.mappings import load_mapping, read_clip_index
from audiodetic.eval.pipeline import RunSettings, run_sound_benchmark
from audiodetic.eval.sound_benchmark import plan_benchmark, sample_clips
from audiodetic.eval.vocabularies import text_vocabulary
from audiodetic.sharding import Shard

SOUNDS = [("dog", "dog"), ("car_horn", "car"), ("toilet_flush", "toilet"), ("church_bells", "bell")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    annotations, images = make_dataset(root / "data", "coco", num_images=2, seed=5)
    dataset = EvalDataset.load("coco", annotations, images)
    make_esc50(root / "esc50", [sound for sound, _ in SOUNDS] + ["rain"], clips_per_class=3)
    mapping = load_mapping(write_map(root / "map.csv", SOUNDS), "coco")
    plan = plan_benchmark(dataset, mapping, read_clip_index(root / "esc50"), shots=(1, 2), seeds=(0, 1))
    return root, dataset, plan


def test_plan_and_sampling(setup) -> None:
    root, dataset, plan = setup
    assert plan.categories == ("dog", "car", "toilet", "bell")
    assert plan.category_ids == (1, 3, 7, 9)
    clips = plan.clips["car"]
    assert len(clips) == 3 and all("-1" in p.name for p in clips)  # target 1 = car_horn
    first, second = sample_clips(clips, 2, 0, "car"), sample_clips(clips, 2, 0, "car")
    assert first == second and len(set(first)) == 2
    assert sample_clips(clips, 1, 0, "car") == first[:1]  # nested across K
    assert {tuple(sample_clips(clips, 2, s, "car")) for s in range(6)} != {tuple(first)}  # seeds differ
    with pytest.raises(ValueError, match="fewer clips than the largest shot count 8"):
        plan_benchmark(dataset, load_mapping(write_map(root / "m2.csv", SOUNDS), "coco"),
                       read_clip_index(root / "esc50"), shots=(8,))
    with pytest.raises(ValueError, match="not in the coco annotations"):
        plan_benchmark(dataset, load_mapping("esc50", "coco"), read_clip_index(root / "esc50"), shots=(1,))


def test_protocol_runs_end_to_end_with_tiny_models(setup, tmp_path: Path) -> None:
    from audiodetic.bridge import LinearBridge, RetrievalBridge
    from audiodetic.detector.config import DetectorConfig
    from audiodetic.detector.model import build_detector
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder
    from audiodetic.encoders.clip_text import ClipTextEncoder
    from audiodetic.eval.components import encoder_embedder

    _, dataset, plan = setup
    torch.manual_seed(0)
    detector = build_detector(DetectorConfig.tiny()).eval()
    audio = ImageBindAudioEncoder.tiny(seed=0)
    rng = np.random.default_rng(0)
    bridges = {"linear": LinearBridge.random(audio.embed_dim, 512, seed=0),
               "retrieval": RetrievalBridge(rng.normal(size=(12, audio.embed_dim)), rng.normal(size=(12, 512)))}
    text = text_vocabulary(plan.categories, ClipTextEncoder.tiny(seed=0))
    out = tmp_path / "bench"
    summaries = run_sound_benchmark(detector, dataset, plan, text, bridges, encoder_embedder(audio), out,
                                    map_name="test-map", encoder_id="tiny", settings=RunSettings(0.0, 8),
                                    progress=False, plots=True)
    variants = json.loads((out / "run.json").read_text())["variants"]
    assert len(variants) == 1 + 2 * 2 * 2
    assert variants["audio-linear-k1-s0"]["embeddings_sha1"] != variants["audio-linear-k1-s1"]["embeddings_sha1"]
    for iou_type in ("bbox", "segm"):
        summary = summaries[iou_type]
        assert [(r["bridge"], r["shots"]) for r in summary["overall"]] == \
            [("linear", 1), ("linear", 2), ("retrieval", 1), ("retrieval", 2)]
        for row in summary["overall"]:
            runs = [json.loads((out / f"audio-{row['bridge']}-k{row['shots']}-s{s}/metrics.json").read_text())
                    for s in (0, 1)]
            per_seed = [r[iou_type]["summary"]["AP"] for r in runs]
            assert row["AP_per_seed"] == pytest.approx(per_seed)
            assert row["AP_mean"] == pytest.approx(np.mean(per_seed))
            if summary["text_AP"] > 0:
                assert row["ratio"] == pytest.approx(row["AP_mean"] / summary["text_AP"])
        assert [r["category"] for r in summary["per_category"]] == list(plan.categories)
        text_metrics = json.loads((out / "text/metrics.json").read_text())[iou_type]
        assert {c["category_id"] for c in text_metrics["per_category"]} == set(plan.category_ids)
    for name in ("benchmark.json", "benchmark.md", "benchmark_bbox_overall.csv", "benchmark_segm_per_category.csv",
                 "benchmark_bbox_ap_vs_shots.png", "clips.json", "audio_embeddings.npz"):
        assert (out / name).stat().st_size > 0, name
    clips = json.loads((out / "clips.json").read_text())
    assert set(clips) == {"k1-s0", "k1-s1", "k2-s0", "k2-s1"} and len(clips["k2-s1"]["dog"]) == 2


class EmbeddingOracle:
    """Each annotated object is a region whose embedding is its category's text embedding; it is reported with
    its true box for every vocabulary entry, scored by cosine similarity. Text prompts therefore score AP 1."""

    def __init__(self, dataset: EvalDataset, text_rows: dict[str, np.ndarray]) -> None:
        self.dataset, self.text_rows = dataset, text_rows
        self.by_width = {dataset.image_record(i)["width"]: i for i in dataset.image_ids}

    def detect(self, image, vocabulary, *, score_threshold, max_detections):
        from audiodetic.structures import Detections

        image_id = self.by_width[image.shape[1]]
        boxes, scores, classes = [], [], []
        for a in self.dataset.data["annotations"]:
            name = self.dataset.category(a["category_id"])["name"]
            if a["image_id"] != image_id or name not in self.text_rows:
                continue
            x, y, w, h = a["bbox"]
            similarity = vocabulary.embeddings @ self.text_rows[name]
            for k, value in enumerate(similarity):
                boxes.append([x, y, x + w, y + h])
                scores.append((float(value) + 1) / 2)
                classes.append(k)
        return Detections(np.array(boxes, np.float32).reshape(-1, 4), scores, classes, vocabulary.names,
                          image.shape[:2])


def test_ratio_is_one_for_a_faithful_bridge_and_lower_for_a_scrambled_one(tmp_path: Path) -> None:
    from audiodetic.bridge import LinearBridge
    from audiodetic.vocabulary import Vocabulary

    annotations, images = make_dataset(tmp_path / "data", "coco", num_images=8, seed=11)
    dataset = EvalDataset.load("coco", annotations, images)
    make_esc50(tmp_path / "esc50", [sound for sound, _ in SOUNDS], clips_per_class=4)
    index = read_clip_index(tmp_path / "esc50")
    plan = plan_benchmark(dataset, load_mapping(write_map(tmp_path / "map.csv", SOUNDS), "coco"), index,
                          shots=(1, 4), seeds=(0, 1))
    rng = np.random.default_rng(3)
    text = Vocabulary(plan.categories, rng.normal(size=(4, 16)), space="test")
    target_of = {path: int(path.stem.split("-")[-1]) for paths in index.clips.values() for path in paths}

    def embed(paths):  # one-hot of the clip's ESC-50 target, plus noise fixed per clip
        out = np.stack([0.05 * np.random.default_rng(sum(p.name.encode())).normal(size=8) for p in paths])
        out[np.arange(len(paths)), [target_of[p] for p in paths]] += 1.0
        return out

    faithful = np.zeros((8, 16))
    faithful[:4] = text.embeddings  # target t (SOUNDS order) -> its category's text embedding
    bridges = {"faithful": LinearBridge(faithful), "scrambled": LinearBridge(np.roll(faithful[:4], 1, axis=0).tolist()
                                                                            + [[0.0] * 16] * 4)}
    oracle = EmbeddingOracle(dataset, dict(zip(plan.categories, text.embeddings)))
    summaries = run_sound_benchmark(oracle, dataset, plan, text, bridges, embed, tmp_path / "out", map_name="t",
                                    settings=RunSettings(0.0, 300), progress=False, plots=False)
    # the same benchmark in three shards, finished by `audiodetic eval merge`, gives the same tables
    for index in range(3):
        assert run_sound_benchmark(oracle, dataset, plan, text, bridges, embed, tmp_path / "sharded", map_name="t",
                                   settings=RunSettings(0.0, 300), shard=Shard(index, 3), progress=False) is None
    assert main(["eval", "merge", "--output", str(tmp_path / "sharded"), "--no-plots"]) == 0
    merged = json.loads((tmp_path / "sharded/benchmark.json").read_text())["results"]
    assert merged == json.loads((tmp_path / "out/benchmark.json").read_text())["results"]
    summary = summaries["bbox"]
    assert summary["text_AP"] == pytest.approx(1.0)
    rows = {(r["bridge"], r["shots"]): r for r in summary["overall"]}
    for k in (1, 4):
        assert rows["faithful", k]["ratio"] == pytest.approx(1.0)
        assert rows["scrambled", k]["ratio"] < 0.8
    for row in summary["per_category"]:
        if row["num_gt"]:
            assert row["faithful_k4_ratio"] == pytest.approx(1.0)


def test_benchmark_prompts_equal_the_product_sound_prompts(setup) -> None:
    """A K-clip prompt here is what ``prompts.build_vocabulary`` makes of ``Sound(those clips)``."""
    from audiodetic.bridge import LinearBridge
    from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder
    from audiodetic.eval.components import encoder_embedder
    from audiodetic.eval.sound_benchmark import audio_embeddings, audio_prompt
    from audiodetic.prompts import Sound, build_vocabulary

    _, _, plan = setup
    audio = ImageBindAudioEncoder.tiny(seed=1)
    bridge = LinearBridge.random(audio.embed_dim, 512, seed=2)
    clips = sample_clips(plan.clips["bell"], 2, 0, "bell")
    embedded = audio_embeddings(clips, encoder_embedder(audio))
    ours = audio_prompt(np.stack([embedded[p] for p in clips]), bridge)
    theirs = build_vocabulary({"bell": Sound(clips)}, audio_encoder=audio, bridge=bridge).embeddings[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
