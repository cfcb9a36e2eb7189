"""``audiodetic embed audio|text``: raw encoder embeddings written as a ``.npy`` matrix.

* ``embed audio FILE... --weights PATH_OR_NAME --output OUT.npy`` - ImageBind audio embeddings ``(A, 1024)``
  float32 in file order, raw as upstream (per-clip norm 20, mean of the three clips). ``--encoder wav2clip``
  writes Wav2CLIP's ``(A, 512)`` instead.
* ``embed text PHRASE... --encoder imagebind|clip [--weights PATH_OR_NAME] --output OUT.npy`` - raw text-tower
  outputs: ImageBind ``(T, 1024)`` of the phrases as given; CLIP ViT-B/32 ``(T, 512)`` of Detic's prompt
  ``"a " + phrase`` (``--template "{}"`` embeds the phrases verbatim).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from audiodetic.errors import InputError, MissingFileError

DEFAULT_WEIGHTS = {"imagebind": "imagebind_huge", "clip": "clip-vit-b32", "wav2clip": "wav2clip"}


def register(subparsers: Any) -> None:
    """Add ``embed`` with its ``audio`` and ``text`` subcommands."""
    parser = subparsers.add_parser("embed", help="write raw audio or text embeddings to a .npy file",
                                   description="Encode audio files or text phrases and save the raw embeddings.")
    kinds = parser.add_subparsers(dest="kind", metavar="audio|text")
    kinds.required = True

    audio = kinds.add_parser("audio", help="embed audio files (ImageBind by default)")
    audio.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files (WAV, FLAC, OGG, MP3, ...)")
    audio.add_argument("--encoder", choices=("imagebind", "wav2clip"), default="imagebind",
                       help="ImageBind's audio tower (1024-d) or Wav2CLIP (512-d, CLIP image space)")
    audio.add_argument("--weights", default=None, metavar="PATH_OR_NAME",
                       help="checkpoint path or model name (default: imagebind_huge / wav2clip)")
    audio.add_argument("--downmix", action="store_true", help="average all channels (default: first channel, "
                       "as upstream ImageBind)")
    audio.add_argument("--output", "-o", type=Path, required=True, metavar="OUT.npy",
                       help="the (A, D) float32 matrix, one row per file in order")
    audio.add_argument("--overwrite", action="store_true", help="replace OUT.npy if it exists (never an input)")

    text = kinds.add_parser("text", help="embed text phrases (ImageBind or CLIP ViT-B/32 text tower)")
    text.add_argument("phrases", nargs="+", metavar="PHRASE", help="phrases to embed (quote those with spaces)")
    text.add_argument("--encoder", choices=("imagebind", "clip"), required=True,
                      help="ImageBind's text tower (1024-d) or CLIP ViT-B/32's (512-d, the detector's space)")
    text.add_argument("--weights", default=None, metavar="PATH_OR_NAME",
                      help="checkpoint path or model name (default: imagebind_huge / clip-vit-b32)")
    text.add_argument("--template", default=None,
                      help="CLIP prompt template with {} for the phrase (default: Detic's 'a {}')")
    text.add_argument("--output", "-o", type=Path, required=True, metavar="OUT.npy",
                      help="the (T, D) float32 matrix, one row per phrase in order")
    text.add_argument("--overwrite", action="store_true", help="replace OUT.npy if it exists")
    parser.set_defaults(func=run)


def _check_output(args: argparse.Namespace) -> Path:
    from audiodetic.io import check_output

    if args.output.suffix != ".npy":
        raise InputError(f"--output must be a .npy file, got {str(args.output)!r}")
    inputs = list(getattr(args, "files", []))
    return check_output(args.output, inputs=inputs, overwrite=args.overwrite, what="--output")


def run(args: argparse.Namespace) -> int:
    """Encode and write ``--output``; prints the matrix shape and path on stdout."""
    output = _check_output(args)
    weights = args.weights or DEFAULT_WEIGHTS[args.encoder]
    if args.kind == "audio":
        for path in args.files:
            if not path.is_file():
                raise MissingFileError(f"audio file not found: {path}")
        if args.encoder == "wav2clip":
            from audiodetic.encoders.audio.wav2clip import Wav2ClipEncoder

            encoder: Any = Wav2ClipEncoder.from_checkpoint(weights)
            matrix = encoder.encode_sources([str(p) for p in args.files], downmix=args.downmix)
        else:
            from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder

            encoder = ImageBindAudioEncoder.from_checkpoint(weights)
            matrix = encoder.encode_sources([str(p) for p in args.files], downmix=args.downmix)
    else:
        if args.encoder == "clip":
            from audiodetic.encoders.clip_text import DETIC_TEMPLATE, ClipTextEncoder

            encoder = ClipTextEncoder.from_checkpoint(weights, template=args.template or DETIC_TEMPLATE)
        else:
            if args.template is not None:
                raise InputError("--template applies to --encoder clip only")
            from audiodetic.encoders.audio.imagebind import ImageBindTextEncoder

            encoder = ImageBindTextEncoder.from_checkpoint(weights)
        matrix = encoder.encode(list(args.phrases))
    matrix = matrix.detach().float().cpu().numpy() if hasattr(matrix, "detach") else matrix
    import numpy as np

    from audiodetic import io

    io.save_npy(output, np.asarray(matrix, np.float32))
    print(f"{tuple(matrix.shape)} -> {output}")
    return 0
