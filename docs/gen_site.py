"""Generate the landing page, the README page and the tutorial pages (run by ``gen-files`` at every build).

Tutorials (``docs/tutorials/NN_*.py``, Jupytext percent format) are executed by ``docs/nbrun.py`` in a
fresh process each; a run is cached in ``build/docs-tutorials/<name>/`` under a hash of the tutorial, the
runner and the library sources, so a second build (or a build after ``pytest tests/test_tutorials.py``,
which writes the same cache) reuses it, and any change re-runs it. Every picture, audio file and text
sample on the pages is what that run wrote.

The landing page takes the README's opening paragraph and its quick start (read now, not copied by hand)
and a gallery of the files the tutorials named ``gallery_*``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re

import mkdocs_gen_files

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CACHE = os.environ.get("MINIGEN_DOCS_CACHE", os.path.join(REPO, "build", "docs-tutorials"))

_spec = importlib.util.spec_from_file_location("minigen_docs_nbrun", os.path.join(HERE, "nbrun.py"))
nbrun = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbrun)

DOC_PAGES = ("ARCHITECTURE.md", "GPU.md", "DISTRIBUTED.md", "compat.md")


def tutorials():
    tdir = os.path.join(HERE, "tutorials")
    return sorted(os.path.join(tdir, f) for f in os.listdir(tdir) if re.match(r"\d\d_\w+\.py$", f))


def title_of(path):
    with open(path, encoding="utf-8") as f:
        for ln in f:
            m = re.match(r"#\s*#\s+(.+)", ln)
            if m:
                return m.group(1).strip()
    return os.path.basename(path)


def readme_sections():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    intro = text.split("\n## ", 1)[0].split("\n", 1)[1].strip()
    m = re.search(r"\n## Quick start\n(.*?)(?=\n## )", text, re.S)
    return text, intro, (m.group(1).strip() if m else "")


def fix_links(md):
    """README links, made to work inside the site: docs/X.md -> X.md; other repository paths -> code."""
    def sub(m):
        label, target = m.group(1), m.group(2)
        if target.startswith(("http://", "https://", "#")):
            return m.group(0)
        if target.startswith("docs/") and target[5:] in DOC_PAGES:
            return f"[{label}]({target[5:]})"
        return f"{label} (`{target}`)" if label != target else f"`{target}`"
    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", sub, md)


def fix_doc_links(md):
    """In a docs/ page: a relative link whose target is not a docs page -> the repository path as code."""
    def sub(m):
        label, target = m.group(1), m.group(2)
        if target.startswith(("http://", "https://", "#", "mailto:")):
            return m.group(0)
        path = target.split("#", 1)[0]
        if os.path.exists(os.path.normpath(os.path.join(HERE, path))) and path.startswith(tuple(DOC_PAGES)):
            return m.group(0)
        repo_path = os.path.relpath(os.path.normpath(os.path.join(HERE, path)), REPO)
        return f"{label} (`{repo_path}`)" if label != target else f"`{repo_path}`"
    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", sub, md)


def main():
    # the pages others own (docs/*.md): shown as written, with links that leave docs/ (repository files
    # such as benchmark results, which are not part of the site) turned into plain repository paths
    for page in DOC_PAGES:
        with open(os.path.join(HERE, page), encoding="utf-8") as f:
            text = f.read()
        with mkdocs_gen_files.open(page, "w") as f:
            f.write(fix_doc_links(text))
    runs = []
    for path in tutorials():
        name = os.path.splitext(os.path.basename(path))[0]
        folder, info = nbrun.cached_run(path, CACHE, REPO)
        with open(os.path.join(folder, "page.md"), encoding="utf-8") as f:
            page = f.read()
        with mkdocs_gen_files.open(f"tutorials/{name}.md", "w") as f:
            f.write(page)
        gallery = []
        for root, _, files in os.walk(folder):
            for fn in sorted(files):
                rel = os.path.relpath(os.path.join(root, fn), folder)
                if fn in ("page.md", "run.json", "_key"):
                    continue
                with open(os.path.join(root, fn), "rb") as src, \
                        mkdocs_gen_files.open(f"tutorials/{name}/{rel}", "wb") as dst:
                    dst.write(src.read())
                if fn.startswith("gallery_"):
                    gallery.append(rel)
        # the tutorial sources, for download
        with open(path, "rb") as src, mkdocs_gen_files.open(f"tutorials/{name}.py", "wb") as dst:
            dst.write(src.read())
        runs.append((name, title_of(path), info, folder, gallery))
        print(f"gen_site: {name}: {info['seconds']} s")

    text, intro, quick = readme_sections()
    with mkdocs_gen_files.open("readme.md", "w") as f:
        f.write(fix_links(text))

    out = ["# minigen\n", fix_links(intro) + "\n",
           "This site is built from the repository by one command; every formula is rendered offline "
           "(KaTeX, bundled), the API reference is generated from the docstrings, and every picture, text "
           "sample and sound below was produced by the tutorials' code while the site was built.\n",
           "## Quick start\n", fix_links(quick) + "\n",
           "Documentation, locally:\n\n```bash\npip install -e \".[docs]\" && mkdocs serve\n```\n\n"
           "(`mkdocs build --strict` writes the static site to `site/`; the tutorials run once and are cached in "
           "`build/docs-tutorials/`.)\n",
           "## Gallery\n",
           "Produced by the code of the tutorials during this build, on CPU, each in under a minute: small models "
           "and tiny budgets, so judge the pictures as what one minute of training gives.\n",
           '<div class="mg-gallery" markdown="1">\n']
    for name, title, info, folder, gallery in runs:
        for rel in gallery:
            url = f"tutorials/{name}/{rel}"
            cap = f"[{title}](tutorials/{name}.md)"
            if rel.endswith((".png", ".svg")):
                out.append(f'<div class="mg-card" markdown="1">\n![{rel}]({url})\n\n{cap}\n</div>\n')
            elif rel.endswith(".wav"):
                out.append(f'<div class="mg-card" markdown="1">\n<audio controls preload="metadata" src="{url}">'
                           f'</audio>\n\n`{rel}` — {cap}\n</div>\n')
            elif rel.endswith(".txt"):
                with open(os.path.join(folder, rel), encoding="utf-8") as f:
                    sample = f.read().strip()
                out.append(f'<div class="mg-card mg-card-wide" markdown="1">\n```text\n{sample}\n```\n\n'
                           f'{cap}\n</div>\n')
    out.append("</div>\n")
    out.append("## Tutorials\n")
    out.append("Each is a Python file (Jupytext percent format: `jupytext --to notebook` opens it as a notebook) "
               "that the test suite runs (`tests/test_tutorials.py`), so none of them can rot.\n")
    for name, title, info, _, _ in runs:
        cpu = info.get("process_cpu_seconds", info["cpu_seconds"])
        out.append(f"{int(name[:2])}. [{title}](tutorials/{name}.md) — ran in {info['seconds']} s (CPU {cpu} s)")
    out.append("\n## More\n")
    out.append("- [API reference](reference/index.md): every public module, and for every op its formula, "
               "PyTorch counterpart, kernels and tests.\n"
               "- [Architecture](ARCHITECTURE.md): the layers and what an op is.\n"
               "- [GPU](GPU.md), [Distributed](DISTRIBUTED.md), [PyTorch compatibility](compat.md).\n"
               "- [The README](readme.md): model zoo numbers, benchmarks, command line.\n")
    with mkdocs_gen_files.open("index.md", "w") as f:
        f.write("\n".join(out))
    with mkdocs_gen_files.open("tutorials/runs.json", "w") as f:
        json.dump({name: info for name, _, info, _, _ in runs}, f, indent=1)


main()
