# %% [markdown]
# # Attention, the causal mask, and a tiny GPT
#
# Scaled dot-product attention lets every position $i$ read a weighted average of the values $V$ at all
# positions $j$, weighted by how well its query matches their keys:
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{QK^\top}{\sqrt d} + M\Big) V.$$
#
# The $\sqrt d$ keeps the dot products of $d$-dimensional vectors at unit scale, so the softmax does not
# saturate. For a language model position $i$ must not see the future: the **causal mask**
# $M_{ij} = 0$ if $j \le i$ and $-\infty$ otherwise gives the future weight $e^{-\infty} = 0$.
# We write it from the formula and compare with `F.scaled_dot_product_attention`.

# %%
import math
import numpy as np
import matplotlib.pyplot as plt
import minigen as mg
import minigen.nn.functional as F

mg.manual_seed(0)
T, d = 8, 16
q, k, v = mg.randn(1, T, d), mg.randn(1, T, d), mg.randn(1, T, d)
M = np.triu(np.full((T, T), -np.inf, dtype=np.float32), k=1)      # -inf above the diagonal
weights = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(d) + mg.tensor(M), dim=-1)
out = weights @ v
ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print("max |by hand - F.scaled_dot_product_attention| =", float(np.abs(out.array - ref.array).max()))
print("rows sum to 1:", np.allclose(weights.array.sum(-1), 1))

fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
axes[0].imshow(np.where(np.isinf(M), 1, 0), cmap="Greys", vmin=0, vmax=1.6)
axes[0].set_title("mask M (grey: $-\\infty$)")
im = axes[1].imshow(weights.array[0], cmap="viridis")
axes[1].set_title("softmax($QK^T/\\sqrt{d}$ + M)")
for ax in axes:
    ax.set_xlabel("key position j")
    ax.set_ylabel("query position i")
fig.colorbar(im, ax=axes[1])
fig.savefig("gallery_attention_mask.png", dpi=90, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ## A tiny GPT
#
# GPT stacks blocks of (layer norm, multi-head causal attention, residual) and (layer norm, MLP,
# residual) over token plus position embeddings, and reads next-token logits off the last layer. It
# factorises the probability of a text left to right,
#
# $$P(X) = \prod_{t} P(x_t \mid x_{<t}),$$
#
# and trains on the mean of $-\log P(x_{t+1} \mid x_{\le t})$ over every position at once (the mask is what
# makes that legal). Two layers, two heads, 64 channels, context 32, AdamW, 200 steps on tiny-shakespeare.

# %%
import time
from minigen.models.gpt import GPT, GPTConfig
from minigen.data import shakespeare_splits, get_batch

train_ids, val_ids, tok = shakespeare_splits()
cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=64)
model = GPT(cfg, generator=mg.Generator().manual_seed(0))
opt = mg.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
gen = mg.Generator().manual_seed(0)
losses = []
t0 = time.perf_counter()
for step in range(200):
    xb, yb = get_batch(train_ids, cfg.block_size, 16, generator=gen)
    _, loss = model(xb, yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
print(f"200 steps in {time.perf_counter() - t0:.1f} s; loss {np.mean(losses[:10]):.2f} -> {np.mean(losses[-10:]):.2f}")

# %% [markdown]
# ## The probability of a sentence
#
# $\log P(X) = \sum_t \log P(x_t \mid x_{<t})$: one forward pass gives every factor. A line in the style of
# the corpus should score higher per character than the same characters shuffled.

# %%
model.eval()


def log_prob(text):
    ids = np.array(tok.encode(text))[None, :]
    with mg.no_grad():
        logits, _ = model(mg.tensor(ids[:, :-1]))
        logp = F.log_softmax(logits, dim=-1).array[0]
    return float(logp[np.arange(ids.shape[1] - 1), ids[0, 1:]].sum())


line = "O Romeo, Romeo! wherefore art"   # at most block_size + 1 characters
shuffled = "".join(np.random.default_rng(0).permutation(list(line)))
for s in (line, shuffled):
    lp = log_prob(s)
    print(f"log P = {lp:7.1f} nats ({lp / (len(s) - 1):.2f} per char)  {s!r}")

# %% [markdown]
# ## Sampling: temperature, top-k, top-p
#
# Generation draws $x_t \sim P(\cdot \mid x_{<t})$ repeatedly. Three knobs reshape the distribution first:
# **temperature** divides the logits, $\operatorname{softmax}(z/\tau)$ ($\tau < 1$ sharpens); **top-k**
# keeps the $k$ most likely tokens; **top-p** (nucleus) keeps the smallest set whose probability reaches
# $p$. Below: the next-character distribution after `"ROMEO:\nI will "` under each setting, then samples.

# %%
from minigen.models.sampling import probs_from_logits

prompt = "ROMEO:\nI will "
with mg.no_grad():
    z = model(mg.tensor(np.array(tok.encode(prompt))[None, :]))[0].array[0, -1]
settings = [("τ=1", dict()), ("τ=0.5", dict(temperature=0.5)), ("top-k=5", dict(top_k=5)),
            ("top-p=0.8", dict(top_p=0.8))]
order = np.argsort(-z)[:15]
fig, ax = plt.subplots(figsize=(7, 3))
w = 0.2
for n, (name, kw) in enumerate(settings):
    p = np.asarray(probs_from_logits(z[None, :], **kw))[0]
    ax.bar(np.arange(15) + (n - 1.5) * w, p[order], width=w, label=name)
ax.set_xticks(range(15), [repr(tok.decode([int(i)]))[1:-1] for i in order])
ax.set_ylabel("probability")
ax.set_title(f"next character after {prompt!r}")
ax.legend()

with open("gallery_gpt_samples.txt", "w", encoding="utf-8") as f:
    for name, kw in settings:
        out = model.generate(mg.tensor(np.array(tok.encode(prompt))[None, :]), 120,
                             generator=mg.Generator().manual_seed(3), **kw)
        f.write(f"--- {name} ---\n{tok.decode(np.asarray(out.array if hasattr(out, 'array') else out)[0])}\n")
