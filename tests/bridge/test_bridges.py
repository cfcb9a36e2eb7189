"""Bridges on synthetic spaces where the true map is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiodetic.bridge import FitReport, LinearBridge, RetrievalBridge, load_bridge, retrieval_scores


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _semi_orthogonal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((rows, cols)))[0]


def _noisy_pairs(rng, n, a, noise):
    """src on the unit sphere; dst = src @ a + noise (a fixed linear relation plus per-item noise)."""
    src = _unit(rng.standard_normal((n, a.shape[0])))
    return src, src @ a + noise * rng.standard_normal((n, a.shape[1])) / np.sqrt(a.shape[1])


def test_ridge_recovers_affine_map():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((48, 24)), rng.standard_normal(24)
    src = rng.standard_normal((400, 48))
    bridge = LinearBridge.fit(src, src @ a + b, method="ridge", alpha=0.0, normalize=False, holdout=0.1)
    np.testing.assert_allclose(bridge.weight, a, atol=1e-4)
    x = rng.standard_normal((5, 48))
    np.testing.assert_allclose(bridge.apply(x), _unit(x @ a + b), atol=1e-5)
    assert bridge.report.held_out["top1"] == 1.0 and bridge.report.n_held_out == 40
    assert bridge.report.held_out["mean_cosine"] > 0.9999


def test_procrustes_recovers_scaled_rotation_both_shapes():
    rng = np.random.default_rng(1)
    for src_dim, dst_dim in [(64, 32), (32, 64)]:
        q = _semi_orthogonal(rng, max(src_dim, dst_dim), min(src_dim, dst_dim))
        q = q if src_dim >= dst_dim else q.T
        # zero-mean, isotropic source (S^T S = 300 I): the case where Procrustes is the exact least-squares map
        centred = rng.standard_normal((300, src_dim))
        src = np.linalg.qr(centred - centred.mean(axis=0))[0] * np.sqrt(300) + 2.0
        dst = 3.0 * src @ q + 0.5
        bridge = LinearBridge.fit(src, dst, method="procrustes", normalize=False)
        if src_dim >= dst_dim:  # an exact rotation into a subspace is recoverable
            np.testing.assert_allclose(bridge.weight, 3.0 * q, atol=1e-3)
            np.testing.assert_allclose(bridge.dst_mean, dst.mean(axis=0), atol=1e-5)
        assert bridge.report.held_out["top1"] == 1.0


def test_ridge_beats_chance_by_far_at_real_dims_with_a_hidden_map():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((1024, 512)) / np.sqrt(1024)
    src, dst = _noisy_pairs(rng, 3000, a, noise=0.5)
    bridge = LinearBridge.fit(src * 20.0, dst, method="ridge", alpha=1.0, seed=3)  # ImageBind-like norm 20
    report = bridge.report
    assert report.src_dim == 1024 and report.dst_dim == 512 and report.n_held_out == 300
    assert report.held_out["top1"] > 0.9 and report.held_out["top5"] >= report.held_out["top1"]
    out = bridge.apply(src[:3])
    assert out.shape == (3, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("method", ["ridge", "procrustes"])
def test_linear_accuracy_rises_with_data(method):
    rng = np.random.default_rng(4)
    a = _semi_orthogonal(rng, 96, 48)
    test_src, test_dst = _noisy_pairs(rng, 300, a, noise=0.8)
    scores = []
    for n in (30, 150, 1500):
        src, dst = _noisy_pairs(rng, n, a, noise=0.8)
        bridge = LinearBridge.fit(src, dst, method=method, alpha=0.1, holdout=0.0)
        scores.append(retrieval_scores(bridge.apply(test_src), test_dst)["top1"])
    assert scores[0] < scores[1] < scores[2], scores
    assert scores[2] > 0.5


def test_retrieval_bridge_accuracy_rises_with_label_bank_size():
    rng = np.random.default_rng(5)
    a = _semi_orthogonal(rng, 64, 32)
    test_src, test_dst = _noisy_pairs(rng, 200, a, noise=0.3)
    scores = []
    for n in (20, 200, 4000):
        src, dst = _noisy_pairs(rng, n, a, noise=0.3)
        bridge = RetrievalBridge(src, dst, temperature=0.05, top_k=10)
        scores.append(retrieval_scores(bridge.apply(test_src), test_dst)["top1"])
    assert scores[0] < scores[1] < scores[2], scores


def test_retrieval_bridge_math_and_explain():
    rng = np.random.default_rng(6)
    src, dst = rng.standard_normal((50, 16)), rng.standard_normal((50, 8))
    names = [f"n{i}" for i in range(50)]
    sharp = RetrievalBridge(src, dst, names, temperature=1e-4, top_k=5)
    np.testing.assert_allclose(sharp.apply(src[7] * 3.0), _unit(dst[7:8]), atol=1e-6)  # own label wins
    assert sharp.explain(src[7:8])[0][0][0] == "n7"
    bridge = RetrievalBridge(src, dst, names, temperature=0.5, top_k=3)
    x = rng.standard_normal((2, 16))
    top, weights = bridge.label_weights(x)
    sims = _unit(x) @ _unit(src).T
    expected_top = np.argsort(-sims, axis=1)[:, :3]
    np.testing.assert_array_equal(top, expected_top)
    w = np.exp(np.take_along_axis(sims, expected_top, 1) / 0.5)
    w /= w.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weights, w, rtol=1e-6)
    np.testing.assert_allclose(bridge.apply(x), _unit(np.einsum("bk,bkd->bd", w, _unit(dst)[expected_top])),
                               atol=1e-6)
    assert [n for n, _ in bridge.explain(x)[1]] == [names[i] for i in expected_top[1]]


def test_retrieval_fit_report_holds_out_labels():
    rng = np.random.default_rng(7)
    a = _semi_orthogonal(rng, 32, 16)
    src, dst = _noisy_pairs(rng, 500, a, noise=0.2)
    bridge = RetrievalBridge.fit(src, dst, temperature=0.05, top_k=8, holdout=0.2, seed=1)
    assert len(bridge) == 500 and bridge.report.n_held_out == 100
    assert 0.0 < bridge.report.held_out["top1"] < bridge.report.train["top1"]


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    src, dst = rng.standard_normal((80, 12)), rng.standard_normal((80, 6))
    x = rng.standard_normal((4, 12))
    for bridge in (LinearBridge.fit(src, dst, method="procrustes", vocabulary="synthetic"),
                   RetrievalBridge.fit(src, dst, [f"w{i}" for i in range(80)], temperature=0.1, top_k=4)):
        path = bridge.save(tmp_path / f"{bridge.kind}.npz")
        loaded = load_bridge(path)
        assert type(loaded) is type(bridge)
        np.testing.assert_array_equal(loaded.apply(x), bridge.apply(x))
        assert loaded.report == bridge.report
        on_disk = json.loads((tmp_path / f"{bridge.kind}.json").read_text())
        assert FitReport.from_dict(on_disk) == bridge.report
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left
    assert load_bridge(tmp_path / "retrieval.npz").names[3] == "w3"
    assert "held-out" in load_bridge(tmp_path / "linear.npz").report.summary()


def test_errors_name_the_problem(tmp_path):
    rng = np.random.default_rng(9)
    bridge = LinearBridge.random(16, 8)
    with pytest.raises(ValueError, match="width 10 .* 16-d"):
        bridge.apply(np.ones((2, 10)))
    with pytest.raises(ValueError, match="NaN"):
        bridge.apply(np.full((1, 16), np.nan))
    with pytest.raises(ValueError, match="paired"):
        LinearBridge.fit(rng.standard_normal((10, 4)), rng.standard_normal((9, 3)))
    with pytest.raises(ValueError, match="unknown linear bridge method 'pca'"):
        LinearBridge.fit(rng.standard_normal((10, 4)), rng.standard_normal((10, 3)), method="pca")
    with pytest.raises(ValueError, match="holdout"):
        LinearBridge.fit(rng.standard_normal((10, 4)), rng.standard_normal((10, 3)), holdout=1.5)
    with pytest.raises(ValueError, match="alpha"):
        LinearBridge.fit(rng.standard_normal((10, 4)), rng.standard_normal((10, 3)), alpha=-1)
    with pytest.raises(ValueError, match="temperature"):
        RetrievalBridge(np.ones((3, 4)), np.ones((3, 2)), temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        RetrievalBridge(np.ones((3, 4)), np.ones((3, 2)), top_k=0)
    with pytest.raises(ValueError, match="names"):
        RetrievalBridge(np.ones((3, 4)), np.ones((3, 2)), names=["a"])
    with pytest.raises(ValueError, match=r"\.npz"):
        bridge.save(tmp_path / "bridge.bin")
    with pytest.raises(FileNotFoundError):
        load_bridge(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.npz"):
        load_bridge(tmp_path / "junk.npz")
    bridge.save(tmp_path / "lin.npz")
    with pytest.raises(ValueError, match="not a retrieval one"):
        RetrievalBridge.load(tmp_path / "lin.npz")


def test_random_bridge_is_semi_orthogonal():
    w = LinearBridge.random(40, 16, seed=3).weight.astype(np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(16), atol=1e-5)
    assert LinearBridge.random(8, 16).weight.shape == (8, 16)


def test_auto_alpha_picks_the_regularisation_that_generalises():
    rng = np.random.default_rng(10)
    a = _semi_orthogonal(rng, 200, 40)
    src, dst = _noisy_pairs(rng, 150, a, noise=0.3)  # fewer pairs than input dimensions: alpha matters
    test_src, test_dst = _noisy_pairs(rng, 200, a, noise=0.3)
    auto = LinearBridge.fit(src, dst, method="ridge", alpha="auto", seed=2)
    assert auto.report.params["alpha_auto"] is True
    scores = {alpha: retrieval_scores(LinearBridge.fit(src, dst, alpha=alpha, seed=2).apply(test_src), test_dst)["top1"]
              for alpha in (0.01, 100.0)}
    auto_score = retrieval_scores(auto.apply(test_src), test_dst)["top1"]
    assert auto_score > max(scores.values()) + 0.1, (auto.report.params["alpha"], auto_score, scores)
    with pytest.raises(ValueError, match="'auto'"):
        LinearBridge.fit(src, dst, alpha="big")
