"""Generate the API reference pages (run by the ``gen-files`` plugin at every ``mkdocs build``).

- ``reference/index.md``: every public module of minigen, one page each, rendered by mkdocstrings from the
  docstrings (``::: module``), so the text shown is the text in the code.
- ``reference/ops/<topic>.md``: one page per op file of ``minigen/ops/``. For each op (a ``Function``
  subclass): its forward and backward formula (the class docstring, verbatim), the public functions that
  call it, its PyTorch counterpart, the kernels registered for it (CPU Numba / GPU CUDA, read from
  ``minigen.kernels.dispatch.kernel_names()`` and ``contract(name)``), and the tests that check it
  (found by reading ``tests/*.py`` now, at build time).
- ``reference/kernels.md``: every kernel with its contract (the reference it must equal).

Nothing here is written by hand per op: add an op or a kernel or a test and the pages follow.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import sys

import mkdocs_gen_files

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from minigen.autograd.function import Function  # noqa: E402
from minigen.kernels import dispatch  # noqa: E402

try:  # the PyTorch counterpart is checked against torch when it is installed (never required)
    import torch
    import torch.nn.functional as TF
except Exception:  # noqa: BLE001
    torch = TF = None


# ------------------------------------------------------------------ public modules
def public_modules():
    """Dotted names of the public modules: every file under minigen/ and kernels/ (installed as
    minigen.kernels) whose path has no component starting with '_' (packages by their __init__)."""
    mods = []
    for top, dotted in (("minigen", "minigen"), ("kernels", "minigen.kernels")):
        base = os.path.join(REPO, top)
        for root, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")) and d != "files")
            rel = os.path.relpath(root, base)
            parts = [] if rel == "." else rel.split(os.sep)
            for fn in sorted(files):
                if not fn.endswith(".py"):
                    continue
                stem = fn[:-3]
                if stem == "__init__":
                    mods.append(".".join([dotted] + parts))
                elif not stem.startswith("_"):
                    mods.append(".".join([dotted] + parts + [stem]))
    return sorted(set(mods))


# ------------------------------------------------------------------ tests, read at build time
def collect_tests():
    """[(file, test name, source)] for every test function in tests/*.py."""
    out = []
    tdir = os.path.join(REPO, "tests")
    for fn in sorted(os.listdir(tdir)):
        if not (fn.startswith("test_") and fn.endswith(".py")) or fn in ("test_docs.py", "test_tutorials.py"):
            continue
        with open(os.path.join(tdir, fn), encoding="utf-8") as f:
            src = f.read()
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                out.append((fn, node.name, ast.get_source_segment(src, node) or ""))
    # the op table (tests/op_table.py): each row is checked by test_op_table.py on every backend
    table = os.path.join(tdir, "op_table.py")
    if os.path.exists(table):
        with open(table, encoding="utf-8") as f:
            tsrc = f.read()
        for m in re.finditer(r'^op\(\s*"([^"]+)",\s*([^\n]*)', tsrc, re.M):
            row, body = m.group(1), re.sub(r"^((?:mg|F)\.\w+)", r"\1(", m.group(2))  # `F.x,` reads as a call
            for test in ("test_gradcheck", "test_matches_torch"):
                out.append(("test_op_table.py", f"{test}[reference-{row}]", body))
    return out


def tests_for(names, tests, limit=10):
    """Tests whose body calls one of ``names`` (``name(`` or ``Name.apply``) -- what checks the op."""
    if not names:
        return [], 0
    pat = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                     + r")(?:\(|\.apply\b|\b(?=[\"']))")
    hits = [f"tests/{fn}::{name}" for fn, name, body in tests if pat.search(body)]
    # gradcheck / torch-oracle tests first: they are what the promise rests on
    hits.sort(key=lambda h: (0 if "grad" in h else 1 if "torch" in h else 2, h))
    return hits[:limit], len(hits)


# ------------------------------------------------------------------ kernels
def kernel_table():
    """[(name, 'CPU (Numba)'|'GPU (CUDA)', contract)] for every registered kernel."""
    rows = []
    cpu = dispatch.kernel_names("numpy")
    contracts = {n: dispatch.contract(n, "numpy") for n in cpu}
    for n in cpu:
        rows.append((n, "CPU (Numba)", contracts[n]))
    try:
        gpu = dispatch.kernel_names("cupy")
    except Exception:  # noqa: BLE001 -- GPU kernel modules need nothing at import, but stay safe
        gpu = []
    for n in gpu:
        c = dispatch.contract(n, "cupy") or contracts.get(n)
        rows.append((n, "GPU (CUDA)", c))
    return rows


def torch_counterpart(fname, in_functional):
    if torch is None:
        guess = f"torch.nn.functional.{fname}" if in_functional else f"torch.{fname}"
        return f"`{guess}` (by name; torch was not installed when this page was built)"
    found = []
    if hasattr(TF, fname):
        found.append(f"`torch.nn.functional.{fname}`")
    if hasattr(torch, fname):
        found.append(f"`torch.{fname}`")
    if hasattr(torch.Tensor, fname):
        found.append(f"`torch.Tensor.{fname}`")
    return ", ".join(found) if found else "none by this name"


def op_sections(topic, tests, kernels):
    mod = importlib.import_module(f"minigen.ops.{topic}")
    public = [n for n in getattr(mod, "__all__", []) if callable(getattr(mod, n, None))]
    import minigen.nn.functional as F
    callers = {}  # Function class name -> public functions whose source calls Class.apply
    for n in public:
        fn = getattr(mod, n)
        try:
            src = inspect.getsource(fn)
        except (TypeError, OSError):
            continue
        for cls in re.findall(r"\b([A-Z]\w*)\.apply\b", src):
            callers.setdefault(cls, []).append(n)
    classes = [c for _, c in inspect.getmembers(mod, inspect.isclass)
               if issubclass(c, Function) and c is not Function and c.__module__ == mod.__name__]
    def line_of(c):
        try:
            return inspect.getsourcelines(c)[1]
        except (OSError, TypeError):  # a class made by a factory: after the written ones
            return 10 ** 9

    classes.sort(key=lambda c: (line_of(c), c.__name__))
    lines = []
    for c in classes:
        doc = inspect.cleandoc(c.__doc__ or "(no docstring)")
        fns = callers.get(c.__name__, [])
        lines.append(f"### `{c.__name__}`\n")
        lines.append("Forward and backward, from the class docstring (`g` is the incoming gradient dL/dy):\n")
        lines.append("```text\n" + doc + "\n```\n")
        rows = []
        if fns:
            rows.append("| public function | " + ", ".join(
                f"`mg.{n}`" + (", `F." + n + "`" if hasattr(F, n) else "") for n in fns) + " |")
            rows.append("| PyTorch counterpart | " + "; ".join(
                torch_counterpart(n, hasattr(F, n)) for n in fns) + " |")
        else:
            rows.append("| public function | internal (used by other ops or layers) |")
        ks = [k for k in kernels if k[2] and k[2].split(":")[0] == mod.__name__
              and k[2].split(":")[1].split(".")[0] in ([c.__name__] + fns)]
        rows.append("| kernels | " + (", ".join(f"`{k[0]}` ({k[1]})" for k in ks) if ks else
                                     "none: the NumPy reference (CPU) and the same `xp` code (CuPy) run") + " |")
        hits, total = tests_for([c.__name__] + fns, tests)
        rows.append("| tests | " + ("<br>".join(f"`{h}`" for h in hits) + (f"<br>... and {total - len(hits)} more"
                                                                          if total > len(hits) else "")
                                    if hits else "none found by name") + " |")
        lines.append(f"| | `{c.__name__}` |\n|---|---|\n" + "\n".join(rows) + "\n")
    return lines, len(classes)


def main():
    tests = collect_tests()
    kernels = kernel_table()
    # GPU kernels carry no contract of their own: they promise what the CPU kernel of the same name promises
    mods = public_modules()
    nav = ["# API reference\n",
           "Generated at build time from the docstrings (mkdocstrings): what you read here is the text in the "
           "code. The **op pages** add, for every differentiable op, its forward/backward formula, its PyTorch "
           "counterpart, the kernels that may run it and the tests that check it.\n",
           "## Ops (one page per file of `minigen/ops/`)\n"]
    topics = sorted(m.rsplit(".", 1)[1] for m in mods if m.startswith("minigen.ops.") and m != "minigen.ops.methods")
    n_ops = 0
    for topic in topics:
        body, n = op_sections(topic, tests, kernels)
        n_ops += n
        with mkdocs_gen_files.open(f"reference/ops/{topic}.md", "w") as f:
            f.write(f"# `minigen.ops.{topic}`\n\n")
            if n:
                f.write(f"{n} op{'s' if n > 1 else ''}. Each section: the op's formula as its docstring states it, "
                        "its public function, PyTorch counterpart, kernels and tests. The module's full docstrings "
                        "follow.\n\n")
                f.write("## Ops\n\n" + "\n".join(body) + "\n")
            else:
                f.write("No `Function` of its own: the functions here are written with the ops of the other pages, "
                        "so their gradients are those ops' gradients.\n\n")
            f.write("## Module reference\n\n")
            f.write(f"::: minigen.ops.{topic}\n    options:\n      heading_level: 3\n")
        nav.append(f"- [`minigen.ops.{topic}`](ops/{topic}.md) ({n} op{'' if n == 1 else 's'})")
    nav.append("\n## Kernels\n\n- [every kernel and its contract](kernels.md)\n\n## Modules\n")
    for m in mods:
        if m.startswith("minigen.ops.") and m != "minigen.ops.methods":
            continue
        path = "modules/" + m.replace(".", "/") + ".md"
        with mkdocs_gen_files.open(f"reference/{path}", "w") as f:
            # kernels/ is installed as minigen.kernels (setup.py package_dir); in the source tree, where
            # mkdocstrings reads it, it is the folder kernels/
            ident = "kernels" + m[len("minigen.kernels"):] if (m + ".").startswith("minigen.kernels.") else m
            f.write(f"# `{m}`\n\n::: {ident}\n    options:\n      heading_level: 2\n")
        nav.append(f"- [`{m}`]({path})")
    with mkdocs_gen_files.open("reference/index.md", "w") as f:
        f.write("\n".join(nav) + "\n")
    with mkdocs_gen_files.open("reference/kernels.md", "w") as f:
        f.write("# Kernels\n\nRead from `minigen.kernels.dispatch` at build time: `kernel_names(xp)` and "
                "`contract(name, xp)`. A kernel's **contract** is the reference it must equal; a property test "
                "checks each (`tests/test_kernel_contracts.py`, `tests/test_kernels_*.py`). A GPU kernel "
                "promises what the CPU kernel of the same name promises.\n\n"
                "| kernel | runs on | contract (reference) |\n|---|---|---|\n")
        for name, where, c in kernels:
            f.write(f"| `{name}` | {where} | {'`' + c + '`' if c else 'none stated (a random-number kernel)'} |\n")
    print(f"gen_api: {len(mods)} modules, {n_ops} ops, {len(kernels)} kernels, {len(tests)} tests read")


main()
