"""Tests of ncbook.experiments: settings, FAST-mode studies, results, the CLI, fallbacks and errors."""

import json
import subprocess
import sys

import pytest

from ncbook import experiments

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one thread is fastest



def test_paper_settings_follow_the_paper():
    s = experiments.settings("fast-collapse", "paper", fast=False)
    assert (s["dataset"], s["n_per_class"], s["model"]) == ("cifar100", 30, "resnet18")
    assert [r["arm"] for r in s["runs"]] == ["normalized", "regularized"] and s["runs"][0]["tau"] == 1.0
    t = s["train"]
    assert (t["epochs"], t["lr"], t["momentum"], t["lr_decay"], t["lr_decay_period"], t["batch_size"]) == (
        100, 0.05, 0.9, 0.1, 40, 128)
    assert t["weight_decay"] == 1e-4 and t["eval_every"] == 5
    temp = experiments.settings("temperature", "paper", fast=False)
    assert [r["tau"] for r in temp["runs"]] == [0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 100.0]
    assert temp["train"]["epochs"] == 200 and temp["dataset"] == "cifar10"
    w = experiments.settings("width", "paper", fast=False)
    assert [r["width"] for r in w["runs"]] == [4, 8, 16, 32, 64]
    assert (w["model"], w["n_per_class"], w["random_labels"]) == ("resnet18vw", 200, "train")
    assert experiments.settings("generalization", "paper", fast=False)["test_metrics"] is True


def test_fast_settings_are_small():
    for name in experiments.EXPERIMENTS:
        for preset in experiments.PRESETS:
            s = experiments.settings(name, preset, fast=True)
            assert s["train"]["epochs"] <= 4 and s["n_per_class"] <= 8 and s["fast"] is True
            assert s["model"] in ("mlp", "resnet18vw")
            labels = [r["label"] for r in s["runs"]]
            assert len(labels) >= 2 and len(set(labels)) == len(labels)


def test_fast_collapse_result(monkeypatch):
    monkeypatch.setenv("NCBOOK_FAST", "1")
    res = experiments.fast_collapse(progress=False)
    assert res.dataset == res.requested_dataset == "digits" and res.preset == "offline"
    assert res.labels == ["normalized", "regularized"]
    for cols in res.runs.values():
        assert cols["epoch"] == [0, 2, 4]
        assert all(isinstance(v, list) and len(v) == 3 for v in cols.values())  # plain columns, ready to plot
        assert cols["loss"][-1] < cols["loss"][0]
    assert set(res.train_time_s) == {"normalized", "regularized"}
    cmp = res.compare("nc1")
    assert cmp["epochs"] == [2, 4] and cmp["n"] == 2 and 0 <= cmp["a_below_b"] <= 2
    assert cmp["final"] == (res.runs["normalized"]["nc1"][-1], res.runs["regularized"]["nc1"][-1])
    assert set(res.final("acc")) == {"normalized", "regularized"}
    assert "normalized" in res.table() and "nc1" in res.table()
    with pytest.raises(KeyError, match="no metric"):
        res.final("nc9")


def test_generalization_records_test_metrics_and_saves(tmp_path):
    res = experiments.generalization(fast=True, progress=False, out=tmp_path)
    assert all("test_acc" in cols and "test_nc1" in cols for cols in res.runs.values())
    path = tmp_path / "generalization" / "result.json"
    again = experiments.ExperimentResult.load(path)
    assert again.runs == res.runs and again.dataset == "digits"
    assert (tmp_path / "generalization" / "normalized" / "metrics.json").is_file()
    # rerunning with the same folder resumes the finished runs instead of training again
    rerun = experiments.generalization(fast=True, progress=False, out=tmp_path)
    assert rerun.runs == res.runs


def test_temperature_and_width_runs():
    temp = experiments.temperature(fast=True, progress=False)
    assert temp.labels == ["tau=0.1", "tau=1", "tau=10"]
    w = experiments.width(fast=True, progress=False)
    assert w.labels == ["width=16", "width=64"]
    assert "random_labels=True" in w.settings["data"]["train"]


def test_paper_preset_falls_back_without_cifar(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NCBOOK_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "torchvision", None)
    res = experiments.fast_collapse(preset="paper", fast=True, progress=False, device="cpu")
    out = capsys.readouterr().out
    assert "cifar100 is not available" in out and out.count("not available") == 1
    assert res.dataset == "digits" and res.requested_dataset == "cifar100"
    assert res.settings["model"] == "resnet18vw"
    with pytest.raises(RuntimeError, match="strict"):
        experiments.fast_collapse(preset="paper", fast=True, progress=False, strict=True)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="experiment must be one of"):
        experiments.run("slow-collapse")
    with pytest.raises(ValueError, match="preset"):
        experiments.settings("width", "huge")
    with pytest.raises(ValueError, match="dataset must be one of"):
        experiments.fast_collapse(fast=True, dataset="svhn")
    with pytest.raises(ValueError, match="unknown setting"):
        experiments.fast_collapse(fast=True, overrides={"n_per_klass": 3})
    with pytest.raises(ValueError, match="epochs"):
        experiments.fast_collapse(fast=True, epochs=-2)


def test_cli_in_process(tmp_path, capsys):
    code = experiments.main(["temperature", "--fast", "--no-progress", "--out", str(tmp_path), "--epochs", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "temperature [offline, FAST] on digits" in out and "tau=10" in out
    result = json.loads((tmp_path / "temperature" / "result.json").read_text())
    assert result["runs"]["tau=1"]["epoch"] == [0, 2]
    with pytest.raises(SystemExit):
        experiments.main(["no-such-study"])


def test_cli_fast_collapse_prints_the_comparison(capsys):
    assert experiments.main(["fast-collapse", "--fast", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "NC1: normalized below regularized at" in out and "wall time" in out


@pytest.mark.slow  # starts a Python subprocess: make test only, not make check
def test_cli_module_entry_point(tmp_path):
    # the `python -m` wiring (a full run in a subprocess would mostly measure import time)
    proc = subprocess.run([sys.executable, "-m", "ncbook.experiments", "--help"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fast-collapse" in proc.stdout and "--preset" in proc.stdout


def test_frame_holds_the_final_metrics(monkeypatch):
    monkeypatch.setenv("NCBOOK_FAST", "1")
    res = experiments.fast_collapse(progress=False, epochs=2)
    df = res.frame()
    assert list(df.index) == ["normalized", "regularized"] and df.index.name == "run"
    assert df.loc["normalized", "nc1"] == res.final("nc1")["normalized"] and "time_s" not in df.columns
    assert list(res.frame(["acc", "nc1"]).columns) == ["epoch", "acc", "nc1"]
    assert (df["epoch"] == 2).all()
    with pytest.raises(KeyError, match="no metric"):
        res.frame(["nc9"])


def test_study_functions_have_explicit_signatures():
    import inspect

    for fn in (experiments.fast_collapse, experiments.generalization, experiments.temperature, experiments.width):
        params = inspect.signature(fn).parameters
        assert list(params) == [f.name for f in __import__("dataclasses").fields(experiments.StudyOptions)]
        assert params["preset"].default == "offline" and params["resume"].default is True
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['epoch'\] of width"):
        experiments.width(epoch=3)


def test_studies_are_data():
    st = experiments.study("width", "paper", fast=False)
    assert isinstance(st, experiments.Study) and [r.width for r in st.runs] == [4, 8, 16, 32, 64]
    assert experiments.Study.from_dict(st.to_dict()) == st
    with pytest.raises(ValueError, match="distinct 'label'"):
        experiments.fast_collapse(fast=True, overrides={"runs": [{"label": "a"}, {"label": "a"}]})
    with pytest.raises(ValueError, match="unknown run keys"):
        experiments.fast_collapse(fast=True, overrides={"runs": [{"label": "a", "temp": 2}]})


def test_progress_bars_say_what_they_run(monkeypatch):
    import tqdm.auto

    bars = []

    class FakeBar:  # records what a bar is told, shows nothing
        def __init__(self, total, desc, unit, leave):
            bars.append({"desc": desc, "leave": leave, "closed": False})

        def update(self, n):
            pass

        def set_postfix(self, **kw):
            pass

        def close(self):
            bars[-1]["closed"] = True

    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    experiments.width(fast=True, progress=True, epochs=1)
    assert [b["desc"] for b in bars] == ["width: width=16", "width: width=64"]
    assert all(b["closed"] and b["leave"] is False for b in bars)  # no stale bar left in a saved notebook


def test_cli_errors_are_one_line_with_a_nonzero_exit(tmp_path, capsys):
    assert experiments.main(["fast-collapse", "--fast", "--no-progress", "--epochs", "2", "--out", str(tmp_path)]) == 0
    ckpt = tmp_path / "fast-collapse" / "normalized" / "checkpoint.pt"
    ckpt.write_bytes(b"")
    capsys.readouterr()
    assert experiments.main(["fast-collapse", "--fast", "--no-progress", "--epochs", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(ckpt) in err and "--no-resume" in err
    assert "Traceback" not in err
    assert experiments.main(["fast-collapse", "--fast", "--no-progress", "--epochs", "2", "--out", str(tmp_path),
                             "--no-resume"]) == 0
    assert experiments.main(["fast-collapse", "--fast", "--no-progress", "--epochs", "-1"]) == 2
    assert "epochs" in capsys.readouterr().err


def test_cli_interrupt_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "run", interrupted)
    assert experiments.main(["width", "--fast"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resume" in err
