"""The simplex ETF: Gram matrix, construction, random rotations, input errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ncbook import etf

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64


@pytest.mark.parametrize("K", [2, 3, 5, 10])
def test_etf_gram_hand_values(K):
    """Digest fact 4: ones on the diagonal, -1/(K-1) off it, Frobenius norm K/sqrt(K-1)."""
    G = etf.etf_gram(K)
    assert G.shape == (K, K) and G.dtype == F64
    torch.testing.assert_close(torch.diagonal(G), torch.ones(K, dtype=F64), atol=1e-15, rtol=0)
    off = G[~torch.eye(K, dtype=torch.bool)]
    torch.testing.assert_close(off, torch.full_like(off, -1 / (K - 1)), atol=1e-15, rtol=0)
    assert abs(float(torch.linalg.matrix_norm(G)) - K / math.sqrt(K - 1)) < 1e-13
    # rank K-1, rows sum to zero
    assert int(torch.linalg.matrix_rank(G)) == K - 1
    assert G.sum(1).abs().max() < 1e-14


@pytest.mark.parametrize("K,d", [(2, 1), (2, 5), (3, 2), (4, 3), (5, 8), (10, 9), (10, 16)])
def test_simplex_etf_is_an_etf(K, d, gen):
    for g in (None, gen):
        W = etf.simplex_etf(K, d, generator=g)
        assert W.shape == (K, d) and W.dtype == F64
        torch.testing.assert_close(W @ W.T, etf.etf_gram(K), atol=1e-13, rtol=0)
        assert W.sum(0).abs().max() < 1e-13  # sum_k w_k = 0
        assert etf.is_simplex_etf(W)


def test_random_rotations_differ_and_dtype(gen):
    W1 = etf.simplex_etf(4, 6, generator=gen)
    W2 = etf.simplex_etf(4, 6, generator=gen)
    assert (W1 - W2).abs().max() > 1e-3
    W3 = etf.simplex_etf(4, 6, dtype=torch.float32)
    assert W3.dtype == torch.float32 and etf.is_simplex_etf(W3, atol=1e-6)


def test_random_orthogonal_is_orthogonal(gen):
    Q = etf.random_orthogonal(7, generator=gen)
    torch.testing.assert_close(Q.T @ Q, torch.eye(7, dtype=F64), atol=1e-13, rtol=0)


def test_is_simplex_etf_detects_non_etfs(gen):
    W = etf.simplex_etf(4, 5, generator=gen)
    assert not etf.is_simplex_etf(1.1 * W)
    W2 = W.clone()
    W2[0] = W[1]
    assert not etf.is_simplex_etf(W2)
    assert not etf.is_simplex_etf(torch.ones(1, 3, dtype=F64))  # K = 1 is not a simplex


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="d must be >= K - 1"):
        etf.simplex_etf(5, 3)
    with pytest.raises(ValueError, match="K must be >= 2"):
        etf.simplex_etf(1, 3)
    with pytest.raises(TypeError, match="K must be an integer"):
        etf.simplex_etf(3.0, 3)
    with pytest.raises(TypeError, match="d must be an integer"):
        etf.simplex_etf(3, "3")
    with pytest.raises(TypeError, match="dtype"):
        etf.simplex_etf(3, 3, dtype=torch.int32)
    with pytest.raises(ValueError, match="K must be >= 2"):
        etf.etf_gram(1)
    with pytest.raises(ValueError, match="d must be >= 1"):
        etf.random_orthogonal(0)
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        etf.is_simplex_etf([[1.0, 0.0]])
    with pytest.raises(ValueError, match="W must contain only finite"):
        etf.is_simplex_etf(torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]))


@settings(max_examples=30, deadline=None)
@given(K=st.integers(-2, 12), d=st.integers(-2, 12), seed=st.one_of(st.none(), st.integers(0, 2**16)))
def test_fuzz_simplex_etf(K, d, seed):
    """Any integer sizes: either a valid ETF or a ValueError; nothing else escapes."""
    g = None if seed is None else torch.Generator().manual_seed(seed)
    try:
        W = etf.simplex_etf(K, d, generator=g)
    except ValueError:
        assert K < 2 or d < 1 or d < K - 1
        return
    assert etf.is_simplex_etf(W, atol=1e-12)
