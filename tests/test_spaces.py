"""audiodetic.spaces: which space needs a bridge, bridge kinds, and the one L2 rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiodetic import spaces
from audiodetic.errors import InputError


def test_only_non_clip_spaces_need_a_bridge() -> None:
    assert not spaces.needs_bridge(spaces.DETECTOR_SPACE) and not spaces.needs_bridge(spaces.CLIP_IMAGE_SPACE)
    assert spaces.needs_bridge(spaces.IMAGEBIND_SPACE) and spaces.needs_bridge("unknown-64d")
    assert spaces.default_space(512) == spaces.DETECTOR_SPACE and spaces.default_space(64) == "unknown-64d"


def test_bridge_kinds_are_checked_in_one_place() -> None:
    for kind in spaces.BRIDGE_KINDS:
        assert spaces.is_bridge_kind(kind) and spaces.check_bridge_kind(kind) == kind
    assert not spaces.is_bridge_kind("quadratic") and not spaces.is_bridge_kind(3)
    with pytest.raises(InputError, match="unknown bridge kind 'quadratic'; choose one of linear, retrieval"):
        spaces.check_bridge_kind("quadratic")


def test_l2_normalize_keeps_float32_and_refuses_zero_and_nan_rows() -> None:
    rows = np.array([[3.0, 4.0], [0.0, 2.0]], np.float32)
    out = spaces.l2_normalize(rows)
    assert out.dtype == np.float32 and np.allclose(out, [[0.6, 0.8], [0.0, 1.0]])
    assert spaces.l2_normalize([3, 4]).dtype == np.float64  # integers and lists are computed in float64
    assert np.allclose(spaces.l2_normalize(torch.tensor([[0.0, 5.0]])), [[0.0, 1.0]])
    assert spaces.l2_normalize(np.zeros((0, 4), np.float32)).shape == (0, 4)
    with pytest.raises(InputError, match=r"rows \[1\] are zero vectors"):
        spaces.l2_normalize(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(InputError, match="the vector is a zero vector"):
        spaces.l2_normalize(np.zeros(3))
    with pytest.raises(InputError, match="NaN"):
        spaces.l2_normalize(np.array([np.nan, 1.0]))
    with pytest.raises(InputError, match="shape"):
        spaces.l2_normalize(np.zeros((2, 2, 2)))
