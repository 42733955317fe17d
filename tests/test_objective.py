"""Tests of ncbook.objective: the two arms' objectives, optimizers and the step-size schedule."""

import pytest
import torch
import torch.nn.functional as F

from ncbook import objective

pytestmark = pytest.mark.usefixtures("single_thread")


def test_regularized_objective_is_ce_plus_mean_penalties(small_mlp, splits):
    tr, _ = splits
    net = small_mlp(tr, "regularized")
    x, y = tr.X[:16], tr.y[:16]
    logits, feats = net(x)
    got = objective.batch_loss(net, logits, feats, y, n_global=16, weight_decay=0.3)
    W = net.classifier_weight
    want = F.cross_entropy(logits, y) + 0.15 * W.pow(2).sum() + 0.15 * feats.pow(2).sum(1).mean()
    assert torch.allclose(got, want, rtol=1e-6)
    # the normalized arm has no penalty
    netn = small_mlp(tr, "normalized")
    ln, fn = netn(x)
    got_n = objective.batch_loss(netn, ln, fn, y, n_global=16, weight_decay=0.3)
    assert torch.allclose(got_n, F.cross_entropy(ln, y), rtol=1e-6)


def test_optimizers_and_schedule(small_mlp, splits):
    tr, _ = splits
    assert [type(o).__name__ for o in objective.build_optimizers(small_mlp(tr, "regularized"), lr=0.1, momentum=0.9)] \
        == ["SGD"]
    assert [type(o).__name__ for o in objective.build_optimizers(small_mlp(tr), lr=0.1, momentum=0.9, split=True)] \
        == ["RiemannianSGD", "SGD"]
    assert [objective.step_lr(e, 1.0, 0.1, 40) for e in (1, 40, 41, 81)] == pytest.approx([1, 1, 0.1, 0.01])
