"""Checkpoints: round trips, corruption/truncation errors, atomic writes."""
import json
import math
import os
import struct

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
import minigen.io as mio
from minigen.errors import CheckpointError


def _eq(a, b):
    """Deep equality with exact tensor/array comparison (dtype, shape, bytes) and NaN == NaN."""
    if isinstance(a, mg.Tensor):
        return (isinstance(b, mg.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and a.requires_grad == b.requires_grad and np.array_equal(a.detach().numpy(), b.detach().numpy()))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool", "uint16", "uint32",
          "uint64", ">f4", ">f8", ">i2", ">i8", ">u4"]  # every dtype save accepts, in both byte orders

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**130, 2**130), st.floats(allow_nan=True),
                    st.text(max_size=8))
arrays = st.builds(lambda dt, shape, seed: np.random.default_rng(seed).integers(0, 100, shape).astype(dt),
                   st.sampled_from(DTYPES), st.lists(st.integers(0, 3), max_size=3).map(tuple), st.integers(0, 99))
leaves = st.one_of(scalars, arrays.map(mg.Tensor), arrays)
nested = st.recursive(
    leaves,
    lambda ch: st.one_of(st.lists(ch, max_size=3), st.lists(ch, max_size=3).map(tuple),
                         st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-3, 3)), ch, max_size=3)),
    max_leaves=8)


@given(nested)
def test_round_trip_any_nesting(obj):
    path = os.path.join(_tmpdir(), "rt.safetensors")
    mg.save(obj, path)
    assert _eq(obj, mg.load(path))


def _tmpdir():
    import tempfile

    d = os.path.join(tempfile.gettempdir(), f"minigen_io_{os.getpid()}")
    os.makedirs(d, exist_ok=True)
    return d


def test_round_trip_training_state_types(tmp_path):
    w = mg.randn(3, 4, requires_grad=True)
    g = mg.Generator().manual_seed(7)
    g.numpy.random(5)
    state = {
        "model": {"fc.weight": w, "fc.bias": mg.zeros(4), "bn.num_batches_tracked": mg.tensor(3)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": mg.ones(3, 4)}, 1: {}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "amsgrad": False}]},
        "scheduler": None,
        "rng": mg.get_rng_state(), "gen": g.get_state(),
        "step": 12, "epoch": 1, "best": float("inf"), "name": "mlp", "history": [0.5, 0.25],
        "np_scalar": np.float32(1.5), "np_array": np.arange(4, dtype=np.int16), "scalar": mg.tensor(2.5),
        "empty": mg.zeros(0, 3), "__dunder": "x", ("t", 1): "tuple key",
    }
    p = tmp_path / "state.safetensors"
    mg.save(state, p)
    back = mg.load(p)
    assert _eq(state, back)
    assert back["model"]["fc.weight"].requires_grad and back["scalar"].shape == ()
    assert isinstance(back["np_scalar"], np.float32)
    g2 = mg.Generator()
    g2.set_state(back["gen"])
    assert np.array_equal(g2.numpy.random(3), g.numpy.random(3))


def test_single_tensor_and_shared_tensors(tmp_path):
    t = mg.arange(6).reshape(2, 3)
    mg.save(t, tmp_path / "t.st")
    assert _eq(t, mg.load(tmp_path / "t.st"))
    w = mg.randn(2, 2)
    mg.save({"enc": w, "dec": w, "other": w.detach()}, tmp_path / "tied.st")
    back = mg.load(tmp_path / "tied.st")
    assert back["enc"] is back["dec"]  # tied weights stay tied
    assert back["other"] is not back["enc"] and _eq(back["other"], back["enc"])


def test_non_contiguous_and_parameter(tmp_path):
    from minigen.nn.parameter import Parameter

    a = np.arange(12, dtype=np.float32).reshape(3, 4).T  # a transposed view
    p = Parameter(mg.randn(2))
    mg.save({"a": mg.Tensor(a), "p": p}, tmp_path / "x.st")
    back = mg.load(tmp_path / "x.st")
    assert np.array_equal(back["a"].numpy(), a)
    assert type(back["p"]) is Parameter and back["p"].requires_grad


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"type object at 'model/x'.*never pickle"):
        mg.save({"model": {"x": object()}}, tmp_path / "bad.st")
    with pytest.raises(CheckpointError, match="dtype"):
        mg.save(np.array(["a"]), tmp_path / "bad.st")
    assert not os.path.exists(tmp_path / "bad.st")


def test_file_format_is_safetensors_with_metadata(tmp_path):
    from safetensors.numpy import load_file

    p = tmp_path / "m.safetensors"
    mg.save({"model": {"w": mg.ones(2, 3)}, "step": 5}, p)
    raw = p.read_bytes()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    meta = header["__metadata__"]
    assert meta["format"] == "minigen-checkpoint" and len(meta["sha256"]) == 64
    assert json.loads(meta["structure"]) == {"model": {"w": {"__tensor__": "model/w"}}, "step": 5}
    assert np.array_equal(load_file(str(p))["model/w"], np.ones((2, 3), np.float32))
    assert b"pickle" not in raw and raw[8 + hlen:] == np.ones((2, 3), np.float32).tobytes()


def test_plain_safetensors_file_loads_as_dict(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.arange(3, dtype=np.int32)}, str(tmp_path / "plain.st"))
    back = mg.load(tmp_path / "plain.st")
    assert list(back) == ["a"] and back["a"].tolist() == [0, 1, 2]


# ----------------------------------------------------------------------------- corruption
@pytest.fixture
def ckpt(tmp_path):
    p = tmp_path / "c.safetensors"
    mg.save({"w": mg.arange(64, dtype=mg.float32), "step": 3}, p)
    return p


def test_truncated_file(ckpt):
    raw = ckpt.read_bytes()
    for cut, msg in ((len(raw) - 1, "truncated"), (len(raw) - 100, "truncated"), (30, "truncated"),
                     (5, "too short"), (0, "is empty")):
        ckpt.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match=r"c\.safetensors:? .*" + msg):
            mg.load(ckpt)


def test_flipped_bit_in_tensor_data(ckpt):
    raw = bytearray(ckpt.read_bytes())
    raw[-10] ^= 0x01
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        mg.load(ckpt)


def test_edited_structure(ckpt):
    raw = ckpt.read_bytes()
    ckpt.write_bytes(raw.replace(b'\\"step\\":3', b'\\"step\\":4'))
    assert ckpt.read_bytes() != raw
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        mg.load(ckpt)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, this is not a checkpoint at all" * 3)
    with pytest.raises(CheckpointError, match="not a safetensors|truncated"):
        mg.load(p)
    p.write_bytes(struct.pack("<Q", 4) + b"[1] ")
    with pytest.raises(CheckpointError, match="not a JSON object"):
        mg.load(p)
    with pytest.raises(mio.CheckpointNotFoundError, match="no checkpoint at"):
        mg.load(tmp_path / "missing.st")
    with pytest.raises(FileNotFoundError):
        mg.load(tmp_path / "missing.st")


def test_checksum_hand_case():
    # sha256 over structure JSON, then per tensor (sorted by name) its [name, dtype, shape] JSON and its bytes
    import hashlib

    a = np.array([1, 2], dtype="<u1")
    h = hashlib.sha256(b"{}" + json.dumps(["x", "|u1", [2]]).encode() + b"\x01\x02").hexdigest()
    assert mio._checksum("{}", {"x": a}) == h


# ----------------------------------------------------------------------------- atomicity
def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    p = tmp_path / "latest.safetensors"
    mg.save({"w": mg.zeros(50000), "step": 1}, p)
    before = p.read_bytes()
    calls = []

    def crashing_writer(f, data):
        f.write(data[: len(data) // 2])  # half the bytes reach the disk, then the process "dies"
        calls.append(len(data))
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(mio, "_write_bytes", crashing_writer)
    with pytest.raises(KeyboardInterrupt):
        mg.save({"w": mg.ones(50000), "step": 2}, p)
    assert calls and p.read_bytes() == before
    assert os.listdir(tmp_path) == ["latest.safetensors"]  # no temp litter
    assert mg.load(p)["step"] == 1
    monkeypatch.undo()
    mg.save({"w": mg.ones(50000), "step": 2}, p)
    assert mg.load(p)["step"] == 2 and os.listdir(tmp_path) == ["latest.safetensors"]


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        mg.save(mg.ones(1), tmp_path / "nope" / "x.st")


def test_map_location_cpu_and_missing_cuda(tmp_path, monkeypatch):
    p = tmp_path / "g.st"
    mg.save({"w": mg.ones(2)}, p)
    assert mg.load(p, map_location="cpu")["w"].device == mg.device("cpu")
    assert mg.load(p, map_location={"cpu": "cpu"})["w"].device == mg.device("cpu")
    # a file that says its tensor lived on cuda:0: loading it where CUDA is absent names the fix
    raw = p.read_bytes()
    from minigen import backend

    if backend.cupy_module() is None:
        fake = {"w": {"__tensor__": "w", "device": "cuda:0"}}
        mio_meta = mio.checkpoint_metadata(p)
        assert json.loads(mio_meta["structure"]) == {"w": {"__tensor__": "w"}}
        structure = json.dumps(fake, separators=(",", ":"))
        from safetensors.numpy import save as st_save

        arrays = {"w": np.ones(2, np.float32)}
        meta = {"format": "minigen-checkpoint", "version": "1", "structure": structure,
                "sha256": mio._checksum(structure, arrays)}
        p.write_bytes(st_save(arrays, metadata=meta))
        with pytest.raises(CheckpointError, match="map_location='cpu'"):
            mg.load(p)
        assert mg.load(p, map_location="cpu")["w"].tolist() == [1.0, 1.0]
    assert raw


def test_cuda_round_trip_when_available(tmp_path):
    from minigen import backend

    if backend.cupy_module() is None:
        pytest.skip("CUDA/CuPy not available")
    t = mg.randn(3, device="cuda")
    mg.save({"t": t}, tmp_path / "c.st")
    back = mg.load(tmp_path / "c.st")
    assert back["t"].device == mg.device("cuda:0")
    assert np.array_equal(back["t"].numpy(), t.numpy())
    assert mg.load(tmp_path / "c.st", map_location="cpu")["t"].device == mg.device("cpu")
