"""Run a Jupytext percent-format tutorial (``docs/tutorials/NN_name.py``) and write it as a Markdown page.

The tutorials are plain Python files in Jupytext's *percent* format: ``# %% [markdown]`` cells hold the
prose (Markdown, math between ``$...$`` / ``$$...$$``), ``# %%`` cells hold code. ``jupytext --to notebook``
opens one as a notebook; ``python docs/tutorials/NN_name.py`` runs it as a script. This module is the
small executor the docs build and the test suite share (no Jupyter kernel needed):

- every code cell runs in one namespace, in a fresh process, with the output folder as the working
  directory, so files a cell writes (``plt.savefig("x.png")``, ``write_wav("x.wav", ...)``) land beside
  the page;
- what a cell prints is captured and shown under it;
- matplotlib figures a cell leaves open are saved as PNG and shown under it;
- files a cell creates are shown under it: images (.png/.svg) as pictures, .wav as an ``<audio>`` player,
  .txt as text;
- an exception stops the run and names the tutorial and the cell (the build and the tests fail).

Command line: ``python docs/nbrun.py TUTORIAL.py OUT_DIR`` writes ``OUT_DIR/page.md`` (image links are
relative to ``OUT_DIR``'s name, so the page goes next to that folder) and ``OUT_DIR/run.json``
(seconds, CPU seconds, cells).

Cache: :func:`cached_run` reuses a run only when the tutorial, this runner and the library sources are
unchanged (a hash); ``MINIGEN_DOCS_REUSE=1`` reuses whatever run is there (for editing the pages only).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
import traceback

CELL = re.compile(r"^# %%(.*)$")
SHOWN = (".png", ".svg", ".wav", ".txt")


def parse_cells(source: str):
    """[(kind, text)] with kind 'markdown' or 'code', from a percent-format file (header block skipped)."""
    lines = source.splitlines()
    # the Jupytext YAML header: a leading "# ---" ... "# ---" block
    if lines and lines[0].strip() == "# ---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "# ---"), None)
        if end is not None:
            lines = lines[end + 1:]
    cells, kind, buf = [], None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(buf).strip("\n")
        if kind == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", ln) for ln in text.splitlines())
        if text.strip():
            cells.append((kind, text))

    for ln in lines:
        m = CELL.match(ln)
        if m:
            flush()
            kind = "markdown" if "[markdown]" in m.group(1) else "code"
            buf = []
        elif kind is not None:
            buf.append(ln)
    flush()
    return cells


def _new_files(out_dir, before):
    """Files created or rewritten since the snapshot ``before``: (their names, the new snapshot)."""
    now = set()
    for root, _, files in os.walk(out_dir):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            now.add((os.path.relpath(p, out_dir), st.st_mtime_ns, st.st_size))
    return sorted({n for n, _, _ in now - before}), now


def _embed(rel, out_dir, prefix):
    url = f"{prefix}/{rel}" if prefix else rel
    ext = os.path.splitext(rel)[1].lower()
    if ext in (".png", ".svg"):
        return f"![{os.path.basename(rel)}]({url})"
    if ext == ".wav":
        return (f'<figure class="nbrun-audio"><audio controls preload="metadata" src="{url}"></audio>'
                f'<figcaption>{os.path.basename(rel)}</figcaption></figure>')
    if ext == ".txt":
        with open(os.path.join(out_dir, rel), encoding="utf-8") as f:
            text = f.read()
        return f"`{os.path.basename(rel)}`\n\n```text\n{text.rstrip()}\n```"
    return None


def run(path: str, out_dir: str, prefix: str | None = None) -> dict:
    """Execute the tutorial at ``path`` in this process with ``out_dir`` as working directory; write
    ``out_dir/page.md``. ``prefix``: how the page links to ``out_dir`` (default: its folder name)."""
    path = os.path.abspath(path)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.basename(out_dir) if prefix is None else prefix
    with open(path, encoding="utf-8") as f:
        cells = parse_cells(f.read())
    name = os.path.basename(path)
    ns = {"__name__": "__main__", "__file__": path}
    md, t0, c0 = [], time.perf_counter(), time.process_time()
    old_cwd = os.getcwd()
    os.chdir(out_dir)
    # matplotlib (and so NumPy) is imported by the tutorial, not here, so that a tutorial can set thread
    # environment variables before NumPy loads (tutorial 8); figures are collected once pyplot is loaded
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        _, seen = _new_files(out_dir, set())
        fig_no = 0
        for i, (kind, text) in enumerate(cells, 1):
            if kind == "markdown":
                md.append(text)
                continue
            md.append(f"```python\n{text}\n```")
            buf = io.StringIO()
            try:
                with contextlib.redirect_stdout(buf):
                    exec(compile(text, f"{name} (cell {i})", "exec"), ns)
            except Exception as e:  # noqa: BLE001 -- re-raised with the cell named
                sys.stdout.write(buf.getvalue())
                raise RuntimeError(f"{name}: cell {i} failed:\n{text}\n\n{traceback.format_exc()}") from e
            printed = buf.getvalue().rstrip()
            if printed:
                md.append(f"```text\n{printed}\n```")
            plt = sys.modules.get("matplotlib.pyplot")
            for num in (plt.get_fignums() if plt else []):
                fig_no += 1
                fname = f"figure_{fig_no:02d}.png"
                plt.figure(num).savefig(fname, dpi=90, bbox_inches="tight")
                plt.close(num)
            new, seen = _new_files(out_dir, seen)
            for rel in new:
                if rel.endswith(SHOWN) and not rel.startswith("_"):
                    block = _embed(rel, out_dir, prefix)
                    if block:
                        md.append(block)
    finally:
        os.chdir(old_cwd)
    info = {"tutorial": name, "seconds": round(time.perf_counter() - t0, 2),
            "cpu_seconds": round(time.process_time() - c0, 2), "cells": len(cells)}
    md.append(f'<p class="nbrun-footer">Ran in {info["seconds"]} s (CPU {info["cpu_seconds"]} s) when this site was '
              f'built. Source: <code>docs/tutorials/{name}</code>.</p>')
    with open(os.path.join(out_dir, "page.md"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(md) + "\n")
    with open(os.path.join(out_dir, "run.json"), "w", encoding="utf-8") as f:
        json.dump(info, f)
    return info


def source_key(path: str, repo: str) -> str:
    """A hash of the tutorial, this runner and the library's sources: a cached run is reused only when
    none of them changed."""
    h = hashlib.sha256()
    for p in (path, __file__):
        with open(p, "rb") as f:
            h.update(f.read())
    for top in ("minigen", "kernels"):
        for root, dirs, files in os.walk(os.path.join(repo, top)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for fn in sorted(files):
                if fn.endswith(".py"):
                    with open(os.path.join(root, fn), "rb") as f:
                        h.update(fn.encode() + f.read())
    return h.hexdigest()


def run_subprocess(path: str, out_dir: str, timeout: float = 600) -> dict:
    """Run the tutorial in a fresh Python process (no state shared with the caller); returns run.json,
    with 'cpu_seconds' counting the child's CPU time on all threads."""
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    before = os.times()
    r = subprocess.run([sys.executable, os.path.abspath(__file__), path, out_dir], env=env, capture_output=True,
                       text=True, timeout=timeout)
    after = os.times()
    if r.returncode != 0:
        raise RuntimeError(f"tutorial {os.path.basename(path)} failed (exit {r.returncode}):\n{r.stdout[-4000:]}\n"
                           f"{r.stderr[-8000:]}")
    with open(os.path.join(out_dir, "run.json"), encoding="utf-8") as f:
        info = json.load(f)
    info["process_cpu_seconds"] = round((after.children_user - before.children_user)
                                        + (after.children_system - before.children_system), 2)
    with open(os.path.join(out_dir, "run.json"), "w", encoding="utf-8") as f:
        json.dump(info, f)
    return info


def cached_run(path: str, cache_root: str, repo: str) -> tuple[str, dict]:
    """Run the tutorial into ``cache_root/<name>`` unless a run of the same sources is there already;
    returns (folder, run info)."""
    name = os.path.splitext(os.path.basename(path))[0]
    out_dir = os.path.join(cache_root, name)
    key = source_key(path, repo)
    key_file = os.path.join(out_dir, "_key")
    reuse_any = os.environ.get("MINIGEN_DOCS_REUSE") == "1"  # local iteration on the pages: keep old runs
    if (os.path.exists(key_file) or reuse_any) and os.path.exists(os.path.join(out_dir, "page.md")):
        with open(key_file if os.path.exists(key_file) else os.devnull, encoding="utf-8") as f:
            if reuse_any or f.read().strip() == key:
                with open(os.path.join(out_dir, "run.json"), encoding="utf-8") as f2:
                    return out_dir, json.load(f2)
    if os.path.isdir(out_dir):
        import shutil
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    info = run_subprocess(path, out_dir)
    with open(key_file, "w", encoding="utf-8") as f:
        f.write(key)
    return out_dir, info


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python docs/nbrun.py TUTORIAL.py OUT_DIR")
    print(json.dumps(run(sys.argv[1], sys.argv[2])))
