"""Tests of ncbook.train: learning, run files, atomic checkpoints, resume (also on another precision or device)."""

import json
import math

import pytest
import torch

from ncbook import models, rundir, train

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one thread is fastest


FAST = {"epochs": 6, "eval_every": 2, "batch_size": 32, "lr_decay_period": 4, "progress": False}


@pytest.mark.parametrize("arm", models.ARMS)
def test_training_decreases_loss_and_keeps_classifier_on_sphere(small_mlp, splits, arm):
    tr, te = splits
    net = small_mlp(tr, arm, tau=5.0)
    hist = train.train(net, tr, test_set=te, **FAST)
    assert hist["epoch"] == [0, 2, 4, 6] and hist.completed
    assert hist["loss"][-1] < 0.7 * hist["loss"][0]
    assert hist["acc"][-1] > 0.8
    assert hist["nc1"][-1] < hist["nc1"][0]
    assert all(math.isfinite(v) for v in hist["test_nc1"])
    assert hist["lr"] == pytest.approx([0.05, 0.05, 0.05, 0.005])  # StepLR: x0.1 from epoch 5 on
    norms = net.classifier_weight.detach().norm(dim=1)
    if arm == "normalized":
        assert torch.allclose(norms, torch.ones(10), atol=1e-5)
    else:
        assert not torch.allclose(norms, torch.ones(10), atol=1e-2)  # left free (unlike the paper's code)


def test_run_directory_files(small_mlp, splits, tmp_path):
    tr, te = splits
    hist = train.train(small_mlp(tr), tr, test_set=te, run_dir=tmp_path, meta={"note": "unit test"}, **FAST)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["train"]["epochs"] == 6 and cfg["arm"] == "normalized" and cfg["model"]["name"] == "mlp"
    assert cfg["dataset"]["name"] == "digits" and cfg["dataset"]["N"] == len(tr) and cfg["meta"]["note"] == "unit test"
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["completed"] is True and [r["epoch"] for r in saved["records"]] == [0, 2, 4, 6]
    for key in ("loss", "acc", "nc1", "nc2", "nc3", "test_loss", "test_acc", "test_nc1"):
        assert [r[key] for r in saved["records"]] == hist[key]
    assert train.read_metrics(tmp_path).records == hist.records
    state = torch.load(tmp_path / train.CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 6 and "classifier.weight" in state["model"]
    assert type(state["model"]["classifier.weight"]) is torch.Tensor
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    train.save_checkpoint(path, {"a": torch.ones(3), "n": 1})

    def broken_save(obj, fh, *args, **kwargs):
        fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train.save_checkpoint(path, {"a": torch.zeros(3), "n": 2})
    monkeypatch.undo()
    state = train.load_checkpoint(path)
    assert state["n"] == 1 and torch.equal(state["a"], torch.ones(3))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind
    with pytest.raises(FileNotFoundError):
        train.load_checkpoint(tmp_path / "nothing.pt")


def _metrics_only(hist):
    return [{k: r[k] for k in train.METRIC_KEYS if k in r} for r in hist.records]


@pytest.mark.parametrize("arm,split", [("normalized", False), ("regularized", False), ("normalized", True)])
def test_resume_after_stop_equals_uninterrupted_run(small_mlp, splits, tmp_path, arm, split):
    tr, te = splits
    kw = {**FAST, "split_optimizer": split}
    full = train.train(small_mlp(tr, arm), tr, test_set=te, **kw)
    part = train.train(small_mlp(tr, arm), tr, test_set=te, run_dir=tmp_path, stop_after=3, **kw)
    assert not part.completed and part["epoch"] == [0, 2]
    assert json.loads((tmp_path / "metrics.json").read_text())["completed"] is False
    resumed = train.train(small_mlp(tr, arm, seed=99), tr, test_set=te, run_dir=tmp_path, **kw)  # other init: restored
    assert resumed.completed
    assert _metrics_only(resumed) == _metrics_only(full)  # exactly equal on the CPU


def test_split_optimizer_differs_only_by_geoopts_first_momentum_step(small_mlp, splits):
    tr, _ = splits
    nets = [small_mlp(tr) for _ in range(3)]
    base = train.Trainer(nets[0], tr, train.TrainConfig(momentum=0.0, progress=False))
    split = train.Trainer(nets[1], tr, train.TrainConfig(momentum=0.0, progress=False, split_optimizer=True))
    assert len(split.optimizers) == 2 and len(base.optimizers) == 1
    base.train_epoch(max_steps=3)
    split.train_epoch(max_steps=3)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):  # without momentum: the same updates
        assert torch.allclose(p, q, atol=1e-6)
    mom = train.Trainer(nets[2], tr, train.TrainConfig(progress=False, split_optimizer=True))
    mom.train_epoch(max_steps=3)
    assert torch.allclose(nets[2].classifier_weight.norm(dim=1), torch.ones(10), atol=1e-5)


def test_keyboard_interrupt_in_callback_then_resume(small_mlp, splits, tmp_path):
    tr, _ = splits
    full = train.train(small_mlp(tr), tr, **FAST)

    def interrupt(epoch, record, trainer):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.train(small_mlp(tr), tr, run_dir=tmp_path, callback=interrupt, checkpoint_every=5, **FAST)
    assert train.load_checkpoint(tmp_path / train.CHECKPOINT_NAME)["epoch"] == 2
    resumed = train.train(small_mlp(tr), tr, run_dir=tmp_path, checkpoint_every=5, **FAST)
    assert _metrics_only(resumed) == _metrics_only(full)


def test_resume_with_other_config_raises(small_mlp, splits, tmp_path):
    tr, _ = splits
    train.train(small_mlp(tr), tr, run_dir=tmp_path, stop_after=1, **FAST)
    with pytest.raises(ValueError, match="different configuration.*train.lr"):
        train.train(small_mlp(tr), tr, run_dir=tmp_path, **{**FAST, "lr": 0.1})
    fresh = train.train(small_mlp(tr), tr, run_dir=tmp_path, resume=False, **{**FAST, "lr": 0.1, "epochs": 2})
    assert fresh["epoch"] == [0, 2]


def test_bad_inputs_raise(small_mlp, splits):
    tr, _ = splits
    with pytest.raises(ValueError, match="lr"):
        train.TrainConfig(lr=-1.0)
    with pytest.raises(TypeError, match="epochs"):
        train.TrainConfig(epochs=2.5)
    with pytest.raises(ValueError, match="momentum"):
        train.TrainConfig(momentum=1.0)
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        train.train(small_mlp(tr), tr, epochs=1, learning_rate=0.1)
    with pytest.raises(TypeError, match="NCNet"):
        train.train(torch.nn.Linear(64, 10), tr, epochs=1)
    with pytest.raises(TypeError, match="Dataset"):
        train.train(small_mlp(tr), (tr.X, tr.y), epochs=1)
    with pytest.raises(ValueError, match="classes"):
        three = models.build_model("mlp", num_classes=3, input_shape=tr.input_shape, hidden=(4,))
        train.train(three, tr, epochs=1)
    with pytest.raises(ValueError, match="expects"):
        img = models.build_model("cnn", num_classes=10, input_shape=(1, 8, 8), width=2)
        train.train(img, tr, epochs=1)
    with pytest.raises(ValueError, match="stop_after"):
        train.train(small_mlp(tr), tr, epochs=1, stop_after=-1)


def test_resume_on_another_device_and_precision(small_mlp, splits, tmp_path, capsys):
    """A run stopped in bf16 on a "GPU" continues in float32 on the CPU, with a one-line note."""
    tr, te = splits
    train.train(small_mlp(tr), tr, run_dir=tmp_path, stop_after=2, precision="bf16", **FAST)
    record = rundir.read_config(tmp_path)
    assert record["runtime"] == {"device": "cpu", "precision": "bf16", "world_size": 1}
    record["runtime"]["device"] = "cuda:0"  # as if it had run on a GPU runtime
    record["train"].update(device="cuda", channels_last=True)
    rundir.write_json(tmp_path / rundir.CONFIG_NAME, record)
    capsys.readouterr()
    resumed = train.train(small_mlp(tr, seed=5), tr, run_dir=tmp_path, precision="fp32", device="cpu", **FAST)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert lines == [f"ncbook.train: resuming {tmp_path} at epoch 2; device cuda:0 -> cpu, precision bf16 -> fp32"]
    assert resumed.completed and resumed["epoch"] == [0, 2, 4, 6]
    assert rundir.read_config(tmp_path)["runtime"]["precision"] == "fp32"
    # the first two epochs ran in bf16: their records are kept as they were
    stopped = [r for r in resumed.records if r["epoch"] <= 2]
    bf16_run = train.train(small_mlp(tr), tr, precision="bf16", **{**FAST, "epochs": 2})
    assert [r["nc1"] for r in stopped] == bf16_run["nc1"]


def test_batchnorm_with_a_last_batch_of_one_row(small_mlp, splits):
    tr, _ = splits  # 120 rows
    net = small_mlp(tr, batchnorm=True)
    assert net.has_batchnorm
    hist = train.train(net, tr, epochs=2, eval_every=1, batch_size=17, progress=False)  # 120 = 7 * 17 + 1
    assert hist.completed and all(math.isfinite(v) for v in hist["loss"])
    trainer = train.Trainer(small_mlp(tr, batchnorm=True), tr, train.TrainConfig(batch_size=17, progress=False))
    sizes = [len(y) for _, y, _ in trainer.loader.batches()]
    assert sum(sizes) == len(tr) and min(sizes) >= 2 and len(trainer.loader) == len(sizes) == 7
    plain = train.Trainer(small_mlp(tr, batchnorm=False), tr, train.TrainConfig(batch_size=17, progress=False))
    assert [len(y) for _, y, _ in plain.loader.batches()][-1] == 1  # without BatchNorm: batches unchanged


def test_dtype_mismatch_and_huge_seed_are_named(small_mlp, splits):
    tr, _ = splits
    with pytest.raises(TypeError, match=r"train_set.X has dtype torch.float64 but the model's parameters are"):
        train.train(small_mlp(tr), tr.replace(X=tr.X.double()), epochs=1, progress=False)
    with pytest.raises(TypeError, match="input has dtype torch.float64"):
        small_mlp(tr)(tr.X.double())
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63 - 1\], got 18446744073709551616"):
        train.TrainConfig(seed=2**64)
    with pytest.raises(ValueError, match="seed"):
        train.train(small_mlp(tr), tr, epochs=1, seed=-1)
    with pytest.raises(TypeError, match="precision"):
        train.TrainConfig(precision=None)
    with pytest.raises(TypeError, match="progress must be True or False"):
        train.TrainConfig(progress="yes")


@pytest.mark.slow
@pytest.mark.no_cover  # only the kernel runs ncbook: coverage's tracer would slow nbclient's loop
def test_progress_bars_leave_no_text_in_a_saved_notebook():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipywidgets")
    code = ("from ncbook import data, models, train\n"
            "tr = data.load_splits('digits', flat=True)[0]\n"
            "net = models.build_model('mlp', num_classes=10, input_shape=tr.input_shape, hidden=(8,))\n"
            "h = train.train(net, tr, epochs=1, batch_size=256, label='my run')\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    # immediate: the outputs are in; a graceful shutdown only costs a second
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", shutdown_kernel="immediate").execute()
    outputs = nb.cells[0].outputs
    assert outputs and all(o.output_type == "display_data" for o in outputs)  # the bar was shown
    assert all(not o.data.get("text/plain") for o in outputs)  # and left nothing behind


def test_batchnorm_refuses_batches_it_cannot_normalize(small_mlp, splits):
    tr, _ = splits
    with pytest.raises(ValueError, match="batch_size and the rows of train_set must be >= 2"):
        train.train(small_mlp(tr, batchnorm=True), tr, epochs=1, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="got 32 and 1"):
        train.train(small_mlp(tr, batchnorm=True), tr.take([0]), epochs=1, batch_size=32, progress=False)
