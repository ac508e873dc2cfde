# %% [markdown]
# # The VAE: ELBO, reparameterisation, closed-form KL, and a 2-D latent map
#
# A variational autoencoder models an image $x$ through a latent $z$: prior $p(z) = \mathcal N(0, I)$,
# decoder $p_\theta(x \mid z)$ (a Bernoulli per pixel whose logits a network computes), and an encoder
# $q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$ that approximates the
# posterior. The log-likelihood is bounded below by the **ELBO**:
#
# $$\log p_\theta(x) \;\ge\; \mathbb E_{q_\phi(z\mid x)}[\log p_\theta(x \mid z)] - \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big).$$
#
# Training maximises it, i.e. minimises a reconstruction term (a binary cross-entropy summed over pixels)
# plus the KL term.
#
# ## The reparameterisation trick
#
# The expectation is over $z \sim q_\phi$, which depends on $\phi$: we cannot backpropagate through
# "draw a sample". Writing the sample as a deterministic function of $\phi$ and independent noise,
#
# $$z = \mu + \sigma \odot \varepsilon, \qquad \sigma = e^{\frac12 \log\sigma^2}, \quad \varepsilon \sim \mathcal N(0, I),$$
#
# makes $\partial z / \partial \mu = 1$ and $\partial z / \partial \sigma = \varepsilon$ ordinary gradients.

# %%
import numpy as np
import matplotlib.pyplot as plt
import minigen as mg
import minigen.nn.functional as F
from minigen.models.vae import reparameterize, vae_loss, MLPVAE

mu = mg.tensor([0.5, -1.0], dtype=mg.float64, requires_grad=True)
logvar = mg.tensor([0.0, np.log(4.0)], dtype=mg.float64, requires_grad=True)
eps = mg.tensor([1.5, -0.5], dtype=mg.float64)
z = reparameterize(mu, logvar, eps)
z.sum().backward()
print("z            =", z.array, " (mu + sigma * eps =", mu.array + np.exp(logvar.array / 2) * eps.array, ")")
print("dz/dmu       =", mu.grad.array)
print("dz/dlogvar   =", logvar.grad.array, " (= eps * sigma / 2 =", eps.array * np.exp(logvar.array / 2) / 2, ")")

# %% [markdown]
# ## The KL term in closed form
#
# For a diagonal Gaussian against the standard normal the KL needs no sampling:
#
# $$\mathrm{KL}\big(\mathcal N(\mu, \sigma^2) \,\|\, \mathcal N(0, 1)\big)
#   = -\tfrac12 \sum_j \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big).$$
#
# We check `F.gaussian_kl` against a Monte-Carlo estimate $\frac1N\sum_n \log q(z_n) - \log p(z_n)$.

# %%
rng = np.random.default_rng(0)
m, lv = np.array([0.5, -1.0, 2.0]), np.array([0.0, np.log(4.0), np.log(0.1)])
closed = F.gaussian_kl(mg.tensor(m), mg.tensor(lv), reduction="sum").item()
zs = m + np.exp(lv / 2) * rng.standard_normal((200_000, 3))
log_q = -0.5 * (((zs - m) ** 2) / np.exp(lv) + lv + np.log(2 * np.pi)).sum(1)
log_p = -0.5 * (zs ** 2 + np.log(2 * np.pi)).sum(1)
mc = (log_q - log_p).mean()
print(f"closed form KL = {closed:.4f},  Monte Carlo (200k samples) = {mc:.4f} +- {(log_q - log_p).std() / 447:.4f}")

# %% [markdown]
# ## Training a VAE with a 2-D latent
#
# With only two latent dimensions the whole latent space fits on a page. We train the 784-256-2 MLP VAE
# for five epochs over 9,000 bundled MNIST digits with Adam ($10^{-3}$, batch 128) on the negative ELBO.

# %%
import time
from minigen.data import load_mnist_bundled, save_image_grid

mg.manual_seed(0)
x_train, y_train = load_mnist_bundled("train", flatten=True)
x_val, y_val = load_mnist_bundled("val", flatten=True)
model = MLPVAE(latent_dim=2, hidden=256)
opt = mg.optim.Adam(model.parameters(), lr=1e-3)
t0 = time.perf_counter()
for epoch in range(5):
    perm = np.random.default_rng(epoch).permutation(len(x_train))
    total = 0.0
    for i in range(0, len(perm) - 127, 128):
        x = mg.tensor(x_train[perm[i:i + 128]])
        logits, mu, logvar = model(x)
        loss, bce, kl = vae_loss(x.reshape(-1, 1, 28, 28), logits, mu, logvar)
        opt.zero_grad()
        (loss / 128).backward()
        opt.step()
        total += loss.item()
    print(f"epoch {epoch + 1}: negative ELBO {total / (len(perm) // 128 * 128):.1f} nats per image")
print(f"trained in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## The latent map
#
# Left: the encoder's mean $\mu(x)$ of 1,000 validation digits, coloured by their label; digits of one
# class gather, with no label ever shown to the model. Right: the decoder's image
# $\sigma(f(z))$ on a grid of $z$ spanning the prior's central region.

# %%
with mg.no_grad():
    mu_val, _ = model.encode(mg.tensor(x_val))
    grid = np.linspace(-2.5, 2.5, 15)
    zz = np.array([[a, b] for b in grid[::-1] for a in grid], dtype=np.float32)
    imgs = mg.sigmoid(model.decode(mg.tensor(zz))).array
save_image_grid(imgs, "gallery_vae_latent_map.png", nrow=15, padding=1)

fig, ax = plt.subplots(figsize=(5, 4.3))
sc = ax.scatter(mu_val.array[:, 0], mu_val.array[:, 1], c=y_val, cmap="tab10", s=6)
fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
ax.set_xlabel("$\\mu_1$")
ax.set_ylabel("$\\mu_2$")
ax.set_title("encoder means of validation digits")
