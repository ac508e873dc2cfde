"""IDX parsing, MNIST download/cache (urlopen monkeypatched: no network), bundled 10k set."""
import gzip
import hashlib
import io
import os

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minigen.data import mnist as M
from minigen.data import BundledMNIST, DataError, DataLoader, DatasetNotFoundError, load_mnist_bundled, read_idx
from minigen.errors import InvalidArgumentError


@given(st.sampled_from(["uint8", "int8", "int16", "int32", "float32", "float64"]),
       st.lists(st.integers(1, 4), min_size=1, max_size=3), st.booleans())
def test_idx_round_trip(dtype, shape, gz):
    a = (np.arange(int(np.prod(shape))) * 3 - 5).astype(dtype).reshape(shape)
    path = os.path.join(_tmp(), "x.idx" + (".gz" if gz else ""))
    M.write_idx(a, path)
    b = read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
    raw = open(path, "rb").read()
    assert (raw[:2] == b"\x1f\x8b") == gz
    assert np.array_equal(read_idx(raw), a)


def _tmp():
    import tempfile

    d = os.path.join(tempfile.gettempdir(), f"minigen_idx_{os.getpid()}")
    os.makedirs(d, exist_ok=True)
    return d


def test_idx_hand_made_header():
    # magic 0x00000801 (uint8, 1-d), dim 3, values 1 2 3
    assert read_idx(b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03").tolist() == [1, 2, 3]
    # big-endian int16: 0x0102 = 258
    assert read_idx(b"\x00\x00\x0b\x01\x00\x00\x00\x01\x01\x02").tolist() == [258]


@pytest.mark.parametrize("raw, msg", [
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX element type 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated IDX header"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02\x01\x02\x03", r"\(2, 2\).*need 4 data bytes.*has 3.*truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "trailing"),
    (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
])
def test_idx_corrupt_files(raw, msg):
    with pytest.raises(DataError, match=msg):
        read_idx(raw)


def test_idx_truncated_gzip_of_real_file():
    raw = open(M.bundled_file(M.BUNDLED_LABELS), "rb").read()
    with pytest.raises(DataError):
        read_idx(raw[: len(raw) // 2])


def test_bundled_files_md5_and_content():
    for name, md5 in M.BUNDLED_MD5.items():
        assert M.md5sum(M.bundled_file(name)) == md5
    images = read_idx(M.bundled_file(M.BUNDLED_IMAGES))
    labels = read_idx(M.bundled_file(M.BUNDLED_LABELS))
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.min() == 0 and labels.max() == 9
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test digits
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bundled_split_deterministic_disjoint():
    xt, yt = load_mnist_bundled("train")
    xv, yv = load_mnist_bundled("val")
    assert xt.shape == (9000, 1, 28, 28) and xv.shape == (1000, 1, 28, 28)
    assert xt.dtype == np.float32 and yt.dtype == np.int64
    assert 0.0 <= xt.min() and xt.max() <= 1.0 and xt.max() == 1.0
    xa, ya = load_mnist_bundled("all")
    # train + val is a partition of the 10k: compare label histograms and pixel sums
    assert np.array_equal(np.bincount(yt) + np.bincount(yv), np.bincount(ya))
    assert np.isclose(xt.sum(dtype=np.float64) + xv.sum(dtype=np.float64), xa.sum(dtype=np.float64))
    assert np.array_equal(load_mnist_bundled("val")[1], yv)
    assert min(np.bincount(yv)) > 60  # every class is in the validation set
    # the split is fixed forever: the first validation labels are pinned
    order = M._bundled_order(10000)
    assert np.array_equal(yv, ya[np.sort(order[:1000])])
    assert load_mnist_bundled("val", flatten=True)[0].shape == (1000, 784)
    with pytest.raises(InvalidArgumentError, match="split"):
        load_mnist_bundled("test")


def test_bundled_dataset_with_loader():
    ds = BundledMNIST("val")
    x, y = next(iter(DataLoader(ds, batch_size=32)))
    assert x.shape == (32, 1, 28, 28) and str(x.dtype) == "float32" and str(y.dtype) == "int64"


# ----------------------------------------------------------------------------- download (no network)
def _fake_mnist_files():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labs = rng.integers(0, 10, 5).astype(np.uint8)

    def idx(a):
        return gzip.compress(bytes([0, 0, 8, a.ndim]) + np.asarray(a.shape, ">u4").tobytes() + a.tobytes(), mtime=0)

    return {"img": idx(imgs), "lab": idx(labs)}, imgs, labs


class _Resp(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def test_download_verify_and_cache(monkeypatch, tmp_path):
    files, imgs, labs = _fake_mnist_files()
    md5 = {k: hashlib.md5(v).hexdigest() for k, v in files.items()}
    resources = dict(M.MNIST_RESOURCES)
    resources["train_images"] = ("train-images-idx3-ubyte.gz", md5["img"])
    resources["train_labels"] = ("train-labels-idx1-ubyte.gz", md5["lab"])
    monkeypatch.setitem(M._DATASETS, "mnist", (resources, ("http://bad.mirror/", "http://good.mirror/")))
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        if url.startswith("http://bad"):
            raise M.urllib.error.URLError("no route")
        return _Resp(files["img"] if "images" in url else files["lab"])

    monkeypatch.setattr(M.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path))
    ds = M.MNIST(train=True, download=True)
    assert len(ds) == 5 and np.array_equal(ds.labels, labs)
    assert np.allclose(ds.images[:, 0] * 255, imgs)
    assert calls == ["http://bad.mirror/train-images-idx3-ubyte.gz", "http://good.mirror/train-images-idx3-ubyte.gz",
                     "http://bad.mirror/train-labels-idx1-ubyte.gz", "http://good.mirror/train-labels-idx1-ubyte.gz"]
    assert sorted(os.listdir(tmp_path / "mnist")) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    calls.clear()
    M.MNIST(split="train", download=True)  # cached and verified: no network
    assert calls == []


def test_download_md5_mismatch_is_rejected(monkeypatch, tmp_path):
    monkeypatch.setattr(M.urllib.request, "urlopen", lambda url, timeout=None: _Resp(b"not the real file"))
    with pytest.raises(DatasetNotFoundError, match="MD5") as e:
        M.download_dataset("fashion-mnist", root=tmp_path, files=["test_labels"])
    assert "t10k-labels-idx1-ubyte.gz" in str(e.value)
    assert os.listdir(tmp_path / "fashion-mnist") == []  # no partial file left


def test_offline_error_says_where_to_put_files(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as e:
        M.MNIST(train=False)
    msg = str(e.value)
    assert str(tmp_path / "data" / "mnist") in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "9fb629c4189551a2d022fa330f9573f3" in msg
    assert "download=True" in msg and "BundledMNIST" in msg
    assert isinstance(e.value, FileNotFoundError)

    def offline(url, timeout=None):
        raise M.urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(M.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetNotFoundError, match="offline.*Put them in") as e:
        M.FashionMNIST(root=tmp_path, train=False, download=True)
    assert "bef4ecab320f06d8554ea6380940ec79" in str(e.value)


def test_local_files_and_data_root(monkeypatch, tmp_path):
    files, imgs, labs = _fake_mnist_files()
    d = tmp_path / "fashion-mnist"
    d.mkdir()
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(files["img"])
    (d / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress(files["lab"]))  # raw copy accepted
    ds = M.FashionMNIST(root=tmp_path, train=False, flatten=True)
    assert ds[0][0].shape == (784,) and np.array_equal(ds.labels, labs)
    monkeypatch.delenv("MINIGEN_DATA", raising=False)
    assert M.data_root().endswith(os.path.join(".cache", "minigen"))
    assert M.data_root(tmp_path) == str(tmp_path)
