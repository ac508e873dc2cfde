"""Checkpoints against everything a user (or a crash, or a stranger's file) can throw at them.

Whatever ``mg.save`` accepts, ``mg.load`` returns equal; whatever it cannot represent is refused at save
time; every damaged, truncated, crafted or foreign file is a CheckpointError (never a raw traceback, never
code run, never a silent partial load); memory stays bounded; a process killed mid-save never leaves a
broken target, and its temp files are removed by the next save.
"""
import io
import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import minigen as mg
import minigen.io as mio
from minigen.errors import CheckpointError, DeviceError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INT_DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


def _eq(a, b):
    if isinstance(a, mg.Tensor):
        return (isinstance(b, mg.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a.detach().numpy(), b.detach().numpy(), equal_nan=True))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and a != a:
        return isinstance(b, float) and b != b
    return type(a) is type(b) and a == b


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ----------------------------------------------------------------------------- what save accepts, load returns
@pytest.mark.parametrize("order", ["<", ">", "="])
@pytest.mark.parametrize("dt", INT_DTYPES + FLOAT_DTYPES)
def test_every_dtype_and_byte_order_round_trips(tmp_path, dt, order):
    base = np.dtype(dt)
    d = base.newbyteorder(order) if base.itemsize > 1 else base
    rng = np.random.default_rng(0)
    vals = rng.integers(0, 2 if dt == "bool" else 100, (3, 4))
    a = vals.astype(d)
    if base.kind == "f":
        a[0, 0], a[0, 1] = np.nan, -np.inf
    obj = {"arr": a, "t": mg.from_numpy(a.copy()), "scalar0d": a[1, 1:2].reshape(()),
           "empty": np.zeros((0, 3), d), "np_scalar": base.type(vals[2, 2])}
    p = tmp_path / "x.safetensors"
    mg.save(obj, p)
    back = mg.load(p)
    assert _eq(obj, back)
    assert back["arr"].dtype.str == a.dtype.str and back["t"].dtype.str == a.dtype.str  # byte order kept
    assert type(back["np_scalar"]) is type(obj["np_scalar"])


def test_python_and_numpy_scalar_types_are_kept(tmp_path):
    obj = [np.float64(1.5), 1.5, np.bool_(True), True, np.int64(-3), -3, np.float16(0.25), np.uint64(2**64 - 1),
           float("nan"), -0.0, 10**5000, -(2**200), "\ud800 lone surrogate", "é"]
    mg.save(obj, tmp_path / "s.st")
    back = mg.load(tmp_path / "s.st")
    assert _eq(obj, back) and [type(v) for v in back] == [type(v) for v in obj]
    assert str(back[11]) == str(-(2**200)) and back[10] == 10**5000


@pytest.mark.parametrize("value", [mg.ones(2), "a string", {"inner": mg.zeros(3)}, [np.arange(3)]])
def test_top_level_metadata_key_round_trips(tmp_path, value):
    from safetensors.numpy import load_file

    obj = {"__metadata__": value, "__metadata__#2": mg.ones(1), "w": mg.arange(4)}
    p = tmp_path / "m.safetensors"
    mg.save(obj, p)
    assert _eq(obj, mg.load(p))
    load_file(str(p))  # still a valid safetensors file for the reference library


def test_odd_tensor_names_stay_readable_by_safetensors(tmp_path):
    from safetensors.numpy import load_file

    obj = {"\ud800": mg.ones(2), "a/b": {"c": mg.zeros(1)}, "a": {"b/c": mg.ones(1)}, "": mg.ones(3), "é": mg.ones(1)}
    p = tmp_path / "n.safetensors"
    mg.save(obj, p)
    assert _eq(obj, mg.load(p))
    assert len(load_file(str(p))) == 5


@pytest.mark.parametrize("bad, what", [
    (np.zeros(2, np.complex64), "dtype complex64"),
    (np.zeros(2, np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else np.zeros(2, np.complex128),
     "dtype"),
    (np.array(["a", "b"]), "dtype <U1"),
    (np.array([object()]), "dtype object"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64"),
    (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "dtype"),
    (np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "masked"),
    (np.clongdouble(1), "NumPy scalar"),
    (np.datetime64("2020-01-01"), "NumPy scalar"),
    ({1j: 2}, "dict key of type complex"),
    ({"x": {1, 2}}, "type set at 'x'"),
])
def test_unrepresentable_objects_are_refused_at_save(tmp_path, bad, what):
    p = tmp_path / "bad.st"
    with pytest.raises(CheckpointError, match=what):
        mg.save({"k": [bad]} if not isinstance(bad, dict) else bad, p)
    assert not p.exists() and os.listdir(tmp_path) == []


def test_whole_module_and_optimizer_are_refused_with_state_dict_advice(tmp_path):
    model = mg.nn.Linear(2, 3)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    for obj in (model, opt, {"model": model}):
        with pytest.raises(CheckpointError, match=r"never pickle.*state_dict\(\)"):
            mg.save(obj, tmp_path / "m.st")
    assert not (tmp_path / "m.st").exists()
    mg.save(model.state_dict(), tmp_path / "m.st")  # the advised route works
    model2 = mg.nn.Linear(2, 3)
    model2.load_state_dict(mg.load(tmp_path / "m.st"))
    assert np.array_equal(model2.weight.detach().numpy(), model.weight.detach().numpy())


def test_self_referencing_and_too_deep_objects_are_refused(tmp_path):
    loop = []
    loop.append(loop)
    deep = 0
    for _ in range(mio.MAX_DEPTH + 5):
        deep = [deep]
    for obj in (loop, deep):
        with pytest.raises(CheckpointError, match="nested deeper than"):
            mg.save(obj, tmp_path / "d.st")
    ok = 0
    for _ in range(mio.MAX_DEPTH // 2):
        ok = {"k": (ok,), 5: None}  # tagged tuples and int-keyed dicts at the limit still round-trip
    mg.save(ok, tmp_path / "d.st")
    assert _eq(ok, mg.load(tmp_path / "d.st"))


# ----------------------------------------------------------------------------- file objects and arguments
def test_bytesio_and_open_files(tmp_path):
    obj = {"w": mg.randn(3, 2), "step": 4}
    buf = io.BytesIO()
    mg.save(obj, buf)
    mg.save({"second": True}, buf)  # several checkpoints one after another, like torch.save to one file
    buf.seek(0)
    assert _eq(obj, mg.load(buf)) and mg.load(buf) == {"second": True}
    p = tmp_path / "f.st"
    with open(p, "wb") as f:
        mg.save(obj, f)
    with open(p, "rb") as f:
        assert _eq(obj, mg.load(f, map_location="cpu", weights_only=True))
    assert _eq(obj, mg.load(p, weights_only=False))
    assert mio.checkpoint_metadata(io.BytesIO(p.read_bytes()))["format"] == "minigen-checkpoint"


class _Stream:
    """A non-seekable binary stream (a pipe, a socket): only read()."""

    def __init__(self, data, step=7):
        self.data, self.pos, self.step = data, 0, step

    def read(self, n=-1):
        n = self.step if n is None or n < 0 else min(n, self.step)
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def test_non_seekable_stream(tmp_path):
    obj = {"w": mg.arange(100, dtype=mg.float32), "s": "x"}
    buf = io.BytesIO()
    mg.save(obj, buf)
    raw = buf.getvalue()
    assert _eq(obj, mg.load(_Stream(raw)))
    for cut in (len(raw) - 1, len(raw) - 300, 20, 3):
        with pytest.raises(CheckpointError, match="truncated|too short|stream ended"):
            mg.load(_Stream(raw[:cut]))
    # a header claiming a huge tensor on a stream: no allocation from the claim, just "truncated"
    big = _crafted({"x": {"dtype": "F32", "shape": [10**11], "data_offsets": [0, 4 * 10**11]}}, b"\0" * 16)
    with pytest.raises(CheckpointError, match="stream ended"):
        mg.load(_Stream(big, step=1 << 20))


def test_mmap_load(tmp_path):
    obj = {"a": mg.randn(64, 3), "b": np.arange(5, dtype=">i2"), "c": mg.ones(0)}
    mg.save(obj, tmp_path / "m.st")
    back = mg.load(tmp_path / "m.st", mmap=True)
    assert _eq(obj, back)
    back["a"].array[0, 0] = 123.0  # copy-on-write: writable, the file is not changed
    assert _eq(obj, mg.load(tmp_path / "m.st"))


@pytest.mark.parametrize("arg", [42, None, 3.5, b"raw bytes", bytearray(b"x"), ["a.st"], object()])
def test_other_argument_types_get_a_clear_error(tmp_path, arg):
    with pytest.raises(mio.CheckpointArgumentError, match="path|file object") as e:
        mg.load(arg)
    assert isinstance(e.value, TypeError) and isinstance(e.value, CheckpointError)
    with pytest.raises(mio.CheckpointArgumentError):
        mg.save({"a": 1}, arg)
    with pytest.raises(mio.CheckpointArgumentError):
        mio.checkpoint_metadata(arg)


def test_wrong_mode_closed_files_and_unwritable_folders(tmp_path):
    p = tmp_path / "w.st"
    mg.save({"a": 1}, p)
    with open(p, "rb") as f:
        with pytest.raises(CheckpointError, match="cannot save"):
            mg.save({"a": 2}, f)
    with open(p, "ab") as f:
        with pytest.raises(CheckpointError, match="cannot read"):
            mg.load(f)
    f = io.BytesIO()
    f.close()
    with pytest.raises(mio.CheckpointArgumentError, match="closed"):
        mg.load(f)
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o500)
        try:
            with pytest.raises(CheckpointError, match="cannot save"):
                mg.save({"a": 1}, ro / "x.st")
        finally:
            os.chmod(ro, 0o700)


def test_disk_full_mid_write_is_a_checkpoint_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "full.st"
    mg.save({"step": 1, "w": mg.ones(1000)}, p)

    def no_space(f, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mio, "_write_bytes", no_space)
    with pytest.raises(CheckpointError, match="No space left"):
        mg.save({"step": 2, "w": mg.ones(1000)}, p)
    monkeypatch.undo()
    assert mg.load(p)["step"] == 1 and os.listdir(tmp_path) == ["full.st"]


def test_map_location_forms(tmp_path):
    p = tmp_path / "m.st"
    mg.save({"w": mg.ones(2)}, p)
    for ml in (None, "cpu", mg.device("cpu"), {"cpu": "cpu"}, lambda dev: "cpu", lambda storage, loc: storage,
               lambda storage, loc: storage.cpu(), lambda *a: "cpu"):
        assert mg.load(p, map_location=ml)["w"].device == mg.device("cpu")
    for bad in (3, object(), [1], {"cpu": 3}, lambda s, l: 3):
        with pytest.raises(mio.CheckpointArgumentError, match="map_location"):
            mg.load(p, map_location=bad)
    with pytest.raises(DeviceError, match="tpu"):  # a device name minigen does not know
        mg.load(p, map_location="tpu")
    for bad in (np.zeros(2), "yes", 1):
        with pytest.raises(mio.CheckpointArgumentError, match="weights_only"):
            mg.load(p, weights_only=bad)
        with pytest.raises(mio.CheckpointArgumentError, match="mmap"):
            mg.load(p, mmap=bad)


def test_text_mode_files_and_bad_weights_only(tmp_path):
    with open(tmp_path / "t.st", "w") as f:
        with pytest.raises(mio.CheckpointArgumentError, match="binary mode"):
            mg.save({"a": 1}, f)
    mg.save({"a": 1}, tmp_path / "t.st")
    with open(tmp_path / "t.st", "r", encoding="latin-1") as f:
        with pytest.raises(mio.CheckpointArgumentError, match="binary mode"):
            mg.load(f)
    with pytest.raises(mio.CheckpointArgumentError, match="weights_only"):
        mg.load(tmp_path / "t.st", weights_only="yes")


# ----------------------------------------------------------------------------- foreign files
class _Payload:
    """Unpickling this would create a marker file: the proof that no code runs on load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_files_are_refused_and_never_run(tmp_path, protocol):
    marker = tmp_path / "PWNED"
    p = tmp_path / "evil.pt"
    p.write_bytes(pickle.dumps({"w": _Payload(str(marker))}, protocol=protocol))
    with pytest.raises(CheckpointError) as e:
        mg.load(p)
    with pytest.raises(CheckpointError):
        mg.load(io.BytesIO(p.read_bytes()))
    with pytest.raises(CheckpointError):
        mio.checkpoint_metadata(p)
    assert not marker.exists()
    if protocol >= 2:  # protocols 0/1 have no signature; they are still refused as "not a checkpoint"
        assert "pickle file" in str(e.value) and "never unpickles" in str(e.value) and "safetensors" in str(e.value)


def test_torch_pt_files_are_refused_as_pickle(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {"w": torch.ones(2, 3)}
    torch.save(sd, tmp_path / "model.pt")
    torch.save(sd, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("model.pt", "legacy.pt"):
        with pytest.raises(CheckpointError, match=r"this is a pickle file.*minigen never unpickles.*state_dict\(\)"
                                                  r".*safetensors"):
            mg.load(tmp_path / name)


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"hello, this is not a checkpoint at all\n" * 3, "not a safetensors checkpoint.*look like text"),
    (b"tiny", "too short"),
    (b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}", "NumPy .npy"),
    (b"\x1f\x8b\x08\x00" + b"\0" * 20, "gzip"),
    (struct.pack("<Q", 4) + b"[1] ", "not a JSON object"),
    (struct.pack("<Q", 8) + b"{\"a\":1} ", "malformed safetensors header entry"),
    (struct.pack("<Q", 2) + b"{}", "0 data bytes"),  # fine header, but then it is an empty plain file...
])
def test_foreign_and_empty_files(tmp_path, content, match):
    p = tmp_path / "x.bin"
    p.write_bytes(content)
    if content == struct.pack("<Q", 2) + b"{}":
        assert mg.load(p) == {}  # ...which is a valid (empty) safetensors file
        return
    with pytest.raises(CheckpointError, match=match):
        mg.load(p)


@pytest.mark.parametrize("hlen", [0x0280, 0x0380, 0x0480, 0x0580, 0x1F8B, 0x8B1F])
def test_valid_files_whose_length_field_looks_like_a_signature(tmp_path, hlen):
    # 0x0280 is stored as 80 02 00..: the opening bytes of a protocol-2 pickle; 0x8b1f as 1f 8b: gzip's
    data = np.arange(4, dtype=np.float32).tobytes()
    hj = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    raw = struct.pack("<Q", hlen) + hj + b" " * (hlen - len(hj)) + data
    (tmp_path / "s.st").write_bytes(raw)
    assert mg.load(tmp_path / "s.st")["x"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_every_header_size_loads(tmp_path):
    p = tmp_path / "t.st"
    sizes = set()
    for n in range(0, 1400, 3):  # header lengths from ~200 to ~1600 bytes, 0x280/0x380/0x480/0x580 among them
        mg.save({"pad": "y" * n}, p)
        sizes.add(struct.unpack("<Q", p.read_bytes()[:8])[0])
        assert mg.load(p) == {"pad": "y" * n}
    assert {0x280, 0x380, 0x480, 0x580} <= sizes


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        mg.load(tmp_path)
    with pytest.raises(CheckpointError, match="is a directory"):
        mio.checkpoint_metadata(tmp_path)
    with pytest.raises(CheckpointError, match="is a directory"):
        mg.save({"a": 1}, tmp_path)
    with pytest.raises(mio.CheckpointNotFoundError):
        mg.load(tmp_path / "nope.st")


# ----------------------------------------------------------------------------- damage: every byte
def _small_checkpoint(tmp_path):
    p = tmp_path / "c.safetensors"
    mg.save({"w": mg.arange(6, dtype=mg.float32).reshape(2, 3), "b": np.arange(3, dtype=np.int16), "step": 3,
             "name": "x"}, p)
    return p, p.read_bytes()


def test_truncation_at_every_length(tmp_path):
    p, raw = _small_checkpoint(tmp_path)
    outcomes = {}
    for cut in range(len(raw)):
        p.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError) as e:
            mg.load(p)
        msg = str(e.value)
        key = next((k for k in ("empty", "too short", "truncated") if k in msg), msg)
        outcomes[key] = outcomes.get(key, 0) + 1
    assert set(outcomes) <= {"empty", "too short", "truncated"}, outcomes
    assert sum(outcomes.values()) == len(raw)


@pytest.mark.parametrize("mask", [0x01, 0x10, 0x80, 0xFF])
def test_byte_flip_anywhere_is_detected(tmp_path, mask):
    p, raw = _small_checkpoint(tmp_path)
    (hlen,) = struct.unpack("<Q", raw[:8])
    undetected = []
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= mask
        p.write_bytes(bytes(bad))
        try:
            mg.load(p)
        except CheckpointError:
            continue
        undetected.append(i)
    assert undetected == [], f"{len(undetected)} of {len(raw)} flips loaded without error (header {8 + hlen} B)"


def test_damaged_format_tag_never_skips_the_checksum(tmp_path):
    p, raw = _small_checkpoint(tmp_path)
    i = raw.index(b"minigen-checkpoint")
    for j in range(len("minigen-checkpoint")):
        for repl in (b"X", b"m"[0:1] if raw[i + j:i + j + 1] != b"m" else b"n"):
            bad = raw[:i + j] + repl + raw[i + j + 1:]
            if bad == raw:
                continue
            p.write_bytes(bad)
            with pytest.raises(CheckpointError, match="format tag"):
                mg.load(p)
    k = raw.index(b'"format"')  # damage the key instead of the value
    p.write_bytes(raw[:k + 1] + b"F" + raw[k + 2:])
    with pytest.raises(CheckpointError, match="format tag|malformed"):
        mg.load(p)


# ----------------------------------------------------------------------------- crafted headers
def _crafted(header: dict, data: bytes, raw_header: bytes = None) -> bytes:
    hj = raw_header if raw_header is not None else json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    return struct.pack("<Q", len(hj)) + hj + data


def _signed(structure_json: str, arrays: dict) -> bytes:
    """A checkpoint with a *valid* checksum over a crafted structure (what an attacker can make)."""
    from safetensors.numpy import save as st_save

    meta = {"format": "minigen-checkpoint", "version": "1", "structure": structure_json,
            "sha256": mio._checksum(structure_json, arrays)}
    return st_save(arrays, metadata=meta)


@pytest.mark.parametrize("raw, match", [
    (struct.pack("<Q", 2**63) + b"{}", "over the 100000000-byte limit"),
    (struct.pack("<Q", 10**8 + 8) + b"{}", "over the"),
    (struct.pack("<Q", 10**6) + b"{}      ", "header claims"),
    (_crafted({"x": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]}}, b"\0" * 8), "truncated"),
    (_crafted({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4), "needs 8 bytes"),
    (_crafted({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8), "malformed"),
    (_crafted({"x": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, b"\0" * 8), "malformed"),
    (_crafted({"x": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, b"\0" * 8), "malformed"),
    (_crafted({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12), "overlaps"),
    (_crafted({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8), "gap"),
    (_crafted({"x": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8), "cannot load"),
    (_crafted({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "evil": 1}}, b"\0" * 4), "malformed"),
    (_crafted({"__metadata__": {"format": 5}}, b""), "strings to strings"),
    (_crafted(None, b"", raw_header=b"[" * 100_000 + b"]" * 100_000), "not a JSON object"),
    (_crafted(None, b"", raw_header=b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "nested 100001 levels"),
    (_crafted(None, b"", raw_header=b'{"a": 1' + b"0" * 5000 + b"}"), "not valid JSON|malformed"),
    (_crafted(None, b"", raw_header=b'{"a": "\xff\xfe"}'), "not valid JSON"),
])
def test_crafted_headers(tmp_path, raw, match):
    p = tmp_path / "c.st"
    p.write_bytes(raw)
    with pytest.raises(CheckpointError, match=match):
        mg.load(p)
    with pytest.raises(CheckpointError):
        mg.load(io.BytesIO(raw))


def test_pathological_quotes_in_header_are_linear():
    # an unterminated-string pattern that would make a backtracking scanner quadratic
    raw = b'{"a": "' + b'\\"' * 2_000_000
    t = time.perf_counter()
    with pytest.raises(CheckpointError):
        mg.load(io.BytesIO(_crafted(None, b"", raw_header=raw)))
    assert time.perf_counter() - t < 5.0


@pytest.mark.parametrize("structure, match", [
    ("[" * 50_000 + "]" * 50_000, "nested 50000 levels"),
    ('{"__tensor__": 5}', "refers to tensor 5"),
    ('{"__tensor__": "missing"}', "refers to tensor 'missing'"),
    ('{"__float__": "abc"}', "malformed"),
    ('{"__npscalar__": "O", "value": 1}', "malformed"),
    ('{"__npscalar__": "not a dtype", "value": 1}', "malformed"),
    ('{"__tuple__": 5}', "malformed"),
    ('{"__dict__": [[1]]}', "malformed"),
    ('{"__dict__": [[[1], 2]]}', "malformed"),
    ('{"__ndarray__": "x", "dtype": "O"}', "malformed"),
    ('{"__int__": "zz"}', "malformed"),
    ("not json", "not valid JSON"),
])
def test_crafted_structures_with_valid_checksum(tmp_path, structure, match):
    p = tmp_path / "s.st"
    p.write_bytes(_signed(structure, {"x": np.ones(2, np.float32)}))
    with pytest.raises(CheckpointError, match=match):
        mg.load(p)


def test_old_checkpoints_written_by_the_safetensors_library_still_load(tmp_path):
    # version-1 files as the previous minigen wrote them (safetensors' own writer, its own tensor order)
    structure = json.dumps({"model": {"w": {"__tensor__": "model/w"}}, "step": 5, "rng": {"__tuple__": [1, 2**100]}},
                           separators=(",", ":"))
    arrays = {"model/w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    (tmp_path / "old.st").write_bytes(_signed(structure, arrays))
    back = mg.load(tmp_path / "old.st")
    assert back["step"] == 5 and back["rng"] == (1, 2**100) and back["model"]["w"].tolist() == arrays["model/w"].tolist()


def test_foreign_safetensors_with_format_pt_is_a_plain_dict(tmp_path):
    from safetensors.numpy import save_file

    save_file({"b": np.zeros(2, np.float32), "a": np.ones(1, np.int64)}, str(tmp_path / "hf.st"),
              metadata={"format": "pt"})
    back = mg.load(tmp_path / "hf.st")
    assert sorted(back) == ["a", "b"] and back["a"].tolist() == [1]


# ----------------------------------------------------------------------------- memory
_RSS_CHILD = r"""
import sys
import minigen as mg, minigen.io as mio

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

path, what = sys.argv[1], sys.argv[2]
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
base = status("VmRSS")
if what == "load":
    out = mg.load(path)
else:
    mio.checkpoint_metadata(path)
print(base, status("VmHWM"))
"""


def _peak_rss_delta(path, what):
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path), what], capture_output=True, text=True,
                         env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    base, peak = map(int, out.stdout.split()[-2:])
    return peak - base


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS reset")
def test_load_memory_is_bounded(tmp_path):
    mb = int(os.environ.get("MINIGEN_CKPT_RSS_MB", "48"))
    n = mb * (1 << 20) // 4 // 4
    state = {f"layer{i}": mg.from_numpy(np.full(n, i, np.float32)) for i in range(4)}
    p = tmp_path / "big.safetensors"
    mg.save(state, p)
    del state
    size = p.stat().st_size
    load_delta = _peak_rss_delta(p, "load")
    meta_delta = _peak_rss_delta(p, "meta")
    print(f"file {size / 2**20:.1f} MiB: load peak RSS +{load_delta / 2**20:.1f} MiB "
          f"({load_delta / size:.2f}x), checkpoint_metadata +{meta_delta / 2**20:.1f} MiB")
    assert load_delta < 1.25 * size  # the tensors themselves plus a little, never a second copy of the file
    assert meta_delta < 8 * 2**20    # the header only


# ----------------------------------------------------------------------------- temp files and kills
def test_stale_temp_files_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "ckpt.safetensors"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [f".ckpt.safetensors.{dead.pid}.abcd1234.tmp", ".ckpt.safetensors.k9_zQ7xw.tmp"]  # new and old style
    live = [f".ckpt.safetensors.{os.getppid()}.live1234.tmp", f".ckpt.safetensors.{os.getpid()}.mine1234.tmp"]
    other = [f".other.safetensors.{dead.pid}.abcd1234.tmp", "ckpt.safetensors.abcd1234.tmp", "notes.txt"]
    for n in stale + live + other:
        (tmp_path / n).write_bytes(b"x" * 100)
    mg.save({"a": 1}, target)
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.safetensors"] + live + other)


_KILL_CHILD = r"""
import sys
import numpy as np
import minigen as mg
path, n = sys.argv[1], int(sys.argv[2])
w = np.arange(n, dtype=np.float32)
k = 0
while True:
    mg.save({"w": mg.from_numpy(w + k), "step": k}, path)
    if k == 0:
        print("ready", flush=True)
    k += 1
"""


def test_sigkill_during_save_never_breaks_the_target(tmp_path):
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("no SIGKILL on this platform")
    trials = int(os.environ.get("MINIGEN_KILL_TRIALS", "20"))
    n = 2_000_000  # 8 MB of tensor: a save takes long enough for kills to land inside it
    target = tmp_path / "ckpt.safetensors"
    rnd = random.Random(1234)
    outcomes = {"temp_left_by_kill": 0, "clean_kill": 0}
    for trial in range(trials):
        child = subprocess.Popen([sys.executable, "-c", _KILL_CHILD, str(target), str(n)], stdout=subprocess.PIPE,
                                 env=_env())
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rnd.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        temps = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
        outcomes["temp_left_by_kill" if temps else "clean_kill"] += 1
        back = mg.load(target)  # always a complete checkpoint, the old or the new one
        k = back["step"]
        assert isinstance(k, int) and k >= 0
        assert np.array_equal(back["w"].numpy(), np.arange(n, dtype=np.float32) + k)
        mg.save({"w": mg.ones(1), "step": -1}, tmp_path / "other.safetensors")  # another target: its own temps only
        assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".tmp")) == sorted(temps)
        mg.save(back, target)  # the next save of the same target cleans up
        assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors", "other.safetensors"]
    print(f"{trials} SIGKILL trials: {outcomes}")
    assert sum(outcomes.values()) == trials


# ----------------------------------------------------------------------------- PyTorch interchange
def test_files_interchange_with_pytorch_through_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    # PyTorch -> minigen: a state dict saved with safetensors loads as name -> Tensor with equal values
    tmodel = torch.nn.Linear(3, 2)
    st_torch.save_file(tmodel.state_dict(), str(tmp_path / "torch.safetensors"), metadata={"format": "pt"})
    sd = mg.load(tmp_path / "torch.safetensors", weights_only=True)
    model = mg.nn.Linear(3, 2)
    model.load_state_dict(sd)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.weight.detach().numpy(), tmodel.weight.detach().numpy())
    np.testing.assert_allclose(model(mg.Tensor(x)).detach().numpy(), tmodel(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-6, atol=1e-7)  # same weights; matmul summation order may differ
    # minigen -> PyTorch: mg.save(model.state_dict()) is readable by safetensors.torch (big-endian included)
    mg.save({**model.state_dict(), "be": np.arange(3, dtype=">f8")}, tmp_path / "mg.safetensors")
    back = st_torch.load_file(str(tmp_path / "mg.safetensors"))
    assert torch.equal(back["weight"], tmodel.weight.detach()) and back["be"].tolist() == [0.0, 1.0, 2.0]


def test_device_tensors_round_trip_under_the_cupy_emulator():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cupy_emulator import emulated_cupy

    with emulated_cupy():
        t = mg.randn(3, 2, device="cuda")
        sd = mg.nn.Linear(2, 2).to("cuda").state_dict()
        buf = io.BytesIO()
        mg.save({"t": t, "sd": sd, "be": mg.from_numpy(np.arange(2, dtype=">f4")).to("cuda")}, buf)
        buf.seek(0)
        back = mg.load(buf)
        assert back["t"].device == mg.device("cuda:0") and back["sd"]["weight"].device == mg.device("cuda:0")
        assert np.array_equal(back["t"].numpy(), t.numpy())
        assert back["be"].device == mg.device("cuda:0") and back["be"].tolist() == [0.0, 1.0]
        buf.seek(0)
        assert mg.load(buf, map_location="cpu")["t"].device == mg.device("cpu")
