"""Tests of ncbook._checks: every checker raises TypeError/ValueError naming the argument."""

import math

import numpy as np
import pytest
import torch

from ncbook import _checks as C

pytestmark = pytest.mark.usefixtures("single_thread")


def test_as_tensor_rejects_non_tensors_and_integer_dtypes():
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        C.as_tensor([[1.0]], "W")
    with pytest.raises(TypeError, match="W must have a floating dtype"):
        C.as_tensor(torch.ones(2, 2, dtype=torch.int64), "W")
    x = torch.ones(2, 2)
    assert C.as_tensor(x, "W") is x


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite(bad):
    x = torch.zeros(3, dtype=torch.float64)
    x[1] = bad
    with pytest.raises(ValueError, match="H must contain only finite values"):
        C.check_finite(x, "H")


def test_check_matrix_shapes():
    with pytest.raises(ValueError, match="X must have 2 dimensions"):
        C.check_matrix(torch.ones(3), "X", min_ndim=2, max_ndim=2)
    with pytest.raises(ValueError, match="X must have 2 dimensions"):
        C.check_matrix(torch.ones(2, 2, 2), "X", min_ndim=2, max_ndim=2)
    with pytest.raises(ValueError, match="X must be nonempty"):
        C.check_matrix(torch.ones(3, 0), "X")
    x = torch.ones(2, 3, dtype=torch.float64)
    assert C.check_matrix(x, "X") is x


def test_check_unit_rows():
    x = torch.tensor([[0.6, 0.8], [1.0, 0.0]], dtype=torch.float64)
    assert C.check_unit_rows(x, "W") is x
    with pytest.raises(ValueError, match="W must have unit-norm rows"):
        C.check_unit_rows(2 * x, "W")
    # NaN rows must not slip through a ``err > tol`` comparison
    with pytest.raises(ValueError, match="W must have unit-norm rows"):
        C.check_unit_rows(torch.tensor([[float("nan"), 0.0]]), "W")
    with pytest.raises(ValueError, match="W must be nonempty"):
        C.check_unit_rows(torch.ones(0, 2), "W")
    # float32 gets a looser tolerance than float64
    y = torch.tensor([[1.0 + 1e-6, 0.0]])
    C.check_unit_rows(y, "W")
    with pytest.raises(ValueError):
        C.check_unit_rows(y.double(), "W")


@pytest.mark.parametrize("tau,expected", [(1, 1.0), (2.5, 2.5), (np.float64(3.0), 3.0), (torch.tensor(4.0), 4.0)])
def test_check_tau_accepts(tau, expected):
    assert C.check_tau(tau) == expected


@pytest.mark.parametrize("tau", [0, -1.0, math.inf, math.nan, torch.tensor(-2.0)])
def test_check_tau_rejects_values(tau):
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        C.check_tau(tau)


@pytest.mark.parametrize("tau", [True, "1", None, torch.ones(2), 1 + 2j, torch.tensor(True)])
def test_check_tau_rejects_types(tau):
    with pytest.raises(TypeError, match="tau must be a real number"):
        C.check_tau(tau)


def test_check_positive_int():
    assert C.check_positive_int(np.int64(3), "K") == 3
    with pytest.raises(TypeError, match="K must be an integer"):
        C.check_positive_int(2.0, "K")
    with pytest.raises(TypeError, match="K must be an integer"):
        C.check_positive_int(True, "K")
    with pytest.raises(ValueError, match="K must be >= 2"):
        C.check_positive_int(1, "K", minimum=2)


def test_check_dim():
    C.check_dim(3, 4)
    with pytest.raises(ValueError, match="d must be >= K - 1"):
        C.check_dim(2, 4)


def test_check_labels():
    y = torch.tensor([0, 1, 2], dtype=torch.int32)
    out = C.check_labels(y, 3, 3)
    assert out.dtype == torch.int64 and torch.equal(out, y.long())
    with pytest.raises(TypeError, match="y must be a torch.Tensor"):
        C.check_labels([0, 1], 2, 2)
    with pytest.raises(TypeError, match="y must have an integer dtype"):
        C.check_labels(torch.tensor([0.0, 1.0]), 2, 2)
    with pytest.raises(ValueError, match=r"y must have shape \(4,\)"):
        C.check_labels(y, 4, 3)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 2\)"):
        C.check_labels(y, 3, 2)
    with pytest.raises(ValueError, match="y must hold labels >= 0"):
        C.check_labels(torch.tensor([0, -1]), 2, None)
    with pytest.raises(ValueError, match=r"labels must hold labels in \[0, 3\)"):
        C.check_labels(torch.tensor([-1, 0, 1]), 3, 3, name="labels")


def test_check_compatible_and_dtype():
    a = torch.ones(2, dtype=torch.float64)
    with pytest.raises(TypeError, match="x and u must share dtype and device"):
        C.check_compatible(a, a.float(), "x", "u")
    C.check_compatible(a, a, "x", "u")
    assert C.check_float_dtype(torch.float32) is torch.float32
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
        C.check_float_dtype(torch.int64)
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
        C.check_float_dtype("float64")


def test_check_same_shape():
    with pytest.raises(ValueError, match="x and u must have the same shape"):
        C.check_same_shape(torch.ones(2, 3), torch.ones(3, 2), "x", "u")
