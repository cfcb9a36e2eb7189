"""Random Detic checkpoints in the exact official key layout, with statistics that make detections appear.

``make_detic_checkpoint(path, "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size")`` writes a file that has the same
tensor names, order, shapes and dtypes as the released checkpoint (``torch.save({"model": state_dict, ...})``),
filled with seeded random values:

* convolutions / linears: zero-mean normals scaled by ``1/sqrt(fan_in)`` (``sqrt(2/fan_in)`` before ReLUs);
* ResNet FrozenBN statistics calibrated (in float64) on a seeded smooth random image, so every BN really
  normalises its input; gammas < 1 on the last BN of each residual branch keep activations bounded;
* Swin: LayerNorm gains near 1, relative-position bias tables with std 0.5 (attention is not uniform);
* CenterNet: ``agn_hm`` bias -2 (heatmap ~0.12, every location a candidate), box regression bias 1.5..4 strides;
* cascade: class-agnostic deltas of a few percent, a 512-d projection, ``zs_weight`` columns unit-norm with a zero
  background column (``freq_weight`` positive for the federated-loss layout);
* mask head: logits of a few units so masks are neither empty nor full.

The layout is generated from audiodetic's own :class:`Detector` through ``convert.to_official`` (plus the entries
the detector drops: ``fc``, ``relative_position_index``, ``zs_weight``, ``freq_weight``); a test checks it equals
the recorded key lists in ``shared/reference``. Values depend only on ``(seed, tensor name)``.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from audiodetic.detector import convert
from audiodetic.detector.config import DetectorConfig
from audiodetic.errors import InputError

__all__ = ["DeticLayout", "LAYOUTS", "make_detic_state_dict", "make_detic_checkpoint"]


@dataclass(frozen=True)
class DeticLayout:
    """One checkpoint layout: backbone, training vocabulary size ``C`` (``zs_weight`` is ``(512, C + 1)``),
    whether the federated loss added ``freq_weight`` buffers, and whether the dimensions are the tiny test ones."""

    architecture: str
    num_classes: int
    fed_loss: bool
    tiny: bool = False

    def config(self) -> DetectorConfig:
        if self.tiny:
            return DetectorConfig.tiny(self.architecture)
        return DetectorConfig.r50() if self.architecture == "resnet50" else DetectorConfig.swin_b()


LAYOUTS: dict[str, DeticLayout] = {
    "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size": DeticLayout("resnet50", 22047, False),
    "Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size": DeticLayout("swin_b", 22047, False),
    "BoxSup-C2_L_CLIP_R5021k_640b64_4x": DeticLayout("resnet50", 1203, True),
    "tiny": DeticLayout("resnet50", 20, False, tiny=True),
    "tiny-swin": DeticLayout("swin_b", 20, False, tiny=True),
    "tiny-boxsup": DeticLayout("resnet50", 20, True, tiny=True),
}
_FC_CLASSES = {False: 11221, True: 10}  # timm MIIL-21k head of the R50 configs (tiny: a small stand-in)


def _layout(layout: str | DeticLayout) -> DeticLayout:
    if isinstance(layout, DeticLayout):
        return layout
    if layout not in LAYOUTS:
        raise InputError(f"unknown Detic layout {layout!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def _generator(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**63))


def _normal(shape: tuple[int, ...], std: float, gen: torch.Generator, mean: float = 0.0) -> Tensor:
    return torch.randn(shape, generator=gen).mul_(std).add_(mean)


def _uniform(shape: tuple[int, ...], low: float, high: float, gen: torch.Generator) -> Tensor:
    return torch.rand(shape, generator=gen).mul_(high - low).add_(low)


def _fan_in(name: str, shape: tuple[int, ...]) -> int:
    if name.endswith("deconv.weight"):  # ConvTranspose2d (in, out, k, k), stride k: one tap per input channel
        return shape[0]
    return math.prod(shape[1:])


# Weight std = gain / sqrt(fan_in); the first matching name fragment sets the gain (default 1).
_GAINS = (
    ("attn.proj", 0.5), ("mlp.fc2", 0.5),  # Swin residual branches: keep the stream's growth slow
    (".bbox_pred.2.weight", 0.5),  # cascade deltas of a few percent
    ("mask_head.predictor.weight", 3.0),  # mask logits of a few units
    ("centernet.bbox_pred.weight", 0.7),
    ("conv1.", math.sqrt(2.0)), ("conv2.", math.sqrt(2.0)), ("box_head", math.sqrt(2.0)),  # ReLU follows
    ("bbox_pred.0", math.sqrt(2.0)), ("mask_fcn", math.sqrt(2.0)), ("deconv", math.sqrt(2.0)),
)


def _value(name: str, shape: tuple[int, ...], gen: torch.Generator, frozen_bn: bool) -> Tensor:
    """The random value of one of *our* parameters (float32), by name pattern (``frozen_bn``: a FrozenBN buffer)."""
    last = name.rsplit(".", 1)[-1]
    if name.endswith("relative_position_bias_table"):
        return _normal(shape, 0.5, gen)
    if name.endswith(".scale"):
        return _uniform(shape, 0.8, 1.2, gen)
    if name.endswith("agn_hm.bias"):
        return torch.full(shape, -2.0)
    if name.endswith("centernet.bbox_pred.bias"):
        return _uniform(shape, 1.5, 4.0, gen)
    if last in ("running_mean", "running_var"):  # placeholders; _calibrate_frozen_bn sets them
        return torch.zeros(shape) if last == "running_mean" else torch.ones(shape)
    if last == "weight" and frozen_bn:  # gains < 1, smallest on the last BN of a residual branch
        return _uniform(shape, 0.1, 0.4, gen) if name.endswith(".bn3.weight") else _uniform(shape, 0.5, 1.0, gen)
    if last == "weight" and len(shape) == 1:  # LayerNorm / GroupNorm gains
        return _normal(shape, 0.05, gen, mean=1.0)
    if len(shape) == 1:  # biases
        return _normal(shape, 0.02, gen)
    gain = next((g for fragment, g in _GAINS if fragment in name), 1.0)
    return _normal(shape, gain / math.sqrt(_fan_in(name, shape)), gen)


def _calibration_image(seed: int, size: int = 128) -> Tensor:
    gen = _generator(seed, "calibration-image")
    coarse = torch.randn((1, 3, 8, 8), generator=gen, dtype=torch.float32)
    image = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return image + 0.3 * torch.randn((1, 3, size, size), generator=gen, dtype=torch.float32)


@torch.no_grad()
def _calibrate_frozen_bn(backbone: nn.Module, seed: int) -> None:
    """Set every FrozenBN's running statistics from its input on a calibration image (float64)."""
    from audiodetic.detector.resnet import FrozenBatchNorm2d

    handles = []

    def hook(module: nn.Module, args: tuple[Tensor, ...], name: str) -> None:
        x = args[0]
        gen = _generator(seed, name + ".calibration")
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        var = var.clamp_min(0.1 * float(var.mean()) + 1e-6)  # near-dead channels must not be amplified
        module.running_mean.copy_(mean + 0.1 * var.sqrt() * torch.randn(mean.shape, generator=gen, dtype=x.dtype))
        module.running_var.copy_(var * _uniform(tuple(var.shape), 0.8, 1.25, gen))

    for name, module in backbone.named_modules():
        if isinstance(module, FrozenBatchNorm2d):
            handles.append(module.register_forward_pre_hook(lambda m, a, n=name: hook(m, a, n)))
    backbone.double()
    try:
        backbone(_calibration_image(seed).double())
    finally:
        for handle in handles:
            handle.remove()
        backbone.float()


def make_detic_state_dict(
    layout: str | DeticLayout = "tiny", *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> dict[str, Tensor]:
    """The official-layout ``state_dict`` (names in upstream order) of a random Detic checkpoint.

    ``layout``: a key of :data:`LAYOUTS` (the three released configs, ``"tiny"``, ``"tiny-swin"``,
    ``"tiny-boxsup"``) or a :class:`DeticLayout`. Floating tensors are cast to ``dtype``; the Swin
    ``relative_position_index`` buffers stay int64. Deterministic in ``seed``.
    """
    from audiodetic.detector.model import build_detector

    spec = _layout(layout)
    if not dtype.is_floating_point:
        raise InputError(f"dtype must be a floating dtype, got {dtype}")
    from audiodetic.detector.resnet import FrozenBatchNorm2d

    detector = build_detector(spec.config())
    bn = {name for name, module in detector.named_modules() if isinstance(module, FrozenBatchNorm2d)}
    ours = {
        name: _value(name, tuple(t.shape), _generator(seed, name), name.rsplit(".", 1)[0] in bn)
        for name, t in detector.state_dict().items()
    }
    detector.load_state_dict({k: v.float() for k, v in ours.items()})
    if spec.architecture == "resnet50":
        _calibrate_frozen_bn(detector.backbone, seed)
        ours.update({f"backbone.{k}": v for k, v in detector.backbone.state_dict().items()})
    arch = spec.architecture
    official: dict[str, Tensor] = {}
    for name, value in ours.items():
        official_name = convert.to_official(name, arch)
        if official_name.endswith(".cls_score.linear.weight"):
            stage = official_name.split(".")[2]
            official.update(_classifier_buffers(stage, spec, value.shape[0], seed))
        official[official_name] = value
        if official_name.endswith("attn.relative_position_bias_table"):
            index = detector.get_buffer(name.replace("relative_position_bias_table", "relative_position_index"))
            official[official_name.replace("bias_table", "index")] = index.clone()
    if arch == "resnet50":
        width = spec.config().resnet_width * 32
        num = _FC_CLASSES[spec.tiny]
        last_backbone = [i for i, k in enumerate(official) if k.startswith("backbone.bottom_up.")][-1]
        items = list(official.items())
        fc = [("backbone.bottom_up.base.fc.weight", _normal((num, width), 0.01, _generator(seed, "fc.weight"))),
              ("backbone.bottom_up.base.fc.bias", torch.zeros(num, dtype=torch.float32))]
        official = dict(items[: last_backbone + 1] + fc + items[last_backbone + 1:])
    ordered = sorted(official, key=convert.official_order)
    return {k: official[k].to(dtype) if official[k].is_floating_point() else official[k] for k in ordered}


def _classifier_buffers(stage: str, spec: DeticLayout, embed_dim: int, seed: int) -> dict[str, Tensor]:
    prefix = f"roi_heads.box_predictor.{stage}."
    out: dict[str, Tensor] = {}
    if spec.fed_loss:
        out[prefix + "freq_weight"] = _uniform((spec.num_classes,), 1.0, 30.0, _generator(seed, prefix + "freq")).sqrt()
    # Every stage holds the same training classifier upstream (one file of class embeddings).
    weight = torch.randn((embed_dim, spec.num_classes), generator=_generator(seed, "zs_weight"), dtype=torch.float32)
    weight = weight / weight.norm(dim=0, keepdim=True)
    out[prefix + "cls_score.zs_weight"] = torch.cat([weight, torch.zeros(embed_dim, 1, dtype=torch.float32)], dim=1)
    return out


def make_detic_checkpoint(
    path: str | os.PathLike[str],
    layout: str | DeticLayout = "tiny",
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    extra_entries: bool = True,
) -> Path:
    """Write a random Detic checkpoint in the official layout to ``path`` and return ``Path(path)``.

    The container is ``{"model": state_dict}`` as in the released files; with ``extra_entries`` it also holds the
    training-only entries a real file may carry (``iteration``, ``optimizer``, ``scheduler``). Full-size layouts
    are large (R50 ~540 MB, Swin-B ~700 MB in float32; half that with ``dtype=torch.float16``).
    """
    state_dict = make_detic_state_dict(layout, seed=seed, dtype=dtype)
    container: dict[str, object] = {"model": state_dict}
    if extra_entries:
        container["iteration"] = 90000
        container["optimizer"] = {"state": {}, "param_groups": [{"lr": 0.0002, "weight_decay": 0.0001, "params": [0, 1]}]}
        container["scheduler"] = {"base_lrs": [0.0002], "last_epoch": 90000}
    path = Path(path)
    torch.save(container, path)
    return path
