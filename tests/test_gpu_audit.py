"""A static guard (runs on the CPU, no GPU needed): op code must stay array-module agnostic.

minigen runs every op on NumPy or CuPy arrays through ``xp = get_array_module(x)``. Code that calls
NumPy directly on array data breaks on the GPU (CuPy forbids implicit device-to-host copies, NumPy
functions do not accept CuPy arrays, Numba only takes NumPy arrays). This test reads the source of
``minigen/ops``, ``minigen/nn`` and ``minigen/optim`` with ``ast`` and enforces three rules:

1. Inside ``forward`` / ``backward`` of every ``Function`` subclass, ``np.<name>`` may only name dtypes and
   shape/dtype helpers that never touch array data (``ALLOWED_NP``); ``xp.<name>`` is the way.
2. Nowhere in those packages may ``np.asarray(<...>.data)`` / ``np.array(<...>.data)`` appear: that is a
   device-to-host copy of a tensor's array (use ``minigen.backend.to_numpy`` when a host copy is meant).
3. Inside ``forward`` / ``backward``, no ``.item()`` / ``.tolist()`` on array data: each is a host round
   trip (a GPU sync) in the hot path.

Known, reviewed exceptions are listed in ``EXCEPTIONS`` with the reason; a new violation fails with the
file, line and rule, and either gets fixed or gets a reviewed entry here. The runtime check of the same
property is tests/test_gpu_ops.py (every op family on the emulated CuPy).
"""
import ast
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["minigen/ops", "minigen/nn", "minigen/optim"]

ALLOWED_NP = {
    # dtypes and dtype utilities (no array data)
    "dtype", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_", "integer",
    "floating", "number", "generic", "ndarray", "finfo", "iinfo", "result_type", "promote_types", "can_cast",
    "issubdtype", "inf", "nan", "pi", "e", "newaxis",
    # shape helpers on tuples / Python ints
    "broadcast_shapes", "ndim", "shape",
    # warnings control (host state, no data)
    "errstate",
}

# (file, qualified place, what) -> reason. ``what`` is "np.<name>", "np.asarray(.data)" or ".item()"/".tolist()".
EXCEPTIONS = {
    ("minigen/nn/parallel/sync_batchnorm.py", "SyncBatchNorm.forward", "np.array"):
        "a host-side element count (metadata, not array data), reduced over the host group even under NCCL",
}


def _files():
    out = []
    for pkg in PACKAGES:
        out += sorted(glob.glob(os.path.join(ROOT, pkg, "**", "*.py"), recursive=True))
    return out


def _is_np_attr(node):
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "np"


def _violations(path):
    rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=rel)
    found = []
    # rule 2: anywhere
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and _is_np_attr(node.func) and node.func.attr in ("asarray", "array")
                and node.args and isinstance(node.args[0], ast.Attribute) and node.args[0].attr == "array"):
            found.append((rel, node.lineno, "<module>", "np.asarray(.data)", 2))
    # rules 1 and 3: forward / backward of classes
    for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
        for fn in cls.body:
            if not (isinstance(fn, ast.FunctionDef) and fn.name in ("forward", "backward")):
                continue
            place = f"{cls.name}.{fn.name}"
            for node in ast.walk(fn):
                if _is_np_attr(node) and node.attr not in ALLOWED_NP:
                    found.append((rel, node.lineno, place, f"np.{node.attr}", 1))
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("item", "tolist") and not node.args
                        and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "array"):
                    found.append((rel, node.lineno, place, f".{node.func.attr}()", 3))
    return found


def test_the_guard_scans_the_op_code():
    files = _files()
    assert any(f.endswith("ops/pointwise.py") for f in files) and len(files) > 20
    n_classes = sum(1 for f in files for n in ast.walk(ast.parse(open(f, encoding="utf-8").read()))
                    if isinstance(n, ast.ClassDef))
    assert n_classes > 50


def test_the_guard_catches_violations(tmp_path, monkeypatch):
    """The rules fire on a planted example (so a silent guard cannot pass)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\n"
                   "class Op:\n"
                   "    def forward(ctx, x):\n"
                   "        y = np.exp(x)\n"
                   "        s = x.array.item()\n"
                   "        return np.asarray(x.array)\n")
    monkeypatch.setattr(os.path, "relpath", lambda p, r: "bad.py")
    rules = sorted({v[4] for v in _violations(str(bad))})
    assert rules == [1, 2, 3]


@pytest.mark.parametrize("path", _files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_op_code_is_array_module_agnostic(path):
    bad = []
    for rel, line, place, what, rule in _violations(path):
        if (rel, place, what) in EXCEPTIONS:
            continue
        bad.append(f"{rel}:{line}: {place}: {what} (rule {rule})")
    assert not bad, "NumPy-only code on array data (see the module docstring):\n" + "\n".join(bad)


def test_exceptions_are_still_needed():
    """A listed exception that no longer occurs must be removed (the list stays honest)."""
    seen = {(rel, place, what) for p in _files() for rel, _, place, what, _ in _violations(p)}
    stale = [k for k in EXCEPTIONS if k not in seen and "gpu_patches" not in EXCEPTIONS[k]]
    assert not stale, f"stale EXCEPTIONS entries: {stale}"
