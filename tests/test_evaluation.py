"""Tests of ncbook.evaluation: batched metrics equal one-shot metrics; bad inputs are named."""

import pytest
import torch
import torch.nn.functional as F

from ncbook import evaluation, metrics, train

pytestmark = pytest.mark.usefixtures("single_thread")


def test_evaluate_matches_one_shot_metrics(small_mlp, splits):
    tr, _ = splits
    net = small_mlp(tr, "normalized", tau=2.0)
    got = evaluation.evaluate(net, tr, batch_size=7)  # many uneven batches
    net.eval()
    with torch.no_grad():
        logits, H = net(tr.X)
    W = net.classifier_weight.detach()
    want = metrics.collapse_report(W.double(), H.double(), tr.y)
    for key in ("nc1", "nc2", "nc2_means", "nc3", "nc3_centered"):
        assert got[key] == pytest.approx(want[key], rel=1e-5)  # float32 features: batching changes roundoff
    assert got["loss"] == pytest.approx(F.cross_entropy(logits, tr.y).item(), rel=1e-5)
    assert got["acc"] == pytest.approx((logits.argmax(1) == tr.y).float().mean().item())


def test_evaluate_refuses_what_does_not_fit(small_mlp, splits):
    tr, _ = splits
    net = small_mlp(tr)
    with pytest.raises(TypeError, match="ds.X has dtype torch.float64"):
        evaluation.evaluate(net, tr.replace(X=tr.X.double()))
    with pytest.raises(TypeError, match="ds must be an ncbook.data.Dataset"):
        evaluation.evaluate(net, tr.X)
    with pytest.raises(TypeError, match="model must be"):
        evaluation.evaluate(torch.nn.Linear(64, 10), tr)
    assert train.evaluate is evaluation.evaluate  # the old place still works
