r"""Networks for the deep-network experiments, with the paper's two arms.

Every network is an :class:`NCNet`: a *backbone* that maps an input to its penultimate
representation :math:`z \in \mathbb{R}^d`, then a *head* that gives the features used for the
NC metrics and the logits. ``forward`` returns ``(logits, features)``.

* ``arm="normalized"``: features :math:`h = \tau\, z / \|z\|` (:class:`FeatureNormalize`) and a
  :class:`CosineClassifier` whose rows :math:`w_k` live on the unit sphere as a
  ``geoopt.ManifoldParameter``, so that logits are :math:`\tau \cos\angle(z, w_k) (+ b_k)`.
  Train it with ``geoopt.optim.RiemannianSGD`` (see :mod:`ncbook.train`).
* ``arm="regularized"``: features :math:`h = z` and a plain ``nn.Linear`` classifier; the
  training loop adds weight decay on the classifier and on the features.

Backbones: :class:`MLP`, :class:`SmallCNN` (8x8 images or 1-D signals) and CIFAR-style ResNets
(:func:`resnet18`, :func:`resnet50`, variable-width :func:`resnet18_vw` with channels
``k, 2k, 4k, 8k``): a 3x3 stem without max-pool, four stages, global average pooling. They are
written here in plain torch (torchvision is not needed). Like the paper's ResNets, the
penultimate features come after a ReLU and pooling, so they are non-negative.

:func:`build_model` builds any of them from a name, and ``NCNet.spec`` records how (plain types,
for ``config.json``).

Introduced in: chapter 01 (neural collapse) and chapter 08 (deep networks).
"""

from __future__ import annotations

import math

import geoopt
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_positive_int, check_tau

__all__ = [
    "ARMS",
    "MODELS",
    "FeatureNormalize",
    "CosineClassifier",
    "NCNet",
    "MLP",
    "SmallCNN",
    "ResNet",
    "resnet18",
    "resnet50",
    "resnet18_vw",
    "build_model",
]

ARMS = ("normalized", "regularized")
MODELS = ("mlp", "cnn", "resnet18", "resnet50", "resnet18vw")


# ----------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------


class FeatureNormalize(nn.Module):
    r"""Map each row to the sphere of radius :math:`\tau`: :math:`h = \tau\, z / \max(\|z\|, \epsilon)`.

    Backpropagating through it multiplies the gradient by :math:`(\tau/\|z\|)(I - \hat z \hat z^\top)`,
    the projection onto the tangent space of the sphere at :math:`\hat z`.

    Parameters
    ----------
    tau : float
        Inverse temperature :math:`\tau > 0` (the radius of the feature sphere).
    """

    def __init__(self, tau: float = 1.0, eps: float = 1e-12):
        super().__init__()
        self.tau = check_tau(tau)
        self.eps = float(eps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`\tau\, z / \max(\|z\|, \epsilon)` row by row, the shape of ``z`` (e.g. ``(B, d)``)."""
        return self.tau * F.normalize(z, dim=-1, eps=self.eps)

    def extra_repr(self) -> str:
        """Return ``tau`` for the module's repr."""
        return f"tau={self.tau}"


class CosineClassifier(nn.Module):
    r"""Linear classifier with unit-norm rows: :math:`\text{logits} = \tau\, \hat z W^\top + b`.

    ``weight`` (shape ``(K, d)``) is a ``geoopt.ManifoldParameter`` on ``geoopt.Sphere()``,
    projected onto the sphere at initialization; a Riemannian optimizer keeps it there (no
    renormalization step is needed).

    Parameters
    ----------
    d : int
        Feature dimension.
    K : int
        Number of classes.
    tau : float
        Inverse temperature; the inputs are mapped to the sphere of radius ``tau`` first.
    bias : bool
        Add a (Euclidean) bias :math:`b \in \mathbb{R}^K`. The UFM has none; the paper's
        ResNet18/50 had one, its variable-width ResNet18 did not.
    """

    def __init__(self, d: int, K: int, *, tau: float = 1.0, bias: bool = False):
        super().__init__()
        d, K = check_positive_int(d, "d"), check_positive_int(K, "K", minimum=2)
        self.feature_norm = FeatureNormalize(tau)
        w = torch.randn(K, d) / math.sqrt(d)
        self.weight = geoopt.ManifoldParameter(w, manifold=geoopt.Sphere())
        with torch.no_grad():
            self.weight.proj_()
        self.bias = nn.Parameter(torch.zeros(K)) if bias else None

    @property
    def tau(self) -> float:
        r"""Inverse temperature :math:`\tau` (the radius of the feature sphere)."""
        return self.feature_norm.tau

    def forward_with_features(self, z: torch.Tensor):
        """Return ``(logits, h)`` with ``h = tau * z / ||z||``, the features on the sphere."""
        h = self.feature_norm(z)
        return F.linear(h, self.weight, self.bias), h

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return the logits ``(B, K)`` of the backbone outputs ``z`` ``(B, d)`` (see :meth:`forward_with_features`)."""
        return self.forward_with_features(z)[0]

    def extra_repr(self) -> str:
        """Return ``d``, ``K``, ``tau`` and whether there is a bias, for the module's repr."""
        K, d = self.weight.shape
        return f"d={d}, K={K}, tau={self.tau}, bias={self.bias is not None}"


class NCNet(nn.Module):
    """A backbone plus the head of one arm; ``forward(x)`` returns ``(logits, features)``.

    Parameters
    ----------
    backbone : nn.Module
        Maps inputs ``(B, *input_shape)`` to ``(B, feature_dim)``.
    feature_dim, num_classes : int
    arm : {"normalized", "regularized"}
    tau : float
        Inverse temperature of the normalized arm (ignored by the regularized arm).
    bias : bool
        Classifier bias.
    input_shape : tuple, optional
        Checked on every call so that a wrong input fails with a clear message.
    spec : dict, optional
        How the network was built (recorded by :func:`build_model`).
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int, *, arm: str = "normalized",
                 tau: float = 1.0, bias: bool = False, input_shape=None, spec: dict | None = None):
        super().__init__()
        if arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
        self.arm = arm
        self.backbone = backbone
        self.feature_dim, self.num_classes = int(feature_dim), int(num_classes)
        if arm == "normalized":
            self.classifier = CosineClassifier(feature_dim, num_classes, tau=tau, bias=bias)
        else:
            self.classifier = nn.Linear(feature_dim, num_classes, bias=bias)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.spec = dict(spec or {})

    @property
    def tau(self):
        """The inverse temperature of the normalized arm, ``None`` for the regularized arm."""
        return self.classifier.tau if self.arm == "normalized" else None

    @property
    def classifier_weight(self) -> torch.Tensor:
        """The classifier :math:`W`, shape ``(K, d)`` (rows on the sphere in the normalized arm)."""
        return self.classifier.weight

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the parameters (that of the classifier weight)."""
        return self.classifier.weight.dtype

    @property
    def has_batchnorm(self) -> bool:
        """Whether the backbone holds BatchNorm layers (which need two or more rows per training batch)."""
        kinds = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
        return any(isinstance(m, kinds) for m in self.modules())

    def forward(self, x: torch.Tensor):
        r"""Return ``(logits, features)`` of shapes ``(B, K)`` and ``(B, feature_dim)`` for ``x`` ``(B, *input_shape)``.

        The features are the head's :math:`\tau z/\lVert z\rVert` in the normalized arm and the backbone
        output :math:`z` in the regularized arm. A wrong input type, shape or dtype raises with a clear message.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"input must have shape (B, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        if x.dtype != self.classifier.weight.dtype:
            raise TypeError(f"input has dtype {x.dtype} but the model's parameters are {self.dtype}; "
                            f"convert the input (x.to({self.dtype})) or the model (model.to({x.dtype}))")
        z = self.backbone(x)
        if self.arm == "normalized":
            return self.classifier.forward_with_features(z)
        return self.classifier(z), z


# ----------------------------------------------------------------------------------------------
# Backbones
# ----------------------------------------------------------------------------------------------


class MLP(nn.Module):
    """Flatten, then ``Linear -> BatchNorm -> ReLU`` blocks; the last block's output is the feature.

    Parameters
    ----------
    in_features : int
    hidden : sequence of int
        Widths of the hidden layers; ``feature_dim = hidden[-1]``.
    batchnorm : bool
    """

    def __init__(self, in_features: int, hidden=(256, 256, 256), *, batchnorm: bool = True):
        super().__init__()
        in_features = check_positive_int(in_features, "in_features")
        hidden = [check_positive_int(h, "hidden width") for h in hidden]
        if not hidden:
            raise ValueError("hidden must list at least one width")
        layers, prev = [nn.Flatten()], in_features
        for h in hidden:
            layers += [nn.Linear(prev, h, bias=not batchnorm)]
            layers += [nn.BatchNorm1d(h)] if batchnorm else []
            layers += [nn.ReLU(inplace=True)]
            prev = h
        self.net = nn.Sequential(*layers)
        self.feature_dim = prev

    def forward(self, x):
        """Return the features ``(B, feature_dim)`` of the inputs ``x`` ``(B, ...)`` (flattened first)."""
        return self.net(x)


class SmallCNN(nn.Module):
    """Three ``conv -> BatchNorm -> ReLU`` layers and global average pooling; ``feature_dim = 4w``.

    The layers have ``w, 2w, 4w`` channels, the last two with stride 2.

    ``dims=2`` for images ``(B, C, H, W)`` such as 8x8 digits; ``dims=1`` for signals, given
    either as ``(B, C, L)`` or as ``(B, L)`` (a channel axis is added).
    """

    def __init__(self, in_channels: int = 1, *, dims: int = 2, width: int = 32):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims!r}")
        in_channels, width = check_positive_int(in_channels, "in_channels"), check_positive_int(width, "width")
        Conv, BN = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
        chans, layers, prev = (width, 2 * width, 4 * width), [], in_channels
        for i, c in enumerate(chans):
            layers += [Conv(prev, c, 3, stride=1 if i == 0 else 2, padding=1, bias=False), BN(c), nn.ReLU(inplace=True)]
            prev = c
        self.features = nn.Sequential(*layers)
        self.dims = dims
        self.feature_dim = prev

    def forward(self, x):
        """Return the pooled features ``(B, 4w)`` of ``x``.

        ``x`` is ``(B, C, H, W)``, or ``(B, C, L)`` or ``(B, L)`` when ``dims=1``.
        """
        if self.dims == 1 and x.ndim == 2:
            x = x.unsqueeze(1)
        return self.features(x).flatten(2).mean(-1)


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x), inplace=True)


def _shortcut(cin, cout, stride):
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """CIFAR-style ResNet backbone with global average pooling.

    A 3x3 stem (no max-pool), then four stages with channels ``width * (1, 2, 4, 8)`` and strides
    ``(1, 2, 2, 2)``.

    ``feature_dim = 8 * width * expansion`` (512 for ResNet18, 2048 for ResNet50 at width 64).
    Works for any image size (8x8 digits included).
    """

    def __init__(self, block: str, layers, *, width: int = 64, in_channels: int = 3):
        super().__init__()
        width, in_channels = check_positive_int(width, "width"), check_positive_int(in_channels, "in_channels")
        Block = {"basic": _BasicBlock, "bottleneck": _Bottleneck}[block]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        stages, cin = [], width
        for i, n in enumerate(layers):
            planes = width * 2**i
            blocks = []
            for j in range(n):
                blocks.append(Block(cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes * Block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.feature_dim = cin

    def forward(self, x):
        """Return the pooled features ``(B, feature_dim)`` of the images ``x`` ``(B, C, H, W)``."""
        return F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1).flatten(1)


def resnet18(*, in_channels: int = 3, width: int = 64) -> ResNet:
    """ResNet18 backbone (BasicBlocks ``[2, 2, 2, 2]``), feature dimension ``8 * width``."""
    return ResNet("basic", (2, 2, 2, 2), width=width, in_channels=in_channels)


def resnet18_vw(width: int, *, in_channels: int = 3) -> ResNet:
    """Build the paper's variable-width ResNet18: channels ``k, 2k, 4k, 8k``, feature dimension ``8k``."""
    return resnet18(in_channels=in_channels, width=width)


def resnet50(*, in_channels: int = 3, width: int = 64) -> ResNet:
    """ResNet50 backbone (Bottlenecks ``[3, 4, 6, 3]``), feature dimension ``32 * width``."""
    return ResNet("bottleneck", (3, 4, 6, 3), width=width, in_channels=in_channels)


# ----------------------------------------------------------------------------------------------
# Factory
# ----------------------------------------------------------------------------------------------


def build_model(name: str, *, num_classes: int, input_shape, arm: str = "normalized", tau: float = 1.0,
                bias: bool = False, width: int | None = None, hidden=None, batchnorm: bool = True) -> NCNet:
    """Build an :class:`NCNet` from a name.

    Parameters
    ----------
    name : {"mlp", "cnn", "resnet18", "resnet50", "resnet18vw"}
    num_classes : int
    input_shape : tuple
        Shape of one input: ``(d,)`` vectors/signals, ``(C, H, W)`` images.
    arm : {"normalized", "regularized"}
    tau : float
        Inverse temperature of the normalized arm.
    bias : bool
        Classifier bias.
    width : int, optional
        CNN base width (default 32), ResNet base width (default 64; required for ``resnet18vw``).
        For ``"mlp"`` a shortcut for ``hidden=(width,) * 3``.
    hidden : sequence of int, optional
        MLP hidden widths (default ``(256, 256, 256)``).
    batchnorm : bool
        BatchNorm in the MLP.

    Examples
    --------
    >>> net = build_model("mlp", num_classes=10, input_shape=(64,), arm="normalized", tau=5.0)
    >>> logits, feats = net(torch.randn(4, 64))
    """
    name = str(name).lower()
    if name not in MODELS:
        raise ValueError(f"model name must be one of {MODELS}, got {name!r}")
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
    try:
        input_shape = tuple(int(s) for s in input_shape)
    except TypeError as exc:
        raise TypeError(f"input_shape must be a tuple of ints, got {input_shape!r}") from exc
    if not input_shape or min(input_shape) < 1:
        raise ValueError(f"input_shape must be a nonempty tuple of positive ints, got {input_shape!r}")
    if arm == "normalized":
        tau = check_tau(tau)
    spec = {"name": name, "num_classes": num_classes, "input_shape": list(input_shape), "arm": arm,
            "tau": float(tau), "bias": bool(bias)}
    if name == "mlp":
        hidden = tuple(hidden) if hidden is not None else ((width,) * 3 if width else (256, 256, 256))
        backbone = MLP(math.prod(input_shape), hidden, batchnorm=batchnorm)
        spec.update(hidden=list(hidden), batchnorm=bool(batchnorm))
    elif name == "cnn":
        if len(input_shape) not in (1, 2, 3):
            raise ValueError(f"cnn needs (L,), (C, L) or (C, H, W) inputs, got input_shape={input_shape}")
        dims = 2 if len(input_shape) == 3 else 1
        in_ch = 1 if len(input_shape) == 1 else input_shape[0]
        width = 32 if width is None else width
        backbone = SmallCNN(in_ch, dims=dims, width=width)
        spec.update(width=int(width))
    else:
        if len(input_shape) != 3:
            raise ValueError(f"{name} needs image inputs (C, H, W), got input_shape={input_shape}; "
                             "use 'mlp' or 'cnn' for vectors and signals")
        if name == "resnet18vw" and width is None:
            raise ValueError("resnet18vw needs width=k (channels k, 2k, 4k, 8k)")
        width = 64 if width is None else width
        maker = resnet50 if name == "resnet50" else resnet18
        backbone = maker(in_channels=input_shape[0], width=width)
        spec.update(width=int(width))
    return NCNet(backbone, backbone.feature_dim, num_classes, arm=arm, tau=tau, bias=bias, input_shape=input_shape,
                 spec=spec)
