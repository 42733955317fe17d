"""Property tests of the training side (derandomized): only TypeError/ValueError escape from bad settings, and
their messages name the argument; any byte string read as a checkpoint is either a checkpoint or a named
DamagedRunError; the loader covers every row; small random runs finish with finite metrics."""

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ncbook import config, data, models, rundir, train

pytestmark = pytest.mark.usefixtures("single_thread")

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                      st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just(torch.ones(1)))
FIELDS = [f for f in train.TrainConfig.__dataclass_fields__]


@FUZZ
@given(field=st.sampled_from(FIELDS), value=ANY_VALUE)
def test_train_config_refuses_by_name(field, value):
    try:
        cfg = train.TrainConfig(**{field: value})
    except (TypeError, ValueError) as exc:
        assert field in str(exc), f"{exc!r} does not name {field}"
        return
    assert getattr(cfg, field) == value or field in ("seed",)  # accepted values are kept as given
    train.TrainConfig.from_dict(cfg.to_dict())  # and round-trip


@FUZZ
@given(blob=st.binary(max_size=300))
def test_any_bytes_as_a_checkpoint_give_a_named_error(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("ck") / rundir.CHECKPOINT_NAME
    path.write_bytes(blob)
    with pytest.raises(rundir.DamagedRunError) as exc:
        rundir.load_checkpoint(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


@FUZZ
@given(N=st.integers(1, 60), B=st.integers(1, 70), world=st.integers(1, 4), min_rows=st.integers(1, 3),
       shuffle=st.booleans())
def test_loader_shards_cover_the_rows(N, B, world, min_rows, shuffle):
    assume(B >= world)  # a global batch smaller than the number of ranks is never run (Trainer refuses it)
    ds = data.Dataset(torch.arange(N, dtype=torch.float32)[:, None], torch.zeros(N, dtype=torch.int64), "toy", 1)
    loaders = [data.InMemoryLoader(ds, B, shuffle=shuffle, seed=3, rank=r, world_size=world, min_rows=min_rows)
               for r in range(world)]
    per_rank = [[x[:, 0].long().tolist() for x, _, _ in L.batches()] for L in loaders]
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == len(loaders[0])  # same step count
    rows = sorted(v for batches in per_rank for b in batches for v in b)
    assert len(rows) == len(set(rows))  # no row twice
    skipped = N - len(rows)
    assert 0 <= skipped < world  # at most a final global batch smaller than the number of ranks
    if min_rows > 1 and B >= min_rows * world and N >= min_rows * world:  # Trainer refuses the rest for BN
        assert all(len(b) >= min_rows for batches in per_rank for b in batches)


@pytest.fixture(scope="module")
def tiny():
    tr, _ = data.load_splits("digits", flat=True, seed=0)
    return data.standardize(data.balanced_subset(tr, 3))[0]  # 30 rows


@settings(derandomize=True, database=None, deadline=None, max_examples=12,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(epochs=st.integers(0, 3), batch_size=st.integers(1, 40), eval_every=st.integers(1, 3),
       arm=st.sampled_from(models.ARMS), batchnorm=st.booleans(), prec=st.sampled_from(["fp32", "bf16"]))
def test_small_random_runs_finish_with_finite_metrics(tiny, epochs, batch_size, eval_every, arm, batchnorm, prec):
    config.seed_everything(0)
    net = models.build_model("mlp", num_classes=10, input_shape=tiny.input_shape, arm=arm, hidden=(8,),
                             batchnorm=batchnorm)
    hist = train.train(net, tiny, epochs=epochs, batch_size=batch_size, eval_every=eval_every, progress=False,
                       precision=prec, lr=0.01)
    want = sorted({0, epochs} | set(range(eval_every, epochs + 1, eval_every)))
    assert hist.completed and hist["epoch"] == want
    assert all(math.isfinite(v) for k in ("loss", "nc1", "nc2", "nc3") for v in hist[k])


@FUZZ
@given(option=st.sampled_from(["progress", "resume", "seed", "epochs", "threads", "preset", "device"]),
       value=ANY_VALUE)
def test_study_options_refuse_by_name(option, value):
    from ncbook import experiments

    try:
        experiments.fast_collapse(fast=True, epochs=0, **{"progress": False, option: value})
    except (TypeError, ValueError) as exc:
        named = {"threads": "num_threads"}.get(option, option)
        assert named in str(exc) or option in str(exc), f"{exc!r} does not name {option}"
