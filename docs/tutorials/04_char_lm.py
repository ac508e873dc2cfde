# %% [markdown]
# # RNN and LSTM: from the gate equations to a character language model
#
# A recurrent network reads a sequence one step at a time and carries a hidden state $h_t$. The plain
# (Elman) RNN:
#
# $$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}).$$
#
# Its gradient through $T$ steps is a product of $T$ Jacobians $\operatorname{diag}(1 - h_t^2) W_{hh}$,
# which shrinks or blows up geometrically. The **LSTM** adds a cell state $c_t$ that is updated
# additively, under gates:
#
# $$\begin{aligned}
# i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) && \text{input gate}\\
# f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) && \text{forget gate}\\
# g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) && \text{candidate}\\
# o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) && \text{output gate}\\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t).
# \end{aligned}$$
#
# $\partial c_t / \partial c_{t-1} = \operatorname{diag}(f_t)$: with the forget gate near 1, gradients pass
# through many steps. We write one LSTM step from these equations with plain Tensor ops and check it
# against `nn.LSTMCell` (PyTorch's layout: the four gates stacked in the order i, f, g, o).

# %%
import numpy as np
import matplotlib.pyplot as plt
import minigen as mg
import minigen.nn as nn

mg.manual_seed(0)
cell = nn.LSTMCell(5, 4)
x, h, c = mg.randn(3, 5), mg.randn(3, 4), mg.randn(3, 4)


def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh       # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c_new = f * c + i * g
    return o * c_new.tanh(), c_new


h1, c1 = lstm_step(x, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
h2, c2 = cell(x, (h, c))
print("max |h - h_LSTMCell| =", float(np.abs(h1.array - h2.array).max()))
print("max |c - c_LSTMCell| =", float(np.abs(c1.array - c2.array).max()))

# %% [markdown]
# ## A character language model
#
# A language model assigns a sequence the probability
# $P(X) = \prod_t P(x_{t+1} \mid x_{\le t})$, each factor a softmax over the 65 characters of
# tiny-shakespeare computed from $h_t$. Training minimises the cross-entropy of the next character
# (truncated back-propagation through time: the state is carried between batches but its history is cut).
# A 1-layer LSTM with 96 units, one-hot inputs, RMSprop (char-rnn's recipe), 200 steps.

# %%
import time
import minigen.nn.functional as F
from minigen.models.char_rnn import CharRNN
from minigen.data import shakespeare_splits

train_ids, val_ids, tok = shakespeare_splits()
model = CharRNN(tok.vocab_size, hidden_size=96, num_layers=1, cell="lstm")
opt = mg.optim.RMSprop(model.parameters(), lr=5e-3)
B, T = 32, 32
rng = np.random.default_rng(0)
losses = []
t0 = time.perf_counter()
for step in range(200):
    starts = rng.integers(0, len(train_ids) - T - 1, B)
    xb = mg.tensor(np.stack([train_ids[s:s + T] for s in starts]))
    yb = mg.tensor(np.stack([train_ids[s + 1:s + T + 1] for s in starts]))
    logits, _ = model(xb)
    loss = F.cross_entropy(logits.reshape(B * T, -1), yb.reshape(-1))
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    losses.append(loss.item())
print(f"200 steps in {time.perf_counter() - t0:.1f} s; train loss {np.mean(losses[:20]):.2f} -> "
      f"{np.mean(losses[-20:]):.2f} nats/char (uniform guessing: ln 65 = {np.log(65):.2f})")

with mg.no_grad():
    xv = mg.tensor(val_ids[:2001][None, :-1])
    lv, _ = model(xv)
    val = F.cross_entropy(lv.reshape(2000, -1), mg.tensor(val_ids[1:2001])).item()
print(f"validation: {val:.3f} nats/char, i.e. log P(X) = -{val * 2000:.0f} nats over 2000 characters")

fig, ax = plt.subplots(figsize=(6, 2.6))
ax.plot(losses, lw=0.8)
ax.axhline(np.log(65), ls="--", color="0.5", label="ln 65 (uniform)")
ax.set_xlabel("step")
ax.set_ylabel("nats / char")
ax.legend()
ax.set_title("char-LSTM training loss")

# %% [markdown]
# ## Samples
#
# Sampling feeds the model its own draws: $x_{t+1} \sim \operatorname{softmax}(z_t / \tau)$, with
# temperature $\tau$ (lower: safer, more repetitive). After a minute of training the model has learnt
# words, spaces, capitals and the play's speaker-colon layout, not meaning.

# %%
gen = mg.Generator().manual_seed(1)
with open("gallery_char_lstm_samples.txt", "w", encoding="utf-8") as f:
    for tau in (0.6, 1.0):
        ids = model.generate(tok.encode("ROMEO:\n"), 200, temperature=tau, generator=gen)
        f.write(f"--- temperature {tau} ---\n{tok.decode(ids)}\n")
