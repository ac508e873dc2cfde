"""Checkpoints: ``mg.save(obj, path)`` and ``mg.load(path, map_location=None)``. Never pickle.

What can be saved: a Tensor, a NumPy array, a state dict, or any nesting of
dicts / lists / tuples holding Tensors, arrays, ``None``, bools, ints (any
size: RNG states are 128-bit), floats (NaN/inf included), strings and NumPy
scalars — e.g. a whole training state::

    mg.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "rng": mg.get_rng_state(),
             "step": step, "epoch": epoch}, "ckpt.safetensors")

**File format**: one `safetensors <https://github.com/huggingface/safetensors>`_ file.
The tensors are its entries (named by their path in the structure, e.g.
``model/fc1.weight``); the safetensors metadata (a string -> string map) holds

- ``format`` = ``minigen-checkpoint``, ``version`` = ``1``;
- ``structure``: the nested object as JSON, tensors replaced by ``{"__tensor__": name}``
  (tuples, dicts with non-string keys, NumPy scalars and non-finite floats get
  similar tagged forms, so everything round-trips exactly, e.g. the int keys of
  an optimizer's state);
- ``sha256``: a hash over the structure JSON and every tensor's name, dtype,
  shape and bytes, so a flipped bit anywhere is detected on load.

Any safetensors file can be read: one without minigen metadata loads as a dict
of name -> Tensor.

**Atomic writes**: the bytes go to a temporary file in the destination folder,
are flushed and fsync'ed, then ``os.replace`` puts it in place (atomic on POSIX
and Windows). A crash mid-save leaves the previous file untouched and removes
the temporary file.

**Devices**: tensors on a GPU are written from host copies and come back on the
device they were saved from; ``map_location`` ('cpu', 'cuda:0', a Device, or a
dict ``{'cuda:0': 'cpu'}``) moves them instead.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile

import numpy as np

from . import backend
from .errors import CheckpointError, DeviceError
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError", "CheckpointNotFoundError", "checkpoint_metadata"]

FORMAT = "minigen-checkpoint"
VERSION = "1"
_CHUNK = 1 << 20


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file at the checkpoint path."""


# ----------------------------------------------------------------------------- encoding
def _contiguous(a: np.ndarray) -> np.ndarray:
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return a if a.flags.c_contiguous else a.copy(order="C")


class _Encoder:
    """Turns a nested object into (JSON-able structure, {name: array}); tensors are stored once."""

    def __init__(self):
        self.arrays = {}
        self.by_id = {}  # id(tensor or array) -> name, so shared tensors are written once
        self.keep = []   # keep objects alive while their ids are in by_id

    def _name(self, path):
        name = "/".join(path) or "tensor"
        base, k = name, 1
        while name in self.arrays:
            k += 1
            name = f"{base}#{k}"
        return name

    def _array(self, obj, path, arr, tag):
        key = id(obj)
        if key in self.by_id:
            name = self.by_id[key]
        else:
            name = self._name(path)
            a = _contiguous(backend.to_numpy(arr))
            if a.dtype.kind not in "biuf":
                raise CheckpointError(f"cannot save {tag} of dtype {a.dtype} at '{'/'.join(path)}'")
            self.arrays[name] = a
            self.by_id[key] = name
            self.keep.append(obj)
        return name

    def encode(self, obj, path=()):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, Tensor):
            name = self._array(obj, path, obj.array, "a tensor")
            enc = {"__tensor__": name}
            if obj.requires_grad:
                enc["requires_grad"] = True
            dev = obj.device
            if dev.type != "cpu":
                enc["device"] = str(dev)
            if type(obj).__name__ == "Parameter":
                enc["parameter"] = True
            return enc
        if isinstance(obj, np.ndarray):
            return {"__ndarray__": self._array(obj, path, obj, "an array")}
        if isinstance(obj, np.generic):
            if obj.dtype.kind not in "biuf":
                raise CheckpointError(f"cannot save a NumPy scalar of dtype {obj.dtype} at '{'/'.join(path)}'")
            v = obj.item()
            return {"__npscalar__": obj.dtype.str, "value": self.encode(v, path)}
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in obj):
                return {k: self.encode(v, path + (k,)) for k, v in obj.items()}
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (str, int, float, bool, tuple))):
                    raise CheckpointError(f"cannot save a dict key of type {type(k).__name__} at '{'/'.join(path)}'")
                items.append([self.encode(k, path), self.encode(v, path + (str(k),))])
            return {"__dict__": items}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, path + (str(i),)) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, path + (str(i),)) for i, v in enumerate(obj)]
        raise CheckpointError(
            f"cannot save an object of type {type(obj).__name__} at '{'/'.join(path) or '<root>'}': checkpoints hold "
            "Tensors, NumPy arrays, dicts, lists, tuples, None, bools, ints, floats and strings (never pickle); "
            "save a module's state_dict(), not the module")


def _decode(obj, tensors, place):
    if isinstance(obj, list):
        return [_decode(v, tensors, place) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        t = _get(tensors, obj["__tensor__"])
        out = place(t, obj.get("device"), obj.get("requires_grad", False), obj.get("parameter", False))
        return out
    if "__ndarray__" in obj:
        return _get(tensors, obj["__ndarray__"])[0]
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__npscalar__" in obj:
        return np.dtype(obj["__npscalar__"]).type(_decode(obj["value"], tensors, place))
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors, place) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {_decode(k, tensors, place): _decode(v, tensors, place) for k, v in obj["__dict__"]}
    return {k: _decode(v, tensors, place) for k, v in obj.items()}


def _get(tensors, name):
    """``tensors[name]`` as a one-element list [array, cache] so shared references load as one object."""
    if name not in tensors:
        raise CheckpointError(f"checkpoint structure refers to tensor '{name}' which is not in the file")
    return tensors[name]


def _checksum(structure_json: str, arrays: dict) -> str:
    h = hashlib.sha256()
    h.update(structure_json.encode("utf-8"))
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode("utf-8"))
        h.update(_contiguous(a).reshape(-1).view(np.uint8).data if a.size else b"")
    return h.hexdigest()


# ----------------------------------------------------------------------------- save
def _write_bytes(f, data: bytes) -> None:
    """Write ``data`` to the open file in chunks (a separate function so tests can simulate a crash)."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        f.write(view[start:start + _CHUNK])


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError(f"cannot save to {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_bytes(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def save(obj, path) -> None:
    """Save ``obj`` (a Tensor, a state dict, a nested training state...) to ``path`` atomically.

    See the module docstring for what can be saved and the file format.
    """
    from safetensors.numpy import save as st_save

    enc = _Encoder()
    structure = enc.encode(obj)
    structure_json = json.dumps(structure, separators=(",", ":"), allow_nan=False)
    meta = {"format": FORMAT, "version": VERSION, "structure": structure_json,
            "sha256": _checksum(structure_json, enc.arrays)}
    data = st_save(enc.arrays, metadata=meta)
    atomic_write_bytes(path, data)


# ----------------------------------------------------------------------------- load
def _read_header(raw: bytes, path: str) -> dict:
    n = len(raw)
    if n < 8:
        raise CheckpointError(f"{path}: {n} bytes is too short to be a checkpoint (truncated or not a checkpoint)")
    (hlen,) = struct.unpack("<Q", raw[:8])
    if hlen > n - 8:
        raise CheckpointError(f"{path}: header claims {hlen} bytes but the file has only {n - 8} after the length "
                              "field (truncated, or not a safetensors checkpoint)")
    try:
        header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: not a safetensors checkpoint (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors checkpoint (header is not a JSON object)")
    end = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        try:
            end = max(end, int(v["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"{path}: malformed safetensors header entry for '{k}'") from None
    have = n - 8 - hlen
    if end != have:
        what = "truncated" if end > have else "has trailing bytes"
        raise CheckpointError(f"{path}: the tensors need {end} data bytes but the file holds {have} ({what})")
    return header


def checkpoint_metadata(path) -> dict:
    """The safetensors metadata of a checkpoint (format, version, structure JSON, sha256), without loading tensors."""
    raw = _read_file(path)
    return dict(_read_header(raw, os.fspath(path)).get("__metadata__") or {})


def _read_file(path) -> bytes:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint at {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint file") from None


def _target_device(saved, map_location):
    if map_location is None:
        return saved
    if isinstance(map_location, dict):
        return map_location.get(saved or "cpu", saved)
    if callable(map_location) and not isinstance(map_location, (str, backend.Device)):
        return map_location(saved or "cpu")
    return map_location


def load(path, map_location=None):
    """Load what :func:`save` wrote (or any safetensors file, as a dict of Tensors).

    Raises :class:`~minigen.errors.CheckpointError` for a truncated, corrupted
    (checksum mismatch) or non-checkpoint file, and when a tensor saved on a GPU
    cannot be put back there (pass ``map_location='cpu'``).
    """
    from safetensors.numpy import load as st_load

    spath = os.fspath(path)
    raw = _read_file(spath)
    header = _read_header(raw, spath)
    try:
        arrays = st_load(raw)
    except Exception as e:  # SafetensorError (a Rust exception type) and friends
        raise CheckpointError(f"{spath}: not a valid safetensors file ({e})") from None
    meta = header.get("__metadata__") or {}

    def place(slot, saved_device, requires_grad, parameter):
        # slot = [array, {device: Tensor}] so a tensor referenced twice loads as one object
        arr, cache = slot
        dev = _target_device(saved_device, map_location)
        key = str(backend.as_device(dev)) if dev is not None else "cpu"
        if key in cache:
            return cache[key]
        if dev is not None and backend.as_device(dev).type != "cpu":
            try:
                data = backend.move_array(arr, dev)
            except DeviceError as e:
                raise CheckpointError(f"{spath}: a tensor was saved on {saved_device} but {e}; "
                                      "load with map_location='cpu'") from None
        else:
            data = arr
        t = Tensor._make(data)
        if parameter:
            try:
                from .nn.parameter import Parameter

                t = Parameter(t, requires_grad=requires_grad)
            except ImportError:
                t.requires_grad_(requires_grad)
        elif requires_grad:
            t.requires_grad_(True)
        cache[key] = t
        return t

    if meta.get("format") != FORMAT:
        # a plain safetensors file (e.g. written by another library): name -> Tensor
        return {k: place([np.array(a), {}], None, False, False) for k, a in arrays.items()}
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{spath}: checkpoint format version {meta.get('version')!r} is not supported "
                              f"(this minigen reads version {VERSION})")
    structure_json = meta.get("structure")
    if not isinstance(structure_json, str):
        raise CheckpointError(f"{spath}: checkpoint metadata has no structure")
    if _checksum(structure_json, arrays) != meta.get("sha256"):
        raise CheckpointError(f"{spath}: checksum mismatch: the file is corrupted (its tensors or structure "
                              "changed after it was written)")
    try:
        structure = json.loads(structure_json)
    except json.JSONDecodeError:
        raise CheckpointError(f"{spath}: checkpoint structure is not valid JSON") from None
    slots = {k: [np.array(a) if not a.flags.writeable else a, {}] for k, a in arrays.items()}
    return _decode(structure, slots, place)
