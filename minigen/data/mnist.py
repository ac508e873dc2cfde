"""MNIST and Fashion-MNIST: the IDX file format, download + verify + cache, and the bundled 10k set.

**IDX format** (LeCun's): a big-endian header, then the raw values::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4*d bytes   each dimension size as a big-endian uint32
    then        prod(dims) values, big-endian, row-major

MNIST images are ``idx3`` (magic 0x00000803: N x 28 x 28 uint8), labels ``idx1``
(magic 0x00000801: N uint8). The files are usually gzip-compressed (``.gz``);
:func:`read_idx` accepts either.

**Where files come from.** :func:`data_root` is the cache folder: the ``root=``
argument, else the ``MINIGEN_DATA`` environment variable, else
``~/.cache/minigen``. Each dataset lives in its own sub-folder (``mnist/``,
``fashion-mnist/``). With ``download=True`` missing files are fetched from the
mirrors below with :mod:`urllib`, their MD5 checked, and moved into place
atomically. Offline, the error says which files to put in which folder.

**Bundled data.** The package ships the real MNIST *test* set (10,000 images,
``minigen/data/files``). :func:`load_mnist_bundled` splits it deterministically
into 9,000 training and 1,000 validation images — enough for every model here
without a network.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from functools import lru_cache

import numpy as np

from ..argcheck import check_path
from ..errors import InvalidArgumentError
from .dataset import DataError, DatasetNotFoundError, TensorDataset

__all__ = ["read_idx", "write_idx", "data_root", "download_dataset", "MNIST", "FashionMNIST", "BundledMNIST",
           "load_mnist_bundled", "bundled_file", "MNIST_RESOURCES", "FASHION_MNIST_RESOURCES", "md5sum"]

FILES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "files")

# The canonical files: (file name, md5 of the .gz file). Mirrors are tried in order.
MNIST_RESOURCES = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_RESOURCES = {
    "train_images": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
}
FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_DATASETS = {
    "mnist": (MNIST_RESOURCES, MNIST_MIRRORS),
    "fashion-mnist": (FASHION_MNIST_RESOURCES, FASHION_MNIST_MIRRORS),
}

# ----------------------------------------------------------------------------- IDX
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}


def _read_bytes(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    path = os.fspath(check_path(source, "read_idx", "source"))
    try:
        with open(path, "rb") as f:
            return f.read(), path
    except FileNotFoundError:
        raise DatasetNotFoundError(f"IDX file not found: {path}") from None


def read_idx(source) -> np.ndarray:
    """Parse an IDX file (path or bytes; gzip-compressed or raw) into a NumPy array (native byte order).

    Raises :class:`~minigen.data.DataError` naming the problem when the magic
    number, the dimensions or the data size are wrong.
    """
    raw, name = _read_bytes(source)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise DataError(f"{name}: corrupt gzip stream ({e})") from None
    if len(raw) < 4:
        raise DataError(f"{name}: {len(raw)} bytes is too short for an IDX header (need at least 4)")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{name}: not an IDX file (magic number 0x{raw[:4].hex()} should start with 0x0000)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX element type 0x{code:02x} "
                        f"(expected one of {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        raise DataError(f"{name}: IDX dimensions {dims} of {dtype.newbyteorder('=')} need {expected} data bytes, "
                        f"the file has {got} ({'truncated' if got < expected else 'trailing bytes'})")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(array, path, compress=None) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in .gz or ``compress=True``)."""
    check_path(path, "write_idx")
    try:
        a = np.ascontiguousarray(array)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"write_idx: array must be an array of numbers, got {type(array).__name__} "
                                   f"({e})") from None
    dt = a.dtype.newbyteorder("=")
    if dt not in _IDX_CODES:
        raise InvalidArgumentError(f"write_idx: dtype {a.dtype} has no IDX code "
                                   "(uint8, int8, int16, int32, float32, float64)")
    if a.ndim == 0 or a.ndim > 255:
        raise InvalidArgumentError(f"write_idx: need 1 to 255 dimensions, got shape {a.shape}")
    code = _IDX_CODES[dt]
    data = (bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
            + a.astype(np.dtype(_IDX_DTYPES[code])).tobytes())
    path = os.fsdecode(path)
    if compress if compress is not None else path.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with open(path, "wb") as f:
        f.write(data)


def md5sum(path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------- cache and download
def data_root(root=None) -> str:
    """The data folder: ``root`` if given, else ``$MINIGEN_DATA``, else ``~/.cache/minigen``."""
    if root is not None:
        return os.path.abspath(os.path.expanduser(os.fspath(root)))
    env = os.environ.get("MINIGEN_DATA")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(os.path.expanduser("~"), ".cache", "minigen")


def _fetch(url: str, dest: str, md5: str, timeout: float) -> None:
    """Download ``url`` to a temp file next to ``dest``, check its MD5, then move it into place."""
    folder = os.path.dirname(dest)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(dest) + ".", suffix=".part")
    try:
        h = hashlib.md5()
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    h.update(chunk)
                    out.write(chunk)
        if h.hexdigest() != md5:
            raise DataError(f"{url}: MD5 {h.hexdigest()} does not match the expected {md5}")
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def download_dataset(name="mnist", root=None, files=None, mirrors=None, timeout=30.0) -> str:
    """Make sure the files of ``name`` ('mnist' or 'fashion-mnist') are in ``data_root(root)/name``.

    Present files are verified by MD5 (a mismatching file is fetched again);
    missing ones are downloaded from the mirrors in order. Returns the folder.
    Raises :class:`~minigen.data.DatasetNotFoundError` (listing the files, their
    URLs and the folder to put them in) when a file cannot be obtained.
    """
    if name not in _DATASETS:
        raise InvalidArgumentError(f"unknown dataset {name!r}; expected one of {sorted(_DATASETS)}")
    resources, default_mirrors = _DATASETS[name]
    mirrors = tuple(mirrors) if mirrors is not None else default_mirrors
    folder = os.path.join(data_root(root), name)
    os.makedirs(folder, exist_ok=True)
    keys = list(resources) if files is None else list(files)
    missing = []
    for key in keys:
        fname, md5 = resources[key]
        dest = os.path.join(folder, fname)
        if os.path.exists(dest) and md5sum(dest) == md5:
            continue
        errors = []
        for m in mirrors:
            try:
                _fetch(m + fname, dest, md5, timeout)
                break
            except (urllib.error.URLError, OSError, DataError, ValueError) as e:
                errors.append(f"{m + fname}: {e}")
        else:
            missing.append((fname, md5, errors))
    if missing:
        lines = [f"could not obtain the {name} files (offline?). Put them in {folder} "
                 f"(or set MINIGEN_DATA / pass root= to point at a folder that has a '{name}' sub-folder):"]
        for fname, md5, errors in missing:
            lines.append(f"  {fname}  (md5 {md5}), from e.g. {mirrors[0] + fname if mirrors else fname}")
            lines.extend(f"      tried {e}" for e in errors)
        raise DatasetNotFoundError("\n".join(lines))
    return folder


def _missing_error(name, folder, fnames):
    resources, mirrors = _DATASETS[name]
    md5 = {f: m for f, m in resources.values()}
    lines = [f"{name} files not found in {folder}. Either pass download=True (needs internet), or put these "
             f"files there (set MINIGEN_DATA or root= to use another folder; a '{name}' sub-folder is expected):"]
    lines += [f"  {f}  (md5 {md5[f]}), from e.g. {mirrors[0] + f}" for f in fnames]
    if name == "mnist":
        lines.append("Offline, minigen.data.BundledMNIST / load_mnist_bundled() give the 10k test set shipped "
                     "with the package (9k train / 1k val).")
    return DatasetNotFoundError("\n".join(lines))


def _load_split(name, root, train, download):
    resources, _ = _DATASETS[name]
    keys = ("train_images", "train_labels") if train else ("test_images", "test_labels")
    folder = os.path.join(data_root(root), name)
    if download:
        download_dataset(name, root, files=keys)
    paths = []
    missing = []
    for k in keys:
        fname = resources[k][0]
        p = os.path.join(folder, fname)
        if not os.path.exists(p) and os.path.exists(p[:-3]):  # an uncompressed copy is fine too
            p = p[:-3]
        if not os.path.exists(p):
            missing.append(fname)
        paths.append(p)
    if missing:
        raise _missing_error(name, folder, missing)
    return _images_labels(read_idx(paths[0]), read_idx(paths[1]), paths[0], paths[1])


def _images_labels(images, labels, iname="images", lname="labels"):
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{iname}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{lname}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{iname} has {images.shape[0]} images but {lname} has {labels.shape[0]} labels")
    return images, labels


def _to_float(images: np.ndarray, labels: np.ndarray, flatten=False):
    """uint8 (N, 28, 28) -> float32 in [0, 1], shape (N, 1, 28, 28) (or (N, 784)); labels -> int64."""
    x = images.astype(np.float32) / np.float32(255.0)
    x = x.reshape(len(x), -1) if flatten else x[:, None, :, :]
    return np.ascontiguousarray(x), labels.astype(np.int64)


class MNIST(TensorDataset):
    """The full MNIST dataset (60k train / 10k test), read from ``data_root(root)/mnist``.

    ``MNIST(root=None, train=True, download=False, flatten=False, split=None)``
    (``split='train'|'test'`` is an alternative to ``train=``). Items are
    ``(image, label)``: a float32 Tensor in [0, 1] of shape (1, 28, 28) (or (784,)
    with ``flatten``) and an int64 scalar. Without the files (and without
    ``download=True``) it raises an error naming the files and the folder.
    """

    name = "mnist"
    classes = [str(i) for i in range(10)]

    def __init__(self, root=None, train=True, download=False, flatten=False, split=None):
        if split is not None:
            if split not in ("train", "test"):
                raise InvalidArgumentError(f"{type(self).__name__}: split must be 'train' or 'test', got {split!r} "
                                           "(the bundled 9k/1k split is BundledMNIST)")
            train = split == "train"
        self.train = bool(train)
        images, labels = _load_split(self.name, root, train, download)
        self.images, self.labels = _to_float(images, labels, flatten)
        super().__init__(self.images, self.labels)


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): same format and API as :class:`MNIST`, in ``data_root(root)/fashion-mnist``."""

    name = "fashion-mnist"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]


# ----------------------------------------------------------------------------- bundled
BUNDLED_IMAGES = "mnist-t10k-images-idx3-ubyte.gz"
BUNDLED_LABELS = "mnist-t10k-labels-idx1-ubyte.gz"
BUNDLED_MD5 = {BUNDLED_IMAGES: "9fb629c4189551a2d022fa330f9573f3", BUNDLED_LABELS: "ec29112dd5afa0611ce80d1b7f02629c"}


def bundled_file(name: str) -> str:
    """Path of a data file shipped in ``minigen/data/files`` (clear error if the install lacks it)."""
    p = os.path.join(FILES_DIR, name)
    if not os.path.exists(p):
        raise DatasetNotFoundError(f"bundled data file {name} is missing from {FILES_DIR}; "
                                   "reinstall minigen (the wheel ships minigen/data/files/*)")
    return p


@lru_cache(maxsize=1)
def _bundled_raw():
    images = read_idx(bundled_file(BUNDLED_IMAGES))
    labels = read_idx(bundled_file(BUNDLED_LABELS))
    images, labels = _images_labels(images, labels, BUNDLED_IMAGES, BUNDLED_LABELS)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _bundled_order(n: int) -> np.ndarray:
    """A fixed pseudo-random order of 0..n-1 that never changes across NumPy versions.

    Sort the indices by the BLAKE2b hash of their decimal string: deterministic,
    platform-independent, and it mixes the two halves of the MNIST test set (the
    first 5,000 images come from a cleaner writer population than the last 5,000).
    """
    keys = np.array([int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "big")
                     for i in range(n)], dtype=np.uint64)
    return np.argsort(keys, kind="stable")


def load_mnist_bundled(split="train", val_size=1000, flatten=False):
    """The bundled real MNIST 10k set, split deterministically: ``(images, labels)`` NumPy arrays.

    ``split``: 'train' (10,000 - val_size images), 'val' (val_size images) or 'all'
    (all 10,000 in file order). Images float32 in [0, 1] of shape (N, 1, 28, 28)
    (or (N, 784) with ``flatten``); labels int64.
    """
    images, labels = _bundled_raw()
    n = len(labels)
    if not 0 < val_size < n:
        raise InvalidArgumentError(f"val_size must be in (0, {n}), got {val_size}")
    if split == "all":
        idx = np.arange(n)
    elif split in ("train", "val"):
        order = _bundled_order(n)
        idx = np.sort(order[:val_size] if split == "val" else order[val_size:])
    else:
        raise InvalidArgumentError(f"split must be 'train', 'val' or 'all', got {split!r}")
    return _to_float(images[idx], labels[idx], flatten)


class BundledMNIST(TensorDataset):
    """The real MNIST 10k test set shipped with minigen, as a 9k/1k train/val split.

    ``BundledMNIST(split='train'|'val'|'all', val_size=1000, flatten=False)``;
    items as in :class:`MNIST`. ``.images`` / ``.labels`` hold the arrays.
    """

    classes = MNIST.classes

    def __init__(self, split="train", val_size=1000, flatten=False):
        self.split = split
        self.images, self.labels = load_mnist_bundled(split, val_size, flatten)
        super().__init__(self.images, self.labels)
