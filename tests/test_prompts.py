"""Vocabularies from sound / text / embedding / mixed prompts, and the embedding cache."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from audiodetic.bridge import LinearBridge, RetrievalBridge
from audiodetic.encoders.audio.imagebind import ImageBindAudioEncoder
from audiodetic.encoders.cache import EmbeddingCache, encode_sounds
from audiodetic.encoders.clip_text import ClipTextEncoder
from audiodetic.errors import VocabularyError
from audiodetic.prompts import Embedding, Mix, Sound, Text, build_vocabulary
from audiodetic.spaces import CLIP_IMAGE_SPACE, DETECTOR_SPACE

SR = 16_000


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class Counting:
    """Wraps a real encoder and records how many items it was asked to encode."""

    def __init__(self, inner, method):
        self.inner, self.method, self.items = inner, method, []
        self.fingerprint = f"counting-{id(inner)}"
        self.space = getattr(inner, "space", "imagebind")

    def encode_sources(self, sources):
        self.items.extend(sources)
        return self.inner.encode_sources(sources)

    def encode(self, texts):
        self.items.extend(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def audio():
    return ImageBindAudioEncoder.tiny(seed=0)


@pytest.fixture(scope="module")
def text():
    return ClipTextEncoder.tiny(seed=0)


@pytest.fixture(scope="module")
def bridge():
    return LinearBridge.random(64, 512, seed=1)


def _tone(freq, seconds=2.5, rate=SR):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture()
def wavs(tmp_path):
    paths = []
    for i, freq in enumerate((220.0, 440.0, 1250.0)):
        path = tmp_path / f"tone{i}.wav"
        sf.write(path, _tone(freq), SR)
        paths.append(path)
    return paths


def test_text_and_sound_rows(audio, text, bridge, wavs):
    cache = EmbeddingCache()
    vocab = build_vocabulary({"dog": "dog", "tone": Sound(wavs[0]), "cat": Text("cat")}, audio_encoder=audio,
                             bridge=bridge, text_encoder=text, cache=cache)
    assert vocab.names == ("dog", "tone", "cat") and vocab.space == DETECTOR_SPACE and vocab.dim == 512
    np.testing.assert_allclose(vocab.embeddings[[0, 2]], _unit(text.encode(["dog", "cat"]).numpy()), atol=1e-5)
    raw = audio.encode_sources([str(wavs[0])]).numpy()
    np.testing.assert_allclose(vocab.embeddings[1], bridge.apply(raw)[0], atol=1e-5)
    plain = build_vocabulary(["dog", "cat"], text_encoder=text, cache=cache)
    np.testing.assert_array_equal(plain.embeddings, vocab.embeddings[[0, 2]])


def test_several_clips_average_before_or_after_the_bridge(audio, wavs):
    rng = np.random.default_rng(0)
    retrieval = RetrievalBridge(rng.standard_normal((40, 64)), rng.standard_normal((40, 512)), temperature=0.05,
                                top_k=3)
    raw = audio.encode_sources([str(p) for p in wavs]).numpy()
    before = build_vocabulary({"t": Sound(wavs)}, audio_encoder=audio, bridge=retrieval)
    after = build_vocabulary({"t": Sound(wavs)}, audio_encoder=audio, bridge=retrieval, average="detector")
    np.testing.assert_allclose(before.embeddings[0], retrieval.apply(_unit(raw).mean(axis=0))[0], atol=1e-5)
    np.testing.assert_allclose(after.embeddings[0], _unit(retrieval.apply(raw).mean(axis=0)), atol=1e-5)


    # Two clips at labels 0 and 1 of a bank whose label 2 lies between them: averaging first retrieves label 2,
    # bridging first blends labels 0 and 1.
    bank = _unit(rng.standard_normal((3, 64)))
    bank[2] = _unit(bank[0] + bank[1])
    between = RetrievalBridge(bank, rng.standard_normal((3, 512)), temperature=0.01, top_k=3)

    class Fixed:
        space = "imagebind"

        def encode_sources(self, sources):
            return np.stack([bank[0 if "tone0" in str(s) else 1] for s in sources])

    both = Sound(wavs[:2])
    mixed_before = build_vocabulary({"t": both}, audio_encoder=Fixed(), bridge=between).embeddings[0]
    mixed_after = build_vocabulary({"t": both}, audio_encoder=Fixed(), bridge=between, average="detector")
    np.testing.assert_allclose(mixed_before, between.label_dst[2], atol=1e-3)
    np.testing.assert_allclose(mixed_after.embeddings[0], _unit(between.label_dst[0] + between.label_dst[1]),
                               atol=1e-3)


def test_mix_and_embeddings(audio, text, bridge, wavs):
    vocab = build_vocabulary(
        {"dog": [(0.7, Sound(wavs[1])), (0.3, Text("dog"))], "s": Sound(wavs[1]), "t": "dog",
         "given": Embedding(np.arange(1, 513, dtype=np.float32)),
         "audio_vec": Embedding(audio.encode_sources([str(wavs[1])])[0], space="imagebind"),
         "nested": Mix([(1.0, Mix([(1.0, "dog")])), (-0.5, "cat")])},
        audio_encoder=audio, bridge=bridge, text_encoder=text)
    e = dict(zip(vocab.names, vocab.embeddings.astype(np.float64)))
    np.testing.assert_allclose(e["dog"], _unit(0.7 * e["s"] + 0.3 * e["t"]), atol=1e-5)
    np.testing.assert_allclose(e["given"], _unit(np.arange(1, 513)), atol=1e-6)
    np.testing.assert_allclose(e["audio_vec"], e["s"], atol=1e-5)
    cat = _unit(text.encode(["cat"]).numpy()[0])
    np.testing.assert_allclose(e["nested"], _unit(e["t"] - 0.5 * cat), atol=1e-5)


def test_bridge_given_by_file_or_name(audio, text, bridge, wavs, tmp_path):
    path = bridge.save(tmp_path / "b.npz")
    by_path = build_vocabulary({"t": Sound(wavs[0])}, audio_encoder=audio, bridge=str(path))
    direct = build_vocabulary({"t": Sound(wavs[0])}, audio_encoder=audio, bridge=bridge)
    np.testing.assert_array_equal(by_path.embeddings, direct.embeddings)
    # a named bridge is only resolved when a prompt needs one (text-only: nothing is loaded or fitted)
    assert build_vocabulary(["dog"], text_encoder=text, bridge="linear").names == ("dog",)


def test_clip_space_encoders_need_no_bridge(wavs):
    class ClipSpaceAudio:  # stands in for Wav2CLIP: 512-d outputs in CLIP's joint space
        space = CLIP_IMAGE_SPACE

        def encode_sources(self, sources):
            return np.stack([np.full(512, float(len(str(s)))) + np.arange(512) for s in sources])

    vocab = build_vocabulary({"x": Sound(wavs[0])}, audio_encoder=ClipSpaceAudio())
    np.testing.assert_allclose(vocab.embeddings[0], _unit(np.full(512, len(str(wavs[0]))) + np.arange(512)),
                               atol=1e-6)


def test_same_clip_is_encoded_once(audio, text, bridge, wavs):
    cache = EmbeddingCache()
    counting_audio, counting_text = Counting(audio, "audio"), Counting(text, "text")
    data = wavs[2].read_bytes()
    waveform = _tone(300.0)
    prompts = {"a": Sound([wavs[2], data]), "b": Sound(wavs[2]), "c": Sound((waveform, SR)),
               "d": [(0.5, Sound((waveform.copy(), SR))), (0.5, "dog")], "e": "dog"}
    first = build_vocabulary(prompts, audio_encoder=counting_audio, bridge=bridge, text_encoder=counting_text,
                             cache=cache)
    assert len(counting_audio.items) == 2 and counting_text.items == ["dog"]  # file == its bytes; array == copy
    second = build_vocabulary(prompts, audio_encoder=counting_audio, bridge=bridge, text_encoder=counting_text,
                              cache=cache)
    assert len(counting_audio.items) == 2 and len(counting_text.items) == 1
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    np.testing.assert_allclose(first.embeddings[0], first.embeddings[1], atol=1e-6)
    other = Counting(ImageBindAudioEncoder.tiny(seed=1), "audio")  # another encoder: its own entries
    encode_sounds([wavs[2]], other, cache=cache)
    assert len(other.items) == 1
    resampled = (_tone(300.0, rate=22_050), 22_050)  # same tone at another rate is different content
    encode_sounds([resampled], counting_audio, cache=cache)
    assert len(counting_audio.items) == 3


def test_concurrent_builds_encode_each_clip_once(audio, bridge, wavs):
    cache = EmbeddingCache()
    counting = Counting(audio, "audio")
    results, errors = [], []

    def work():
        try:
            results.append(build_vocabulary({f"t{i}": Sound(p) for i, p in enumerate(wavs)},
                                            audio_encoder=counting, bridge=bridge, cache=cache))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 4
    assert len(counting.items) == 3 and cache.encoded == 3
    for result in results[1:]:
        np.testing.assert_array_equal(result.embeddings, results[0].embeddings)


def test_cache_is_bounded():
    cache = EmbeddingCache(max_entries=2)
    rows = cache.get_many([("e", "a"), ("e", "b"), ("e", "c")], [1, 2, 3], lambda xs: np.array([[x] for x in xs]))
    assert [float(r[0]) for r in rows] == [1, 2, 3] and len(cache) == 2


def test_errors_are_clear(audio, text, bridge, wavs, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        build_vocabulary({"x": Sound(tmp_path / "nope.wav")}, audio_encoder=audio, bridge=bridge)
    with pytest.raises(ValueError, match="audio encoder"):
        build_vocabulary({"x": Sound(wavs[0])}, bridge=bridge)
    with pytest.raises(ValueError, match="need a bridge"):
        build_vocabulary({"x": Sound(wavs[0])}, audio_encoder=audio)
    with pytest.raises(ValueError, match="512-d inputs but the audio embeddings are 64-d"):
        build_vocabulary({"x": Sound(wavs[0])}, audio_encoder=audio, bridge=LinearBridge.random(512))
    with pytest.raises(ValueError, match="text encoder"):
        build_vocabulary(["dog"])
    with pytest.raises(ValueError, match="non-zero weight"):
        Mix([(0.0, "dog")])
    with pytest.raises(ValueError, match="zero vector"):
        build_vocabulary({"x": Mix([(1.0, "dog"), (-1.0, "dog")])}, text_encoder=text)
    with pytest.raises(ValueError, match="prompt 'x'.*cannot read 42"):
        build_vocabulary({"x": 42}, text_encoder=text)
    with pytest.raises(ValueError, match="unsupported sound source"):
        Sound(3.5)
    with pytest.raises(ValueError, match="must not be empty"):
        Sound(b"")
    with pytest.raises(ValueError, match="at least one clip"):
        Sound([])
    with pytest.raises(ValueError, match="non-empty string"):
        Text("  ")
    with pytest.raises(ValueError, match="not one string"):
        build_vocabulary("dog", text_encoder=text)
    with pytest.raises(ValueError, match="average"):
        build_vocabulary(["dog"], text_encoder=text, average="median")
    with pytest.raises(ValueError, match="finite, non-zero"):
        Embedding(np.zeros(512))
    with pytest.raises(VocabularyError, match="unique"):
        build_vocabulary([("a", "dog"), ("a", "cat")], text_encoder=text)


def test_a_small_cache_encodes_each_item_once_per_build(text):
    counting = Counting(text, "encode")
    names = ["dog", "cat", "bird", "cow"]
    vocabulary = build_vocabulary(names, text_encoder=counting, cache=EmbeddingCache(max_entries=1))
    assert sorted(counting.items) == sorted(names)  # the first pass's rows are used, not fetched again
    expected = build_vocabulary(names, text_encoder=text, cache=EmbeddingCache())
    np.testing.assert_allclose(vocabulary.embeddings, expected.embeddings, atol=1e-6)


def test_prompt_errors_name_the_prompt_once_and_keep_their_type(tmp_path):
    from audiodetic.errors import InputTypeError, MissingFileError
    from audiodetic.prompts import image_prompts, sound_prompts

    with pytest.raises(MissingFileError, match=r"^prompt 'dog': sound file not found: .*nope\.wav$"):
        sound_prompts({"dog": [tmp_path / "nope.wav"]})
    with pytest.raises(MissingFileError, match=r"^prompt 'cat': image file not found"):
        image_prompts({"cat": [tmp_path / "nope.png"]})
    with pytest.raises(InputTypeError, match=r"^prompt 'cat'"):
        image_prompts({"cat": [3.5]})
    with pytest.raises(ValueError, match=r"^prompt 'x' needs a non-empty string"):
        build_vocabulary({"x": "  "})
