"""Official Detic checkpoint layouts -> Detector: round trips, error listings, dtypes, architecture detection."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from audiodetic.detector import convert
from audiodetic.detector.config import DetectorConfig
from audiodetic.errors import CheckpointError
from audiodetic.testing.detic_checkpoints import LAYOUTS, make_detic_checkpoint, make_detic_state_dict

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
OFFICIAL = [name for name, layout in LAYOUTS.items() if not layout.tiny]
TINY = [name for name, layout in LAYOUTS.items() if layout.tiny]


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    return make_detic_state_dict("tiny", seed=0)


def _official_state(detector: torch.nn.Module) -> dict[str, torch.Tensor]:
    arch = detector.config.backbone
    return {convert.to_official(k, arch): v for k, v in detector.state_dict().items()}


@pytest.mark.parametrize("layout", TINY)
def test_tiny_checkpoint_file_round_trip(tmp_path: Path, layout: str) -> None:
    path = make_detic_checkpoint(tmp_path / f"{layout}.pth", layout, seed=3)
    container = torch.load(path, weights_only=True)
    assert {"model", "iteration", "optimizer", "scheduler"} <= set(container)
    detector = convert.load_detector(path)  # no config: dimensions inferred from the tensors
    spec = LAYOUTS[layout]
    assert detector.config == DetectorConfig.tiny(spec.architecture)
    info = detector.checkpoint_info
    assert info["architecture"] == spec.architecture
    assert info["num_classes"] == spec.num_classes and info["fed_loss"] == spec.fed_loss
    assert info["source"] == str(path)
    ours = _official_state(detector)
    ignored = [k for k in container["model"] if convert._IGNORED.match(k)]
    assert set(ours) | set(ignored) == set(container["model"])
    for name, value in ours.items():
        assert torch.equal(value, container["model"][name]), name
    assert not any(p.requires_grad for p in detector.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("layout", OFFICIAL)
def test_official_layouts_equal_recorded_keys_and_load(layout: str) -> None:
    state = make_detic_state_dict(layout, seed=0, dtype=torch.float16)
    listing = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in state.items()]
    keys_file = REFERENCE / f"detic_{layout}.keys.json"
    if keys_file.is_file():
        recorded = json.loads(keys_file.read_text())["tensors"]
        recorded = [[name, shape, "int64" if dtype == "int64" else "float16"] for name, shape, dtype in recorded]
        assert listing == recorded
    spec = LAYOUTS[layout]
    assert convert.detect_architecture(state) == spec.architecture
    assert convert.infer_config(state) == spec.config()
    detector = convert.load_detector(state)
    assert detector.checkpoint_info["num_classes"] == spec.num_classes
    expected_dtypes = ["float16", "int64"] if spec.architecture == "swin_b" else ["float16"]
    assert detector.checkpoint_info["dtypes"] == expected_dtypes
    first = next(iter(detector.parameters()))
    assert first.dtype == torch.float32


@pytest.mark.parametrize("layout", OFFICIAL)
def test_detect_architecture_from_recorded_key_lists(layout: str) -> None:
    keys_file = REFERENCE / f"detic_{layout}.keys.json"
    if not keys_file.is_file():
        pytest.skip("shared/reference key lists are not next to this checkout")
    names = {name: None for name, _, _ in json.loads(keys_file.read_text())["tensors"]}
    assert convert.detect_architecture(names) == LAYOUTS[layout].architecture


def test_detect_architecture_rejects_other_layouts() -> None:
    with pytest.raises(CheckpointError, match="cannot tell the Detic backbone.*first: model.a, x.*resnet50, swin_b"):
        convert.detect_architecture({"model.a": torch.zeros(1), "x": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="detectron2 ResNet"):
        convert.detect_architecture({"backbone.bottom_up.stem.conv1.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="ConvNeXt"):
        convert.detect_architecture({"backbone.bottom_up.base.stem_0.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="both"):
        convert.detect_architecture({"backbone.bottom_up.base.conv1.weight": 0, "backbone.bottom_up.patch_embed.proj.weight": 0})


def test_errors_list_missing_unexpected_and_misshaped(tiny_state: dict[str, torch.Tensor]) -> None:
    state = dict(tiny_state)
    del state["roi_heads.box_head.1.fc2.bias"]
    state["roi_heads.extra_head.weight"] = torch.zeros(3)
    state["backbone.fpn_output4.weight"] = torch.zeros(32, 32, 1, 1)
    with pytest.raises(CheckpointError) as error:
        convert.load_detector(state)
    message = str(error.value)
    assert "1 missing: roi_heads.box_head.1.fc2.bias" in message
    assert "1 unexpected: roi_heads.extra_head.weight" in message
    assert "1 mis-shaped: backbone.fpn_output4.weight: file (32, 32, 1, 1) vs model (32, 32, 3, 3)" in message
    assert isinstance(error.value, ValueError)


def test_many_missing_are_counted_and_truncated(tiny_state: dict[str, torch.Tensor]) -> None:
    state = {k: v for k, v in tiny_state.items() if not k.startswith("roi_heads.mask_head.")}
    state.update({k: v for k, v in tiny_state.items() if k.startswith("roi_heads.mask_head.mask_fcn1")})
    with pytest.raises(CheckpointError, match=r"10 missing: roi_heads\.mask_head\.mask_fcn2\.weight, .*\(\+5 more\)"):
        convert.convert_state_dict(state, convert.load_detector(tiny_state))


def test_relative_position_index_is_checked() -> None:
    state = make_detic_state_dict("tiny-swin", seed=0)
    name = "backbone.bottom_up.layers.1.blocks.0.attn.relative_position_index"
    state[name] = state[name].flip(0)
    with pytest.raises(CheckpointError, match="relative_position_index .values differ"):
        convert.load_detector(state)


def test_float16_file_loads_as_float32(tmp_path: Path) -> None:
    path = make_detic_checkpoint(tmp_path / "half.pth", "tiny", seed=1, dtype=torch.float16, extra_entries=False)
    stored = torch.load(path, weights_only=True)["model"]
    assert {v.dtype for v in stored.values()} == {torch.float16}
    detector = convert.load_detector(path)
    assert {p.dtype for p in detector.state_dict().values() if p.is_floating_point()} == {torch.float32}
    assert detector.checkpoint_info["dtypes"] == ["float16"]
    ours = _official_state(detector)
    for name, value in ours.items():
        assert torch.equal(value, stored[name].float()), name


def test_bare_state_dict_file_and_training_entries(tmp_path: Path, tiny_state: dict[str, torch.Tensor]) -> None:
    bare = tmp_path / "bare.pth"
    torch.save(tiny_state, bare)
    assert convert.load_detector(bare).checkpoint_info["num_classes"] == 20
    wrapped = tmp_path / "wrapped.pth"
    optimizer = {"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.1, "params": [0]}]}
    torch.save({"model": tiny_state, "iteration": 5, "optimizer": optimizer, "scheduler": {"last_epoch": 5}}, wrapped)
    assert convert.load_detector(wrapped).config == DetectorConfig.tiny()


def test_config_must_match_checkpoint_architecture(tiny_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(CheckpointError, match="'swin_b'.*'resnet50'"):
        convert.load_detector(tiny_state, config=DetectorConfig.tiny("swin_b"))
    with pytest.raises(CheckpointError, match="mis-shaped"):
        convert.load_detector(tiny_state, config=DetectorConfig.r50())


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        convert.load_detector(tmp_path / "nope.pth")


def test_name_mapping_round_trips_and_is_a_prefix_table() -> None:
    for arch in ("resnet50", "swin_b"):
        config = DetectorConfig.tiny(arch)
        from audiodetic.detector.model import build_detector

        for name in build_detector(config).state_dict():
            official = convert.to_official(name, arch)
            assert convert.to_ours(official) == name
    assert convert.to_official("fpn.lateral_convs.0.weight", "resnet50") == "backbone.fpn_lateral3.weight"
    assert convert.to_official("fpn.p7.bias", "swin_b") == "backbone.top_block.p7.bias"
    assert convert.to_ours("backbone.bottom_up.base.layer2.0.downsample.1.running_var") == "backbone.layer2.0.downsample.1.running_var"
    assert convert.to_ours("proposal_generator.centernet_head.scales.4.scale") == "centernet.scales.4.scale"
    assert convert.to_ours("pixel_mean") is None
    with pytest.raises(ValueError):
        convert.to_official("backbone.conv1.weight", "convnext")


def test_builder_is_deterministic_in_seed() -> None:
    a, b, c = (make_detic_state_dict("tiny-swin", seed=s) for s in (7, 7, 8))
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["roi_heads.box_head.0.fc1.weight"], c["roi_heads.box_head.0.fc1.weight"])
    zs = a["roi_heads.box_predictor.2.cls_score.zs_weight"]
    assert zs.shape == (512, 21)
    assert torch.all(zs[:, -1] == 0)
    torch.testing.assert_close(zs[:, :-1].norm(dim=0), torch.ones(20))
    with pytest.raises(ValueError, match="unknown Detic layout"):
        make_detic_state_dict("r101")


@pytest.mark.parametrize("layout", ["tiny", "tiny-swin"])
def test_random_checkpoints_produce_bounded_features_and_detections(layout: str) -> None:
    detector = convert.load_detector(make_detic_state_dict(layout, seed=0))
    grid = np.linspace(0, 1, 160)
    image = np.stack([np.outer(grid, grid), np.outer(grid[::-1], grid), np.outer(grid, grid[::-1])], axis=-1)
    image = (image * 255).astype(np.uint8)
    with torch.no_grad():
        x = (torch.from_numpy(image).permute(2, 0, 1).float()[None] - detector.pixel_mean) / detector.pixel_std
        levels = detector.fpn(detector.backbone(x))
    assert all(torch.isfinite(p).all() and 0.05 < float(p.std()) < 20 for p in levels)
    vocabulary = torch.nn.functional.normalize(torch.randn(5, 512, generator=torch.Generator().manual_seed(0)), dim=1)
    detections = detector.detect(image, vocabulary.numpy(), score_threshold=0.3)
    assert len(detections) > 0
    widths = detections.boxes[:, 2] - detections.boxes[:, 0]
    assert float(np.median(widths)) > 2.0


def test_ignored_pattern_covers_only_unused_entries() -> None:
    assert convert._IGNORED.match("backbone.bottom_up.base.fc.weight")
    assert convert._IGNORED.match("roi_heads.box_predictor.2.cls_score.zs_weight")
    assert convert._IGNORED.match("roi_heads.box_predictor.0.freq_weight")
    assert not convert._IGNORED.match("roi_heads.box_predictor.0.cls_score.linear.weight")
    assert not re.match(convert._IGNORED, "backbone.bottom_up.base.fc2.weight")


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith(str(path)):
                low, high = line.split()[0].split("-")
                ranges.append((int(low, 16), int(high, 16)))
    return ranges


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_file_tensors_are_used_in_place_from_the_memory_map(tmp_path: Path) -> None:
    path = make_detic_checkpoint(tmp_path / "mapped.pth", "tiny", seed=2)
    detector = convert.load_detector(path)
    ranges = _mapped_ranges(path)
    assert ranges, "the checkpoint is not memory-mapped"
    tensors = dict(detector.state_dict())
    outside = [n for n, t in tensors.items() if not any(lo <= t.data_ptr() < hi for lo, hi in ranges)]
    assert outside == [], outside[:5]  # no copy of any parameter or persistent buffer
    assert not any(t.is_meta for t in (*detector.parameters(), *detector.buffers()))
    assert detector.pixel_mean.device.type == "cpu"


def test_an_in_memory_state_dict_is_copied_not_aliased(tiny_state: dict[str, torch.Tensor]) -> None:
    state = {name: value.clone() for name, value in tiny_state.items()}
    detector = convert.load_detector(state)
    name = "backbone.bottom_up.base.conv1.weight"
    before = detector.backbone.conv1.weight.clone()
    state[name].add_(1.0)  # the caller changes its own tensors afterwards
    assert torch.equal(detector.backbone.conv1.weight, before)


def test_inconsistent_widths_name_the_tensors_and_their_shapes(tiny_state: dict[str, torch.Tensor]) -> None:
    bad = dict(tiny_state)
    key = "backbone.fpn_lateral3.weight"
    bad[key] = torch.zeros(36, *tiny_state[key].shape[1:])
    with pytest.raises(CheckpointError) as caught:
        convert.load_detector(bad)
    message = str(caught.value)
    assert "disagree on the FPN width" in message and "DetectorConfig" not in message
    assert f"{key} has shape (36, 64, 1, 1)" in message and "expected 32 there" in message


def test_a_width_no_detector_can_have_names_the_tensor_and_the_rule(tiny_state: dict[str, torch.Tensor]) -> None:
    widened = {}
    for key, value in tiny_state.items():
        if key.startswith(("backbone.fpn_", "proposal_generator.centernet_head.")) and value.ndim:
            value = torch.zeros(*[36 if side == 32 else side for side in value.shape])
        widened[key] = value
    with pytest.raises(CheckpointError, match=r"backbone\.fpn_lateral3\.weight has shape \(36, 64, 1, 1\): its first "
                                              r"dimension, the FPN width 36, must be a multiple of 32"):
        convert.load_detector(widened)
