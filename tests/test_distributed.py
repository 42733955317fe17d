"""Two CPU processes (gloo) under DistributedDataParallel give the metrics of a single process.

The NC statistics are summed over ranks (ClassStats.all_reduce), not averaged per rank, and the
loss of each rank's share of a global batch is scaled so that DDP's gradient average equals the
gradient of the global-batch mean; without BatchNorm, training on two ranks therefore follows the
single-process run up to float32 round-off.
"""

import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ncbook import config, data, models, train

WORLD = 2
SETTINGS = {"epochs": 2, "eval_every": 1, "batch_size": 36, "lr": 0.1, "progress": False, "weight_decay": 1e-3}

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one thread is fastest


def _splits():
    # Gaussian class clusters (no dataset import: each spawned process stays light)
    g = torch.Generator().manual_seed(0)
    centers = 2 * torch.randn(10, 20, generator=g)
    y = torch.arange(151) % 10
    X = centers[y] + torch.randn(151, 20, generator=g)
    # 121 training rows and batches of 36: the last global batch has 13 rows, 7 on one rank and 6 on
    # the other, so averaging per-rank means would differ from the global mean
    return data.Dataset(X[:121], y[:121], "clusters", 10), data.Dataset(X[121:], y[121:], "clusters", 10)


def _model(ds, arm, batchnorm):
    config.seed_everything(0)
    return models.build_model("mlp", num_classes=10, input_shape=ds.input_shape, arm=arm, hidden=(24, 16),
                              batchnorm=batchnorm, tau=4.0)


def _experiment():
    """What both the two ranks and the single process compute."""
    tr, te = _splits()
    out = {}
    for arm in models.ARMS:
        hist = train.train(_model(tr, arm, batchnorm=False), tr, test_set=te, **SETTINGS)
        out[arm] = [{k: r[k] for k in train.METRIC_KEYS if k in r and r[k] is not None} for r in hist.records]
    bn = _model(tr, "normalized", batchnorm=True)
    with torch.no_grad():  # non-trivial BatchNorm running statistics for the evaluation check
        bn.train()
        bn(tr.X)
    out["eval_bn"] = train.evaluate(bn, tr, batch_size=16)
    return out


def _worker(rank, init_file, out_file):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        result = _experiment()
        result["rank"] = rank
        gathered = [None] * WORLD
        dist.all_gather_object(gathered, result)
        if rank == 0:
            with open(out_file, "w") as fh:
                json.dump(gathered, fh)
    finally:
        dist.destroy_process_group()



@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_two_gloo_ranks_match_a_single_process(tmp_path):
    out_file = tmp_path / "ranks.json"
    single = _experiment()  # first: the forked ranks then inherit every import already done here
    mp.start_processes(_worker, args=(str(tmp_path / "init"), str(out_file)), nprocs=WORLD, join=True,
                       start_method="fork")
    ranks = json.loads(out_file.read_text())
    for res in ranks:
        for arm in models.ARMS:
            assert [r["epoch"] for r in res[arm]] == [0, 1, 2]
            for got, want in zip(res[arm], single[arm]):
                for key, val in want.items():
                    assert got[key] == pytest.approx(val, rel=1e-4, abs=1e-6), (arm, got["epoch"], key)
        for key, val in single["eval_bn"].items():  # evaluation alone, BatchNorm in eval mode
            assert res["eval_bn"][key] == pytest.approx(val, rel=1e-6), key  # float32 forward, other batches
