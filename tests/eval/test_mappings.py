"""The packaged sound -> category tables: every name exists, every left-out row says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiodetic.eval.mappings import BUILTIN_MAPS, load_mapping, read_clip_index, read_mapping, sound_key
from audiodetic.labels import dataset_names


@pytest.mark.parametrize("source", BUILTIN_MAPS)
@pytest.mark.parametrize("kind", ["coco", "lvis"])
def test_builtin_tables_name_real_classes_and_categories(source: str, kind: str) -> None:
    mapping = load_mapping(source, kind)
    sounds = {sound_key(name) for name in dataset_names(source)}
    categories = set(dataset_names(kind))
    for row in mapping.rows:
        assert sound_key(row.sound_class) in sounds, row
        if row.category:
            assert row.category in categories, row
        else:
            assert row.notes, f"left-out row without a reason: {row}"
    assert len(mapping.categories) >= 14


def test_esc50_tables_cover_every_class_and_the_reviewed_choices() -> None:
    coco, lvis = load_mapping("esc50", "coco"), load_mapping("esc50", "lvis")
    assert len(coco.rows) == len(lvis.rows) == 50
    pairs = {row.sound_class: row.category for row in lvis.rows}
    assert pairs["rooster"] == "cock" and pairs["hen"] == "chicken_(animal)"
    assert pairs["keyboard_typing"] == "computer_keyboard" and pairs["mouse_click"] == "mouse_(computer_equipment)"
    assert pairs["church_bells"] == "bell" and pairs["toilet_flush"] == "toilet"
    assert pairs["chainsaw"] is None  # LVIS has no chainsaw
    assert {row.sound_class: row.category for row in coco.rows}["car_horn"] == "car"
    assert set(coco.sound_classes("bird")) == {"rooster", "hen", "crow", "chirping_birds"}


def test_bad_tables_and_clip_lists_are_rejected(tmp_path: Path) -> None:
    table = tmp_path / "map.csv"
    table.write_text("sound_class,category\ndog,dog\nDog,cat\n")
    with pytest.raises(ValueError, match="appears twice"):
        read_mapping(table)
    table.write_text("sound,target\ndog,dog\n")
    with pytest.raises(ValueError, match="sound_class,category"):
        read_mapping(table)
    with pytest.raises(FileNotFoundError, match="neither a built-in table"):
        load_mapping("esc", "coco")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta/esc50.csv").write_text("filename,fold,target,category\n1-1-A-0.wav,1,0,dog\n")
    with pytest.raises(FileNotFoundError, match="1 clips listed"):
        read_clip_index(tmp_path)
    with pytest.raises(FileNotFoundError, match="metadata CSV not found"):
        read_clip_index(tmp_path, tmp_path / "other.csv")
