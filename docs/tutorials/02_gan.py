# %% [markdown]
# # GANs: from the value function to samples
#
# A generator $G$ maps noise $z \sim \mathcal N(0, I)$ to images; a discriminator $D$ outputs the
# probability that an image is real. Goodfellow et al. (2014) set them a two-player game with value
#
# $$\min_G \max_D \; V(D, G) = \mathbb E_{x\sim p_\text{data}}[\log D(x)] + \mathbb E_{z}[\log(1 - D(G(z)))].$$
#
# $D$ ascends $V$: its loss is $L_D = -V$, a binary cross-entropy with target 1 on real and 0 on fake
# images. $G$ appears only in the second term. Descending it gives the **minimax** generator loss
#
# $$L_G^\text{mm} = \mathbb E_z[\log(1 - D(G(z)))],$$
#
# and the paper's practical alternative is the **non-saturating** loss
#
# $$L_G^\text{ns} = -\mathbb E_z[\log D(G(z))].$$
#
# Both push $D(G(z))$ towards 1. Why prefer the second? Write $D = \sigma(\ell)$ with $\ell$ the
# discriminator's logit. Then
#
# $$\frac{\partial L_G^\text{mm}}{\partial \ell} = -\sigma(\ell) = -D, \qquad
#   \frac{\partial L_G^\text{ns}}{\partial \ell} = -(1 - \sigma(\ell)) = -(1 - D).$$
#
# Early in training $D$ easily rejects the fakes, $D(G(z)) \approx 0$: the minimax gradient vanishes
# exactly when $G$ most needs a signal. We let minigen's autograd compute both gradients.

# %%
import numpy as np
import matplotlib.pyplot as plt
import minigen as mg
from minigen.models.gan import generator_loss, discriminator_loss

logits = mg.tensor(np.linspace(-8, 8, 401), dtype=mg.float64, requires_grad=True)
grads = {}
for mode in ("minimax", "non-saturating"):
    # generator_loss averages over the batch; multiply by N to get the per-sample gradient
    (g,) = mg.grad(generator_loss(logits, mode=mode) * logits.shape[0], [logits])
    grads[mode] = g.array
D = 1 / (1 + np.exp(-logits.array))
print("max |minimax grad + D|       =", np.abs(grads["minimax"] + D).max())
print("max |non-sat. grad + (1 - D)| =", np.abs(grads["non-saturating"] + (1 - D)).max())

fig, ax = plt.subplots(figsize=(6.5, 3.4))
ax.plot(D, -grads["minimax"], label=r"minimax  $|\partial L_G/\partial \ell| = D$")
ax.plot(D, -grads["non-saturating"], label=r"non-saturating  $|\partial L_G/\partial \ell| = 1-D$")
ax.axvspan(0, 0.1, color="red", alpha=0.08)
ax.text(0.02, 0.5, "early training:\nD rejects fakes", fontsize=8)
ax.set_xlabel("D(G(z))  (discriminator's belief that a fake is real)")
ax.set_ylabel("gradient magnitude on the logit")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.savefig("gallery_gan_gradients.png", dpi=90, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ## A small GAN on MNIST
#
# Two small MLPs (the recipe uses the paper's larger maxout networks), Adam with $\beta_1 = 0.5$, images
# scaled to $[-1, 1]$ to match $G$'s $\tanh$ output, one $D$ step then one $G$ step per batch
# (Algorithm 1 with $k = 1$) and the non-saturating $G$ loss. The budget is under a minute of CPU,
# so expect blurry strokes, not crisp digits; `minigen train gan` trains the full model.

# %%
import time
import minigen.nn as nn
from minigen.data import load_mnist_bundled, save_image_grid

mg.manual_seed(0)
images, labels = load_mnist_bundled("train", flatten=True)
real_all = images[:4096] * 2 - 1                       # [0, 1] -> [-1, 1]
nz = 32
G = nn.Sequential(nn.Linear(nz, 256), nn.ReLU(), nn.Linear(256, 784), nn.Tanh())
Dnet = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))
opt_g = mg.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
opt_d = mg.optim.Adam(Dnet.parameters(), lr=2e-3, betas=(0.5, 0.999))
rng = np.random.default_rng(0)
z_fixed = mg.randn(64, nz)
hist = {"L_D": [], "L_G": []}
t0 = time.perf_counter()
for step in range(400):
    real = mg.tensor(real_all[rng.integers(0, len(real_all), 64)])
    fake = G(mg.randn(64, nz))
    loss_d = discriminator_loss(Dnet(real), Dnet(fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = generator_loss(Dnet(fake), mode="non-saturating")
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    hist["L_D"].append(loss_d.item())
    hist["L_G"].append(loss_g.item())
print(f"400 steps in {time.perf_counter() - t0:.1f} s; last L_D {np.mean(hist['L_D'][-50:]):.3f}, "
      f"L_G {np.mean(hist['L_G'][-50:]):.3f}")

with mg.no_grad():
    samples = G(z_fixed).array.reshape(64, 1, 28, 28)
save_image_grid((samples + 1) / 2, "gallery_gan_samples.png", nrow=8)

fig, ax = plt.subplots(figsize=(6, 2.6))
for k, v in hist.items():
    ax.plot(np.convolve(v, np.ones(20) / 20, mode="valid"), label=k)
ax.set_xlabel("step")
ax.legend()
ax.set_title("GAN losses (moving average over 20 steps)")

# %% [markdown]
# At the equilibrium of the game $D = 1/2$ everywhere, where $L_D = 2\log 2 \approx 1.386$ and
# $L_G^\text{ns} = \log 2 \approx 0.693$; the curves above wander around those values rather than
# converging, which is what GAN training looks like.
