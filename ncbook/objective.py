r"""The objective and the optimizers of the paper's two arms, and the step-size schedule.

* ``arm="normalized"`` (features on the sphere of radius :math:`\tau`, classifier rows on the unit
  sphere): cross-entropy only, every parameter optimized by ``geoopt.optim.RiemannianSGD``; the
  classifier's ``ManifoldParameter`` takes Riemannian steps (project the gradient, move,
  retract) and the Euclidean parameters take ordinary SGD steps.
* ``arm="regularized"`` (features and classifier free): ``torch.optim.SGD`` on

  .. math:: \mathcal{L} = \mathrm{CE} + \frac{\lambda}{2}\|W\|_F^2
            + \frac{\lambda}{2}\,\frac{1}{B}\sum_{i \in \text{batch}} \|h_i\|^2,

  with :math:`\lambda` = ``weight_decay``, no weight decay on the backbone and none on the
  classifier bias (if any).

geoopt's momentum differs from ``torch.optim.SGD`` in one detail: its buffer starts at the first
gradient and is then updated with that gradient again, so the very first step is
:math:`(1+\mu)` times torch's (see ``split`` of :func:`build_optimizers`).

Introduced in: chapter 08 (deep networks).
"""

from __future__ import annotations

import geoopt
import torch
import torch.nn.functional as F

__all__ = ["batch_loss", "build_optimizers", "set_lr", "step_lr"]


def batch_loss(model, logits: torch.Tensor, feats: torch.Tensor, y: torch.Tensor, *, n_global: int,
               world_size: int = 1, weight_decay: float = 0.0) -> torch.Tensor:
    r"""Objective of this rank's part of a global batch of ``n_global`` rows.

    Cross-entropy summed over the rows and scaled by ``world_size / n_global``, so that the
    average over ranks that DDP takes of the gradients is the gradient of the global-batch mean;
    the regularized arm adds :math:`\frac{\lambda}{2}\|W\|_F^2` and the mean over the batch of
    :math:`\frac{\lambda}{2}\|h_i\|^2`.

    Parameters
    ----------
    model : NCNet
    logits : Tensor, shape ``(B, K)``
    feats : Tensor, shape ``(B, d)``
    y : Tensor, shape ``(B,)``, int64
    n_global : int
        Rows of the global batch (``B`` on one process).
    world_size : int
    weight_decay : float
        :math:`\lambda` (regularized arm only).
    """
    scale = world_size / n_global
    loss = F.cross_entropy(logits.float(), y, reduction="sum") * scale
    if model.arm == "regularized" and weight_decay > 0:
        W = model.classifier.weight
        loss = loss + 0.5 * weight_decay * W.float().pow(2).sum()
        loss = loss + 0.5 * weight_decay * feats.float().pow(2).sum() * scale
    return loss


def build_optimizers(model, *, lr: float, momentum: float, split: bool = False) -> list:
    """Build the optimizers of ``model``'s arm (a list).

    Regularized arm: one ``torch.optim.SGD``. Normalized arm: one ``geoopt.optim.RiemannianSGD``
    over every parameter, or with ``split=True`` geoopt for the sphere parameters only and
    ``torch.optim.SGD`` (whose multi-tensor update launches far fewer GPU kernels) for the rest.
    """
    params = list(model.parameters())
    if model.arm == "regularized":
        return [torch.optim.SGD(params, lr=lr, momentum=momentum)]
    if not split:
        return [geoopt.optim.RiemannianSGD(params, lr=lr, momentum=momentum)]
    sphere = [p for p in params if isinstance(p, geoopt.ManifoldParameter)]
    flat = [p for p in params if not isinstance(p, geoopt.ManifoldParameter)]
    return [geoopt.optim.RiemannianSGD(sphere, lr=lr, momentum=momentum),
            torch.optim.SGD(flat, lr=lr, momentum=momentum)]


def step_lr(epoch: int, lr: float, decay: float, period: int) -> float:
    """Step size of epoch ``epoch`` (1-based): ``lr * decay ** ((epoch - 1) // period)``.

    The schedule of ``torch.optim.lr_scheduler.StepLR`` stepped once per epoch, in closed form so
    that a resumed run needs no scheduler state.
    """
    return lr * decay ** ((int(epoch) - 1) // period)


def set_lr(optimizers, lr: float) -> None:
    """Set the step size of every parameter group of every optimizer."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = lr
