r"""Evaluation of a network: loss, accuracy and NC1-NC3 over a whole data set, in batches.

The features of every batch are added to a :class:`ncbook.metrics.ClassStats` (float64), with
:math:`W` the classifier weight. Under ``torch.distributed`` each rank sees a contiguous block of
the data and the statistics are summed over ranks before any metric is computed, so they are
exact, not averages of per-rank values. Evaluation runs in float32 even when training runs in
bf16 or fp16: collapsed features differ by less than bf16's rounding (about 4e-3 relative), which
would put a floor under NC1.

Introduced in: chapter 01 (neural collapse) and chapter 08 (deep networks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import config, metrics
from .data import Dataset, InMemoryLoader
from .models import NCNet

__all__ = ["evaluate", "check_model_data", "EVAL_BATCH_SIZE"]

#: Rows per evaluation batch unless told otherwise (also ``TrainConfig.eval_batch_size``'s default).
EVAL_BATCH_SIZE = 1024


def check_model_data(model, ds, name: str = "ds") -> None:
    """Raise a clear error unless ``ds`` fits ``model`` (type, classes, input shape, dtype)."""
    if not isinstance(ds, Dataset):
        raise TypeError(f"{name} must be an ncbook.data.Dataset, got {type(ds).__name__}")
    if ds.num_classes != model.num_classes:
        raise ValueError(f"{name} has {ds.num_classes} classes but the model has {model.num_classes} outputs")
    if model.input_shape is not None and ds.input_shape != model.input_shape:
        raise ValueError(f"{name} inputs have shape {ds.input_shape} but the model expects {model.input_shape}")
    if ds.X.dtype != model.dtype:
        raise TypeError(f"{name}.X has dtype {ds.X.dtype} but the model's parameters are {model.dtype}; convert "
                        f"one of them ({name}.replace(X={name}.X.to({model.dtype})) or model.to({ds.X.dtype}))")


@torch.no_grad()
def evaluate(model: NCNet, ds: Dataset, *, batch_size: int = EVAL_BATCH_SIZE, device=None, memory_format=None) -> dict:
    r"""Loss, accuracy and NC metrics of ``model`` on ``ds``, in eval mode and float32.

    Parameters
    ----------
    model : NCNet
    ds : Dataset
        Inputs ``(N, ...)`` of the model's dtype, labels ``(N,)``.
    batch_size : int
    device : str or torch.device, optional
        Default: the device of the model's parameters.
    memory_format : torch.memory_format, optional

    Returns
    -------
    dict
        ``loss`` (mean cross-entropy), ``acc``, ``nc1``, ``nc2`` (of the classifier :math:`W`),
        ``nc2_means`` (of the centered class means), ``nc3`` (the paper-code version, uncentered
        means), ``nc3_centered``, all floats (see :meth:`ncbook.metrics.ClassStats.report`).
    """
    if not isinstance(model, NCNet):
        raise TypeError(f"model must be an ncbook.models.NCNet, got {type(model).__name__}")
    check_model_data(model, ds)
    device = next(model.parameters()).device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        sums, stats = _accumulate(model, ds, batch_size, device, memory_format)
    finally:
        model.train(was_training)
    W = model.classifier_weight.detach().double()
    out = {"loss": (sums[0] / sums[2]).item(), "acc": (sums[1] / sums[2]).item()}
    out.update({k: float(v) for k, v in stats.report(W).items()})
    return out


def _accumulate(model, ds, batch_size, device, memory_format):
    """Return the sums (cross-entropy, correct, count) and class statistics of this rank's block, reduced.

    ``sums`` is a float64 tensor of shape ``(3,)``, all-reduced over the ranks; ``stats`` is a
    :class:`ncbook.metrics.ClassStats`, all-reduced likewise.
    """
    rank, world = config.rank_and_world()
    loader = InMemoryLoader(ds, batch_size, device=device, rank=rank, world_size=world, partition="block",
                            memory_format=memory_format)
    stats = metrics.ClassStats(model.num_classes, model.feature_dim, dtype=torch.float64, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for x, y in loader:
        logits, feats = model(x)
        logits = logits.float()
        sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
        sums[1] += (logits.argmax(1) == y).sum()
        sums[2] += y.numel()
        stats.update(feats.double(), y)
    if world > 1:
        torch.distributed.all_reduce(sums)
    stats.all_reduce()
    return sums, stats
