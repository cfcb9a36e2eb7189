import numpy as np
import pytest

from audiodetic.errors import VocabularyError
from audiodetic.spaces import DETECTOR_SPACE
from audiodetic.vocabulary import Vocabulary, as_vocabulary


def random_vocab(names=("dog", "siren", "bell"), dim=512, seed=0):
    return Vocabulary(names, np.random.default_rng(seed).normal(size=(len(names), dim)) * 3)


def test_rows_are_unit_norm_float32_and_read_only():
    vocab = random_vocab()
    assert vocab.embeddings.dtype == np.float32 and vocab.dim == 512 and len(vocab) == 3
    np.testing.assert_allclose(np.linalg.norm(vocab.embeddings, axis=1), 1.0, rtol=1e-6)
    assert vocab.space == DETECTOR_SPACE
    with pytest.raises(ValueError):
        vocab.embeddings[0, 0] = 1.0


@pytest.mark.parametrize(
    "names, matrix, message",
    [
        (("a", "a"), np.ones((2, 4)), "unique"),
        (("a",), np.ones((2, 4)), "1 names but 2"),
        (("a", ""), np.ones((2, 4)), "non-empty"),
        (("a",), np.zeros((1, 4)), "zero vectors"),
        (("a",), np.full((1, 4), np.inf), "finite"),
        (("a",), np.ones(4), "\\(C, D\\)"),
        ("ab", np.ones((2, 4)), "not one string"),
    ],
)
def test_bad_vocabularies_are_refused(names, matrix, message):
    with pytest.raises(VocabularyError, match=message):
        Vocabulary(names, matrix)


def test_concat_select_rename():
    a = random_vocab()
    b = random_vocab(("typing",), seed=1)
    joined = a + b
    assert joined.names == ("dog", "siren", "bell", "typing")
    np.testing.assert_array_equal(joined.embeddings[3], b.embeddings[0])
    picked = joined.select(["typing", 0])
    assert picked.names == ("typing", "dog")
    np.testing.assert_array_equal(picked.embeddings[1], a.embeddings[0])
    with pytest.raises(VocabularyError, match="not in the vocabulary"):
        joined.select(["cat"])
    with pytest.raises(VocabularyError, match="unique"):
        a + a
    other_space = Vocabulary(("x",), np.ones((1, 512)), space="imagebind")
    with pytest.raises(VocabularyError, match="cannot concatenate"):
        a + other_space
    with pytest.raises(VocabularyError, match="expects 1024-d"):
        a.check_compatible(dim=1024)


def test_save_load_round_trip_and_refuses_to_overwrite_foreign_files(tmp_path):
    vocab = random_vocab()
    path = vocab.save(tmp_path / "v.npz")
    back = Vocabulary.load(path)
    assert back.names == vocab.names and back.space == vocab.space
    np.testing.assert_array_equal(back.embeddings, vocab.embeddings)
    foreign = tmp_path / "data.npz"
    np.savez(foreign, x=np.ones(3))
    with pytest.raises(VocabularyError, match="not overwriting"):
        vocab.save(foreign)
    assert np.load(foreign)["x"].tolist() == [1, 1, 1]
    with pytest.raises(VocabularyError, match=".npz"):
        vocab.save(tmp_path / "v.txt")


def test_detic_npy_format(tmp_path):
    matrix = np.random.default_rng(3).normal(size=(4, 512)).astype(np.float32)
    np.save(tmp_path / "custom.npy", matrix)
    vocab = Vocabulary.load(tmp_path / "custom.npy", names=["a", "b", "c", "d"])
    np.testing.assert_allclose(vocab.embeddings, matrix / np.linalg.norm(matrix, axis=1, keepdims=True), rtol=1e-6)
    assert vocab.space == DETECTOR_SPACE
    assert Vocabulary.load(tmp_path / "custom.npy").names[0] == "class_0"
    with pytest.raises(VocabularyError, match="4 rows but 2 names"):
        Vocabulary.load(tmp_path / "custom.npy", names=["a", "b"])
    vocab.to_npy(tmp_path / "out.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), vocab.embeddings)
    with pytest.raises(FileNotFoundError):
        Vocabulary.load(tmp_path / "missing.npy")


def test_as_vocabulary_accepts_arrays_tensors_and_paths(tmp_path):
    torch = pytest.importorskip("torch")
    vocab = as_vocabulary(torch.ones(2, 512), names=["x", "y"])
    assert vocab.names == ("x", "y")
    assert as_vocabulary(np.ones((1, 1024))).space == "unknown-1024d"
    assert as_vocabulary(vocab) is vocab
    tensor = vocab.as_tensor()
    assert tuple(tensor.shape) == (2, 512) and tensor.dtype == torch.float32
