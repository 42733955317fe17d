"""Tests of ncbook.data: offline datasets, splits, subsets, random labels, CIFAR fallback, loader."""

import hashlib
import pickle
import random
import socket
import sys
import types

import numpy as np
import pytest
import torch

from ncbook import data

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one thread is fastest


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NCBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _toy(N=60, K=3, shape=(4,)):
    X = torch.arange(N, dtype=torch.float32).reshape(N, 1).expand(N, *shape).reshape(N, *shape).clone()
    y = torch.arange(N) % K
    return data.Dataset(X, y, "toy", K)


# ---- offline datasets -----------------------------------------------------------------------


def test_digits_images_and_flat(digits):
    assert digits.X.shape == (1797, 1, 8, 8) and digits.X.dtype == torch.float32
    assert digits.y.shape == (1797,) and digits.y.dtype == torch.int64
    assert digits.name == digits.requested == "digits" and digits.num_classes == 10
    assert 0 <= float(digits.X.min()) and float(digits.X.max()) <= 1
    flat = data.load_digits(flat=True)
    assert flat.X.shape == (1797, 64)
    assert torch.equal(flat.X, digits.X.flatten(1))
    assert sorted(set(digits.y.tolist())) == list(range(10))


def test_mnist1d_offline_deterministic_and_keeps_global_rng(cache, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d generation tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    expected = (random.random(), np.random.rand())  # noqa: NPY002
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    ds = data.load_mnist1d(num_samples=100, cache=False)
    assert (random.random(), np.random.rand()) == expected  # noqa: NPY002
    assert ds.X.shape == (100, 40) and ds.name == "mnist1d" and ds.num_classes == 10
    assert data.class_counts(ds) == [10] * 10
    again = data.load_mnist1d(num_samples=100, cache=True)  # generates and writes the cache
    assert torch.equal(ds.X, again.X) and torch.equal(ds.y, again.y)
    assert list((cache / "mnist1d").glob("*.npz"))
    cached = data.load_mnist1d(num_samples=100, cache=True)
    assert torch.equal(ds.X, cached.X)


# ---- Dataset validation ------------------------------------------------------------------------


def test_dataset_rejects_bad_fields():
    X = torch.zeros(4, 2)
    with pytest.raises(TypeError, match="int64"):
        data.Dataset(X, torch.zeros(4), "x", 2)
    with pytest.raises(ValueError, match="rows"):
        data.Dataset(X, torch.zeros(3, dtype=torch.long), "x", 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        data.Dataset(X, torch.tensor([0, 1, 2, 0]), "x", 2)
    with pytest.raises(TypeError, match="floating"):
        data.Dataset(torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, dtype=torch.long), "x", 2)


# ---- splits and subsets -------------------------------------------------------------------------


def test_train_test_split_stratified_disjoint_seeded(digits):
    ds = digits.replace(X=torch.arange(len(digits), dtype=torch.float32).unsqueeze(1))  # row ids
    train, test = data.train_test_split(ds, 0.25, seed=1)
    ids_tr, ids_te = set(train.X.flatten().long().tolist()), set(test.X.flatten().long().tolist())
    assert not ids_tr & ids_te and len(ids_tr | ids_te) == len(ds)
    full = data.class_counts(ds)
    for k, n_te in enumerate(data.class_counts(test)):
        assert n_te == round(0.25 * full[k])
    assert train.info["split"] == "train" and test.info["split"] == "test"
    again = data.train_test_split(ds, 0.25, seed=1)[1]
    other = data.train_test_split(ds, 0.25, seed=2)[1]
    assert torch.equal(again.X, test.X) and not torch.equal(other.X, test.X)
    with pytest.raises(ValueError, match="test_fraction"):
        data.train_test_split(ds, 1.5)


def test_balanced_subset_first_and_random(digits):
    ds = digits.replace(X=torch.arange(len(digits), dtype=torch.float32).unsqueeze(1))
    sub = data.balanced_subset(ds, 7)
    assert data.class_counts(sub) == [7] * 10
    for k in range(10):
        first = torch.nonzero(ds.y == k).flatten()[:7]
        assert torch.equal(sub.X[sub.y == k].flatten().long(), first)
    r1 = data.balanced_subset(ds, 7, mode="random", seed=3)
    r2 = data.balanced_subset(ds, 7, mode="random", seed=3)
    assert data.class_counts(r1) == [7] * 10 and torch.equal(r1.X, r2.X) and not torch.equal(r1.X, sub.X)
    with pytest.raises(ValueError, match="fewer than n_per_class"):
        data.balanced_subset(ds, 1000)
    with pytest.raises(ValueError, match="mode"):
        data.balanced_subset(ds, 3, mode="last")
    with pytest.raises(TypeError, match="Dataset"):
        data.balanced_subset(ds.X, 3)


def test_random_labels_keep_counts_and_are_seeded(digits):
    sub = data.balanced_subset(digits, 20)
    rl = data.random_labels(sub, seed=0)
    assert data.class_counts(rl) == [20] * 10
    assert (rl.y != sub.y).float().mean() > 0.5  # most labels changed
    assert torch.equal(rl.X, sub.X)
    assert torch.equal(rl.y, data.random_labels(sub, seed=0).y)
    assert not torch.equal(rl.y, data.random_labels(sub, seed=1).y)
    assert rl.info["random_labels"] is True


def test_standardize_uses_training_statistics(digits):
    train, test = data.train_test_split(digits, 0.3)
    s_train, s_test = data.standardize(train, test)
    m = s_train.X.mean(dim=(0, 2, 3))
    s = s_train.X.std(dim=(0, 2, 3))
    assert torch.allclose(m, torch.zeros(1), atol=1e-5) and torch.allclose(s, torch.ones(1), atol=1e-4)
    mu, sd = train.X.mean(), train.X.std()
    assert torch.allclose(s_test.X, (test.X - mu) / sd, atol=1e-5)
    with pytest.raises(ValueError, match="input shape"):
        data.standardize(train, train.replace(X=train.X.flatten(1)))


def test_load_splits_names_and_flat():
    train, test = data.load_splits("digits", flat=True, test_fraction=0.2)
    assert train.X.shape[1:] == (64,) and len(train) + len(test) == 1797
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.load_splits("imagenet")


# ---- CIFAR ----------------------------------------------------------------------------------------


def test_cifar_falls_back_when_torchvision_is_missing(cache, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # "import torchvision" raises ImportError
    train, test = data.load_splits("cifar100")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "cifar100" in out[0] and "torchvision" in out[0] and "digits" in out[0]
    assert train.name == "digits" and train.requested == "cifar100" and test.requested == "cifar100"
    assert "torchvision" in train.info["fallback_reason"]
    assert train.num_classes == 10 and train.input_shape == (1, 8, 8)
    with pytest.raises(ValueError, match="fallback"):
        data.load_cifar("cifar10", fallback="svhn")
    with pytest.raises(RuntimeError, match="strict"):
        data.load_cifar("cifar10", strict=True)
    with pytest.raises(ValueError, match="cifar10"):
        data.load_cifar("cifar1000")


def _fake_cifar10(root, n=4):
    """A cifar-10-batches-py folder with tiny random batches; returns their MD5 table."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"labels": [i % 10, 1, 2, 3][:n]}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    return {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in names}


def test_cifar_read_from_extracted_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(data.CIFAR_MD5, "cifar10", _fake_cifar10(tmp_path))  # our fake files are "the" files
    train, test = data.load_cifar("cifar10", root=tmp_path, download=False, strict=True)
    assert train.X.shape == (20, 3, 32, 32) and test.X.shape == (4, 3, 32, 32)
    assert train.name == "cifar10" and train.num_classes == 10
    assert 0 <= float(train.X.min()) and float(train.X.max()) <= 1
    assert data.cifar_folder_problems("cifar10", tmp_path) == []


def test_damaged_cifar_folder_is_removed_and_fetched_again(tmp_path, monkeypatch, capsys):
    sums = _fake_cifar10(tmp_path)
    monkeypatch.setitem(data.CIFAR_MD5, "cifar10", sums)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_3").write_bytes(b"cut short")  # a download interrupted on a disconnect
    (folder / "test_batch").unlink()
    assert data.cifar_folder_problems("cifar10", tmp_path) == ["data_batch_3 has the wrong checksum",
                                                               "test_batch is missing"]
    # offline, torchvision missing: the damaged copy is removed, and digits stand in (one line each)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    train, _ = data.load_cifar("cifar10", root=tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "damaged (data_batch_3 has the wrong checksum; test_batch is missing)" in out[0]
    assert "downloading again" in out[0] and "not available" in out[1]
    assert train.name == "digits" and not folder.exists()
    # with a (fake, offline) torchvision that "downloads" a good copy, the next load reads CIFAR again
    calls = []

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            calls.append(download)
            if not folder.exists():
                _fake_cifar10(tmp_path)
            self.data = np.zeros((4 if not train else 20, 32, 32, 3), np.uint8)
            self.targets = [0, 1, 2, 3] * (1 if not train else 5)

    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(CIFAR10=FakeCIFAR10)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake.datasets)
    train, test = data.load_cifar("cifar10", root=tmp_path, strict=True)
    assert calls == [True, True] and train.name == "cifar10" and len(train) == 20
    assert data.cifar_folder_problems("cifar10", tmp_path) == []
    assert (folder / ".ncbook-verified.json").is_file()  # the next load compares sizes, not MD5s


# ---- loader -----------------------------------------------------------------------------------------


def test_loader_epoch_order_is_a_function_of_seed_and_epoch():
    ds = _toy(50)
    L = data.InMemoryLoader(ds, 16, shuffle=True, seed=5)
    L.set_epoch(3)
    rows = torch.cat([x[:, 0] for x, _ in L]).long()
    assert sorted(rows.tolist()) == list(range(50)) and len(L) == 4
    L2 = data.InMemoryLoader(ds, 16, shuffle=True, seed=5, epoch=3)
    assert torch.equal(rows, torch.cat([x[:, 0] for x, _ in L2]).long())
    L2.set_epoch(4)
    assert not torch.equal(rows, torch.cat([x[:, 0] for x, _ in L2]).long())
    plain = torch.cat([x[:, 0] for x, _ in data.InMemoryLoader(ds, 16)]).long()
    assert plain.tolist() == list(range(50))


def test_loader_shards_for_two_ranks():
    ds = _toy(41)
    full = [b for b, _, _ in data.InMemoryLoader(ds, 8, shuffle=True, seed=1).batches()]
    r0 = list(data.InMemoryLoader(ds, 8, shuffle=True, seed=1, rank=0, world_size=2).batches())
    r1 = list(data.InMemoryLoader(ds, 8, shuffle=True, seed=1, rank=1, world_size=2).batches())
    assert len(r0) == len(r1) == 5  # the last global batch (1 row < 2 ranks) is skipped
    for g, (x0, _, n0), (x1, _, n1) in zip(full, r0, r1):
        assert n0 == n1 == g.shape[0]
        assert sorted(torch.cat([x0[:, 0], x1[:, 0]]).tolist()) == sorted(g[:, 0].tolist())
    # evaluation blocks: each row once over the ranks
    b0 = torch.cat([x[:, 0] for x, _ in data.InMemoryLoader(ds, 8, rank=0, world_size=2, partition="block")])
    b1 = torch.cat([x[:, 0] for x, _ in data.InMemoryLoader(ds, 8, rank=1, world_size=2, partition="block")])
    assert torch.cat([b0, b1]).long().tolist() == list(range(41))


def test_loader_rejects_bad_arguments():
    ds = _toy(10)
    with pytest.raises(ValueError, match="batch_size"):
        data.InMemoryLoader(ds, 0)
    with pytest.raises(ValueError, match="rank"):
        data.InMemoryLoader(ds, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="partition"):
        data.InMemoryLoader(ds, 4, partition="odd")
    with pytest.raises(TypeError, match="Dataset"):
        data.InMemoryLoader((ds.X, ds.y), 4)
