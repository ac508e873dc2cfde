# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     name: python3
#     display_name: Python 3
# ---

# %% [markdown]
# # Autograd from scratch: one op, its graph, its gradient check
#
# Reverse-mode automatic differentiation rests on one rule. If $y = f(x)$ and a scalar loss $L$ depends on
# $y$, then with $g = \partial L / \partial y$ (the *incoming gradient*),
#
# $$\frac{\partial L}{\partial x} = g \, \frac{\partial y}{\partial x}.$$
#
# Every op therefore needs two things: a **forward** that computes $y$ from $x$, and a **backward** that
# turns $g$ into $\partial L/\partial x$. In minigen an op is a `Function` with exactly these two
# static methods. We write *softplus*,
#
# $$y = \log(1 + e^{x}), \qquad \frac{dy}{dx} = \frac{e^x}{1 + e^x} = \sigma(x),$$
#
# so the backward is $\partial L/\partial x = g\,\sigma(x)$.

# %%
import numpy as np
import minigen as mg
from minigen.autograd import Function
from minigen.testing import gradcheck, gradgradcheck


class MySoftplus(Function):
    """forward: y = log(1 + exp(x))      backward: dx = g * sigmoid(x)"""
    reads = ((0,),)                      # the gradient of x reads x

    @staticmethod
    def forward(ctx, x):                 # x is a raw NumPy (or CuPy) array
        return np.logaddexp(0.0, x)      # log(1 + e^x) without overflow for large x

    @staticmethod
    def backward(ctx, g):                # g and ctx.args are Tensors: this formula is itself differentiable
        (x,) = ctx.args
        return (g * x.sigmoid(),)


x = mg.tensor([-2.0, 0.0, 3.0], requires_grad=True)
y = MySoftplus.apply(x)
y.sum().backward()
print("y      =", y.array)
print("dy/dx  =", x.grad.array)
print("sigmoid=", 1 / (1 + np.exp(-x.array)))

# %% [markdown]
# ## The backward graph
#
# Every op output remembers the op that made it (`grad_fn`) and where its inputs came from. The
# backward pass walks this graph from the loss to the leaves in reverse topological order, summing the
# gradients that arrive at each node. `mg.autograd.to_dot(t)` writes the graph as Graphviz DOT text;
# below we lay that DOT text out ourselves (by depth from the output) and draw it to SVG with
# matplotlib, so no Graphviz install is needed. (`dot -Tsvg graph.dot` gives the same graph.)
#
# The loss is $L = \sum_i \mathrm{softplus}(w_i x_i) \cdot x_i$.

# %%
import re
import matplotlib.pyplot as plt

w = mg.tensor([0.5, -1.0, 2.0], requires_grad=True)
L = (MySoftplus.apply(w * x) * x).sum()
dot = mg.autograd.to_dot(L)
print(dot)


def draw_dot(dot_text, path):
    """Lay out a DOT digraph by longest distance from the output (rankdir=BT: output on top) and save it."""
    labels = dict(re.findall(r'^\s*(\w+) \[label="([^"]*)"', dot_text, re.M))
    edges = re.findall(r"^\s*(\w+) -> (\w+);", dot_text, re.M)
    parents = {n: [] for n in labels}
    for a, b in edges:                     # a -> b: a feeds b
        parents[a].append(b)
    depth = {}

    def d(n):
        if n not in depth:
            depth[n] = 0 if not parents[n] else 1 + max(d(p) for p in parents[n])
        return depth[n]

    for n in labels:
        d(n)
    rows = {}
    for n in sorted(labels, key=lambda n: (depth[n], labels[n])):
        rows.setdefault(depth[n], []).append(n)
    pos = {n: (i - (len(r) - 1) / 2, -k) for k, r in rows.items() for i, n in enumerate(r)}
    fig, ax = plt.subplots(figsize=(6, 1.2 * (len(rows) + 1)))
    for a, b in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate("", xy=(x1, y1 - 0.18), xytext=(x0, y0 + 0.18),
                    arrowprops=dict(arrowstyle="->", color="0.4"))
    for n, (px, py) in pos.items():
        leaf = not labels[n].endswith("Backward") and not labels[n].startswith("output")
        ax.text(px, py, labels[n].replace("\\n", "\n"), ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round", fc="#e8ffe0" if leaf else "#dde8ff", ec="0.5"))
    ax.set_xlim(-2, 2)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


draw_dot(dot, "backward_graph.svg")

# %% [markdown]
# Green boxes are the leaves ($x$ and $w$); blue boxes are the backward nodes the engine runs. $x$ feeds
# two ops (`MulBackward` twice), so its gradient is the **sum** of two contributions, which the engine
# accumulates before finishing $x$.
#
# ## Checking a gradient: central differences
#
# A backward can be wrong in ways no type checker sees. `gradcheck` compares it with the central
# difference
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + \varepsilon e_i) - L(x - \varepsilon e_i)}{2\varepsilon},$$
#
# whose error is $O(\varepsilon^2)$, in float64 (in float32 the rounding error $\sim 10^{-7}/\varepsilon$ would
# swamp it). A deliberately wrong backward fails.

# %%
x64 = mg.tensor(np.linspace(-3, 3, 7), dtype=mg.float64, requires_grad=True)
print("correct backward passes:", gradcheck(lambda t: MySoftplus.apply(t), (x64,)))


class WrongSoftplus(MySoftplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        return (g * x.sigmoid() * 1.01,)   # 1% off


print("1% wrong backward passes:", gradcheck(lambda t: WrongSoftplus.apply(t), (x64,), raise_exception=False))

# %% [markdown]
# ## Higher-order gradients
#
# Because `backward` is written with Tensor ops, running it with `create_graph=True` records the
# backward itself as a graph, which can be differentiated again. For softplus,
#
# $$y' = \sigma(x), \qquad y'' = \sigma(x)\,(1 - \sigma(x)), \qquad y''' = \sigma(x)(1-\sigma(x))(1 - 2\sigma(x)).$$
#
# `gradgradcheck` checks the second derivative numerically; the plot shows the first three derivatives
# obtained by calling `mg.grad` three times.

# %%
print("second derivative checks:", gradgradcheck(lambda t: MySoftplus.apply(t), (x64,)))

xs = mg.tensor(np.linspace(-6, 6, 200), dtype=mg.float64, requires_grad=True)
ys = MySoftplus.apply(xs)
(d1,) = mg.grad(ys.sum(), [xs], create_graph=True)
(d2,) = mg.grad(d1.sum(), [xs], create_graph=True)
(d3,) = mg.grad(d2.sum(), [xs])
s = 1 / (1 + np.exp(-xs.array))
print("max |d3 - formula| =", float(np.abs(d3.array - s * (1 - s) * (1 - 2 * s)).max()))

fig, ax = plt.subplots(figsize=(6, 3.2))
for t, lab in ((ys, "softplus"), (d1, "1st derivative"), (d2, "2nd"), (d3, "3rd")):
    ax.plot(xs.array, t.detach().array, label=lab)
ax.set_xlabel("x")
ax.legend()
ax.grid(alpha=0.3)
ax.set_title("softplus and three derivatives, all from mg.grad")
