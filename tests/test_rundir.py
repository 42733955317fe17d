"""Tests of ncbook.rundir: damaged run folders give one-line errors naming the file, stale temp files go,
the identity of a run excludes its runtime, RNG states round-trip."""

import json
import random

import numpy as np
import pytest
import torch

from ncbook import config, data, models, rundir, train

pytestmark = pytest.mark.usefixtures("single_thread")

KW = {"epochs": 4, "eval_every": 2, "batch_size": 16, "progress": False}


@pytest.fixture(scope="module")
def tiny():
    tr, te = data.load_splits("digits", flat=True, seed=0)
    return data.standardize(data.balanced_subset(tr, 4), te)[0]


def _net(ds):
    config.seed_everything(0)
    return models.build_model("mlp", num_classes=10, input_shape=ds.input_shape, hidden=(8,))


@pytest.fixture
def stopped_run(tiny, tmp_path):
    train.train(_net(tiny), tiny, run_dir=tmp_path, stop_after=2, **KW)
    return tmp_path


def _assert_one_line_naming(exc, path, *more):
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and "resume=False" in msg and "--no-resume" in msg
    assert "weights_only=False" not in msg and "delete" in msg
    for word in more:
        assert word in msg


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "foreign"])
def test_damaged_checkpoint_is_named(tiny, stopped_run, damage):
    ckpt = stopped_run / rundir.CHECKPOINT_NAME
    good = ckpt.read_bytes()
    if damage == "foreign":
        torch.save({"weights": torch.ones(2)}, ckpt)  # loads, but is not a training state
    else:
        ckpt.write_bytes({"empty": b"", "truncated": good[: len(good) // 2], "garbage": b"\x80not a zip" * 50}[damage])
    with pytest.raises(rundir.DamagedRunError) as exc:
        train.train(_net(tiny), tiny, run_dir=stopped_run, **KW)
    _assert_one_line_naming(exc, ckpt)
    assert exc.value.__cause__ is None and (exc.value.__context__ is None or exc.value.__suppress_context__)
    # the advice works: resume=False starts afresh and overwrites the damaged file
    hist = train.train(_net(tiny), tiny, run_dir=stopped_run, resume=False, **KW)
    assert hist.completed and rundir.load_checkpoint(ckpt)["epoch"] == 4


def test_missing_or_damaged_config_is_named(tiny, stopped_run):
    cfg = stopped_run / rundir.CONFIG_NAME
    text = cfg.read_text()
    cfg.unlink()
    with pytest.raises(rundir.DamagedRunError) as exc:
        train.train(_net(tiny), tiny, run_dir=stopped_run, **KW)
    _assert_one_line_naming(exc, stopped_run, "no config.json")
    assert "different configuration" not in str(exc.value)
    cfg.write_text(text[: len(text) // 3])
    with pytest.raises(rundir.DamagedRunError) as exc:
        train.train(_net(tiny), tiny, run_dir=stopped_run, **KW)
    _assert_one_line_naming(exc, cfg, "not valid JSON")
    cfg.write_text(json.dumps([1, 2]))
    with pytest.raises(rundir.DamagedRunError, match="config.json is damaged"):
        train.train(_net(tiny), tiny, run_dir=stopped_run, **KW)


def test_damaged_metrics_is_named(stopped_run):
    (stopped_run / rundir.METRICS_NAME).write_text('{"records": ')
    with pytest.raises(rundir.DamagedRunError) as exc:
        rundir.read_metrics(stopped_run)
    _assert_one_line_naming(exc, stopped_run / rundir.METRICS_NAME)
    with pytest.raises(FileNotFoundError):
        rundir.read_metrics(stopped_run / "nothing")


def test_stale_temp_files_are_removed_when_the_folder_is_opened(tiny, stopped_run):
    stale = [stopped_run / ".checkpoint.pt.x1y2.tmp", stopped_run / ".metrics.json.abc.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")  # what a SIGKILL during atomic_write leaves behind
    keep = stopped_run / "notes.txt"
    keep.write_text("mine")
    hist = train.train(_net(tiny), tiny, run_dir=stopped_run, **KW)
    assert hist.completed and not any(p.exists() for p in stale) and keep.read_text() == "mine"


def test_identity_ignores_the_runtime_and_speed_settings():
    old = {"train": {"lr": 0.1, "precision": "bf16", "device": "cuda", "channels_last": True}, "model": {"a": 1},
           "runtime": {"device": "cuda:0", "precision": "bf16"}}
    new = {"train": {"lr": 0.1, "precision": "auto", "device": "cpu", "channels_last": False}, "model": {"a": 1},
           "runtime": {"device": "cpu", "precision": "fp32"}}
    assert rundir.identity_changes(old, new) == []
    assert rundir.runtime_note(old, new) == "device cuda:0 -> cpu, precision bf16 -> fp32"
    assert rundir.runtime_note(new, new) is None
    assert rundir.identity_changes(old, {**new, "train": {**new["train"], "lr": 0.2}}) == ["train.lr"]
    assert rundir.identity_changes(old, {**new, "model": {"a": 2}}) == ["model"]


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    state = rundir.rng_state()
    want = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    rundir.save_checkpoint(tmp_path / "rng.pt", {"rng": state})
    rundir.set_rng_state(rundir.load_checkpoint(tmp_path / "rng.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


def test_run_history_columns_and_last():
    h = rundir.RunHistory([{"epoch": 0, "nc1": 2.0}, {"epoch": 2, "nc1": 1.0}], completed=False)
    assert h["nc1"] == [2.0, 1.0] and h.last() == {"epoch": 2, "nc1": 1.0} and len(h) == 2 and not h.completed
    assert h.to_dict() == {"epoch": [0, 2], "nc1": [2.0, 1.0]} and "RunHistory(2 evaluations" in repr(h)
    with pytest.raises(KeyError, match="no metric 'nc9'"):
        h["nc9"]
    with pytest.warns(DeprecationWarning, match="RunHistory"):
        assert train.History is rundir.RunHistory
