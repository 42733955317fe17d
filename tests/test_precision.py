"""Tests of ncbook.precision: the choice by device, and that every precision trains on the CPU."""

import pytest
import torch

from ncbook import config, data, models, precision, train

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("capability, want", [((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16"), ((6, 1), "fp16")])
def test_auto_follows_the_compute_capability(monkeypatch, capability, want):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert precision.resolve("auto", "cuda:0") == want  # a T4 (7.5) gets fp16 with a scaler, an A100 bf16
    assert precision.resolve("auto", "cpu") == "fp32"
    assert precision.resolve("bf16", "cpu") == "bf16"  # an explicit choice is kept


def test_scaler_only_for_fp16():
    assert precision.grad_scaler("cpu", "fp32") is None and precision.grad_scaler("cpu", "bf16") is None
    assert isinstance(precision.grad_scaler("cpu", "fp16"), torch.amp.GradScaler)
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve("fp8", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        train.TrainConfig(precision="half")


@pytest.mark.parametrize("prec", ["bf16", "fp16"])
def test_mixed_precision_trains_on_the_cpu(prec):
    tr, _ = data.load_splits("digits", flat=True, seed=0)
    tr = data.standardize(data.balanced_subset(tr, 8))[0]
    config.seed_everything(0)
    net = models.build_model("mlp", num_classes=10, input_shape=tr.input_shape, hidden=(32,))
    hist = train.train(net, tr, epochs=4, eval_every=2, batch_size=16, progress=False, precision=prec)
    assert hist["loss"][-1] < 0.8 * hist["loss"][0]
    assert net.classifier_weight.dtype == torch.float32  # autocast: the parameters stay float32
