"""Checkpoints: ``mg.save(obj, f)`` and ``mg.load(f, map_location=None)``. Never pickle.

``f`` is a path (``str`` / ``os.PathLike``) or a binary file object (``open(..., 'wb'/'rb')``,
``io.BytesIO``). Anything else is refused with :class:`CheckpointArgumentError`.

What can be saved: a Tensor, a NumPy array, a state dict, or any nesting (up to
``MAX_DEPTH`` = 100 levels) of dicts / lists / tuples holding Tensors, arrays, ``None``,
bools, ints (any size: RNG states are 128-bit), floats (NaN/inf included), strings
and NumPy scalars — e.g. a whole training state::

    mg.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "rng": mg.get_rng_state(),
             "step": step, "epoch": epoch}, "ckpt.safetensors")

Array dtypes: bool, int8/16/32/64, uint8/16/32/64, float16/32/64, in either byte order
(big-endian arrays are stored little-endian and come back in their saved byte order).
Everything else (complex, float128, strings, objects, datetimes) is refused at save time;
so is a whole ``Module`` or optimizer (save its ``state_dict()``): whatever ``save``
accepts, ``load`` returns equal (same types, dtypes, shapes, values).

**File format** (version 1): one `safetensors <https://github.com/huggingface/safetensors>`_
file, readable by the safetensors library::

    [8 bytes: little-endian u64 N][N bytes: JSON header, space-padded to a multiple of 8][tensor bytes]

The header maps each tensor name (its path in the structure, e.g. ``model/fc1.weight``)
to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the tensor bytes,
which it tiles exactly: no gap, no overlap); its ``__metadata__`` (string -> string) holds

- ``format`` = ``minigen-checkpoint``, ``version`` = ``1``;
- ``structure``: the nested object as JSON, tensors replaced by ``{"__tensor__": name}``
  (tuples, dicts with non-string keys, NumPy scalars, non-finite floats and big-endian
  arrays get similar tagged forms, so everything round-trips exactly);
- ``sha256``: ``sha256(structure JSON || for each tensor, sorted by name:
  JSON [name, dtype.str, shape] || its little-endian bytes)``, so a flipped bit anywhere
  is detected on load.

A safetensors file without minigen metadata (e.g. from another library) loads as a dict of
name -> Tensor. A file whose metadata carries any minigen key but fails validation (a damaged
format tag, say) is an error, never silently loaded as a plain file.

**Loading** reads the 8-byte length, then the header alone, and validates it (size at most
100 MB, JSON nesting depth, dtypes, shapes, offsets tiling the rest of the file exactly) before
it touches any tensor bytes; then each tensor is read straight into its own array (or, with
``mmap=True``, mapped copy-on-write from the file). Peak memory is the tensors plus the header,
never a copy of the whole file. Pickle files (PyTorch ``.pt``/``.pth``, zip or legacy) are
recognised and refused: minigen never unpickles.

**Atomic writes** (paths): the bytes go to ``.<name>.<pid>.<random>.tmp`` in the destination
folder, are flushed and fsync'ed, then ``os.replace`` puts the file in place (atomic on POSIX
and Windows). An exception mid-save removes the temporary file; a killed process cannot, so
every save first removes temporary files of the same target left by processes that no longer
exist.

**Devices**: tensors on a GPU are written from host copies and come back on the device they
were saved from; ``map_location`` ('cpu', 'cuda:0', a Device, a dict ``{'cuda:0': 'cpu'}`` or a
callable) moves them instead.
"""
from __future__ import annotations

import hashlib
import io as _io
import json
import math
import mmap as _mmap
import os
import re
import struct
import tempfile

import numpy as np

from . import backend
from .errors import CheckpointError, DeviceError
from .tensor import Tensor, from_numpy

__all__ = ["save", "load", "CheckpointError", "CheckpointNotFoundError", "CheckpointArgumentError",
           "checkpoint_metadata", "MAX_DEPTH", "MAX_HEADER_BYTES"]

FORMAT = "minigen-checkpoint"
VERSION = "1"
MAX_DEPTH = 100                  # nesting levels of a saved object
MAX_HEADER_BYTES = 100_000_000   # the safetensors library's own limit
_MAX_JSON_DEPTH = 3 * MAX_DEPTH + 8  # a tagged level ({"__dict__": [[k, v]]}) is up to 3 JSON levels
_CHUNK = 1 << 22
_MINIGEN_KEYS = ("format", "version", "structure", "sha256")
_BIG_INT_BITS = 12_000           # beyond this, Python's int <-> str limit (4300 digits) would refuse JSON

# NumPy dtype (little-endian) <-> safetensors dtype name
_ST_DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "I16": "<i2", "U16": "<u2", "F16": "<f2", "I32": "<i4",
              "U32": "<u4", "F32": "<f4", "F64": "<f8", "I64": "<i8", "U64": "<u8"}
_NP_TO_ST = {v: k for k, v in _ST_DTYPES.items()}


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file at the checkpoint path."""


class CheckpointArgumentError(CheckpointError, TypeError):
    """``save``/``load`` got something that is neither a path nor a binary file object."""


# ----------------------------------------------------------------------------- encoding
def _contiguous(a: np.ndarray) -> np.ndarray:
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return a if a.flags.c_contiguous else a.copy(order="C")


def _where(path) -> str:
    return "/".join(path) or "<root>"


def _little(a: np.ndarray, path, tag) -> np.ndarray:
    """``a`` as a C-contiguous little-endian array of a safetensors dtype, or CheckpointError."""
    if type(a) is not np.ndarray and isinstance(a, np.ma.MaskedArray):
        raise CheckpointError(f"cannot save a masked array at '{_where(path)}' (its mask would be lost)")
    dt = a.dtype
    le = dt.newbyteorder("<") if dt.kind in "biuf" else dt
    if le.str not in _NP_TO_ST:
        raise CheckpointError(f"cannot save {tag} of dtype {dt} at '{_where(path)}': checkpoints hold bool, "
                              "int8/16/32/64, uint8/16/32/64 and float16/32/64 (safetensors dtypes)")
    if le != dt:
        a = a.astype(le)
    return _contiguous(a)


class _Encoder:
    """Turns a nested object into (JSON-able structure, {name: array}); tensors are stored once."""

    def __init__(self):
        self.arrays = {}
        self.by_id = {}  # id(tensor or array) -> name, so shared tensors are written once
        self.keep = []   # keep objects alive while their ids are in by_id

    def _name(self, path):
        # a tensor name: its path, valid UTF-8 (the header is JSON read by Rust too), never the
        # reserved "__metadata__", unique
        name = "/".join(path) or "tensor"
        name = name.encode("utf-8", "backslashreplace").decode("utf-8")
        base, k = name, 1
        while name in self.arrays or name == "__metadata__":
            k += 1
            name = f"{base}#{k}"
        return name

    def _array(self, obj, path, arr, tag):
        key = id(obj)
        if key in self.by_id:
            return self.by_id[key]
        a = backend.to_numpy(arr)
        orig = a.dtype
        a = _little(a, path, tag)
        name = self._name(path)
        self.arrays[name] = a
        self.by_id[key] = (name, orig.str if a.dtype != orig else None)
        self.keep.append(obj)
        return self.by_id[key]

    def encode(self, obj, path=()):
        if len(path) > MAX_DEPTH:
            raise CheckpointError(f"cannot save an object nested deeper than {MAX_DEPTH} levels (at "
                                  f"'{_where(path[:8])}/...'; a self-referencing list or dict?)")
        if isinstance(obj, np.generic) and not isinstance(obj, np.str_):
            if obj.dtype.newbyteorder("<").str not in _NP_TO_ST:
                raise CheckpointError(f"cannot save a NumPy scalar of dtype {obj.dtype} at '{_where(path)}'")
            return {"__npscalar__": obj.dtype.str, "value": self.encode(obj.item(), path)}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            obj = int(obj)
            if obj.bit_length() > _BIG_INT_BITS:
                return {"__int__": hex(obj)}
            return obj
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"__float__": repr(float(obj))}
        if isinstance(obj, Tensor):
            name, dt = self._array(obj, path, obj.array, "a tensor")
            enc = {"__tensor__": name}
            if dt is not None:
                enc["dtype"] = dt
            if obj.requires_grad:
                enc["requires_grad"] = True
            dev = obj.device
            if dev.type != "cpu":
                enc["device"] = str(dev)
            if type(obj).__name__ == "Parameter":
                enc["parameter"] = True
            return enc
        if isinstance(obj, np.ndarray):
            name, dt = self._array(obj, path, obj, "an array")
            enc = {"__ndarray__": name}
            if dt is not None:
                enc["dtype"] = dt
            return enc
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in obj):
                return {k: self.encode(v, path + (k,)) for k, v in obj.items()}
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (str, int, float, bool, tuple))):
                    raise CheckpointError(f"cannot save a dict key of type {type(k).__name__} at '{_where(path)}'")
                items.append([self.encode(k, path), self.encode(v, path + (str(k),))])
            return {"__dict__": items}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, path + (str(i),)) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, path + (str(i),)) for i, v in enumerate(obj)]
        what = type(obj).__name__
        if callable(getattr(obj, "state_dict", None)):
            raise CheckpointError(
                f"cannot save a {what} object at '{_where(path)}': minigen checkpoints never pickle, so a whole "
                f"module or optimizer cannot be saved; save its state_dict() (mg.save(model.state_dict(), path)), "
                "then rebuild it in code and call load_state_dict(mg.load(path))")
        raise CheckpointError(
            f"cannot save an object of type {what} at '{_where(path)}': checkpoints hold "
            "Tensors, NumPy arrays, dicts, lists, tuples, None, bools, ints, floats and strings (never pickle); "
            "save a module's state_dict(), not the module")


def _checksum(structure_json: str, arrays: dict) -> str:
    h = hashlib.sha256()
    h.update(structure_json.encode("utf-8"))
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode("utf-8"))
        if a.size:
            h.update(_contiguous(a).reshape(-1).view(np.uint8).data)
    return h.hexdigest()


# ----------------------------------------------------------------------------- file arguments
def _is_path(f) -> bool:
    return isinstance(f, (str, os.PathLike))


def _describe(f) -> str:
    if _is_path(f):
        return os.fspath(f) if isinstance(os.fspath(f), str) else repr(os.fspath(f))
    return f"<{type(f).__name__}>"


def _check_file_arg(f, mode: str) -> None:
    if _is_path(f):
        return
    attr = "write" if mode == "w" else "read"
    if isinstance(f, (bytes, bytearray, memoryview)):
        raise CheckpointArgumentError(
            f"{'save' if mode == 'w' else 'load'}: got {type(f).__name__}; pass a path or a binary file object "
            "(for bytes in memory: io.BytesIO(data))")
    if not callable(getattr(f, attr, None)):
        raise CheckpointArgumentError(
            f"{'save' if mode == 'w' else 'load'}: expected a path (str or os.PathLike) or a binary file object "
            f"with .{attr}(), got {type(f).__name__}")
    if getattr(f, "closed", False) is True:
        raise CheckpointArgumentError(f"{'save' if mode == 'w' else 'load'}: the file object is closed")
    if isinstance(f, _io.TextIOBase):
        raise CheckpointArgumentError(f"{'save' if mode == 'w' else 'load'}: the file object is in text mode; "
                                      f"open it in binary mode ('{mode}b')")


# ----------------------------------------------------------------------------- save
def _write_bytes(f, data) -> None:
    """Write ``data`` (bytes or a buffer) to the open file in chunks (a function so tests can simulate a crash)."""
    view = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else memoryview(data)
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


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows: keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_stale_temps(folder: str, base: str) -> list:
    """Remove ``.<base>.<pid>.<random>.tmp`` files whose process is gone (and old-style ``.<base>.<random>.tmp``)."""
    pat = re.compile(r"^\." + re.escape(base) + r"\.(?:(\d+)\.)?([A-Za-z0-9_]{8})\.tmp$")
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    me = os.getpid()
    for n in names:
        m = pat.match(n)
        if not m:
            continue
        pid = m.group(1)
        if pid is not None and (int(pid) == me or _pid_alive(int(pid))):
            continue  # a save in progress (this process, another thread, or another live process)
        try:
            os.remove(os.path.join(folder, n))
            removed.append(n)
        except OSError:
            pass
    return removed


def _write_checkpoint(f, header: bytes, arrays) -> None:
    _write_bytes(f, header)
    for a in arrays:
        if a.size:
            _write_bytes(f, a.reshape(-1).view(np.uint8))


def atomic_write(path, writer) -> None:
    """Call ``writer(f)`` on a temp file in ``path``'s folder, fsync it, then ``os.replace`` it onto ``path``."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    if not os.path.isdir(folder):
        raise CheckpointError(f"cannot save to {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"cannot save to {path}: it is a directory")
    _remove_stale_temps(folder, base)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.{os.getpid()}.", suffix=".tmp")
    except OSError as e:
        raise CheckpointError(f"cannot save to {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):  # disk full, permissions, ...: the previous checkpoint is untouched
            raise CheckpointError(f"cannot save to {path}: {e.strerror or e} (the previous file, if any, is "
                                  "unchanged)") from e
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``."""
    atomic_write(path, lambda f: _write_bytes(f, data))


def _header_bytes(arrays: dict, meta: dict):
    """(header bytes incl. the length prefix, arrays in file order). Order: largest itemsize first, then name,
    so with the 8-byte header padding every tensor starts at a multiple of its itemsize (mappable in place)."""
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header, off = {}, 0
    for n in order:
        a = arrays[n]
        header[n] = {"dtype": _NP_TO_ST[a.dtype.str], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    header["__metadata__"] = meta
    hj = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    hj += b" " * (-len(hj) % 8)
    return struct.pack("<Q", len(hj)) + hj, [arrays[n] for n in order]


def save(obj, f) -> None:
    """Save ``obj`` (a Tensor, a state dict, a nested training state...) to ``f`` (a path, written atomically,
    or a binary file object, written at its current position).

    See the module docstring for what can be saved and the file format. Raises CheckpointError for
    what cannot be saved, before anything is written.
    """
    _check_file_arg(f, "w")
    enc = _Encoder()
    structure = enc.encode(obj)
    try:
        structure_json = json.dumps(structure, separators=(",", ":"), allow_nan=False)
    except (ValueError, RecursionError) as e:  # pragma: no cover - the encoder already refuses these
        raise CheckpointError(f"cannot save: {e}") from None
    meta = {"format": FORMAT, "version": VERSION, "structure": structure_json,
            "sha256": _checksum(structure_json, enc.arrays)}
    header, ordered = _header_bytes(enc.arrays, meta)
    if len(header) - 8 > MAX_HEADER_BYTES:
        raise CheckpointError(f"cannot save: the checkpoint header would be {len(header) - 8} bytes "
                              f"(the limit is {MAX_HEADER_BYTES}); save fewer or larger tensors")
    if _is_path(f):
        atomic_write(f, lambda fh: _write_checkpoint(fh, header, ordered))
    else:
        try:
            _write_checkpoint(f, header, ordered)
            flush = getattr(f, "flush", None)
            if callable(flush):
                flush()
        except OSError as e:  # e.g. a file opened for reading only (io.UnsupportedOperation)
            raise CheckpointError(f"cannot save to {_describe(f)}: {e}") from e


# ----------------------------------------------------------------------------- load: the source
class _Source:
    """A path or a binary file object, read from its current position; ``size`` (bytes from there to the end)
    is None for a stream that cannot seek."""

    def __init__(self, f):
        _check_file_arg(f, "r")
        self.name = _describe(f)
        self.path = None
        self.own = False
        if _is_path(f):
            p = os.fspath(f)
            self.path = p
            try:
                self.f = open(p, "rb")
            except FileNotFoundError:
                raise CheckpointNotFoundError(f"no checkpoint at {self.name}") from None
            except IsADirectoryError:
                raise CheckpointError(f"{self.name} is a directory, not a checkpoint file") from None
            except PermissionError as e:
                if os.path.isdir(p):  # Windows says PermissionError for a directory
                    raise CheckpointError(f"{self.name} is a directory, not a checkpoint file") from None
                raise CheckpointError(f"cannot read {self.name}: {e}") from None
            self.own = True
            self.start = 0
            self.size = os.fstat(self.f.fileno()).st_size
        else:
            self.f = f
            self.start, self.size = 0, None
            try:
                if f.seekable():
                    self.start = f.tell()
                    end = f.seek(0, os.SEEK_END)
                    f.seek(self.start)
                    self.size = end - self.start
            except (AttributeError, OSError, ValueError):
                self.size = None

    def close(self):
        if self.own:
            self.f.close()

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the data)."""
        parts, got = [], 0
        while got < n:
            b = self.f.read(min(n - got, _CHUNK))
            if isinstance(b, str):
                raise CheckpointArgumentError(f"{self.name}: the file object is in text mode; open it in binary "
                                              "mode ('rb')")
            if not b:
                break
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")
        got = 0
        readinto = getattr(self.f, "readinto", None)
        while got < len(view):
            if readinto is not None:
                k = readinto(view[got:got + _CHUNK])
            else:
                b = self.f.read(min(len(view) - got, _CHUNK))
                view[got:got + len(b)] = b
                k = len(b)
            if not k:
                break
            got += k
        return got


def _sniff(first: bytes, name: str, size) -> None:
    """Name the foreign formats people pass to load by mistake."""
    pickle = ("this is a pickle file{what}; minigen never unpickles (unpickling runs arbitrary code). Save the "
              "state_dict() with minigen (mg.save(model.state_dict(), path)), or convert the file with "
              "safetensors (in PyTorch: safetensors.torch.save_file(torch.load(path, weights_only=True), "
              "'model.safetensors')) and load that")
    if first.startswith(b"PK\x03\x04") or first.startswith(b"PK\x05\x06"):
        raise CheckpointError(f"{name}: " + pickle.format(what=" (a zip archive, as PyTorch's torch.save writes)"))
    if len(first) >= 2 and first[0] == 0x80 and 2 <= first[1] <= 5:
        raise CheckpointError(f"{name}: " + pickle.format(what=f" (pickle protocol {first[1]}, e.g. a legacy .pt)"))
    if first.startswith(b"\x93NUMPY"):
        raise CheckpointError(f"{name}: this is a NumPy .npy file, not a checkpoint (read it with numpy.load)")
    if first.startswith(b"\x1f\x8b"):
        raise CheckpointError(f"{name}: this is a gzip-compressed file, not a checkpoint (decompress it first)")
    if first.startswith(b"\x89HDF"):
        raise CheckpointError(f"{name}: this is an HDF5 file, not a minigen/safetensors checkpoint")


def _json_depth(raw: bytes) -> int:
    """Maximum nesting depth of a JSON text: one vectorised linear pass, no recursion.

    Quotes preceded by an odd run of backslashes are escaped; brackets between unescaped quotes are
    inside strings and do not count. (On text that is not JSON the count may be off; ``json.loads``
    then rejects it, and a RecursionError is caught too.)
    """
    b = np.frombuffer(raw, np.uint8)
    if not b.size:
        return 0
    idx = np.arange(b.size)
    bs = b == 0x5C
    last_other = np.maximum.accumulate(np.where(bs, -1, idx))
    run = idx - last_other  # length of the backslash run ending at i (0 where b[i] is not a backslash)
    q = b == 0x22
    q[1:] &= ~(bs[:-1] & (run[:-1] % 2 == 1))
    outside = (np.cumsum(q) - q) % 2 == 0
    d = (((b == 0x5B) | (b == 0x7B)) & outside).astype(np.int64) - (((b == 0x5D) | (b == 0x7D)) & outside)
    return int(np.cumsum(d).max(initial=0))


def _loads(raw, what: str, name: str, max_depth: int):
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    depth = _json_depth(raw)
    if depth > max_depth:
        raise CheckpointError(f"{name}: {what} is nested {depth} levels deep (at most {max_depth} allowed): "
                              "not a minigen checkpoint, or a crafted one")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{name}: {what} is not valid JSON (corrupted, or not a safetensors checkpoint)") from None


def _read_header(src: _Source):
    """Read and validate the header; returns (metadata dict, [(name, dtype, shape, begin, end)] in header order,
    data size)."""
    name = src.name
    first = src.read(8)

    def not_ours(msg):
        # only once the bytes fail as safetensors: a valid header length can start like a signature
        # (a 640-byte header is 80 02 ... : pickle protocol 2's opening bytes)
        _sniff(first, name, src.size)
        return CheckpointError(msg)

    if len(first) == 0:
        raise CheckpointError(f"{name} is empty (0 bytes): not a checkpoint (an interrupted copy?)")
    if len(first) < 8:
        raise not_ours(f"{name}: {len(first)} bytes is too short to be a checkpoint (truncated or not a checkpoint)")
    (hlen,) = struct.unpack("<Q", first)
    looks = ""
    if all(32 <= c < 127 or c in (9, 10, 13) for c in first):
        looks = f"; its first bytes {first.decode('ascii')!r} look like text"
    if hlen > MAX_HEADER_BYTES:
        raise not_ours(f"{name}: not a safetensors checkpoint (its header length field says {hlen} bytes, "
                       f"over the {MAX_HEADER_BYTES}-byte limit{looks})")
    if src.size is not None and hlen > src.size - 8:
        raise not_ours(f"{name}: header claims {hlen} bytes but the file has only {src.size - 8} after the "
                       f"length field (truncated, or not a safetensors checkpoint{looks})")
    raw = src.read(hlen)
    if len(raw) < hlen:
        raise not_ours(f"{name}: header claims {hlen} bytes but the stream ended after {len(raw)} (truncated)")
    if not raw.lstrip(b" \t\r\n").startswith(b"{"):
        raise not_ours(f"{name}: not a safetensors checkpoint (its header is not a JSON object{looks})")
    header = _loads(raw, "its header", name, 4)
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: not a safetensors checkpoint (header is not a JSON object)")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CheckpointError(f"{name}: malformed safetensors header: __metadata__ must map strings to strings")
    entries = []
    for k, v in header.items():
        try:
            if not isinstance(v, dict) or set(v) != {"dtype", "shape", "data_offsets"}:
                raise ValueError
            dt, shape, offs = v["dtype"], v["shape"], v["data_offsets"]
            if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
                raise ValueError
            if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int and o >= 0 for o in offs)):
                raise ValueError
        except ValueError:
            raise CheckpointError(f"{name}: malformed safetensors header entry for tensor {k!r}") from None
        if dt not in _ST_DTYPES:
            raise CheckpointError(f"{name}: tensor {k!r} has dtype {dt!r}, which minigen cannot load (it reads "
                                  f"{', '.join(_ST_DTYPES)})")
        npdt = np.dtype(_ST_DTYPES[dt])
        nbytes = math.prod(shape) * npdt.itemsize
        if offs[1] - offs[0] != nbytes:
            raise CheckpointError(f"{name}: tensor {k!r} ({dt}, shape {tuple(shape)}) needs {nbytes} bytes but its "
                                  f"data_offsets {offs} span {offs[1] - offs[0]} (corrupted header)")
        entries.append((k, npdt, tuple(shape), offs[0], offs[1]))
    pos = 0
    for k, _, _, b, e in sorted(entries, key=lambda t: (t[3], t[4])):
        if b != pos:
            what = "overlaps the previous one" if b < pos else f"leaves a gap of {b - pos} bytes before it"
            raise CheckpointError(f"{name}: tensor {k!r} at data_offsets [{b}, {e}] {what} (corrupted header)")
        pos = e
    if src.size is not None:
        have = src.size - 8 - hlen
        # a path holds exactly one checkpoint; a file object may hold more after it (saved one after another)
        if pos > have or (pos != have and src.path is not None):
            what = "truncated" if pos > have else "has trailing bytes"
            raise CheckpointError(f"{name}: the tensors need {pos} data bytes but the file holds {have} ({what})")
    return meta, entries, pos, 8 + hlen


def _is_minigen(meta: dict) -> bool:
    """A minigen key (``structure``/``sha256``: one damaged byte leaves at least one of them intact) or a format
    tag naming minigen: treated, and validated, as ours. Foreign files (e.g. ``{"format": "pt"}``) are not."""
    if any(k in meta for k in ("structure", "sha256")):
        return True
    return "minigen" in meta.get("format", "")


def checkpoint_metadata(f) -> dict:
    """The safetensors metadata of a checkpoint (format, version, structure JSON, sha256), reading the header only."""
    src = _Source(f)
    try:
        meta, _, _, _ = _read_header(src)
    except OSError as e:
        raise CheckpointError(f"{src.name}: cannot read the checkpoint: {e}") from e
    finally:
        src.close()
    return dict(meta)


class _Storage:
    """Stands for the storage argument of a PyTorch-style ``map_location(storage, location)`` callable.

    ``lambda storage, loc: storage`` (keep it where it is deserialised: the CPU) returns it; ``.cuda(i)``,
    ``.cpu()`` and ``.to(d)`` return the device they name.
    """

    def cpu(self):
        return "cpu"

    def cuda(self, device=None, *args, **kwargs):
        return f"cuda:{0 if device is None else int(device)}"

    def to(self, device, *args, **kwargs):
        return str(device)


def _check_map_location(map_location):
    if map_location is None or isinstance(map_location, (str, backend.Device)):
        if map_location is not None:
            backend.as_device(map_location)  # an unknown device name raises minigen's DeviceError now
        return
    if isinstance(map_location, dict):
        for k, v in map_location.items():
            if not isinstance(k, str) or not isinstance(v, (str, backend.Device)):
                raise CheckpointArgumentError(f"load: map_location dict must map device names to devices, got "
                                              f"{k!r}: {v!r}")
        return
    if callable(map_location):
        return
    raise CheckpointArgumentError(f"load: map_location must be None, a device ('cpu', 'cuda:0'), a dict "
                                  f"{{'cuda:0': 'cpu'}} or a callable, got {type(map_location).__name__}")


def _call_map_location(fn, saved: str):
    import inspect

    try:
        sig = inspect.signature(fn)
        two = len([p for p in sig.parameters.values()
                   if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 2 or any(
            p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    except (TypeError, ValueError):
        two = False
    storage = _Storage()
    out = fn(storage, saved) if two else fn(saved)  # PyTorch's (storage, location), or minigen's (device)
    if out is storage or out is None:
        return "cpu" if out is storage else saved
    if not isinstance(out, (str, backend.Device)):
        raise CheckpointArgumentError(f"load: map_location callable returned {type(out).__name__}; expected a "
                                      "device such as 'cpu' or 'cuda:0' (or the storage argument itself)")
    return out


def _target_device(saved, map_location):
    if map_location is None:
        return saved
    if isinstance(map_location, dict):
        return map_location.get(saved or "cpu", saved)
    if callable(map_location) and not isinstance(map_location, (str, backend.Device)):
        return _call_map_location(map_location, saved or "cpu")
    return map_location


def _read_arrays(src: _Source, entries, data_size: int, data_start: int, use_mmap: bool) -> dict:
    """name -> little-endian array, each read into its own buffer (or mapped copy-on-write)."""
    arrays = {}
    order = sorted(entries, key=lambda t: (t[3], t[4]))
    if use_mmap and src.path is not None and data_size:
        mm = _mmap.mmap(src.f.fileno(), 0, access=_mmap.ACCESS_COPY)
        for k, dt, shape, b, e in order:
            arrays[k] = np.frombuffer(mm, dtype=dt, count=math.prod(shape), offset=data_start + b).reshape(shape)
        return arrays
    pos = 0
    for k, dt, shape, b, e in order:
        n = e - b
        if src.size is not None:
            a = np.empty(shape, dt)
            got = src.readinto(a) if n else 0
        else:  # a stream of unknown length: grow with the bytes that actually arrive, never trust the header
            buf = bytearray()
            while len(buf) < n:
                chunk = src.read(min(n - len(buf), _CHUNK))
                if not chunk:
                    break
                buf += chunk
            got = len(buf)
            a = np.frombuffer(buf, dt).reshape(shape) if got == n else None
        if got < n:
            raise CheckpointError(f"{src.name}: the stream ended inside tensor {k!r} ({pos + got} of {data_size} "
                                  "data bytes): truncated")
        arrays[k] = a
        pos = e
    return arrays


def _decode(obj, tensors, place):
    if isinstance(obj, list):
        return [_decode(v, tensors, place) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return place(_get(tensors, obj["__tensor__"]), obj.get("device"), bool(obj.get("requires_grad", False)),
                     bool(obj.get("parameter", False)), obj.get("dtype"))
    if "__ndarray__" in obj:
        arr = _get(tensors, obj["__ndarray__"])[0]
        return arr.astype(_saved_dtype(obj["dtype"])) if "dtype" in obj else arr
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__int__" in obj:
        return int(obj["__int__"], 16)
    if "__npscalar__" in obj:
        dt = np.dtype(obj["__npscalar__"])
        if dt.kind not in "biuf" or dt.itemsize > 8:
            raise ValueError(f"NumPy scalar dtype {dt}")
        return dt.type(_decode(obj["value"], tensors, place))
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors, place) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {_decode(k, tensors, place): _decode(v, tensors, place) for k, v in obj["__dict__"]}
    return {k: _decode(v, tensors, place) for k, v in obj.items()}


def _saved_dtype(s):
    dt = np.dtype(s)
    if dt.newbyteorder("<").str not in _NP_TO_ST:
        raise ValueError(f"dtype {s!r}")
    return dt


def _get(tensors, name):
    """``tensors[name]`` as a one-element list [array, cache] so shared references load as one object."""
    if not isinstance(name, str) or name not in tensors:
        raise CheckpointError(f"checkpoint structure refers to tensor {name!r} which is not in the file")
    return tensors[name]


def load(f, map_location=None, *, weights_only=None, mmap=False):
    """Load what :func:`save` wrote (or any safetensors file, as a dict of Tensors).

    ``f``: a path or a binary file object (read from its current position). ``map_location``: None (each
    tensor back on its saved device), a device, a dict ``{saved: target}``, or a callable taking the saved
    device name, or PyTorch's ``(storage, location)`` (``lambda storage, loc: storage`` keeps tensors on the
    CPU). ``weights_only`` is accepted
    for PyTorch compatibility and changes nothing: minigen never unpickles, so loading never runs code.
    ``mmap=True`` (paths only) maps the tensor bytes copy-on-write instead of reading them (the checksum
    still reads every byte once, through the page cache).

    Raises :class:`~minigen.errors.CheckpointError` for a missing, empty, truncated, corrupted (checksum
    mismatch), pickle or other non-checkpoint file, and when a tensor saved on a GPU cannot be put back
    there (pass ``map_location='cpu'``).
    """
    if not (weights_only is None or isinstance(weights_only, (bool, np.bool_))):
        raise CheckpointArgumentError(f"load: weights_only must be a bool, got {type(weights_only).__name__}")
    if not isinstance(mmap, (bool, np.bool_)):
        raise CheckpointArgumentError(f"load: mmap must be a bool, got {type(mmap).__name__}")
    _check_map_location(map_location)
    src = _Source(f)
    try:
        meta, entries, data_size, data_start = _read_header(src)
        ours = _is_minigen(meta)
        if ours:
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{src.name}: checkpoint format tag {meta.get('format')!r} is not "
                                      f"{FORMAT!r} (corrupted metadata)")
            if meta.get("version") != VERSION:
                raise CheckpointError(f"{src.name}: checkpoint format version {meta.get('version')!r} is not "
                                      f"supported (this minigen reads version {VERSION})")
            extra = set(meta) - set(_MINIGEN_KEYS)
            if extra or not isinstance(meta.get("structure"), str) or not isinstance(meta.get("sha256"), str):
                raise CheckpointError(f"{src.name}: checkpoint metadata is malformed (keys {sorted(meta)}; "
                                      f"expected {list(_MINIGEN_KEYS)})")
        arrays = _read_arrays(src, entries, data_size, data_start, mmap)
    except OSError as e:  # an I/O error, or a file object opened for writing only
        raise CheckpointError(f"{src.name}: cannot read the checkpoint: {e}") from e
    finally:
        src.close()
    spath = src.name

    def place(slot, saved_device, requires_grad, parameter, dtype=None):
        # slot = [array, {device: Tensor}] so a tensor referenced twice loads as one object
        arr, cache = slot
        dev = _target_device(saved_device, map_location)
        key = str(backend.as_device(dev)) if dev is not None else "cpu"
        if key in cache:
            return cache[key]
        on_device = dev is not None and backend.as_device(dev).type != "cpu"
        if dtype is not None and not on_device:  # (device arrays are native-endian: CuPy has no byte order)
            arr = arr.astype(_saved_dtype(dtype))
        if on_device:
            try:
                data = backend.move_array(arr, dev)
            except DeviceError as e:
                raise CheckpointError(f"{spath}: a tensor was saved on {saved_device} but {e}; "
                                      "load with map_location='cpu'") from None
        else:
            data = arr
        t = from_numpy(data) if isinstance(data, np.ndarray) else Tensor(data)
        if parameter:
            from .nn.parameter import Parameter

            t = Parameter(t, requires_grad=requires_grad)
        elif requires_grad:
            t.requires_grad_(True)
        cache[key] = t
        return t

    if not ours:
        # a plain safetensors file (e.g. written by another library): name -> Tensor, in header order
        return {k: place([arrays[k], {}], None, False, False) for k, *_ in entries}
    structure_json = meta["structure"]
    if _checksum(structure_json, arrays) != meta["sha256"]:
        raise CheckpointError(f"{spath}: checksum mismatch: the file is corrupted (its tensors or structure "
                              "changed after it was written)")
    structure = _loads(structure_json, "its structure", spath, _MAX_JSON_DEPTH)
    slots = {k: [a, {}] for k, a in arrays.items()}
    try:
        return _decode(structure, slots, place)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        raise CheckpointError(f"{spath}: checkpoint structure is malformed ({type(e).__name__}: {e})") from None
