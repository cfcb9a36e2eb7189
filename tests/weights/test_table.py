"""The model table: required entries, aliases, consistency of URLs / file names / digests / licences."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from audiodetic.weights import MODELS, ModelFile, find_model
from audiodetic.weights.table import known_names, suggest_names

REQUIRED = {
    "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size": ("detic-r50", "detector", "Apache-2.0"),
    "Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size": ("detic-swinb", "detector", "Apache-2.0"),
    "BoxSup-C2_L_CLIP_R5021k_640b64_4x": ("boxsup-r50", "detector", "Apache-2.0"),
    "BoxSup-C2_LCOCO_CLIP_SwinB_896b32_4x": (None, "detector", "Apache-2.0"),
    "imagebind_huge": (None, "audio-text", "CC-BY-NC-4.0"),
    "clip-vit-b32": (None, "text", "MIT"),
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_required_entries(name):
    alias, kind, licence = REQUIRED[name]
    model = MODELS[name]
    assert (model.kind, model.licence) == (kind, licence)
    assert find_model(name) is model and find_model(name.upper()) is model
    if alias is not None:
        assert alias in model.aliases and find_model(alias) is model


def test_urls_filenames_and_architectures_are_consistent():
    filenames = [model.filename for model in MODELS.values()]
    assert len(set(filenames)) == len(filenames)
    for name, model in MODELS.items():
        assert model.name == name
        assert urlsplit(model.url).scheme == "https"
        assert urlsplit(model.url).path.rsplit("/", 1)[-1] == model.filename
        if model.kind == "detector":
            assert model.url == f"https://dl.fbaipublicfiles.com/detic/{name}.pth"
            assert model.architecture in ("detic-c2-cascade/resnet50-21k", "detic-c2-cascade/swin-b")
            assert ("SwinB" in name) == model.architecture.endswith("swin-b")
            assert "R18" not in name and "CXT" not in name and "DeformDETR" not in name  # unsupported backbones
        assert model.description and model.source.startswith("https://")


def test_clip_digest_is_the_one_in_its_url():
    clip = MODELS["clip-vit-b32"]
    assert clip.sha256 is not None and f"/{clip.sha256}/" in clip.url
    assert MODELS["imagebind_huge"].url == "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"


def test_names_and_suggestions():
    assert find_model("no-such-model") is None
    assert "detic-r50" in suggest_names("detic-r5")
    listing = known_names()
    assert len(listing) == len(MODELS) and any("(detic-r50)" in line for line in listing)


@pytest.mark.parametrize("changes, message", [
    ({"kind": "vision"}, "kind"),
    ({"sha256": "ABC"}, "sha256"),
    ({"size": 0}, "size"),
    ({"url": "ftp://x/y"}, "url"),
    ({"filename": "../evil.pth"}, "filename"),
])
def test_model_file_validation(changes, message):
    fields = dict(name="x", url="https://example.invalid/x.pth", filename="x.pth", licence="MIT", kind="text",
                  description="d", architecture="a")
    with pytest.raises(ValueError, match=message):
        ModelFile(**{**fields, **changes})
