"""Released Detic checkpoints -> audiodetic's :class:`~audiodetic.detector.model.Detector`.

This is the only module that knows the upstream (detectron2 / CenterNet2 / Detic) parameter names. The mapping is a
prefix rename:

=====================================================  ==========================================
official name                                          ours
=====================================================  ==========================================
``backbone.bottom_up.base.X`` (timm ResNet)            ``backbone.X``
``backbone.bottom_up.X`` (Swin)                        ``backbone.X``
``backbone.fpn_lateral{3,4,5}.X``                      ``fpn.lateral_convs.{0,1,2}.X``
``backbone.fpn_output{3,4,5}.X``                       ``fpn.output_convs.{0,1,2}.X``
``backbone.top_block.{p6,p7}.X``                       ``fpn.{p6,p7}.X``
``proposal_generator.centernet_head.X``                ``centernet.X``
``roi_heads.X``                                        ``roi_heads.X``
=====================================================  ==========================================

Entries the file may hold that inference does not use are accepted and dropped: the timm classifier
``backbone.bottom_up.base.fc.*``, the training classifiers ``roi_heads.box_predictor.{k}.cls_score.zs_weight``
(its width ``C + 1`` is kept in ``detector.checkpoint_info["num_classes"]``) and ``...freq_weight``, BN
``num_batches_tracked`` counters, and Swin's ``relative_position_index`` buffers (checked against ours).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from audiodetic.errors import CheckpointError, InputError

if TYPE_CHECKING:
    from audiodetic.detector.config import DetectorConfig
    from audiodetic.detector.model import Detector

__all__ = [
    "ARCHITECTURES", "detect_architecture", "to_ours", "to_official", "official_order", "infer_config",
    "checkpoint_info", "convert_state_dict", "load_detector",
]

ARCHITECTURES = ("resnet50", "swin_b")
_ARCH_MARKERS = {
    "resnet50": "backbone.bottom_up.base.conv1.weight",
    "swin_b": "backbone.bottom_up.patch_embed.proj.weight",
}
_IGNORED = re.compile(
    r"^(backbone\.bottom_up\.base\.fc\.(weight|bias)"
    r"|roi_heads\.box_predictor\.\d+\.(cls_score\.zs_weight|freq_weight)"
    r"|.*\.num_batches_tracked"
    r"|backbone\.bottom_up\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index)$"
)
_ZS_WEIGHT = re.compile(r"^roi_heads\.box_predictor\.(\d+)\.cls_score\.zs_weight$")
_FPN_OFFICIAL = re.compile(r"^backbone\.fpn_(lateral|output)([345])\.(.+)$")
_FPN_OURS = re.compile(r"^fpn\.(lateral|output)_convs\.([012])\.(.+)$")
_SHOWN = 5


def detect_architecture(state_dict: Mapping[str, Any]) -> str:
    """``"resnet50"`` or ``"swin_b"`` from the official key names of a Detic (CenterNet2) checkpoint.

    Raises :class:`CheckpointError` naming a few of the keys when the layout is neither.
    """
    found = [arch for arch, marker in _ARCH_MARKERS.items() if marker in state_dict]
    if len(found) == 1:
        return found[0]
    keys = list(state_dict)
    if not found and "backbone.bottom_up.base.stem_0.weight" in state_dict:
        hint = " (this looks like a ConvNeXt backbone, which audiodetic does not implement)"
    elif not found and "backbone.bottom_up.stem.conv1.weight" in state_dict:
        hint = " (this looks like a detectron2 ResNet backbone (e.g. *_R50_1x configs), which audiodetic does not implement)"
    elif found:
        hint = " (it has both ResNet and Swin backbone tensors)"
    else:
        hint = ""
    raise CheckpointError(
        f"cannot tell the Detic backbone from the checkpoint keys{hint}: expected "
        f"{' or '.join(repr(m) for m in _ARCH_MARKERS.values())}; the file has {len(keys)} entries, first: "
        f"{', '.join(keys[:_SHOWN]) or '(none)'}. Supported architectures: {', '.join(ARCHITECTURES)}"
    )


def to_ours(name: str) -> str | None:
    """Our parameter name for an official one; ``None`` for names outside the mapping."""
    for prefix in ("backbone.bottom_up.base.", "backbone.bottom_up."):
        if name.startswith(prefix):
            return "backbone." + name[len(prefix):]
    match = _FPN_OFFICIAL.match(name)
    if match:
        return f"fpn.{match[1]}_convs.{int(match[2]) - 3}.{match[3]}"
    if name.startswith("backbone.top_block."):
        return "fpn." + name[len("backbone.top_block."):]
    if name.startswith("proposal_generator.centernet_head."):
        return "centernet." + name[len("proposal_generator.centernet_head."):]
    if name.startswith("roi_heads."):
        return name
    return None


def to_official(name: str, architecture: str) -> str:
    """The official name of one of our parameter names (inverse of :func:`to_ours`)."""
    if architecture not in ARCHITECTURES:
        raise InputError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    if name.startswith("backbone."):
        base = "backbone.bottom_up.base." if architecture == "resnet50" else "backbone.bottom_up."
        return base + name[len("backbone."):]
    match = _FPN_OURS.match(name)
    if match:
        return f"backbone.fpn_{match[1]}{int(match[2]) + 3}.{match[3]}"
    if name.startswith("fpn."):
        return "backbone.top_block." + name[len("fpn."):]
    if name.startswith("centernet."):
        return "proposal_generator.centernet_head." + name[len("centernet."):]
    if name.startswith("roi_heads."):
        return name
    raise InputError(f"{name!r} is not a Detector parameter name")


def official_order(name: str) -> tuple[int, int]:
    """Sort key giving detectron2's state-dict order: FPN convs by level, top block, bottom-up, heads."""
    match = _FPN_OFFICIAL.match(name)
    if match:
        return (0, int(match[2]) * 2 + (match[1] == "output"))
    for rank, prefix in enumerate(("backbone.top_block.", "backbone.bottom_up.", "proposal_generator.", "roi_heads.")):
        if name.startswith(prefix):
            return (rank + 1, 0)
    return (9, 0)


def _shape(state_dict: Mapping[str, Tensor], name: str) -> tuple[int, ...]:
    if name not in state_dict:
        raise CheckpointError(f"checkpoint lacks {name!r}, needed to infer the architecture's dimensions")
    return tuple(state_dict[name].shape)


def _count(state_dict: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m[1] for m in map(regex.match, state_dict) if m})


# Widths that many tensors share: (meaning, [(key pattern, dimension)]). A checkpoint whose tensors disagree gets an
# error naming them, not one about the config field the first of them would set.
_SHARED_WIDTHS: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
    ("the FPN width", ((r"^backbone\.fpn_(lateral|output)\d\.weight$", 0), (r"^backbone\.fpn_output\d\.weight$", 1),
                       (r"^proposal_generator\.centernet_head\.(bbox|cls)_tower\.\d+\.weight$", 0))),
    ("the box head width", ((r"^roi_heads\.box_head\.\d\.fc1\.weight$", 0), (r"^roi_heads\.box_head\.\d\.fc2\.weight$", 0),
                            (r"^roi_heads\.box_head\.\d\.fc2\.weight$", 1),
                            (r"^roi_heads\.box_predictor\.\d\.cls_score\.linear\.weight$", 1))),
    ("the class-embedding width", ((r"^roi_heads\.box_predictor\.\d\.cls_score\.linear\.weight$", 0),)),
)


def check_shared_widths(state_dict: Mapping[str, Tensor]) -> None:
    """Raise :class:`CheckpointError` naming the tensors whose shape disagrees with the others on a shared width."""
    for meaning, members in _SHARED_WIDTHS:
        found: list[tuple[str, tuple[int, ...], int]] = []
        for pattern, dim in members:
            regex = re.compile(pattern)
            found += [(key, tuple(value.shape), dim) for key, value in state_dict.items()
                      if regex.match(key) and len(value.shape) > dim]
        values = [shape[dim] for _, shape, dim in found]
        if len(set(values)) <= 1:
            continue
        expected = max(set(values), key=values.count)
        odd = [f"{key} has shape {shape} (dimension {dim} is {shape[dim]})" for key, shape, dim in found
               if shape[dim] != expected]
        raise CheckpointError(f"checkpoint tensors disagree on {meaning}: {len(found) - len(odd)} tensors say "
                              f"{expected}, but " + "; ".join(odd[:_SHOWN]) + f" - expected {expected} there")


def infer_config(state_dict: Mapping[str, Tensor], *, architecture: str | None = None) -> "DetectorConfig":
    """A :class:`DetectorConfig` whose dimensions match the official checkpoint ``state_dict``.

    Widths and depths come from tensor shapes and key counts; everything else keeps the released defaults
    (``DetectorConfig.r50()`` / ``.swin_b()``). When the dimensions equal ``DetectorConfig.tiny(architecture)``
    that preset is returned (so tiny test checkpoints load without a config).
    """
    from audiodetic.detector.config import DetectorConfig

    arch = architecture or detect_architecture(state_dict)
    check_shared_widths(state_dict)
    sd = state_dict
    fields: dict[str, Any] = {}
    if arch == "resnet50":
        fields["resnet_width"] = _shape(sd, "backbone.bottom_up.base.conv1.weight")[0]
        fields["resnet_layers"] = tuple(
            _count(sd, rf"^backbone\.bottom_up\.base\.layer{i}\.(\d+)\.") for i in (1, 2, 3, 4)
        )
        base = DetectorConfig.r50()
    else:
        prefix = "backbone.bottom_up."
        fields["swin_embed_dim"] = embed = _shape(sd, prefix + "patch_embed.proj.weight")[0]
        fields["swin_depths"] = tuple(_count(sd, rf"^{re.escape(prefix)}layers\.{i}\.blocks\.(\d+)\.") for i in range(4))
        heads, window = [], 7
        for i in range(4):
            table = _shape(sd, f"{prefix}layers.{i}.blocks.0.attn.relative_position_bias_table")
            heads.append(table[1])
            window = (math.isqrt(table[0]) + 1) // 2
        fields["swin_num_heads"] = tuple(heads)
        fields["swin_window_size"] = window
        fields["swin_mlp_ratio"] = _shape(sd, prefix + "layers.0.blocks.0.mlp.fc1.weight")[0] / embed
        base = DetectorConfig.swin_b()
    fields["fpn_channels"] = fpn = _shape(sd, "backbone.fpn_lateral3.weight")[0]
    fc1 = _shape(sd, "roi_heads.box_head.0.fc1.weight")
    fields["box_head_dim"] = fc1[0]
    fields["pooler_resolution"] = math.isqrt(fc1[1] // fpn)
    fields["embed_dim"] = _shape(sd, "roi_heads.box_predictor.0.cls_score.linear.weight")[0]
    fields["centernet_num_convs"] = _count(sd, r"^proposal_generator\.centernet_head\.bbox_tower\.(\d+)\.weight$") // 2
    fields["mask_num_convs"] = _count(sd, r"^roi_heads\.mask_head\.mask_fcn(\d+)\.weight$")
    fields["mask_on"] = "roi_heads.mask_head.predictor.weight" in sd
    stages = _count(sd, r"^roi_heads\.box_head\.(\d+)\.fc1\.weight$")
    if stages != base.num_stages:
        raise CheckpointError(
            f"checkpoint has {stages} cascade stage(s) (tensors roi_heads.box_head.<k>.fc1.weight for k = 0.."
            f"{stages - 1}); audiodetic implements Detic's {base.num_stages}-stage cascade (k = 0..{base.num_stages - 1})"
        )
    tiny = DetectorConfig.tiny(arch)
    if all(getattr(tiny, key) == value for key, value in fields.items()):
        return tiny
    groups = base.centernet_gn_groups
    if fpn % groups:
        raise CheckpointError(f"backbone.fpn_lateral3.weight has shape {_shape(sd, 'backbone.fpn_lateral3.weight')}: "
                              f"its first dimension, the FPN width {fpn}, must be a multiple of {groups} (the CenterNet "
                              f"head's GroupNorm groups; released checkpoints have 256)")
    try:
        return replace(base, **fields)
    except ValueError as error:
        raise CheckpointError(f"checkpoint dimensions are not a valid detector: {error}") from None


def checkpoint_info(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """Facts about an official checkpoint that the detector itself does not keep.

    Keys: ``architecture``, ``num_classes`` (training vocabulary size ``C``, from the ``(D, C + 1)`` ``zs_weight``;
    ``None`` when absent), ``fed_loss`` (has ``freq_weight``), ``dtypes`` (sorted dtype names of the tensors).
    """
    widths = {tuple(v.shape)[-1] for k, v in state_dict.items() if _ZS_WEIGHT.match(k)}
    return {
        "architecture": detect_architecture(state_dict),
        "num_classes": (widths.pop() - 1) if len(widths) == 1 else None,
        "fed_loss": any(k.endswith(".freq_weight") for k in state_dict),
        "dtypes": sorted({str(v.dtype).replace("torch.", "") for v in state_dict.values() if isinstance(v, Tensor)}),
    }


def _listing(kind: str, names: list[str]) -> str:
    more = f" (+{len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
    return f"{len(names)} {kind}: {', '.join(names[:_SHOWN])}{more}"


def convert_state_dict(official: Mapping[str, Tensor], detector: "Detector") -> dict[str, Tensor]:
    """Rename and cast the tensors of an official checkpoint into ``detector``'s ``state_dict`` names.

    Floating tensors are cast to the dtype of the parameter they fill (float16/bfloat16 files load as float32).
    Raises :class:`CheckpointError` listing (first few + counts) the missing, unexpected and mis-shaped tensors.
    """
    arch = detect_architecture(official)
    expected = detector.state_dict()
    ours: dict[str, Tensor] = {}
    unexpected, misshaped = [], []
    present: set[str] = set()  # filled by a mis-shaped tensor: reported once, as mis-shaped
    for name, value in official.items():
        if not isinstance(value, Tensor):
            unexpected.append(f"{name} (not a tensor)")
            continue
        if _IGNORED.match(name):
            if name.endswith("relative_position_index"):
                reference = _buffer(detector, to_ours(name))
                if reference is None:
                    unexpected.append(name)
                elif tuple(value.shape) != tuple(reference.shape):
                    misshaped.append(f"{name}: file {tuple(value.shape)} vs model {tuple(reference.shape)}")
                elif not torch.equal(value.long(), reference.cpu()):
                    misshaped.append(f"{name} (values differ from the standard Swin index)")
            continue
        target_name = to_ours(name)
        if target_name is None or target_name not in expected:
            unexpected.append(name)
            continue
        reference = expected[target_name]
        if tuple(value.shape) != tuple(reference.shape):
            misshaped.append(f"{name}: file {tuple(value.shape)} vs model {tuple(reference.shape)}")
            present.add(target_name)
            continue
        ours[target_name] = value.to(dtype=reference.dtype) if value.is_floating_point() else value
    missing = [to_official(name, arch) for name in expected if name not in ours and name not in present]
    if missing or unexpected or misshaped:
        parts = [_listing(kind, names) for kind, names in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if names]
        raise CheckpointError(f"checkpoint does not match the {arch} Detic layout: " + "; ".join(parts))
    return ours


def _buffer(detector: "Detector", name: str | None) -> Tensor | None:
    if name is None:
        return None
    try:
        return detector.get_buffer(name)
    except AttributeError:
        return None


def load_detector(
    name_or_path: str | os.PathLike[str] | Mapping[str, Tensor],
    *,
    device: str | torch.device = "cpu",
    config: "DetectorConfig | None" = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    progress: bool = True,
) -> "Detector":
    """Build a :class:`Detector` and fill it from a released Detic checkpoint (float32, eval mode, no grads).

    Args:
        name_or_path: a known model name (``"detic-r50"``, the official config names ...; see
            ``audiodetic.weights.MODELS``), a local ``.pth`` file (``{"model": state_dict}`` or a bare state dict;
            training entries such as ``iteration``/``optimizer`` are ignored), or an already loaded state dict.
        device: where the detector lives.
        config: architecture and inference constants; by default inferred from the checkpoint
            (:func:`infer_config`). Its backbone must match the checkpoint's.
        cache_dir, offline, progress: passed to ``audiodetic.weights.resolve`` for named models.

    The module tree is built on the meta device and takes the checkpoint's tensors as they are (``assign``): a file
    is memory-mapped (``audiodetic.weights.load_state_dict``), so only the pages of tensors inference uses are ever
    read (never the timm ``fc`` head or the training classifiers ``zs_weight``), and float32 tensors are used in
    place without a copy; float16/bfloat16 files are cast once. An in-memory state dict is copied, never aliased.

    Returns a detector whose ``checkpoint_info`` holds :func:`checkpoint_info` plus ``source``.
    Raises ``WeightsNotFoundError`` for unknown names / missing files and :class:`CheckpointError` for files that
    are unreadable or do not match the layout (missing / unexpected / mis-shaped tensors are listed).
    """
    from audiodetic.detector.model import build_detector

    if isinstance(name_or_path, Mapping):
        state_dict, source, owned = dict(name_or_path), "<state dict>", False
    else:
        from audiodetic.weights import load_state_dict, resolve

        path = resolve(name_or_path, cache_dir=cache_dir, offline=offline, progress=progress)
        state_dict, source, owned = load_state_dict(path), str(path), True
    info = checkpoint_info(state_dict)
    if config is None:
        config = infer_config(state_dict, architecture=info["architecture"])
    elif config.backbone != info["architecture"]:
        raise CheckpointError(
            f"config.backbone is {config.backbone!r} but the checkpoint {source} holds a {info['architecture']!r} backbone"
        )
    with torch.device("meta"):  # no memory and no random initialisation for tensors the checkpoint replaces
        detector = build_detector(config)
    tensors = convert_state_dict(state_dict, detector)
    if not owned:  # never alias the caller's tensors (a dtype cast already made a fresh one)
        theirs = {value.untyped_storage().data_ptr() for value in state_dict.values() if isinstance(value, Tensor)}
        tensors = {name: value.clone() if value.untyped_storage().data_ptr() in theirs else value
                   for name, value in tensors.items()}
    detector.load_state_dict(tensors, strict=True, assign=True)
    _check_materialised(detector)
    detector.checkpoint_info = {**info, "source": source}
    return detector.to(device)


def _check_materialised(detector: "Detector") -> None:
    """Every parameter and buffer holds data (a module that derives a buffer must not build it on the meta device)."""
    left = [name for name, tensor in (*detector.named_parameters(), *detector.named_buffers()) if tensor.is_meta]
    if left:
        raise RuntimeError(f"detector tensors left on the meta device after loading: {', '.join(left[:_SHOWN])}")
