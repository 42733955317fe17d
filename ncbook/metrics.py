r"""Neural-collapse metrics NC1-NC3 and nearest-class-centre agreement, one-shot and streaming.

Rows convention: features ``H`` ``(N, d)``, labels ``y`` ``(N,)`` in ``[0, K)``, classifier rows
``W`` ``(K, d)``. With class means :math:`\mu_k`, global mean :math:`\mu_G` (mean of all features),

.. math::
    \Sigma_W = \frac1N \sum_i (h_i - \mu_{y_i})(h_i - \mu_{y_i})^\top, \qquad
    \Sigma_B = \frac1K \sum_k (\mu_k - \mu_G)(\mu_k - \mu_G)^\top,

    E = \frac{I_K - \frac1K \mathbf 1\mathbf 1^\top}{\sqrt{K-1}}

(:math:`E` is the simplex-ETF Gram matrix scaled to unit Frobenius norm). The metrics, as in the
paper's code (``generalized_model.py: compute_loss_acc_nc``):

* NC1 :math:`= \frac1K \operatorname{tr}(\Sigma_W \Sigma_B^{+})` (within-class variability collapses);
* NC2 :math:`= \lVert G/\lVert G\rVert_F - E\rVert_F` with :math:`G = W W^\top`, on the classifier only;
  :func:`nc2_means` applies the same formula to the centred class means;
* NC3 :math:`= \lVert W M^\top/\lVert W M^\top\rVert_F - E\rVert_F` with the **uncentred** class means
  :math:`M` (paper code); :func:`nc3_centered` uses the centred means (Zhu et al. 2021's code);
* NCC accuracy: how often the nearest class centre agrees with the labels (or with the network's
  predictions, Papyan et al.'s NC4).

All of them are scale-invariant in ``H`` and computed in float64. The one-shot functions run the
streaming accumulator :class:`ClassStats` on a single batch, so both agree exactly; in a training
loop, feed batches to :class:`ClassStats` (and call :meth:`ClassStats.all_reduce` under DDP).

Introduced in: chapter 01 (the phenomenon), used again in chapters 07-08.
"""

from __future__ import annotations

import math

import torch

from ._checks import (
    as_tensor,
    check_finite,
    check_float_dtype,
    check_labels,
    check_matrix,
    check_positive_int,
    check_real,
)
from .config import default_device

__all__ = [
    "REPORT_KEYS",
    "ClassStats",
    "NCCMeter",
    "etf_target",
    "class_means",
    "nc1",
    "nc2",
    "nc2_means",
    "nc3",
    "nc3_centered",
    "ncc_predict",
    "ncc_accuracy",
    "collapse_report",
]

#: Keys of :func:`collapse_report` (stable: other modules and the book index by them).
REPORT_KEYS = ("nc1", "nc2", "nc2_means", "nc3", "nc3_centered", "ncc_accuracy")

_F64 = torch.float64


def etf_target(K: int, *, dtype: torch.dtype = _F64, device=None) -> torch.Tensor:
    r""":math:`E = (I_K - \frac1K\mathbf 1\mathbf 1^\top)/\sqrt{K-1}`, the unit-Frobenius-norm ETF Gram, ``(K, K)``."""
    K = check_positive_int(K, "K", minimum=2)
    check_float_dtype(dtype)
    return (torch.eye(K, dtype=dtype, device=device) - 1.0 / K) / math.sqrt(K - 1)


def _etf_distance(G: torch.Tensor, what: str) -> float:
    r""":math:`\lVert G/\lVert G\rVert_F - E\rVert_F` for a ``(K, K)`` matrix ``G`` (float64)."""
    scale = G.abs().max()  # rescale first: the squares of a Gram of tiny features would underflow
    if not float(scale) > 0:
        raise ValueError(f"{what} is the zero matrix, so its distance to the ETF is undefined")
    G = G / scale
    return float(torch.linalg.matrix_norm(G / torch.linalg.matrix_norm(G) - etf_target(G.shape[0], device=G.device)))


def _check_W(W, K: int | None = None) -> torch.Tensor:
    W = check_matrix(W, "W", min_ndim=2, max_ndim=2)
    if W.shape[0] < 2:
        raise ValueError(f"W must have K >= 2 rows (classes), got shape {tuple(W.shape)}")
    if K is not None and W.shape[0] != K:
        raise ValueError(f"W must have one row per class, K = {K}, got shape {tuple(W.shape)}")
    return W


def _infer_K(y: torch.Tensor, K) -> int:
    if K is None:
        if y.numel() == 0:
            raise ValueError("y is empty, so the number of classes K cannot be inferred; pass K")
        return max(2, int(y.max()) + 1)
    return check_positive_int(K, "K", minimum=2)


# ---------------------------------------------------------------------------------------------
# streaming statistics
# ---------------------------------------------------------------------------------------------

class ClassStats:
    r"""Streaming per-class statistics of features, in float64, mergeable across processes.

    Keeps, for ``K`` classes in ``R^d``: the class counts :math:`n_k`, the class means :math:`\mu_k`
    and the total within-class scatter :math:`S_W = \sum_i (h_i - \mu_{y_i})(h_i - \mu_{y_i})^\top`.
    Batches are merged with the parallel-variance update of Chan, Golub and LeVeque,

    .. math:: S_W \leftarrow S_W + S_W^{\text{batch}} + \sum_k \frac{n_k m_k}{n_k + m_k}
              (\bar h_k - \mu_k)(\bar h_k - \mu_k)^\top ,

    which, unlike :math:`\sum h h^\top - \sum_k n_k \mu_k\mu_k^\top`, does not cancel catastrophically
    when the within-class spread is tiny (exactly the regime of neural collapse). Memory is
    :math:`O(Kd + d^2)`, independent of the number of samples.

    Parameters
    ----------
    K : int >= 2, number of classes
    d : int >= 1, feature dimension
    dtype : torch dtype of the accumulators (float64 by default)
    device : where to accumulate (``"cpu"``, ``"cuda"``, ``"auto"``, a torch.device); ``None`` means the
        device of the first batch

    Examples
    --------
    >>> stats = ClassStats(10, 64)
    >>> for xb, yb in loader:                       # doctest: +SKIP
    ...     stats.update(model.features(xb), yb)
    >>> stats.all_reduce()                          # no-op without torch.distributed  # doctest: +SKIP
    >>> stats.report(model.fc.weight)               # doctest: +SKIP
    """

    def __init__(self, K: int, d: int, *, dtype: torch.dtype = _F64, device=None):
        self.K = check_positive_int(K, "K", minimum=2)
        self.d = check_positive_int(d, "d")
        self.dtype = check_float_dtype(dtype)
        self._device = None if device is None else default_device(device)
        self._reduced = False
        self._alloc(self._device or torch.device("cpu"))

    def _alloc(self, device):
        self.counts = torch.zeros(self.K, dtype=self.dtype, device=device)  # float: exact below 2**53
        self._mean = torch.zeros(self.K, self.d, dtype=self.dtype, device=device)
        self._scatter_w = torch.zeros(self.d, self.d, dtype=self.dtype, device=device)

    @property
    def device(self) -> torch.device:
        """Device of the accumulators (that of the first batch when ``device`` was None)."""
        return self.counts.device

    @property
    def n_total(self) -> int:
        """Number of samples seen so far."""
        return int(self.counts.sum())

    @torch.no_grad()
    def update(self, H_batch: torch.Tensor, y_batch: torch.Tensor) -> ClassStats:
        """Add a batch of features ``(B, d)`` with labels ``(B,)`` in ``[0, K)``; returns ``self``.

        Classes may be missing from a batch. Features are detached and cast to the accumulator dtype.
        """
        H = as_tensor(H_batch, "H_batch")
        if H.ndim != 2 or H.shape[1] != self.d:
            raise ValueError(f"H_batch must have shape (B, {self.d}), got {tuple(H.shape)}")
        check_finite(H, "H_batch")
        y = check_labels(y_batch, H.shape[0], self.K, name="y_batch")
        if self._reduced:
            raise RuntimeError("ClassStats.update after all_reduce would mix global and local statistics")
        if self._device is None and self.n_total == 0 and self.counts.device != H.device:
            self._alloc(H.device)
        h = H.detach().to(device=self.device, dtype=self.dtype)
        y = y.to(self.device)
        if h.shape[0] == 0:
            return self
        m = torch.bincount(y, minlength=self.K).to(self.dtype)  # batch counts
        bmean = torch.zeros_like(self._mean).index_add_(0, y, h) / m.clamp_min(1).unsqueeze(1)
        c = h - bmean[y]  # centred within the batch: no cancellation
        total = self.counts + m
        delta = bmean - self._mean
        w = self.counts * m / total.clamp_min(1)  # zero for classes absent on either side
        self._scatter_w += c.T @ c + (delta * w.unsqueeze(1)).T @ delta
        self._mean += delta * (m / total.clamp_min(1)).unsqueeze(1)
        self.counts = total
        return self

    @torch.no_grad()
    def all_reduce(self, group=None) -> ClassStats:
        """Merge the statistics of all processes with ``torch.distributed`` (a no-op when it is not initialized).

        Call it once, after the last :meth:`update`, on every rank; afterwards every rank holds the
        global statistics. Uses two all-reduce rounds (counts and sums, then the merged scatter).
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
            return self
        if self._reduced:
            raise RuntimeError("ClassStats.all_reduce was already called")
        n_local, mean_local = self.counts.clone(), self._mean.clone()
        counts, sums = self.counts.clone(), self._mean * self.counts.unsqueeze(1)
        dist.all_reduce(counts, group=group)
        dist.all_reduce(sums, group=group)
        mean = sums / counts.clamp_min(1).unsqueeze(1)
        delta = mean_local - mean  # local class means around the global ones
        scatter = self._scatter_w + (delta * n_local.unsqueeze(1)).T @ delta
        dist.all_reduce(scatter, group=group)
        self.counts, self._mean, self._scatter_w = counts, mean, scatter
        self._reduced = True
        return self

    # ---- statistics ---------------------------------------------------------------------------

    def _need_all(self):
        missing = torch.nonzero(self.counts == 0).flatten().tolist()
        if missing:
            shown = missing[:10] + (["..."] if len(missing) > 10 else [])
            raise ValueError(
                f"classes {shown} have no samples; every class in [0, {self.K}) needs at least one feature "
                "for the class means and the NC metrics"
            )

    def means(self) -> torch.Tensor:
        r"""Class means :math:`\mu_k`, ``(K, d)``; ``ValueError`` if a class has no samples."""
        self._need_all()
        return self._mean.clone()

    def global_mean(self) -> torch.Tensor:
        r"""Mean of all features :math:`\mu_G = \frac1N\sum_k n_k \mu_k`, ``(d,)``."""
        if self.n_total == 0:
            raise ValueError("no samples have been added (call update first)")
        return (self.counts @ self._mean) / self.counts.sum()

    def sigma_w(self) -> torch.Tensor:
        r"""Within-class covariance :math:`\Sigma_W = S_W / N`, ``(d, d)``."""
        if self.n_total == 0:
            raise ValueError("no samples have been added (call update first)")
        return self._scatter_w / self.counts.sum()

    def sigma_b(self) -> torch.Tensor:
        r"""Between-class covariance :math:`\Sigma_B = \frac1K\sum_k (\mu_k-\mu_G)(\mu_k-\mu_G)^\top`, ``(d, d)``."""
        M = self.means() - self.global_mean()
        return M.T @ M / self.K

    def nc1(self, rtol: float | None = None) -> float:
        r""":math:`\mathrm{NC1} = \frac1K\operatorname{tr}(\Sigma_W\Sigma_B^+)`, never negative.

        The pseudo-inverse keeps the eigen-directions of :math:`\Sigma_B` with eigenvalue above
        ``rtol`` times the largest (default ``max(d, K) * eps``, as ``numpy.linalg.pinv``); the trace is
        a sum of :math:`v^\top\Sigma_W v/\lambda \ge 0` terms and is clamped at 0 against round-off.
        ``ValueError`` when :math:`\Sigma_B = 0` (all class means coincide: NC1 is undefined), and
        when ``rtol`` is not a number in ``[0, 1)`` (NaN would keep no direction and report 0).
        """
        if rtol is not None:
            rtol = check_real(rtol, "rtol", low=0.0, high=1.0, high_open=True)
        Sb = self.sigma_b().to(_F64)
        Sw = self.sigma_w().to(_F64)
        Sw = 0.5 * (Sw + Sw.T)
        lam, V = torch.linalg.eigh(0.5 * (Sb + Sb.T))
        top = float(lam[-1])
        scale = float(torch.trace(Sw)) + float(torch.trace(Sb))  # overall spread of the features
        if not top > 1e-28 * max(scale, 1e-300) or top <= 0:
            raise ValueError("the between-class covariance is zero (all class means coincide), so NC1 is undefined")
        eps = torch.finfo(_F64).eps
        cut = (max(self.d, self.K) * eps if rtol is None else float(rtol)) * top
        keep = lam > cut
        Vk, lk = V[:, keep], lam[keep]
        terms = ((Vk.T @ Sw) * Vk.T).sum(1) / lk  # v^T Sw v / lambda
        return max(0.0, float(terms.sum()) / self.K)

    def nc2_means(self) -> float:
        r"""NC2 of the centred class means :math:`\tilde M = M - \mathbf 1\mu_G^\top`.

        :math:`\lVert G/\lVert G\rVert_F - E\rVert_F` with :math:`G = \tilde M\tilde M^\top`.
        """
        M = (self.means() - self.global_mean()).to(_F64)
        return _etf_distance(M @ M.T, "the Gram matrix of the centred class means (of H)")

    def _dual(self, W, centred: bool) -> float:
        W = _check_W(W, self.K)
        if W.shape[1] != self.d:
            raise ValueError(f"W must have shape ({self.K}, {self.d}) to match the features, got {tuple(W.shape)}")
        M = self.means()
        if centred:
            M = M - self.global_mean()
        WM = W.detach().to(device=self.device, dtype=_F64) @ M.to(_F64).T
        return _etf_distance(WM, "W @ M.T (classifier W against the class means of H)")

    def nc3(self, W: torch.Tensor) -> float:
        r"""NC3, paper-code variant: :math:`\lVert W M^\top/\lVert W M^\top\rVert_F - E\rVert_F`, uncentred means."""
        return self._dual(W, centred=False)

    def nc3_centered(self, W: torch.Tensor) -> float:
        r"""NC3 with centred class means :math:`\mu_k - \mu_G` (Zhu et al. 2021's ``validate_NC.py`` variant)."""
        return self._dual(W, centred=True)

    def report(self, W: torch.Tensor) -> dict:
        """``{'nc1', 'nc2', 'nc2_means', 'nc3', 'nc3_centered'}`` as floats.

        ``'ncc_accuracy'`` needs the class means before the features are seen again; get it with
        :class:`NCCMeter` in a second pass (``collapse_report`` does both on one batch).
        """
        return {"nc1": self.nc1(), "nc2": nc2(W), "nc2_means": self.nc2_means(), "nc3": self.nc3(W),
                "nc3_centered": self.nc3_centered(W)}


class NCCMeter:
    """Streaming nearest-class-centre agreement, for a second pass over the data.

    ``NCCMeter(stats.means())``, then ``update(H_batch, y_batch)`` or ``update(H_batch, y_batch,
    logits=Z_batch)`` (agreement with the network's predictions, Papyan's NC4), then ``accuracy()``.
    """

    def __init__(self, means: torch.Tensor):
        self.means = check_matrix(means, "means", min_ndim=2, max_ndim=2).detach().to(_F64)
        if self.means.shape[0] < 2:
            raise ValueError(f"means must have K >= 2 rows, got shape {tuple(self.means.shape)}")
        self.agree = 0
        self.total = 0

    @torch.no_grad()
    def update(self, H_batch, y_batch=None, *, predictions=None, logits=None) -> NCCMeter:
        """Count the rows of ``H_batch`` ``(B, d)`` whose nearest class centre agrees with the target; return self.

        The target is ``y_batch`` ``(B,)``, or the network's ``predictions`` ``(B,)``, or the argmax of
        ``logits`` ``(B, K)`` (at most one of the last two).
        """
        pred = ncc_predict(H_batch, self.means)
        target = _target(H_batch.shape[0], self.means.shape[0], y_batch, predictions, logits)
        self.agree += int((pred == target.to(pred.device)).sum())
        self.total += int(pred.numel())
        return self

    def all_reduce(self, group=None) -> NCCMeter:
        """Sum the counts over processes (no-op without an initialized ``torch.distributed``)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1:
            t = torch.tensor([self.agree, self.total], dtype=torch.int64, device=self.means.device)
            dist.all_reduce(t, group=group)
            self.agree, self.total = int(t[0]), int(t[1])
        return self

    def accuracy(self) -> float:
        """Return the fraction of the rows seen so far that agreed, in ``[0, 1]`` (:class:`ValueError` if none)."""
        if self.total == 0:
            raise ValueError("no samples have been added (call update first)")
        return self.agree / self.total


# ---------------------------------------------------------------------------------------------
# one-shot functions
# ---------------------------------------------------------------------------------------------

def _stats(H, y, K=None) -> ClassStats:
    H = check_matrix(H, "H", min_ndim=2, max_ndim=2)
    y = check_labels(y, H.shape[0], None)
    K = _infer_K(y, K)
    y = check_labels(y, H.shape[0], K)
    return ClassStats(K, H.shape[1], device=H.device).update(H, y)


def class_means(H: torch.Tensor, y: torch.Tensor, K: int | None = None) -> torch.Tensor:
    """Class means ``(K, d)`` in float64; ``K`` defaults to ``max(y) + 1`` and every class must occur."""
    return _stats(H, y, K).means()


def nc1(H: torch.Tensor, y: torch.Tensor, K: int | None = None) -> float:
    r"""NC1 :math:`= \frac1K\operatorname{tr}(\Sigma_W\Sigma_B^+)` of features ``H`` ``(N, d)`` with labels ``y``.

    Float64 with a pseudo-inverse, never negative (see :meth:`ClassStats.nc1`). Hand value: ``K=2``,
    ``d=1``, features ``{1.5, 0.5 | -0.5, -1.5}`` give :math:`\Sigma_W = 0.25`, :math:`\Sigma_B = 1`, NC1 = 0.125.
    """
    return _stats(H, y, K).nc1()


def nc2(W: torch.Tensor) -> float:
    r"""NC2 of the classifier (paper code): :math:`\lVert G/\lVert G\rVert_F - E\rVert_F`, :math:`G = W W^\top`.

    ``W`` is ``(K, d)`` (rows need not be normalized); 0 exactly when the rows form a simplex ETF
    up to a common scale.
    """
    W = _check_W(W).detach().to(_F64)
    return _etf_distance(W @ W.T, "W @ W.T")


def nc2_means(H: torch.Tensor, y: torch.Tensor, K: int | None = None) -> float:
    """NC2 of the centred class means (same formula as :func:`nc2`)."""
    return _stats(H, y, K).nc2_means()


def _stats_for_W(W, H, y):
    W = _check_W(W)
    H = check_matrix(H, "H", min_ndim=2, max_ndim=2)
    if W.shape[1] != H.shape[1]:
        raise ValueError(f"W (K, d) and H (N, d) must share d, got W {tuple(W.shape)} and H {tuple(H.shape)}")
    y = check_labels(y, H.shape[0], W.shape[0])
    return W, ClassStats(W.shape[0], H.shape[1], device=H.device).update(H, y)


def nc3(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor) -> float:
    r"""NC3, paper-code variant, with the **uncentred** class means :math:`M` ``(K, d)``.

    The value is :math:`\lVert W M^\top/\lVert W M^\top\rVert_F - E\rVert_F`. It vanishes when
    :math:`h_i = w_{y_i}` and ``W`` is an ETF, and also for a shifted ETF of means with :math:`W\mu_G = 0`.
    See :func:`nc3_centered`.
    """
    W, stats = _stats_for_W(W, H, y)
    return stats.nc3(W)


def nc3_centered(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor) -> float:
    r"""NC3 with centred class means :math:`\tilde M = M - \mathbf 1\mu_G^\top` (Zhu et al. 2021's code).

    The value is :math:`\lVert W\tilde M^\top/\lVert W\tilde M^\top\rVert_F - E\rVert_F`.
    """
    W, stats = _stats_for_W(W, H, y)
    return stats.nc3_centered(W)


def ncc_predict(H: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r"""Nearest-class-centre predictions :math:`\arg\min_k \lVert h_i - \mu_k\rVert`, int64 ``(N,)``."""
    H = check_matrix(H, "H", min_ndim=2, max_ndim=2)
    means = check_matrix(means, "means", min_ndim=2, max_ndim=2)
    if means.shape[1] != H.shape[1]:
        raise ValueError(f"means (K, d) and H (N, d) must share d, got {tuple(means.shape)} and {tuple(H.shape)}")
    h = H.detach().to(_F64)
    mu = means.detach().to(device=h.device, dtype=_F64)
    # ||h - mu||^2 = ||h||^2 - 2 h.mu + ||mu||^2; the first term does not change the argmin
    score = 2.0 * h @ mu.T - (mu * mu).sum(1)
    return score.argmax(1)


def _target(N, K, y, predictions, logits):
    given = [v is not None for v in (predictions, logits)]
    if sum(given) > 1:
        raise ValueError("give at most one of predictions and logits")
    if logits is not None:
        Z = as_tensor(logits, "logits")
        if Z.shape != (N, K):
            raise ValueError(f"logits must have shape ({N}, {K}), got {tuple(Z.shape)}")
        check_finite(Z, "logits")
        return Z.argmax(1)
    if predictions is not None:
        return check_labels(predictions, N, K, name="predictions")
    if y is None:
        raise ValueError("give labels y, predictions or logits to compare the nearest class centre with")
    return check_labels(y, N, K)


def ncc_accuracy(H: torch.Tensor, y: torch.Tensor, *, K: int | None = None, means: torch.Tensor | None = None,
                 predictions: torch.Tensor | None = None, logits: torch.Tensor | None = None) -> float:
    r"""Fraction of samples whose nearest class centre agrees with the labels ``y``.

    Parameters
    ----------
    H : Tensor ``(N, d)``, y : Tensor ``(N,)`` labels in ``[0, K)``
    means : Tensor ``(K, d)``, optional
        Class centres (e.g. from the training set); by default the class means of ``(H, y)``.
    predictions : Tensor ``(N,)``, or logits : Tensor ``(N, K)``, optional
        Compare with the network's predictions instead of the labels (Papyan et al.'s NC4 is
        ``1 - ncc_accuracy(H, y, logits=Z)``).
    """
    H = check_matrix(H, "H", min_ndim=2, max_ndim=2)
    if means is None:
        means = class_means(H, y, K)
    else:
        means = check_matrix(means, "means", min_ndim=2, max_ndim=2)
        if K is not None and means.shape[0] != check_positive_int(K, "K", minimum=2):
            raise ValueError(f"means must have K = {K} rows, got shape {tuple(means.shape)}")
        y = check_labels(y, H.shape[0], means.shape[0])
    meter = NCCMeter(means).update(H, y, predictions=predictions, logits=logits)
    return meter.accuracy()


def collapse_report(W: torch.Tensor, H: torch.Tensor, y: torch.Tensor) -> dict:
    """All metrics at once: a dict with the keys :data:`REPORT_KEYS`, float values.

    ``'ncc_accuracy'`` is the agreement of the nearest class centre with the labels.
    """
    W, stats = _stats_for_W(W, H, y)
    out = stats.report(W)
    out["ncc_accuracy"] = NCCMeter(stats.means()).update(H, y).accuracy()
    return {k: out[k] for k in REPORT_KEYS}
