"""Tests of ncbook.models: heads, backbones, the factory, and the sphere constraint under training."""

import geoopt
import pytest
import torch
import torch.nn.functional as F

from ncbook import models

CASES = [
    ("mlp", (64,), {"hidden": (16, 12)}, 12),
    ("cnn", (1, 8, 8), {"width": 4}, 16),
    ("cnn", (40,), {"width": 4}, 16),
    ("resnet18vw", (1, 8, 8), {"width": 2}, 16),
    ("resnet18vw", (3, 32, 32), {"width": 2}, 16),
]

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one thread is fastest


@pytest.mark.parametrize("arm", models.ARMS)
@pytest.mark.parametrize("name,shape,kw,d", CASES)
def test_output_shapes_and_feature_norms(name, shape, kw, d, arm):
    torch.manual_seed(0)
    net = models.build_model(name, num_classes=5, input_shape=shape, arm=arm, tau=3.0, **kw)
    logits, feats = net(torch.randn(6, *shape))
    assert logits.shape == (6, 5) and feats.shape == (6, d) and net.feature_dim == d
    assert net.classifier_weight.shape == (5, d)
    if arm == "normalized":
        assert torch.allclose(feats.norm(dim=1), torch.full((6,), 3.0), atol=1e-5)
        assert isinstance(net.classifier_weight, geoopt.ManifoldParameter)
        assert isinstance(net.classifier_weight.manifold, geoopt.Sphere)
        assert torch.allclose(net.classifier_weight.norm(dim=1), torch.ones(5), atol=1e-6)
        assert net.tau == 3.0
        # logits = features @ W.T (no bias by default)
        assert torch.allclose(logits, feats @ net.classifier_weight.T, atol=1e-5)
    else:
        assert not isinstance(net.classifier_weight, geoopt.ManifoldParameter)
        assert net.tau is None
        assert torch.allclose(logits, F.linear(feats, net.classifier_weight), atol=1e-5)
    assert net.spec["name"] == name and net.spec["arm"] == arm


def test_full_size_resnets_have_the_papers_feature_dims():
    assert models.resnet18().feature_dim == 512
    assert models.resnet50().feature_dim == 2048
    assert models.resnet18_vw(8).feature_dim == 64
    n18 = sum(p.numel() for p in models.resnet18().parameters())
    assert 11.1e6 < n18 < 11.2e6  # the usual CIFAR ResNet18 backbone size


def test_cosine_classifier_is_tau_times_cosine():
    torch.manual_seed(1)
    clf = models.CosineClassifier(7, 4, tau=2.5, bias=True)
    with torch.no_grad():
        clf.bias.copy_(torch.arange(4.0))
    z = torch.randn(3, 7) * 10
    expected = 2.5 * F.normalize(z, dim=1) @ F.normalize(clf.weight.detach(), dim=1).T + torch.arange(4.0)
    assert torch.allclose(clf(z), expected, atol=1e-5)


def test_feature_normalize():
    fn = models.FeatureNormalize(0.5)
    z = torch.randn(5, 3)
    assert torch.allclose(fn(z).norm(dim=1), torch.full((5,), 0.5))
    assert torch.allclose(fn(fn(z)), fn(z), atol=1e-6)  # idempotent
    with pytest.raises(ValueError, match="tau"):
        models.FeatureNormalize(0.0)
    with pytest.raises(TypeError, match="tau"):
        models.FeatureNormalize("1")


def test_classifier_rows_stay_unit_norm_after_riemannian_steps():
    torch.manual_seed(0)
    net = models.build_model("mlp", num_classes=4, input_shape=(10,), arm="normalized", hidden=(8,))
    opt = geoopt.optim.RiemannianSGD(net.parameters(), lr=0.5, momentum=0.9)
    x, y = torch.randn(32, 10), torch.randint(0, 4, (32,))
    before = net.classifier_weight.detach().clone()
    for _ in range(20):
        loss = F.cross_entropy(net(x)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    W = net.classifier_weight.detach()
    assert not torch.allclose(W, before)  # it moved
    assert torch.allclose(W.norm(dim=1), torch.ones(4), atol=1e-5)  # on the sphere


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="model name"):
        models.build_model("vgg", num_classes=10, input_shape=(3, 32, 32))
    with pytest.raises(ValueError, match="arm"):
        models.build_model("mlp", num_classes=10, input_shape=(4,), arm="both")
    with pytest.raises(ValueError, match="image inputs"):
        models.build_model("resnet18", num_classes=10, input_shape=(40,))
    with pytest.raises(ValueError, match="width"):
        models.build_model("resnet18vw", num_classes=10, input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="num_classes"):
        models.build_model("mlp", num_classes=1, input_shape=(4,))
    with pytest.raises(ValueError, match="tau"):
        models.build_model("mlp", num_classes=3, input_shape=(4,), tau=-1.0)
    net = models.build_model("mlp", num_classes=3, input_shape=(4,), hidden=(5,))
    with pytest.raises(ValueError, match=r"input must have shape \(B, 4\)"):
        net(torch.randn(2, 5))


def test_forward_names_a_dtype_mismatch_and_reports_batchnorm():
    net = models.build_model("mlp", num_classes=3, input_shape=(4,), hidden=(5,))
    assert net.dtype == torch.float32 and net.has_batchnorm
    with pytest.raises(TypeError, match=r"input has dtype torch.float64 but the model's parameters are torch.float32"):
        net(torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        net([[0.0] * 4])
    net64 = models.build_model("mlp", num_classes=3, input_shape=(4,), hidden=(5,), batchnorm=False).double()
    assert not net64.has_batchnorm and net64(torch.zeros(2, 4, dtype=torch.float64))[0].dtype == torch.float64
