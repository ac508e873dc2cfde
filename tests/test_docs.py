"""The documentation site: it builds with warnings as errors, and in a real headless browser (Chromium, no
network) its formulas are rendered by the bundled KaTeX, no raw $...$ is left, and every image loads.

Skips cleanly when MkDocs (``pip install -e ".[docs]"``) or Chromium (``apt-get install chromium``) /
Playwright's Python package are missing; ``.ci/run`` installs them. ``MINIGEN_DOCS_SITE=path`` tests an
already built site instead of building one; ``MINIGEN_DOCS_SCREENSHOTS=dir`` keeps the screenshots there.
"""
import glob
import os
import re
import subprocess
import sys
import urllib.parse

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"

for _mod in ("mkdocs", "material", "mkdocstrings", "mkdocs_gen_files"):
    pytest.importorskip(_mod, reason='the docs tools are not installed (pip install -e ".[docs]")')

TUTORIAL_PAGES = [f"tutorials/{os.path.basename(p)[:-3]}.html"
                  for p in sorted(glob.glob(os.path.join(REPO, "docs", "tutorials", "[0-9][0-9]_*.py")))]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    given = os.environ.get("MINIGEN_DOCS_SITE")
    if given:
        assert os.path.exists(os.path.join(given, "index.html")), f"MINIGEN_DOCS_SITE={given} has no index.html"
        return given
    out = str(tmp_path_factory.mktemp("site"))
    env = dict(os.environ, DISABLE_MKDOCS_2_WARNING="true", NO_MKDOCS_2_WARNING="1")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", out], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return out


def _text(html):
    """The text of an HTML page (code highlighting splits commands into spans)."""
    import html as html_mod
    return html_mod.unescape(re.sub(r"<[^>]+>", "", html))


def _read(site, page):
    with open(os.path.join(site, page), encoding="utf-8") as f:
        return f.read()


def test_pages_are_there(site):
    for page in ["index.html", "readme.html", "ARCHITECTURE.html", "GPU.html", "DISTRIBUTED.html", "compat.html",
                 "reference/index.html", "reference/kernels.html", "reference/ops/activation.html",
                 "reference/modules/minigen/kernels/dispatch.html", *TUTORIAL_PAGES]:
        assert os.path.exists(os.path.join(site, page)), page
    assert len(TUTORIAL_PAGES) == 8


def test_landing_page_has_quick_start_and_a_generated_gallery(site):
    html = _read(site, "index.html")
    text = _text(html)
    assert "pip install . && minigen demo" in text                   # the README's two quick-start commands
    assert 'pip install -e ".[test]" && python -m pytest -q' in text
    assert 'pip install -e ".[docs]" && mkdocs serve' in text
    gallery = re.findall(r'(?:src|href)="(tutorials/\d\d_\w+/gallery_[^"]+)"', html)
    kinds = {os.path.splitext(g)[1] for g in gallery}
    assert {".png", ".wav"} <= kinds, gallery
    for g in gallery:
        assert os.path.getsize(os.path.join(site, g)) > 0, g
    assert "--- temperature" in html  # generated text samples (char-LSTM)


def test_op_pages_show_formula_torch_kernels_and_tests(site):
    html = _read(site, "reference/ops/activation.html")
    sec = html[html.index("<code>Softmax</code>"):]
    sec = sec[:sec.index("<h3", 10)]
    assert "dx = y * (g - sum(g * y, dim))" in _text(sec)                        # the backward formula
    assert "torch.nn.functional.softmax" in sec or "torch.softmax" in sec      # its PyTorch counterpart
    assert "softmax_forward" in sec and "CPU (Numba)" in sec and "GPU (CUDA)" in sec  # its kernels
    assert re.search(r"tests/test_\w+\.py::test_\w+", sec)                       # the tests that check it
    # every op file has a page; the op families have their sections
    pages = {os.path.basename(p)[:-5]: open(p, encoding="utf-8").read()
             for p in glob.glob(os.path.join(site, "reference", "ops", "*.html"))}
    for topic in ("activation", "pointwise", "linalg", "conv", "norm", "loss", "attention", "reduction", "rnn"):
        assert "Forward and backward, from the class docstring" in pages[topic], topic
    assert sum(p.count("Forward and backward, from the class docstring") for p in pages.values()) >= 100


def test_nothing_is_loaded_from_the_network(site):
    for page in glob.glob(os.path.join(site, "**", "*.html"), recursive=True):
        html = open(page, encoding="utf-8").read()
        remote = re.findall(r'<(?:script|link|img|audio)[^>]+(?:src|href)="(https?:)?//[^"]+"', html)
        assert not remote, (page, remote[:3])


# ------------------------------------------------------------------ the real browser
@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        ctx = b.new_context(offline=True, viewport={"width": 1280, "height": 900})  # no network at all
        yield ctx
        b.close()


CHECK_JS = r"""
async () => {
  await document.fonts.ready;
  const imgs = [...document.querySelectorAll("article img")];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));
  const math = [...document.querySelectorAll(".arithmatex")];
  const unrendered = math.filter(m => !m.querySelector(".katex")).map(m => m.textContent.slice(0, 80));
  // text outside code blocks and rendered math that still looks like TeX
  const walker = document.createTreeWalker(document.querySelector("article"), NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest("pre, code, script, style, .katex, .arithmatex")) continue;
    const t = n.textContent;
    if (/\$[^$\s][^$]*\$/.test(t) || /\\\(|\\\[|\\frac|\\sum|\\mathbb/.test(t)) raw.push(t.slice(0, 80));
  }
  return {images: imgs.length, broken, math: math.length, katex: document.querySelectorAll(".katex").length,
          unrendered, raw, katexFont: document.fonts.check("16px KaTeX_Main"),
          audio: [...document.querySelectorAll("audio")].map(a => a.getAttribute("src"))};
}
"""


AUDIO_JS = r"""
async () => Promise.all([...document.querySelectorAll("audio")].map(a => new Promise(done => {
  const report = () => done({src: a.getAttribute("src"), duration: a.duration || 0, error: a.error && a.error.code});
  if (a.readyState >= 1) return report();
  a.addEventListener("loadedmetadata", report);
  a.addEventListener("error", report);
  a.load();
  setTimeout(report, 10000);
})))
"""


def _url(site, page):
    return "file://" + urllib.parse.quote(os.path.join(os.path.abspath(site), page))


@pytest.mark.parametrize("page", ["index.html", *TUTORIAL_PAGES, "reference/ops/activation.html"])
def test_page_renders_in_chromium(site, browser, page):
    tab = browser.new_page()
    errors = []
    remote = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("request", lambda q: remote.append(q.url) if not q.url.startswith(("file:", "data:", "blob:")) else None)
    tab.goto(_url(site, page), wait_until="load")
    r = tab.evaluate(CHECK_JS)
    assert not errors, errors
    assert not remote, f"{page} asked the network for {remote[:5]}"
    assert not r["broken"], f"images that did not load on {page}: {r['broken']}"
    assert not r["unrendered"], f"math KaTeX did not render on {page}: {r['unrendered']}"
    assert not r["raw"], f"raw TeX left on {page}: {r['raw']}"
    for src in r["audio"]:
        assert os.path.getsize(os.path.join(site, os.path.dirname(page), src)) > 44, src  # more than a header
    if r["audio"]:  # the browser decodes every sound: its duration is known and positive
        audio = tab.evaluate(AUDIO_JS)
        assert all(a["duration"] > 0.1 and a["error"] is None for a in audio), audio
    if page.startswith("tutorials/"):
        assert r["math"] > 0 and r["katex"] >= r["math"], r      # every tutorial has formulas, all rendered
        assert r["katexFont"], "the bundled KaTeX fonts did not load"
        assert r["images"] > 0
    if page == "index.html":
        assert r["images"] >= 3 and len(r["audio"]) >= 1, r
    shots = os.environ.get("MINIGEN_DOCS_SCREENSHOTS")
    if shots and page in ("index.html", "tutorials/02_gan.html", "tutorials/06_wavenet.html"):
        os.makedirs(shots, exist_ok=True)
        tab.screenshot(path=os.path.join(shots, page.replace("/", "_").replace(".html", ".png")), full_page=False)
        tab.screenshot(path=os.path.join(shots, page.replace("/", "_").replace(".html", "_full.png")),
                       full_page=True)
    tab.close()
