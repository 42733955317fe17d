"""Tests of ncbook.objective: the two arms' objectives, optimizers and the step-size schedule."""

import pytest
import torch
import torch.nn.functional as F

from ncbook import config, data, models, objective

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def splits():
    train_set, _ = data.load_splits("digits", flat=True, test_fraction=0.2, seed=0)
    return data.standardize(data.balanced_subset(train_set, 12))[0], None


def _model(ds, arm="normalized", seed=0, **kw):
    config.seed_everything(seed)
    kw.setdefault("hidden", (32, 32))
    return models.build_model("mlp", num_classes=10, input_shape=ds.input_shape, arm=arm, **kw)


def test_regularized_objective_is_ce_plus_mean_penalties(splits):
    tr, _ = splits
    net = _model(tr, "regularized")
    x, y = tr.X[:16], tr.y[:16]
    logits, feats = net(x)
    got = objective.batch_loss(net, logits, feats, y, n_global=16, weight_decay=0.3)
    W = net.classifier_weight
    want = F.cross_entropy(logits, y) + 0.15 * W.pow(2).sum() + 0.15 * feats.pow(2).sum(1).mean()
    assert torch.allclose(got, want, rtol=1e-6)
    # the normalized arm has no penalty
    netn = _model(tr, "normalized")
    ln, fn = netn(x)
    got_n = objective.batch_loss(netn, ln, fn, y, n_global=16, weight_decay=0.3)
    assert torch.allclose(got_n, F.cross_entropy(ln, y), rtol=1e-6)


def test_optimizers_and_schedule(splits):
    tr, _ = splits
    assert [type(o).__name__ for o in objective.build_optimizers(_model(tr, "regularized"), lr=0.1, momentum=0.9)] \
        == ["SGD"]
    assert [type(o).__name__ for o in objective.build_optimizers(_model(tr), lr=0.1, momentum=0.9, split=True)] \
        == ["RiemannianSGD", "SGD"]
    assert [objective.step_lr(e, 1.0, 0.1, 40) for e in (1, 40, 41, 81)] == pytest.approx([1, 1, 0.1, 0.01])
