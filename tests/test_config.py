"""Tests of ncbook.config: FAST-mode switch, device resolution, seeding, cache folder."""

import pytest
import torch

from ncbook import config


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_is_fast_reads_ncbook_fast(monkeypatch, value, expected):
    monkeypatch.setenv("NCBOOK_FAST", value)
    assert config.is_fast() is expected
    assert config.pick(fast="small", full="big") == ("small" if expected else "big")


def test_is_fast_false_when_unset(monkeypatch):
    monkeypatch.delenv("NCBOOK_FAST", raising=False)
    assert not config.is_fast()


def test_default_device_resolves_auto_and_cpu():
    assert config.default_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert config.default_device(None).type == expected
    assert config.default_device("auto").type == expected


def test_default_device_rejects_garbage_and_missing_cuda():
    with pytest.raises(ValueError, match="device"):
        config.default_device("tpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            config.default_device("gpu")


def test_seed_everything_is_reproducible():
    g1 = config.seed_everything(3)
    a = torch.randn(4), torch.randn(2, generator=g1)
    g2 = config.seed_everything(3)
    b = torch.randn(4), torch.randn(2, generator=g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NCBOOK_CACHE", str(tmp_path / "c"))
    path = config.cache_dir("runs")
    assert path == tmp_path / "c" / "runs" and path.is_dir()


@pytest.fixture
def home(monkeypatch, tmp_path):
    monkeypatch.delenv("NCBOOK_CACHE", raising=False)
    monkeypatch.setenv("NCBOOK_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    config.set_storage_root(None)


def test_runs_and_cache_share_one_root(home):
    assert config.storage_root() == home and home.is_dir()
    assert config.runs_dir("08_deep_networks", "offline") == home / "runs" / "08_deep_networks" / "offline"
    assert config.cache_dir("data") == home / "cache" / "data"
    for bad in ("..", "a/b", ""):
        with pytest.raises(ValueError, match="runs_dir names"):
            config.runs_dir(bad)


def test_set_storage_root_overrides_the_environment(home, tmp_path):
    assert config.set_storage_root(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert config.runs_dir("x").parent == tmp_path / "elsewhere" / "runs"
    assert config.set_storage_root(None) == home


def test_use_google_drive_does_nothing_outside_colab(home, monkeypatch, capsys):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delenv("COLAB_GPU", raising=False)
    assert config.use_google_drive() is None
    out = capsys.readouterr().out
    assert "not in Google Colab" in out and str(home) in out and out.count("\n") == 1
    assert config.storage_root() == home


def test_use_google_drive_mounts_in_colab(home, monkeypatch, capsys):
    import sys
    import types

    mounted = []
    colab, drive = types.ModuleType("google.colab"), types.ModuleType("google.colab.drive")
    drive.mount = mounted.append
    colab.drive = drive
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    monkeypatch.setattr(config, "DRIVE_MOUNT", str(home.parent / "drive"))  # not /content on this machine
    root = config.use_google_drive("course")
    assert mounted == [str(home.parent / "drive")] and root == home.parent / "drive" / "MyDrive" / "course"
    assert config.runs_dir("r").parent == root / "runs" and "Google Drive" in capsys.readouterr().out


def test_seed_everything_checks_the_seed():
    with pytest.raises(ValueError, match="seed must be an integer in"):
        config.seed_everything(2**64)
    with pytest.raises(TypeError, match="seed"):
        config.seed_everything(1.5)
    config.seed_everything(2**63 - 1)
