#!/usr/bin/env python
"""Generate docs/compat.md: which public names of PyTorch minigen has, lacks, or differs on.

    python tools/compat_table.py                 # writes docs/compat.md
    python tools/compat_table.py --out -         # prints it

Needs torch installed (it is the thing compared against) and minigen importable. Nothing in the
tables is written by hand: for each namespace pair below the script lists torch's public names and
looks each one up in minigen:

- *has*: minigen has the name and nothing below applies;
- *differs*: minigen has it, but (a) a keyword argument torch accepts is missing from minigen's
  signature, or (b) a default value differs; a positional argument that only has another name
  (``other`` vs ``y``) is listed separately, as it only matters for keyword calls (both read with ``inspect.signature``; for torch's C
  functions, from the signature line(s) that open their docstrings); the table says which;
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
import os
import re
import sys
import types

IGNORED_ARGS = {"out", "layout", "memory_format", "pin_memory", "names", "foreach", "fused", "capturable",
                "differentiable", "self", "cls"}
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
           "torch.nn.utils.rnn": torch.nn.utils.rnn}[space]
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


def _sig_params(obj):
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
    for p in sig.parameters.values():
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


def compare(tobj, mobj, name):
    """(differences, renames): human-readable differences between torch's and minigen's callables, and the
    positional arguments that only have another name in minigen (keyword calls with torch's name fail)."""
    if not callable(tobj) or not callable(mobj):
        return [], []
    t = _sig_params(tobj)
    if t is None:
        d = _doc_params(tobj, name)
        if d is None:
            return [], []
        tp, tpos = d
    else:
        tp, _, tpos = t
    m = _sig_params(mobj)
    if m is None:
        return [], []
    mp, mvarkw, mpos = m
    diffs, renames = [], []
    # the first positional argument is passed positionally in practice (input vs x): do not count its name
    skip = {_first_positional(tobj) or "input", "input", "self"}
    if not mvarkw:
        missing = []
        for p in tp:
            if p in mp or p in IGNORED_ARGS or p in skip:
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
            "torch.nn.utils.rnn": "minigen.nn.utils.rnn"}
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
          "torch.nn.init", "torch.utils.data", "torch.nn.utils.rnn"]


def build():
    import numpy as np
    import torch

    import minigen as mg

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
            d, r = compare(tobj, mobj, name)
            if d:
                differs.append((name, d + ([f"positional names: {', '.join(r)}"] if r else [])))
            elif r:
                renamed.append((name, r))
            else:
                has.append(name)
        results[space] = dict(has=has, differs=differs, renamed=renamed, lacks=lacks, broken=broken)
    versions = dict(torch=torch.__version__, minigen=mg.__version__, numpy=np.__version__,
                    python=sys.version.split()[0])
    return results, versions


def _resolve(torch, space, name):
    obj = torch
    for part in space.split(".")[1:]:
        obj = getattr(obj, part)
    return getattr(obj, name)


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


def render(results, versions):
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
        w(f"\n### Lacks ({len(r['lacks'])})\n\n{_wrap(r['lacks'])}\n\n")
        w(f"### Has ({len(r['has'])})\n\n{_wrap(r['has'])}\n\n")
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
