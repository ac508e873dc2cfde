// Render the math pymdownx.arithmatex marked (\( \) inline, \[ \] display) with the bundled KaTeX.
// Material's instant navigation swaps pages without reloading, so render on every page it shows.
function minigenRenderMath(root) {
  renderMathInElement(root, {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false,
  });
  root.querySelectorAll(".arithmatex").forEach((el) => el.classList.add("mg-math-done"));
}
if (typeof document$ !== "undefined") {
  document$.subscribe(({ body }) => minigenRenderMath(body));
} else {
  document.addEventListener("DOMContentLoaded", () => minigenRenderMath(document.body));
}
