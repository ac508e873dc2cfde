#!/usr/bin/env python
"""Generate docs/compat.md: which public names of PyTorch minigen has, lacks, or differs on.

    python tools/compat_table.py                 # writes docs/compat.md
    python tools/compat_table.py --out -         # prints it

Needs torch installed (it is the thing compared against) and minigen importable. Nothing in the
tables is written by hand: for each namespace pair below the script lists torch's public names and
looks each one up in minigen:

- *has*: minigen has the name and nothing below applies;
- *differs*: minigen has it, but (a) a keyword argument torch accepts is missing from minigen's
  signature, or (b) a default value differs (both read with ``inspect.signature``; for torch's C
  functions, from the signature line(s) that open their docstrings); a positional argument that only
  has another name (``other`` vs ``y``) is listed separately, as it only matters for keyword calls;
- *lacks*: minigen has no such name (or looking it up raises).

Arguments that do not apply to minigen are not counted as differences: ``out``, ``layout``,
``memory_format``, ``pin_memory``, ``names`` (named tensors), ``foreach``/``fused``/``capturable``/
``differentiable`` (optimizer implementation switches). A minigen signature with ``*args``/``**kwargs``
accepts anything and is never marked as missing a keyword.
"""
from __future__ import annotations

import argparse
import inspect
import io
import keyword
import os
import re
import sys
import types

IGNORED_ARGS = {"out", "layout", "memory_format", "pin_memory", "names", "foreach", "fused", "capturable",
                "differentiable", "self", "cls",
                "size_average", "reduce"}  # deprecated since PyTorch 0.4 (use reduction=)
DEPRECATED_ARGS = {"Hardtanh": {"min_value", "max_value"}}  # deprecated aliases of min_val / max_val
SIMPLE = (bool, int, float, str, type(None), tuple)


def _public(names):
    return sorted(n for n in names if not n.startswith("_"))


def _is_foreign_module(obj):
    return isinstance(obj, types.ModuleType) and not obj.__name__.startswith("torch")


def _is_typing(obj):
    mod = getattr(obj, "__module__", None) or ""
    return mod in ("typing", "typing_extensions", "collections.abc", "builtins", "abc") or (
        type(obj).__module__ in ("typing", "typing_extensions"))


def torch_names(torch, space):
    """The public names of one torch namespace, without re-exported helpers (typing, stdlib modules)."""
    if space == "torch.Tensor":
        return [n for n in _public(dir(torch.Tensor))]
    mod = {"torch": torch, "torch.nn": torch.nn, "torch.nn.functional": torch.nn.functional,
           "torch.optim": torch.optim, "torch.optim.lr_scheduler": torch.optim.lr_scheduler,
           "torch.nn.init": torch.nn.init, "torch.utils.data": torch.utils.data,
           "torch.nn.utils.rnn": torch.nn.utils.rnn, "torch.nn.utils": torch.nn.utils}[space]
    names = getattr(mod, "__all__", None)
    names = _public(names) if names is not None else _public(dir(mod))
    out = []
    for n in names:
        try:
            obj = getattr(mod, n)
        except Exception:
            continue
        if _is_foreign_module(obj) or _is_typing(obj) or n in ("torch", "Tensor") and space != "torch":
            continue
        if space == "torch.nn.functional" and (inspect.isclass(obj) or isinstance(obj, types.ModuleType)):
            continue
        if space == "torch.nn.init" and not callable(obj):
            continue
        out.append(n)
    return out


_DOC_SIG = re.compile(r"^\s*(?:torch\.)?(?:Tensor\.)?([A-Za-z_][A-Za-z0-9_]*)\((.*)$")


def _balanced(text):
    """The text up to the parenthesis that closes an already-open one (None if it never closes)."""
    depth = 1
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return text[:i]
    return None


def _doc_params(obj, name):
    """Parameter names (and simple defaults) from the ``name(a, b=1, *, c=None) -> Tensor`` lines that open
    a C function's docstring (several lines = several overloads: the union). Returns (params, positional
    names in order) or None."""
    doc = getattr(obj, "__doc__", None) or ""
    params, found, positional = {}, False, []
    for line in doc.strip().splitlines()[:6]:
        m = _DOC_SIG.match(line.replace("\\*", "*"))
        inner = _balanced(m.group(2)) if m else None
        if not m or m.group(1) != name or inner is None:
            if found:
                break
            continue
        found = True
        depth, cur, parts = 0, "", []
        for ch in inner:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        kwonly = False
        pos = []
        for p in parts:
            p = p.strip()
            if p == "*" or (p.startswith("*") and not p.startswith("**")):
                kwonly = True
                continue
            if not p or p == "/" or p.startswith("**"):
                continue
            pname, _, default = p.partition("=")
            pname = pname.split(":")[0].strip()
            if pname.isidentifier():
                params.setdefault(pname, default.strip() if default else inspect.Parameter.empty)
                if not kwonly:
                    pos.append(pname)
        if len(pos) > len(positional):
            positional = pos
    return (params, positional) if found else None


def _sig_params(obj, method=False):
    """(params {name: default}, has **kwargs, positional names) from inspect.signature; ``method``: obj is a
    function stored on a class (its first positional parameter is the instance, whatever its name)."""
    target = obj
    if inspect.isclass(obj):
        target = obj.__init__
        if target is object.__init__:
            return None
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    ps, positional = {}, []
    varkw = False
    plist = list(sig.parameters.values())
    if method and plist and plist[0].kind in (plist[0].POSITIONAL_ONLY, plist[0].POSITIONAL_OR_KEYWORD):
        plist = plist[1:]
    for p in plist:
        if p.kind in (p.VAR_KEYWORD,):
            varkw = True
            continue
        if p.kind == p.VAR_POSITIONAL:
            continue
        if p.name in ("self", "cls"):
            continue
        ps[p.name] = p.default
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional.append(p.name)
    return ps, varkw, positional


def _first_positional(obj):
    try:
        target = obj.__init__ if inspect.isclass(obj) else obj
        ps = [p for p in inspect.signature(target).parameters.values() if p.name not in ("self", "cls")]
        return ps[0].name if ps and ps[0].kind in (ps[0].POSITIONAL_ONLY, ps[0].POSITIONAL_OR_KEYWORD) else None
    except (TypeError, ValueError):
        return None


def _simple_default(v):
    return isinstance(v, SIMPLE) and not (isinstance(v, tuple) and not all(isinstance(x, SIMPLE) for x in v))


def compare(tobj, mobj, name, method=False):
    """(differences, renames): human-readable differences between torch's and minigen's callables, and the
    positional arguments that only have another name in minigen (keyword calls with torch's name fail)."""
    if not callable(tobj) or not callable(mobj):
        return [], []
    t = _sig_params(tobj, method=method and inspect.isfunction(tobj))
    if t is None:
        d = _doc_params(tobj, name)
        if d is None:
            return [], []
        tp, tpos = d
    else:
        tp, _, tpos = t
    m = _sig_params(mobj, method=method and inspect.isfunction(mobj))
    if m is None:
        return [], []
    mp, mvarkw, mpos = m
    diffs, renames = [], []
    # the first positional argument is passed positionally in practice (input vs x): do not count its name
    skip = {"input", "self"} | DEPRECATED_ARGS.get(name, set())
    if not method:
        skip.add(_first_positional(tobj) or "input")
    if not mvarkw:
        missing = []
        for p in tp:
            if p in mp or p in IGNORED_ARGS or p in skip or p.startswith("_") or keyword.iskeyword(p):
                continue
            i = tpos.index(p) if p in tpos else -1
            if 0 <= i < len(mpos) and mpos[i] not in tp:
                renames.append(f"`{p}` is `{mpos[i]}`")
            else:
                missing.append(p)
        if missing:
            diffs.append("no argument " + ", ".join(f"`{p}`" for p in missing))
    for p, tv in tp.items():
        if p in IGNORED_ARGS or p not in mp or tv is inspect.Parameter.empty:
            continue
        mv = mp[p]
        if isinstance(tv, str) and t is None:  # from a docstring: compare the text
            if mv is inspect.Parameter.empty:
                continue
            if p == "dim" and tv == "None" and mv == -1:  # "None: the last dimension" in torch's docs
                continue
            if _simple_default(mv) and tv not in (repr(mv), str(mv)) and not (
                    tv in ("None",) and mv is None):
                try:
                    if float(tv) == float(mv):
                        continue
                except (TypeError, ValueError):
                    pass
                diffs.append(f"`{p}` defaults to `{mv!r}` (torch: `{tv}`)")
            continue
        if _simple_default(tv) and _simple_default(mv) and tv != mv:
            diffs.append(f"`{p}` defaults to `{mv!r}` (torch: `{tv!r}`)")
        elif _simple_default(tv) and mv is inspect.Parameter.empty:
            diffs.append(f"`{p}` is required (torch: defaults to `{tv!r}`)")
    return diffs, renames


def minigen_obj(mg, space, name):
    import importlib

    root = {"torch": "minigen", "torch.nn": "minigen.nn", "torch.nn.functional": "minigen.nn.functional",
            "torch.optim": "minigen.optim", "torch.optim.lr_scheduler": "minigen.optim.lr_scheduler",
            "torch.nn.init": "minigen.nn.init", "torch.utils.data": "minigen.utils.data",
            "torch.nn.utils.rnn": "minigen.nn.utils.rnn", "torch.nn.utils": "minigen.nn.utils"}
    if space == "torch.Tensor":
        holder = mg.Tensor
    else:
        try:
            holder = importlib.import_module(root[space])
        except Exception as e:  # a namespace minigen does not have at all
            return None, f"{type(e).__name__}: {e}"
    try:
        return getattr(holder, name), None
    except AttributeError:
        return None, None
    except Exception as e:  # lookups must answer or raise AttributeError; anything else is a bug worth listing
        return None, f"{type(e).__name__}: {e}"


SPACES = ["torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.Tensor", "torch.optim.lr_scheduler",
          "torch.nn.init", "torch.utils.data", "torch.nn.utils", "torch.nn.utils.rnn"]


def build():
    import numpy as np
    import torch

    import minigen as mg

    calls = creation_calls(torch, mg)
    results = {}
    for space in SPACES:
        has, differs, renamed, lacks, broken = [], [], [], [], []
        tmod_obj = torch.Tensor if space == "torch.Tensor" else None
        for name in dict.fromkeys(torch_names(torch, space)):
            try:
                tobj = getattr(tmod_obj, name) if tmod_obj is not None else _resolve(torch, space, name)
            except Exception:
                continue
            mobj, err = minigen_obj(mg, space, name)
            if err is not None:
                broken.append((name, err))
                lacks.append(name)
                continue
            if mobj is None:
                lacks.append(name)
                continue
            d, r = compare(tobj, mobj, name, method=(space == "torch.Tensor"))
            if d:
                differs.append((name, d + ([f"positional names: {', '.join(r)}"] if r else [])))
            elif r:
                renamed.append((name, r))
            else:
                has.append(name)
        results[space] = dict(has=has, differs=differs, renamed=renamed, lacks=lacks, broken=broken)
    versions = dict(torch=torch.__version__, minigen=mg.__version__, numpy=np.__version__,
                    python=sys.version.split()[0])
    return results, versions, calls


def _resolve(torch, space, name):
    obj = torch
    for part in space.split(".")[1:]:
        obj = getattr(obj, part)
    return getattr(obj, name)


# Groups of names minigen lacks on purpose (the reason is stated once per group; which names fall in a group is
# computed from these patterns). Everything not matched is listed under "other".
ABSENT = [
    (r"^(quantize|quantized|q_|dequantize|fake_quantize|qint|quint|int_repr|fbgemm|choose_qparams|"
     r"fused_moving_avg)|^(qscheme|qat|quantizable|intrinsic)$", "quantization (minigen computes in floating point)"),
    (r"sparse|_csr|_csc|_bsr|_bsc|^(crow|ccol|col|row)_indices|^indices|^values|spmm$|^smm$|^hspmm|^sspaddmm|^dsmm|"
     r"^saddmm|coalesce", "sparse tensors (minigen stores dense NumPy/CuPy arrays)"),
    (r"cudnn|miopen|mkldnn|^is_vulkan|(^|_)(xpu|mps|ipu|xla|hpu|mtia|privateuse)(_|$)|"
     r"^has_(lapack|mkl|openmp|spectral)",
     "backend- or vendor-specific kernels and queries"),
    (r"^(Script|script|jit|Graph$|GraphExecutorState|Node$|Value$|Block$|Use$|Gradient$|FileCheck|Code$|"
     r"CompilationUnit|ConcreteModuleType|ErrorReport|ExecutionPlan|Future|IODescriptor|parse_ir|parse_schema|"
     r"parse_type_comment|import_ir|merge_type|unify_type|AliasDb|Argument|ArgumentSpec|CompleteArgumentSpec|"
     r"TracingState|LiteScriptModule|StaticModule|ThroughputBenchmark|BenchmarkConfig|BenchmarkExecutionStats|"
     r"DeserializationStorage|SerializationStorage|PyTorchFile|DispatchKey|ExcludeDispatchKeyGuard|FunctionSchema|"
     r"OperatorInfo|Tag$|DisableTorchFunction|CallStack|DeepCopyMemoTable|LockingLogger|NoopLogger|"
     r"AggregationType|AVG$|SUM$|fork$|wait$|cpp$|export$|vmap$|cond$|AcceleratorError|FatalError|JITException)",
     "TorchScript, tracing, the dispatcher and other interpreter internals"),
    (r"Type$|^AnyType|^Capsule$|^InferredType", "TorchScript type objects"),
    (r"Storage$|storage", "storages (a minigen Tensor owns its NumPy/CuPy array)"),
    (r"^(complex|complex32|complex64|complex128|cdouble|cfloat|chalf|conj|conj_physical|resolve_conj|resolve_neg|"
     r"is_conj|is_neg|view_as_real|view_as_complex|polar|angle|imag|real|isreal|adjoint|is_complex)",
     "complex numbers (not supported)"),
    (r"DataPipe|datapipe|DataChunk|runtime_validation|argument_validation|non_deterministic|guaranteed_datapipes",
     "DataPipes (deprecated in PyTorch)"),
    (r"^(sym_|Sym)", "symbolic shapes (torch.compile internals)"),
    (r"^(?!index_copy$).*_copy$", "``*_copy`` view-copy variants (functionalization internals)"),
    (r"^(Lazy|Uninitialized)", "lazy modules (minigen layers take their sizes at construction)"),
    (r"^(float8|float4|bits|int[1-7]$|uint[1-7]$)", "sub-byte and float8 dtypes (NumPy has no such types)"),
]


def _absent_groups(names):
    groups, other = {}, []
    for n in names:
        for pattern, why in ABSENT:
            if re.search(pattern, n):
                groups.setdefault(why, []).append(n)
                break
        else:
            other.append(n)
    return groups, other


def _wrap(names, width=110):
    out, line = [], ""
    for n in names:
        item = f"`{n}`"
        if line and len(line) + len(item) + 2 > width:
            out.append(line + ",")
            line = item
        else:
            line = item if not line else line + ", " + item
    if line:
        out.append(line)
    return "\n".join(out) if out else "(none)"


# call forms of the creation and random functions: each is evaluated with L = torch and with L = minigen
# (t: a (2, 3) float32 tensor, p: probabilities, m/sd: mean/std tensors, g: a seeded Generator, a: an ndarray)
CALLS = [
    ("L.zeros(2, 3)", 1), ("L.zeros((2, 3))", 1), ("L.zeros([2, 3])", 1), ("L.zeros(size=(2, 3))", 1),
    ("L.zeros(2, 3, dtype=L.int64)", 1), ("L.zeros(())", 1), ("L.zeros(0)", 1), ("L.ones(2, 3)", 1),
    ("L.ones((2,), dtype=L.float64)", 1), ("L.ones(size=(1, 2))", 1), ("L.empty(2, 3)", 0), ("L.empty((2, 3))", 0),
    ("L.empty(size=(2,))", 0), ("L.full((2, 3), 1.5)", 1), ("L.full((2,), 7)", 1), ("L.full((2,), True)", 1),
    ("L.full(size=(2,), fill_value=3.0)", 1), ("L.full([2], 1, dtype=L.float32)", 1),
    ("L.zeros_like(t)", 1), ("L.ones_like(t, dtype=L.float64)", 1), ("L.full_like(t, 2)", 1),
    ("L.empty_like(t)", 0), ("L.rand_like(t)", 0), ("L.randn_like(t)", 0), ("L.randn_like(t, dtype=L.float64)", 0),
    ("L.randint_like(t, 10)", 0), ("L.randint_like(t, 2, 10)", 0), ("L.randint_like(t, low=2, high=10)", 0),
    ("L.eye(3)", 1), ("L.eye(2, 3)", 1), ("L.eye(n=3, m=2)", 1), ("L.eye(3, dtype=L.int64)", 1),
    ("L.arange(5)", 1), ("L.arange(1, 5)", 1), ("L.arange(1, 5, 0.5)", 1), ("L.arange(0, 1, 0.25)", 1),
    ("L.arange(5.0)", 1), ("L.arange(start=1, end=4)", 1), ("L.arange(end=3)", 1),
    ("L.arange(5, dtype=L.float32)", 1), ("L.arange(0, 10, 3)", 1),
    ("L.linspace(0, 1, 5)", 1), ("L.linspace(0, 1, steps=5)", 1), ("L.linspace(start=-1, end=1, steps=3)", 1),
    ("L.linspace(-1, 1, 3, dtype=L.float64)", 1), ("L.logspace(0, 2, 3)", 1), ("L.logspace(0, 2, 3, base=2)", 1),
    ("L.rand(2, 3)", 0), ("L.rand((2, 3))", 0), ("L.rand(size=(2, 3))", 0), ("L.rand(2, 3, generator=g)", 0),
    ("L.rand(2, dtype=L.float64)", 0), ("L.rand(2, requires_grad=True)", 0),
    ("L.randn(2, 3)", 0), ("L.randn((2, 3))", 0), ("L.randn(size=(2, 3))", 0), ("L.randn(3, generator=g)", 0),
    ("L.randint(10, (3,))", 0), ("L.randint(2, 10, (3,))", 0), ("L.randint(low=2, high=10, size=(3,))", 0),
    ("L.randint(high=10, size=(3,))", 0), ("L.randint(10, size=(2, 2))", 0),
    ("L.randint(0, 10, (3,), dtype=L.int32)", 0),
    ("L.randint(5, (2,), generator=g)", 0), ("L.randint(3, 5, size=(2,), generator=g)", 0),
    ("L.randperm(5)", 0), ("L.randperm(5, dtype=L.int32)", 0), ("L.randperm(n=4, generator=g)", 0),
    ("L.normal(0.0, 1.0, size=(3,))", 0), ("L.normal(m, sd)", 0), ("L.normal(m, 1.0)", 0), ("L.normal(0.0, sd)", 0),
    ("L.normal(mean=0.0, std=1.0, size=(2, 2))", 0), ("L.normal(2.0, 3.0, (4,), generator=g)", 0),
    ("L.bernoulli(p)", 0), ("L.bernoulli(p, generator=g)", 0), ("L.bernoulli(p, 0.5)", 0),
    ("L.multinomial(p, 2)", 0), ("L.multinomial(p, 4, replacement=True)", 0),
    ("L.multinomial(p, num_samples=1, generator=g)", 0), ("L.poisson(p * 4)", 0),
    ("L.tensor([1, 2])", 1), ("L.tensor([1.0, 2.0])", 1), ("L.tensor(3)", 1), ("L.tensor(2.5)", 1),
    ("L.tensor([[1, 2]], dtype=L.float64)", 1), ("L.tensor([True, False])", 1), ("L.tensor([])", 1),
    ("L.tensor(a)", 1), ("L.tensor([1, 2], requires_grad=False)", 1), ("L.tensor(data=[1.5])", 1),
    ("L.as_tensor([1, 2])", 1), ("L.as_tensor(a)", 1), ("L.as_tensor(a, dtype=L.float32)", 1),
    ("L.from_numpy(a)", 1), ("L.from_numpy(a.astype('int32'))", 1), ("L.scalar_tensor(3.0)", 1),
    ("L.empty_strided((2, 3), (3, 1))", 0), ("L.tril_indices(3, 3)", 1),
    ("L.triu_indices(3, 3)", 1), ("L.zeros(2, 3, device='cpu')", 1), ("L.ones(2, device=L.device('cpu'))", 1),
]


def _dtype_name(x):
    d = getattr(x, "dtype", None)
    return str(d).replace("torch.", "") if d is not None else type(x).__name__


def creation_calls(torch, mg):
    """Evaluate every call form in CALLS with torch and with minigen; return the rows where minigen rejects a
    call torch accepts, or answers with another shape, dtype, or (deterministic forms) other values."""
    import warnings

    import numpy as np

    rows, ok = [], 0
    arr = np.array([[0.5, 1.0, 2.0], [3.0, 4.0, 5.0]])
    for expr, det in CALLS:
        outs = []
        for L in (torch, mg):
            env = {"L": L, "a": arr.copy(), "t": L.tensor(np.ones((2, 3), np.float32)),
                   "p": L.tensor(np.array([0.1, 0.2, 0.3, 0.4], np.float32)),
                   "m": L.tensor(np.zeros(3, np.float32)), "sd": L.tensor(np.ones(3, np.float32)),
                   "g": L.Generator().manual_seed(0)}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outs.append(("ok", eval(expr, env)))
            except Exception as e:
                outs.append(("err", f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"))
        (tk, tv), (mk, mv) = outs
        label = expr.replace("L.", "torch.")
        if tk == "err":
            continue  # not a torch call form after all
        if mk == "err":
            rows.append((label, f"raises {mv}"))
            continue
        why = []
        if tuple(getattr(tv, "shape", ())) != tuple(getattr(mv, "shape", ())):
            why.append(f"shape {tuple(mv.shape)} (torch {tuple(tv.shape)})")
        if _dtype_name(tv) != _dtype_name(mv):
            why.append(f"dtype {_dtype_name(mv)} (torch {_dtype_name(tv)})")
        if det and not why:
            try:
                a = tv.detach().numpy() if hasattr(tv, "detach") else np.asarray(tv)
                b = mv.detach().numpy() if hasattr(mv, "detach") else np.asarray(mv)
                if not np.allclose(a, b, rtol=1e-6, atol=1e-7):
                    why.append("other values")
            except Exception as e:  # pragma: no cover
                why.append(f"values not comparable ({type(e).__name__})")
        if why:
            rows.append((label, "; ".join(why)))
        else:
            ok += 1
    return rows, ok


def render(results, versions, calls=None):
    f = io.StringIO()
    w = f.write
    w("# PyTorch compatibility table\n\n")
    w("<!-- generated by tools/compat_table.py; do not edit by hand -->\n\n")
    w("Generated by `python tools/compat_table.py` (it imports both libraries and compares them; nothing here is "
      "written by hand). ")
    w(f"torch {versions['torch']}, minigen {versions['minigen']}, NumPy {versions['numpy']}, "
      f"Python {versions['python']}.\n\n")
    w("For each torch namespace: the public names minigen **has** (same name, no difference found), those it "
      "**differs** on (the name exists but a keyword argument torch accepts is missing, or a default differs; "
      "the reason is listed), and those it **lacks**. Arguments that have no meaning in minigen are not "
      "counted: `out`, `layout`, `memory_format`, `pin_memory`, `names`, and the optimizer implementation "
      "switches `foreach`, `fused`, `capturable`, `differentiable`. Signatures of torch's C functions are read "
      "from their docstrings; where neither side has a readable signature, the name counts as *has*.\n\n")
    w("| namespace | torch names | has | differs | only positional names differ | lacks |\n"
      "|---|---:|---:|---:|---:|---:|\n")
    for space, r in results.items():
        total = len(r["has"]) + len(r["differs"]) + len(r["renamed"]) + len(r["lacks"])
        w(f"| `{space}` | {total} | {len(r['has'])} | {len(r['differs'])} | {len(r['renamed'])} | "
          f"{len(r['lacks'])} |\n")
    w("\n")
    for space, r in results.items():
        w(f"## `{space}`\n\n")
        if r["broken"]:
            w("Lookups that raised instead of answering (counted as lacks):\n\n")
            for n, e in r["broken"]:
                w(f"- `{n}`: {e}\n")
            w("\n")
        w(f"### Differs ({len(r['differs'])})\n\n")
        if r["differs"]:
            w("| name | difference |\n|---|---|\n")
            for n, d in r["differs"]:
                w(f"| `{n}` | {'; '.join(d)} |\n")
        else:
            w("(none)\n")
        w(f"\n### Only positional argument names differ ({len(r['renamed'])})\n\n")
        if r["renamed"]:
            w("Calls that pass these arguments positionally (the usual way) work; by keyword, torch's name fails.\n\n")
            w("| name | torch's name is minigen's |\n|---|---|\n")
            for n, d in r["renamed"]:
                w(f"| `{n}` | {', '.join(d)} |\n")
        else:
            w("(none)\n")
        groups, other = _absent_groups(r["lacks"])
        w(f"\n### Lacks ({len(r['lacks'])})\n\n")
        if groups:
            w("Grouped by why they are absent (the groups are patterns in `tools/compat_table.py`, `ABSENT`):\n\n")
            for why, names in groups.items():
                w(f"- {why} ({len(names)}): {', '.join(f'`{n}`' for n in names)}\n")
            w(f"\nOther ({len(other)}):\n\n")
        w(f"{_wrap(other)}\n\n")
        w(f"### Has ({len(r['has'])})\n\n{_wrap(r['has'])}\n\n")
    if calls is not None:
        rows, ok = calls
        w("## Creation and random functions: call forms\n\n")
        w(f"Each call form below was evaluated with torch and with minigen (`tools/compat_table.py`, `CALLS`); "
          f"{ok} of {ok + len(rows)} forms torch accepts give minigen the same shape and dtype (and, for the "
          "deterministic ones, the same values). The others:\n\n")
        if rows:
            w("| call | minigen |\n|---|---|\n")
            for label, why in rows:
                w(f"| `{label}` | {why.replace('|', '/')} |\n")
        else:
            w("(none)\n")
        w("\n")
    return f.getvalue()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(here, "docs", "compat.md"), help="output path, '-' for stdout")
    args = ap.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("compat_table: torch is not installed; it is the reference this table compares against",
              file=sys.stderr)
        return 2
    text = render(*build())
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as fh:
            fh.write(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
