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
