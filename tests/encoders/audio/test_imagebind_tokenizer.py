"""ImageBind's CLIP BPE tokenisation: ids, cleaning, special strings, truncation keeping EOT last."""

from __future__ import annotations

import pytest
import torch

from audiodetic.encoders.audio.tokenizer import CONTEXT_LENGTH, EOT_ID, SOT_ID, ImageBindTokenizer, clean_text, tokenize


def test_known_ids():
    tokens = tokenize(["a diagram", "a dog", "a cat"])
    assert tokens.shape == (3, CONTEXT_LENGTH) and tokens.dtype == torch.int64
    # CLIP's published example ids for "a diagram", "a dog", "a cat"
    assert tokens[0, :5].tolist() == [SOT_ID, 320, 22697, EOT_ID, 0]
    assert tokens[1, :4].tolist() == [SOT_ID, 320, 1929, EOT_ID]
    assert tokens[2, :4].tolist() == [SOT_ID, 320, 2368, EOT_ID]
    assert (tokens[:, 5:] == 0).all()


def test_cleaning_lower_cases_unescapes_and_collapses_whitespace():
    assert clean_text("  A\u00a0Dog\t\n BARKS  ") == "a dog barks"
    assert clean_text("fish &amp;amp; chips") == "fish & chips"  # unescaped twice
    assert torch.equal(tokenize("  A  DOG\n"), tokenize("a dog"))
    assert torch.equal(tokenize("Fish &amp; chips"), tokenize("fish & chips"))


def test_special_strings_and_empty_text():
    assert tokenize("")[0, :3].tolist() == [SOT_ID, EOT_ID, 0]
    inner = tokenize("a <|endoftext|> b")[0, :6].tolist()
    assert inner == [SOT_ID, 320, EOT_ID, 321, EOT_ID, 0]


def test_truncation_keeps_eot_last():
    row = tokenize("dog " * 200)[0]
    assert row[0] == SOT_ID and row[-1] == EOT_ID and (row[1:-1] == 1929).all()
    exact = tokenize("dog " * 75)[0]  # SOT + 75 + EOT = 77, nothing dropped
    assert exact[-1] == EOT_ID and (exact[1:-1] == 1929).all()
    short = ImageBindTokenizer(context_length=5)("dog dog dog dog dog dog")
    assert short[0].tolist() == [SOT_ID, 1929, 1929, 1929, EOT_ID]


def test_matches_open_clip_on_plain_text():
    open_clip = pytest.importorskip("open_clip")
    texts = ["a photo of a dog", "car horn honking, loudly!", "it's 12 o'clock", "Emergency siren 911"]
    assert torch.equal(tokenize(texts), open_clip.tokenize(texts))


def test_bad_inputs():
    with pytest.raises(TypeError, match="must be strings"):
        tokenize(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="context_length"):
        ImageBindTokenizer(context_length=1)
