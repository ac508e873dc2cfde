"""Audio data: WAV read/write, the bundled FSDD subset (checksums, splits, attribution), the offline error,
download + verify from a local archive (file:// URLs), and the full FSDD when ../shared has it."""
import gzip
import hashlib
import io
import os
import tarfile

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minigen.data import DataError, DatasetNotFoundError
from minigen.data import audio as A
from minigen.errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError

SHARED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fsdd"))


# ----------------------------------------------------------------------------- WAV
@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=200))
def test_wav_int16_round_trip_exact(tmp_path_factory, samples):
    p = str(tmp_path_factory.mktemp("wav") / "a.wav")
    s = np.array(samples, dtype=np.int16)
    A.write_wav(p, s, 8000)
    back, sr = A.read_wav(p, dtype=np.int16)
    assert sr == 8000
    np.testing.assert_array_equal(back, s)
    x, _ = A.read_wav(p)
    np.testing.assert_array_equal(x, s.astype(np.float32) / 32768)  # x = s / 32768


def test_wav_float_scaling_clipping_and_channels(tmp_path):
    p = str(tmp_path / "b.wav")
    A.write_wav(p, np.array([0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0]), 16000)
    s, sr = A.read_wav(p, dtype=np.int16)
    assert sr == 16000
    assert s.tolist() == [0, 16384, -16384, 32767, -32767, 32767, -32767]  # round(clip(x) * 32767)
    st2 = np.array([[1, -1], [2, -2], [3, -3]], dtype=np.int16)
    A.write_wav(p, st2)
    back, _ = A.read_wav(p, dtype=np.int16)
    np.testing.assert_array_equal(back, st2)


def test_wav_bad_input(tmp_path):
    with pytest.raises(ShapeError):
        A.write_wav(str(tmp_path / "c.wav"), np.zeros((2, 2, 2)))
    with pytest.raises(ShapeError):
        A.write_wav(str(tmp_path / "c.wav"), np.zeros(0))
    with pytest.raises(DTypeError):
        A.write_wav(str(tmp_path / "c.wav"), np.zeros(4, dtype=np.int32))
    with pytest.raises(InvalidArgumentError, match="NaN"):
        A.write_wav(str(tmp_path / "c.wav"), np.array([0.0, np.nan]))
    with pytest.raises(InvalidArgumentError):
        A.write_wav(str(tmp_path / "c.wav"), np.zeros(4), sample_rate=0)
    bad = tmp_path / "not.wav"
    bad.write_bytes(b"this is not a RIFF file at all")
    with pytest.raises(DataError, match="not.wav"):
        A.read_wav(str(bad))
    with pytest.raises(DatasetNotFoundError):
        A.read_wav(str(tmp_path / "missing.wav"))


# ----------------------------------------------------------------------------- names and split
def test_names_and_official_split():
    assert A.parse_fsdd_name("7_jackson_32.wav") == (7, "jackson", 32)
    assert A.parse_fsdd_name("/x/y/0_theo_0.wav") == (0, "theo", 0)
    assert A.parse_fsdd_name("README.md") is None and A.parse_fsdd_name("10_theo_1.wav") is None
    assert [A.fsdd_split(i) for i in (0, 4, 5, 49)] == ["test", "test", "train", "train"]


# ----------------------------------------------------------------------------- the bundled subset
def test_bundled_subset_checksums_and_attribution():
    sha = A.bundled_fsdd_sha256()
    names = sorted(n for n in os.listdir(A.BUNDLED_FSDD_DIR) if n.endswith(".wav"))
    assert names == sorted(sha) and len(names) == 60
    manifest = A.fsdd_manifest()
    assert len(manifest) == A.FSDD_NUM_FILES == 3000
    for n in names:
        data = open(os.path.join(A.BUNDLED_FSDD_DIR, n), "rb").read()
        assert hashlib.sha256(data).hexdigest() == sha[n]
        assert hashlib.md5(data).hexdigest() == manifest[n]  # byte-identical to FSDD v1.0.9
    readme = open(os.path.join(A.BUNDLED_FSDD_DIR, "README.md"), encoding="utf-8").read()
    for must in ("CC BY-SA 4.0", "creativecommons.org/licenses/by-sa/4.0", "v1.0.9",
                 "github.com/Jakobovski/free-spoken-digit-dataset", "theo", "nicolas"):
        assert must in readme


def test_bundled_splits_items_and_filters():
    tr = A.FSDD(bundled=True, split="train")
    te = A.FSDD(bundled=True, split="test")
    assert (len(tr), len(te)) == (40, 20) and tr.source == "bundled"
    assert set(tr.indices) == {5, 6} and set(te.indices) == {0}
    assert set(tr.speakers) == {"theo", "nicolas"} and sorted(set(te.digits)) == list(range(10))
    x, d = tr[0]
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) > 1000
    assert -1.0 <= x.min() and x.max() < 1.0 and d == tr.digits[0]
    assert os.path.basename(tr.files[0]).startswith(f"{d}_")
    with pytest.raises(ValueError):
        x[0] = 1.0  # cached audio is read-only
    only = A.FSDD(bundled=True, split="all", digits=[3], speakers=["theo"])
    assert len(only) == 3 and set(only.digits) == {3}
    recs = A.load_fsdd("test", bundled=True)
    assert len(recs) == 20 and recs[0][1:] == (0, "nicolas", 0)
    with pytest.raises(IndexOutOfRangeError):
        tr[40]
    with pytest.raises(InvalidArgumentError):
        A.FSDD(bundled=True, split="validation")
    assert A.FSDD(bundled=True, split="test", verify=True).folder == A.BUNDLED_FSDD_DIR


def test_root_accepts_recordings_folder_or_its_parent(tmp_path):
    rec = tmp_path / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    for n in ("1_theo_0.wav", "1_theo_5.wav"):
        (rec / n).write_bytes(open(os.path.join(A.BUNDLED_FSDD_DIR, n), "rb").read())
    (rec / "notes.txt").write_text("ignored")
    for root in (rec, tmp_path / "fsdd", tmp_path):
        ds = A.FSDD(root=str(root), split="train")
        assert len(ds) == 1 and ds.source == "root" and ds.indices == [5]


def test_offline_error_says_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError) as e:
        A.FSDD()
    msg = str(e.value)
    assert str(tmp_path / "cache" / "fsdd" / "recordings") in msg
    assert "github.com/Jakobovski/free-spoken-digit-dataset" in msg and "v1.0.9" in msg
    assert "download=True" in msg and "bundled=True" in msg and "root=" in msg
    with pytest.raises(DatasetNotFoundError, match="no .* files"):
        A.FSDD(root=str(tmp_path / "empty"))


# ----------------------------------------------------------------------------- download (offline, file:// URLs)
def _archive(path, names, corrupt=None, evil=False):
    with tarfile.open(path, "w:gz") as tar:
        for n in names:
            data = open(os.path.join(A.BUNDLED_FSDD_DIR, n), "rb").read()
            if n == corrupt:
                data = data[:-10] + b"\0" * 10
            info = tarfile.TarInfo(f"free-spoken-digit-dataset-1.0.9/recordings/{n}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if evil:  # a member that tries to escape: only its basename is ever used
            data = b"x"
            info = tarfile.TarInfo("../../evil/recordings/9_evil_9.wav")
            info.size = 1
            tar.addfile(info, io.BytesIO(data))
    return "file://" + str(path)


def test_download_verifies_and_caches(tmp_path, monkeypatch):
    names = ["0_theo_0.wav", "4_nicolas_5.wav", "9_theo_6.wav"]
    subset = {n: m for n, m in A.fsdd_manifest().items() if n in names}
    monkeypatch.setattr(A, "fsdd_manifest", lambda: subset)
    url = _archive(tmp_path / "fsdd.tar.gz", names, evil=True)
    root = tmp_path / "data"
    folder = A.download_fsdd(root=str(root), archive_urls=[url], raw_url=None)
    assert folder == str(root / "fsdd" / "recordings")
    assert sorted(os.listdir(folder)) == names
    assert not (tmp_path / "evil").exists()
    for n in names:
        assert hashlib.md5(open(os.path.join(folder, n), "rb").read()).hexdigest() == subset[n]
    # a second call keeps verified files and needs no network
    assert A.download_fsdd(root=str(root), archive_urls=["file:///nonexistent.tar.gz"], raw_url=None) == folder
    ds = A.FSDD(root=str(root), split="all")
    assert len(ds) == 3 and ds.source == "root"


def test_download_rejects_corrupt_files_and_reports_offline(tmp_path, monkeypatch):
    names = ["0_theo_0.wav", "4_nicolas_5.wav"]
    subset = {n: m for n, m in A.fsdd_manifest().items() if n in names}
    monkeypatch.setattr(A, "fsdd_manifest", lambda: subset)
    url = _archive(tmp_path / "bad.tar.gz", names, corrupt="4_nicolas_5.wav")
    with pytest.raises(DatasetNotFoundError, match="MD5") as e:
        A.download_fsdd(root=str(tmp_path / "d"), archive_urls=[url], raw_url=None)
    assert "1 of 2 files are still missing" in str(e.value)
    assert sorted(os.listdir(tmp_path / "d" / "fsdd" / "recordings")) == ["0_theo_0.wav"]  # the good one stays
    with pytest.raises(DatasetNotFoundError, match="tried file:///nowhere"):
        A.download_fsdd(root=str(tmp_path / "e"), archive_urls=["file:///nowhere/x.tar.gz"], raw_url=None)


def test_manifest_file_is_gzip_of_md5_lines():
    with gzip.open(os.path.join(A.BUNDLED_FSDD_DIR, "fsdd-v1.0.9-MD5SUMS.gz"), "rt") as f:
        lines = f.read().splitlines()
    assert len(lines) == 3000
    md5, name = lines[0].split()
    assert len(md5) == 32 and A.parse_fsdd_name(name) is not None


# ----------------------------------------------------------------------------- the full dataset, when present
@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "recordings")), reason="../shared/data/fsdd not present")
def test_full_fsdd_from_shared():
    tr = A.FSDD(root=SHARED, split="train")
    te = A.FSDD(root=SHARED, split="test", verify=True)  # 300 MD5s against the shipped manifest
    assert (len(tr), len(te)) == (2700, 300)
    assert sorted(set(te.speakers)) == sorted(A.FSDD_SPEAKERS)
    assert set(te.indices) == {0, 1, 2, 3, 4} and min(tr.indices) == 5 and max(tr.indices) == 49
    lengths = [len(te.audio(i)) for i in range(len(te))]  # all mono 8 kHz 16-bit (audio() checks)
    assert min(lengths) > 1000
    manifest = A.fsdd_manifest()
    rec = os.path.join(SHARED, "recordings")
    names = sorted(os.listdir(rec))
    assert set(names) == set(manifest)
    for n in names[::97]:
        assert hashlib.md5(open(os.path.join(rec, n), "rb").read()).hexdigest() == manifest[n]
