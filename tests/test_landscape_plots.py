"""The low-dimensional landscape pictures: slice values, critical points on the slice, explorer."""

import math

import numpy as np
import pytest
import torch

from ncbook import landscape as L
from ncbook import landscape_plots as LP
from ncbook import ufm

pytestmark = pytest.mark.usefixtures("single_thread")


def test_circle_slice_values_at_known_points():
    deg, Z = LP.circle_slice(2.0, n_grid=121)  # 3 degree spacing: 0, 120, 240 are grid points
    i0, i120, i240 = 0, 40, 80
    assert abs(Z[i0, i0] - math.log(3)) < 1e-12  # collapsed: all logits equal
    assert abs(Z[i240, i120] - ufm.optimal_loss(3, 2.0)) < 1e-12  # ETF with aligned features
    assert abs(Z.min() - ufm.optimal_loss(3, 2.0)) < 1e-12
    _, Za = LP.circle_slice(2.0, sign=-1, n_grid=121)
    assert abs(Za[i240, i120] - math.log1p(2 * math.exp(3.0))) < 1e-12  # anti-aligned ETF
    with pytest.raises(ValueError, match="sign must be"):
        LP.circle_slice(1.0, sign=0)


def test_slice_critical_points_are_critical_and_on_the_slice():
    crit = LP.slice_critical_points(2.0, grid=3)
    labels = {(round(p["a"]), round(p["b"])): p["label"] for p in crit}
    assert labels[(120, 240)] == labels[(240, 120)] == "global minimizer"
    assert labels[(0, 0)] == "strict saddle"
    for p in crit:
        a, b = math.radians(p["a"]), math.radians(p["b"])
        W = torch.tensor([[1.0, 0.0], [math.cos(a), math.sin(a)], [math.cos(b), math.sin(b)]],
                         dtype=torch.float64)
        y = torch.arange(3)
        gW, gH = ufm.rgrad(W, W.clone(), y, 2.0)
        assert float(gW.norm() + gH.norm()) < 1e-9


def test_rgd_angle_path_reaches_the_minimum():
    a, b, f, configs = LP.rgd_angle_path(2.0, 40.0, 70.0, steps=300)
    assert a.shape == b.shape == f.shape == (301,) and len(configs) == 301
    assert np.all(np.diff(f) < 1e-12)  # descent with a small enough step
    assert abs(f[-1] - ufm.optimal_loss(3, 2.0)) < 1e-6


def test_tangent_plane_slice_through_a_saddle():
    W, H, y = L.collapsed_point(3, 3, 1)
    ev = L.hessian_matrix(W, H, y, 1.0)
    vals, vecs = torch.linalg.eigh(ev)
    QW, QH = L.tangent_basis(W), L.tangent_basis(H)
    d1 = L._basis_to_ambient(QW, QH, vecs[:, 0])
    d2 = L._basis_to_ambient(QW, QH, vecs[:, -1])
    s, Z = LP.tangent_plane_slice(W, H, y, 1.0, d1, d2, extent=0.1, n_grid=5)
    c = 2
    assert abs(Z[c, c] - math.log(3)) < 1e-12
    assert Z[c, c + 1] < Z[c, c] < Z[c + 1, c]  # down along the negative, up along the positive direction
    with pytest.raises(ValueError, match="extent must be"):
        LP.tangent_plane_slice(W, H, y, 1.0, d1, d2, extent=-1.0)


def test_circle_explorer_has_a_tau_slider_and_configuration_buttons():
    fig = LP.circle_explorer(taus=(1.0, 2.0), n_grid=13, path_steps=20)
    assert len(fig.layout.sliders) == 1 and len(fig.layout.sliders[0].steps) == 2
    assert len(fig.layout.updatemenus[0].buttons) == 2
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 2 and sum(bool(t.visible) for t in heatmaps) == 1
    with pytest.raises(ValueError, match="taus must hold"):
        LP.circle_explorer(taus=(1.0,))
