"""Labelled-audio layouts (ESC-50, UrbanSound8K, CSV) and the clip-embedding cache, with their bad inputs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
from audio_datasets import make_csv, make_urbansound8k, write_clip, write_rows

from audiodetic.bridge.clips import encode_clips
from audiodetic.bridge.datasets import audio_files, load_labelled_clips
from audiodetic.errors import InputError, MissingFileError


def test_esc50_layout(esc50_root):
    data = load_labelled_clips(esc50_root)
    assert data.layout == "esc50" and data.name == "ESC-50" and len(data) == 32
    # classes present, in ESC-50's target order, cleaned for prompting
    assert data.classes == ("dog", "rooster", "rain", "crying baby", "clock tick", "siren", "car horn",
                            "church bells")
    assert data.classes[data.labels[0]] == "dog" and data.rows[0] == 2
    assert sorted(set(data.folds)) == [1, 2, 3, 4]
    assert all(p.is_file() for p in data.paths)


def test_urbansound8k_and_csv_layouts(tmp_path):
    us8k = load_labelled_clips(make_urbansound8k(tmp_path / "us8k"))
    assert us8k.layout == "urbansound8k" and us8k.classes == ("air conditioner", "car horn", "dog bark", "siren")
    assert len(us8k) == 16 and sorted(set(us8k.folds)) == [1, 2, 3, 4]
    assert us8k.paths[0].parent.name == "fold1"
    csv_file = make_csv(tmp_path / "mine")
    mine = load_labelled_clips(csv_file)
    assert mine.layout == "csv" and mine.classes == ("bark", "meow", "whistle") and mine.folds is not None
    assert mine.paths[0] == tmp_path / "mine" / "sounds" / "bark-0.wav"
    unfolded = load_labelled_clips(make_csv(tmp_path / "plain", folds=False))
    assert unfolded.folds is None and len(unfolded) == 12
    assert audio_files(tmp_path / "mine" / "sounds")[0].name == "bark-0.wav"
    assert len(audio_files(csv_file)) == 12


def _broken_esc50(tmp_path, esc50_root, edit):
    root = tmp_path / "esc"
    shutil.copytree(esc50_root, root)
    meta = root / "meta" / "esc50.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(edit(lines)) + "\n")
    return root


@pytest.mark.parametrize("edit, error, message", [
    (lambda ls: ls[:3] + [ls[3].replace("-A-", "-Z-")] + ls[4:], MissingFileError, r"1 of 32 .*\(row 4: .*-Z-"),
    (lambda ls: ls[:2] + [ls[2].replace(",dog,", ",wolf,")] + ls[3:], InputError, r"row 3: category 'wolf' is not"),
    (lambda ls: ls[:2] + [ls[2].replace(",0,dog", ",7,dog")] + ls[3:], InputError, r"row 3: target '7' does not"),
    (lambda ls: ls[:2] + [ls[2].replace("2,0,dog", "9,0,dog")] + ls[3:], InputError, r"row 3: fold '9' .* 1\.\.5"),
    (lambda ls: [ls[0].replace("category", "kategorie")] + ls[1:], InputError, r"needs the columns .* category"),
    (lambda ls: ls[:1], InputError, "no rows"),
    (lambda ls: ls + [ls[1]], InputError, r"row 34: .* listed again \(first at row 2\)"),
    (lambda ls: ls[:5], InputError, r"only one class \('dog'\)"),
])
def test_esc50_bad_metadata_names_the_row(tmp_path, esc50_root, edit, error, message):
    with pytest.raises(error, match=message):
        load_labelled_clips(_broken_esc50(tmp_path, esc50_root, edit))


def test_bad_csv_and_paths(tmp_path):
    write_clip(tmp_path / "a.wav", 0, 0)
    bad = write_rows(tmp_path / "bad.csv", [{"file": "a.wav", "class": "x"}])
    with pytest.raises(InputError, match=r"bad.csv: .* needs the columns path, label; found file, class"):
        load_labelled_clips(bad)
    empty_label = write_rows(tmp_path / "empty.csv", [{"path": "a.wav", "label": "x"}, {"path": "a.wav", "label": " "}])
    with pytest.raises(InputError, match=r"row 3: every row needs a path and a non-empty label"):
        load_labelled_clips(empty_label)
    fold = write_rows(tmp_path / "fold.csv", [{"path": "a.wav", "label": "x", "fold": "one"}])
    with pytest.raises(InputError, match=r"row 2: fold 'one'"):
        load_labelled_clips(fold)
    case = write_rows(tmp_path / "case.csv", [{"path": "a.wav", "label": "Dog"}, {"path": "b.wav", "label": "dog"}])
    write_clip(tmp_path / "b.wav", 0, 1)
    with pytest.raises(InputError, match="differ only in case"):
        load_labelled_clips(case)
    with pytest.raises(MissingFileError, match="dataset not found"):
        load_labelled_clips(tmp_path / "nowhere")
    with pytest.raises(InputError, match="not a labelled-audio dataset; expected an ESC-50 folder"):
        load_labelled_clips(tmp_path)
    with pytest.raises(InputError, match="a.wav: expected"):
        load_labelled_clips(tmp_path / "a.wav")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(InputError, match="holds no audio files"):
        audio_files(tmp_path / "empty_folder")


class CountingTower:
    """A stand-in audio tower: the mean and spread of the waveform's first 8 000 samples (8-d), counted."""

    fingerprint = "counting-tower-v1"
    embed_dim = 8

    def __init__(self):
        self.calls = 0

    def encode_sources(self, sources):
        self.calls += len(sources)
        rows = []
        for waveform, rate in sources:
            x = np.asarray(waveform, np.float64)[0, :8000].reshape(8, -1)
            rows.append(x.std(axis=1) + 1e-3 * rate / 16000)
        return np.array(rows, np.float32)


def test_encode_clips_skips_and_counts_unusable_clips_and_caches(tmp_path):
    good = [write_clip(tmp_path / f"g{i}.wav", i, i) for i in range(3)]
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not audio")
    paths = [good[0], silent, nan, good[1], empty, junk, good[2]]
    tower = CountingTower()
    first = encode_clips(paths, tower, cache_dir=tmp_path / "cache", progress=False)
    assert first.kept.tolist() == [0, 3, 6] and first.embeddings.shape == (3, 8) and tower.calls == 3
    reasons = dict(first.skipped)
    assert set(reasons) == {1, 2, 4, 5} and reasons[1].startswith("silent")
    assert "NaN" in reasons[2] and "empty" in reasons[4] and "junk.wav" in reasons[5]
    report = first.skipped_report(paths, rows=list(range(2, 9)))
    assert report["count"] == 4 and report["clips"][0] == {"path": str(silent), "row": 3, "reason": reasons[1]}
    copy = tmp_path / "elsewhere" / "same.wav"  # the cache is keyed by content, not by path
    copy.parent.mkdir()
    shutil.copy(good[1], copy)
    again = encode_clips(paths + [copy], tower, cache_dir=tmp_path / "cache", progress=False)
    assert tower.calls == 3 and again.encoded == 0
    np.testing.assert_array_equal(again.embeddings[:3], first.embeddings)
    np.testing.assert_array_equal(again.embeddings[3], first.embeddings[1])
    fresh = encode_clips(paths, tower, cache_dir=tmp_path / "cache", use_cache=False, progress=False)
    assert tower.calls == 6 and fresh.encoded == 3
