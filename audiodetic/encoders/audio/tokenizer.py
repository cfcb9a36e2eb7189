"""ImageBind's text tokenisation: CLIP byte-level BPE (49408 ids), 77 positions.

Text is cleaned as ImageBind does it (``ftfy.fix_text``, HTML-unescaped twice, runs of Unicode whitespace
collapsed to one space, stripped, lower-cased), split into words, numbers and punctuation runs, and each piece is
BPE-encoded with CLIP's merges. The literal strings ``<|startoftext|>`` / ``<|endoftext|>`` in the text become the
special ids, as upstream. Each row is ``[SOT] + ids[:context_length - 2] + [EOT]`` zero-padded to
``context_length``, so EOT is always present and last.

The BPE merges and the per-word merge routine come from open_clip's ``SimpleTokenizer`` (same vocabulary file as
ImageBind's); cleaning, splitting and special-token handling are done here because open_clip names its special
tokens differently and collapses a slightly different set of whitespace characters.
"""

from __future__ import annotations

import functools
import html
from typing import Any, Sequence

import torch

from audiodetic.errors import InputError, InputTypeError

SOT_ID = 49406
EOT_ID = 49407
CONTEXT_LENGTH = 77
_SPECIAL = {"<|startoftext|>": SOT_ID, "<|endoftext|>": EOT_ID}
_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@functools.lru_cache(maxsize=1)
def _bpe() -> Any:
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def clean_text(text: str) -> str:
    """ImageBind's text normalisation: fix mojibake, unescape HTML twice, collapse whitespace, lower-case."""
    import ftfy
    import regex

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


class ImageBindTokenizer:
    """Callable: ``tokenizer(texts) -> (B, context_length)`` int64 token ids, as ImageBind's ``SimpleTokenizer``."""

    def __init__(self, context_length: int = CONTEXT_LENGTH) -> None:
        import regex

        if context_length < 2:
            raise InputError(f"context_length must be at least 2 (SOT and EOT), got {context_length}")
        self.context_length = context_length
        self._pattern = regex.compile(_SPLIT, regex.IGNORECASE)

    def encode(self, text: str) -> list[int]:
        """BPE ids of ``text`` without SOT/EOT."""
        bpe = _bpe()
        ids: list[int] = []
        for piece in self._pattern.findall(clean_text(text)):
            if piece in _SPECIAL:
                ids.append(_SPECIAL[piece])
                continue
            unicode_piece = "".join(bpe.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(bpe.encoder[token] for token in bpe.bpe(unicode_piece).split(" "))
        return ids

    def __call__(self, texts: Sequence[str] | str) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise InputTypeError(f"texts must be strings, got {type(bad[0]).__name__}: {bad[0]!r}")
        out = torch.zeros(len(texts), self.context_length, dtype=torch.int64)
        for row, text in enumerate(texts):
            ids = [SOT_ID, *self.encode(text)][: self.context_length - 1] + [EOT_ID]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return out


def tokenize(texts: Sequence[str] | str, context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """Token ids of ``texts`` for ImageBind's text tower: int64 ``(B, context_length)``."""
    return ImageBindTokenizer(context_length)(texts)
