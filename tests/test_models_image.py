"""Image models against their equations on hand-computed cases: GAN value function and both G losses, maxout,
DCGAN layout and init, cGAN conditioning, WGAN-GP penalty (by hand, gradcheck, torch), StyleGAN pixel norm /
AdaIN / modulation-demodulation / style mixing, VAE reparameterisation / KL / BCE, the classifier's scores."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from conftest import requires_torch
from minigen import nn
from minigen.models import cgan, classifier, dcgan, gan, stylegan, vae, wgan_gp
from minigen.recipes import cgan as recipes_cgan, classifier as recipes_classifier, vae as recipes_vae
from minigen.testing import gradcheck


def _logit(p):
    p = np.asarray(p, dtype=np.float64)
    return mg.tensor(np.log(p / (1 - p)), dtype=mg.float64)


def _leaf(a, dtype=mg.float64):
    return mg.tensor(np.asarray(a, dtype=np.float64), dtype=dtype).requires_grad_(True)


# ============================================================================ GAN
def test_gan_value_function_and_losses_by_hand():
    # D(x) = (0.9, 0.8) on real images, D(G(z)) = (0.1, 0.3) on generated ones
    real, fake = _logit([0.9, 0.8]), _logit([0.1, 0.3])
    V = (math.log(0.9) + math.log(0.8)) / 2 + (math.log(0.9) + math.log(0.7)) / 2
    assert gan.value_function(real, fake).item() == pytest.approx(V, rel=1e-12)
    assert gan.discriminator_loss(real, fake).item() == pytest.approx(-V, rel=1e-12)
    assert gan.generator_loss(fake, "minimax").item() == pytest.approx((math.log(0.9) + math.log(0.7)) / 2, rel=1e-12)
    assert gan.generator_loss(fake, "non-saturating").item() == pytest.approx(-(math.log(0.1) + math.log(0.3)) / 2,
                                                                              rel=1e-12)
    with pytest.raises(ValueError):
        gan.generator_loss(fake, "hinge")


def test_gan_generator_gradients_minimax_saturates_non_saturating_does_not():
    # dL/dl: minimax -sigmoid(l)/N, non-saturating -(1 - sigmoid(l))/N
    p = np.array([0.1, 0.3, 1e-4])
    for mode, expect in (("minimax", -p / 3), ("non-saturating", -(1 - p) / 3)):
        l = _logit(p).requires_grad_(True)
        gan.generator_loss(l, mode).backward()
        np.testing.assert_allclose(l.grad.numpy(), expect, rtol=1e-10)
    # where D confidently rejects the fake (D(G(z)) = 1e-4) the minimax gradient is 10^4 times weaker
    l = _logit([1e-4]).requires_grad_(True)
    gan.generator_loss(l, "minimax").backward()
    g_mm = abs(l.grad.item())
    l = _logit([1e-4]).requires_grad_(True)
    gan.generator_loss(l, "non-saturating").backward()
    assert abs(l.grad.item()) / g_mm == pytest.approx((1 - 1e-4) / 1e-4, rel=1e-8)


def test_discriminator_loss_is_bce_with_logits():
    rng = np.random.default_rng(0)
    real, fake = mg.tensor(rng.standard_normal(5)), mg.tensor(rng.standard_normal(7))
    nn_F = mg.nn.functional
    bce = nn_F.binary_cross_entropy_with_logits(real, mg.ones(5, dtype=real.dtype)) + \
        nn_F.binary_cross_entropy_with_logits(fake, mg.zeros(7, dtype=fake.dtype))
    assert gan.discriminator_loss(real, fake).item() == pytest.approx(bce.item(), rel=1e-6)


def test_maxout_by_hand():
    m = gan.Maxout(2, 1, pieces=3)
    m.linear.weight.array[:] = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    m.linear.bias.array[:] = np.array([0.0, 0.0, -5.0], dtype=np.float32)
    x = mg.tensor([[2.0, 3.0], [4.0, -1.0], [10.0, 10.0]])
    # pieces: (x1, x2, x1 + x2 - 5) -> max
    np.testing.assert_allclose(m(x).detach().numpy().ravel(), [3.0, 4.0, 15.0])


def test_mlp_gan_shapes():
    G, D = gan.MLPGenerator(8, 16), gan.MLPDiscriminator(6, 2)
    img = G(mg.randn(3, 8))
    assert img.shape == (3, 1, 28, 28) and float(img.abs().max().item()) <= 1.0
    assert D(img).shape == (3,)


# ============================================================================ DCGAN
def test_dcgan_pytorch_examples_layout():
    G = dcgan.DCGANGenerator(nz=10, width=32)
    kinds = [type(m).__name__ for m in G.project] + [type(m).__name__ for m in G.net]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU",
                     "ConvTranspose2d", "BatchNorm2d", "LeakyReLU", "ConvTranspose2d", "BatchNorm2d", "LeakyReLU",
                     "ConvTranspose2d", "BatchNorm2d", "LeakyReLU", "Conv2d", "Tanh"]
    assert G.project[0].bias is None and G.project[0].weight.shape == (7 * 7 * 32, 10)
    convs = [m for m in G.net if "Conv" in type(m).__name__]
    assert [m.weight.shape[2:] for m in convs] == [(5, 5)] * 4
    assert [m.stride for m in convs] == [(1, 1), (2, 2), (2, 2), (1, 1)]
    D = dcgan.DCGANDiscriminator(width=4)
    kinds = [type(m).__name__ for m in D.net]
    assert kinds == ["Conv2d", "LeakyReLU", "Dropout", "Conv2d", "LeakyReLU", "Dropout", "Flatten", "Linear"]
    assert D.net[2].p == pytest.approx(0.3) and D.net[1].negative_slope == pytest.approx(0.2)
    z = mg.randn(2, 10)
    x = G(z)
    assert x.shape == (2, 1, 28, 28) and float(x.abs().max().item()) <= 1.0
    assert D(x).shape == (2,)
    critic = dcgan.DCGANDiscriminator(width=4, dropout=0.0)
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm2d)) for m in critic.modules())


def test_dcgan_initialisation_statistics():
    m = dcgan.build_dcgan(nz=100, g_width=64, d_width=32, seed=0)
    w = m.G.project[0].weight.detach().numpy()
    assert abs(w.mean()) < 1e-3 and w.std() == pytest.approx(0.02, rel=0.02)
    w = m.D.net[3].weight.detach().numpy()
    assert w.std() == pytest.approx(0.02, rel=0.05)
    bn = m.G.net[1]
    assert bn.weight.detach().numpy().mean() == pytest.approx(1.0, abs=0.01) and not bn.bias.detach().numpy().any()
    assert not m.D.net[0].bias.detach().numpy().any()


def test_article_dcgan_architecture_layer_by_layer():
    G = dcgan.ArticleGenerator()
    kinds = [type(m).__name__ for m in G.project] + [type(m).__name__ for m in G.net]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU",
                     "ConvTranspose2d", "BatchNorm2d", "LeakyReLU", "ConvTranspose2d", "BatchNorm2d", "LeakyReLU",
                     "ConvTranspose2d", "BatchNorm2d", "LeakyReLU", "Conv2d", "Tanh"]
    assert G.project[0].bias is None and G.project[0].weight.shape == (7 * 7 * 128, 100)
    convs = [m for m in G.net if "Conv" in type(m).__name__]
    assert [tuple(m.weight.shape) for m in convs] == [(128, 128, 5, 5)] * 3 + [(1, 128, 5, 5)]   # 1 channel out
    assert [m.stride for m in convs] == [(1, 1), (2, 2), (2, 2), (1, 1)]
    assert [m.bias is None for m in convs] == [False, False, False, True]          # Keras: only Conv2D unbiased
    bns = [m for m in list(G.project) + list(G.net) if "BatchNorm" in type(m).__name__]
    assert [(m.momentum, m.eps) for m in bns] == [(0.2, 1e-3)] * 4                 # Keras momentum 0.8, eps 1e-3
    assert all(m.negative_slope == pytest.approx(0.2) for m in G.modules() if isinstance(m, nn.LeakyReLU))
    # the shapes after each stage: 6272 -> (128, 7, 7) -> 7 -> 14 -> 28 -> (1, 28, 28)
    z = mg.randn(2, 100)
    h = G.project(z)
    assert h.shape == (2, 6272)
    h = h.reshape(2, 128, 7, 7)
    sizes = []
    for m in G.net:
        h = m(h)
        if "Conv" in type(m).__name__:
            sizes.append(tuple(h.shape[1:]))
    assert sizes == [(128, 7, 7), (128, 14, 14), (128, 28, 28), (1, 28, 28)]
    # parameter count against a hand count (Keras' model.summary() of the corrected model says the same)
    dense, bn1 = 100 * 6272, 2 * 6272
    convt, bn2, last = 128 * 128 * 25 + 128, 2 * 128, 128 * 25
    assert sum(p.numel() for p in G.parameters()) == dense + bn1 + 3 * (convt + bn2) + last == 1_872_896
    m = dcgan.build_article_dcgan(seed=0)
    assert sum(p.numel() for p in m.D.parameters()) == (25 * 64 + 64) + (64 * 128 * 25 + 128) + (6272 + 1)
    x = m.G(z)
    assert x.shape == (2, 1, 28, 28) and float(x.abs().max().item()) <= 1.0 and m.D(x).shape == (2,)


def test_article_dcgan_batchnorm_momentum_by_hand():
    """Keras momentum 0.8 == PyTorch momentum 0.2: running_mean <- 0.8 running_mean + 0.2 batch mean."""
    bn = dcgan.ArticleGenerator(nz=2, width=8).net[1]
    bn.train()
    x = mg.tensor(np.arange(2 * 8 * 2 * 2, dtype=np.float32).reshape(2, 8, 2, 2))
    bn(x)
    want = 0.2 * x.numpy().mean(axis=(0, 2, 3))
    np.testing.assert_allclose(bn.running_mean.numpy(), want, rtol=1e-6)


def test_article_dcgan_glorot_initialisation():
    m = dcgan.build_article_dcgan(seed=0)
    w = m.G.net[3].weight.detach().numpy()                     # ConvTranspose 128 -> 128, 5x5
    a = math.sqrt(6.0 / (128 * 25 + 128 * 25))
    assert np.abs(w).max() <= a and np.abs(w).max() > 0.99 * a
    assert w.std() == pytest.approx(a / math.sqrt(3), rel=0.02)   # U(-a, a) has std a / sqrt(3)
    assert not m.G.net[0].bias.detach().numpy().any() and not m.D.net[0].bias.detach().numpy().any()
    assert (m.G.net[1].weight.detach().numpy() == 1).all()
    w = m.G.project[0].weight.detach().numpy()
    assert np.abs(w).max() <= math.sqrt(6.0 / (100 + 6272))
    same = dcgan.build_article_dcgan(seed=0)
    np.testing.assert_array_equal(same.G.net[3].weight.detach().numpy(), m.G.net[3].weight.detach().numpy())


# ============================================================================ cGAN
def test_cgan_label_planes_and_conditioning():
    x = mg.zeros(2, 1, 3, 3)
    planes = cgan.label_planes(mg.tensor([2, 0]), 4, 3, 3, x).detach().numpy()
    assert planes.shape == (2, 4, 3, 3)
    assert (planes[0, 2] == 1).all() and planes[0].sum() == 9 and (planes[1, 0] == 1).all() and planes[1].sum() == 9
    mg.manual_seed(0)
    G = cgan.ConditionalGenerator(nz=4, width=8)
    G.eval()
    z = mg.randn(1, 4)
    a, b = G(z, mg.tensor([3])).detach().numpy(), G(z, mg.tensor([7])).detach().numpy()
    assert a.shape == (1, 1, 28, 28) and np.abs(a - b).max() > 1e-4   # the label changes the image
    assert G.net.project[0].weight.shape[1] == 4 + 10                  # input [z, onehot(y)]
    D = cgan.ConditionalDiscriminator(width=4)
    assert D.net.net[0].weight.shape[1] == 1 + 10                      # image + 10 label planes
    assert D(mg.randn(2, 1, 28, 28), mg.tensor([1, 2])).shape == (2,)


def test_cgan_digit_grid_has_a_row_per_digit(tmp_path):
    from PIL import Image

    G = cgan.ConditionalGenerator(nz=4, width=8)
    G.eval()
    with mg.no_grad():
        path = recipes_cgan.digit_grid(G, 4, str(tmp_path / "g.png"), n_per_row=3,
                                       generator=mg.Generator().manual_seed(0))
    w, h = Image.open(path).size
    assert (w, h) == (3 * 30 + 2, 10 * 30 + 2)


# ============================================================================ WGAN-GP
class _LinearCritic(nn.Module):
    """D(x) = sum(w * x) + b: grad_x D = w for every x, so ||grad|| = ||w||."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(np.asarray(w, dtype=np.float64))
        self.b = nn.Parameter(np.zeros((), dtype=np.float64))

    def forward(self, x):
        return (x * self.w).reshape(x.shape[0], -1).sum(dim=1) + self.b


def test_gradient_penalty_by_hand():
    # w = (3, 4): ||grad|| = 5, penalty (5 - 1)^2 = 16; d penalty / dw = 2 (||w|| - 1) w / ||w|| = (4.8, 6.4)
    D = _LinearCritic([[3.0, 4.0]])
    x_hat = mg.tensor(np.random.default_rng(0).standard_normal((5, 1, 2)))
    gp = wgan_gp.gradient_penalty(D, x_hat)
    assert gp.item() == pytest.approx(16.0, rel=1e-9)
    gp.backward()
    np.testing.assert_allclose(D.w.grad.numpy(), [[4.8, 6.4]], rtol=1e-9)
    assert D.b.grad is None or float(D.b.grad.item()) == 0.0


def test_interpolate_and_critic_loss_by_hand():
    real = mg.tensor(np.array([[[1.0, 2.0]], [[3.0, 4.0]]]))
    fake = mg.tensor(np.array([[[0.0, 0.0]], [[1.0, 1.0]]]))
    eps = mg.tensor(np.array([0.25, 0.5]))
    np.testing.assert_allclose(wgan_gp.interpolate(real, fake, eps).detach().numpy(), [[[0.25, 0.5]], [[2.0, 2.5]]])
    D = _LinearCritic([[0.6, 0.8]])   # ||w|| = 1: zero penalty
    loss, w, gp = wgan_gp.critic_loss(D, real, fake, eps, lam=10.0)
    d_real = np.mean([0.6 * 1 + 0.8 * 2, 0.6 * 3 + 0.8 * 4])
    d_fake = np.mean([0.0, 0.6 + 0.8])
    assert gp.item() == pytest.approx(0.0, abs=1e-12)
    assert w.item() == pytest.approx(d_real - d_fake) and loss.item() == pytest.approx(d_fake - d_real)
    assert wgan_gp.generator_loss(D, fake).item() == pytest.approx(-d_fake)


def _tiny_conv_critic(seed=0):
    mg.manual_seed(seed)
    D = dcgan.DCGANDiscriminator(width=2, dropout=0.0)
    D.to(mg.float64)
    return D


def test_gradient_penalty_second_order_gradcheck():
    """d GP / d(conv weight) needs the derivative of the input gradient: checked against finite differences."""
    D = _tiny_conv_critic()
    x_hat = mg.tensor(np.random.default_rng(1).standard_normal((2, 1, 28, 28)))
    w = D.net[0].weight                      # gradcheck perturbs the parameter in place
    w.array *= 10.0                           # larger weights: ||grad|| far from 1, a non-trivial penalty

    def penalty(w):
        return wgan_gp.gradient_penalty(D, x_hat)

    assert gradcheck(penalty, (w,), eps=1e-6, atol=1e-6, rtol=1e-4)


@requires_torch
def test_wgan_gp_critic_loss_and_gradients_match_torch():
    import torch
    import torch.nn.functional as TF

    D = _tiny_conv_critic(3)
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((3, 1, 28, 28)), rng.standard_normal((3, 1, 28, 28))
    eps = rng.random(3)
    loss, _, _ = wgan_gp.critic_loss(D, mg.tensor(real), mg.tensor(fake), mg.tensor(eps), lam=10.0)
    loss.backward()
    W = {k: torch.tensor(v.detach().numpy(), requires_grad=True) for k, v in D.state_dict().items()}

    def td(x):
        h = TF.leaky_relu(TF.conv2d(x, W["net.0.weight"], W["net.0.bias"], stride=2, padding=2), 0.2)
        h = TF.leaky_relu(TF.conv2d(h, W["net.2.weight"], W["net.2.bias"], stride=2, padding=2), 0.2)
        return TF.linear(h.flatten(1), W["net.5.weight"], W["net.5.bias"]).reshape(-1)

    tr, tf_ = torch.tensor(real), torch.tensor(fake)
    e = torch.tensor(eps).reshape(3, 1, 1, 1)
    xh = (e * tr + (1 - e) * tf_).requires_grad_(True)
    (g,) = torch.autograd.grad(td(xh).sum(), xh, create_graph=True)
    gp = ((g.pow(2).flatten(1).sum(1) + 1e-12).sqrt() - 1).pow(2).mean()
    tloss = td(tf_).mean() - td(tr).mean() + 10.0 * gp
    tloss.backward()
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-10)
    for name, p in D.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), W[name].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


# ============================================================================ StyleGAN
def test_pixel_norm_by_hand():
    z = mg.tensor([[3.0, 4.0]], dtype=mg.float64)
    r = math.sqrt(12.5 + 1e-8)   # sqrt(mean(9, 16) + eps)
    np.testing.assert_allclose(stylegan.pixel_norm(z).detach().numpy(), [[3 / r, 4 / r]])


def test_adain_by_hand():
    # one channel, values 1..4: mu 2.5, var 1.25; ys = 2, yb = -1
    x = mg.tensor(np.arange(1.0, 5.0).reshape(1, 1, 2, 2))
    y = stylegan.adain(x, mg.tensor([[2.0]], dtype=mg.float64), mg.tensor([[-1.0]], dtype=mg.float64)).detach().numpy()
    expect = 2 * (np.arange(1.0, 5.0) - 2.5) / math.sqrt(1.25 + 1e-5) - 1
    np.testing.assert_allclose(y.ravel(), expect, rtol=1e-12)


def test_modulated_conv_by_hand_1x1():
    # W = [[a, b]], s = [s1, s2]: y = (a s1 x1 + b s2 x2) / sqrt((a s1)^2 + (b s2)^2 + 1e-8)
    a, b, s1, s2, x1, x2 = 0.5, -2.0, 3.0, 0.25, 1.5, 4.0
    W = mg.tensor(np.array([a, b]).reshape(1, 2, 1, 1))
    s = mg.tensor([[s1, s2]], dtype=mg.float64)
    x = mg.tensor(np.array([x1, x2]).reshape(1, 2, 1, 1))
    y = stylegan.modulated_conv2d(x, W, s).item()
    assert y == pytest.approx((a * s1 * x1 + b * s2 * x2) / math.sqrt((a * s1) ** 2 + (b * s2) ** 2 + 1e-8), rel=1e-12)
    y_mod = stylegan.modulated_conv2d(x, W, s, demodulate=False).item()
    assert y_mod == pytest.approx(a * s1 * x1 + b * s2 * x2, rel=1e-12)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_modulated_conv_equals_per_sample_weights(B, cin, cout, seed):
    """d * conv(x * s, W) == conv(x_b, W''_b) with W''_b = demod(s_b * W), one weight per sample."""
    rng = np.random.default_rng(seed)
    x, W, s = rng.standard_normal((B, cin, 5, 5)), rng.standard_normal((cout, cin, 3, 3)), rng.standard_normal((B, cin))
    y = stylegan.modulated_conv2d(mg.tensor(x), mg.tensor(W), mg.tensor(s), padding=1).detach().numpy()
    for b in range(B):
        Wb = W * s[b][None, :, None, None]
        Wb = Wb / np.sqrt((Wb ** 2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
        yb = mg.nn.functional.conv2d(mg.tensor(x[b:b + 1]), mg.tensor(Wb), padding=1).detach().numpy()
        np.testing.assert_allclose(y[b:b + 1], yb, rtol=1e-9, atol=1e-12)


def test_modulated_conv_gradcheck():
    rng = np.random.default_rng(0)
    x, W, s = (_leaf(rng.standard_normal(sh)) for sh in ((2, 2, 3, 3), (2, 2, 3, 3), (2, 2)))
    assert gradcheck(lambda x, W, s: stylegan.modulated_conv2d(x, W, s, padding=1), (x, W, s))


def test_modulated_conv_transpose_by_hand_1x1():
    # one input pixel x, Cin = 2, Cout = 1, 2x2 kernel, stride 2: y = s-weighted kernel * x on the 2x2 output,
    # demodulated by 1 / sqrt(sum_i s_i^2 sum_k W_ik^2 / 4 + 1e-8)
    W = np.array([[1.0, 2.0], [3.0, 4.0], [-1.0, 0.5], [0.0, 2.0]]).reshape(2, 1, 2, 2)
    s, x = np.array([[2.0, -1.0]]), np.array([0.5, 3.0]).reshape(1, 2, 1, 1)
    y = stylegan.modulated_conv_transpose2d(mg.tensor(x), mg.tensor(W), mg.tensor(s), stride=2, padding=0)
    raw = 2.0 * 0.5 * W[0, 0] - 1.0 * 3.0 * W[1, 0]                      # sum_i s_i x_i W_i
    d = 1.0 / math.sqrt((4.0 * (W[0] ** 2).sum() + 1.0 * (W[1] ** 2).sum()) / 4 + 1e-8)
    np.testing.assert_allclose(y.detach().numpy()[0, 0], raw * d, rtol=1e-12)
    y_mod = stylegan.modulated_conv_transpose2d(mg.tensor(x), mg.tensor(W), mg.tensor(s), demodulate=False,
                                                stride=2, padding=0)
    np.testing.assert_allclose(y_mod.detach().numpy()[0, 0], raw, rtol=1e-12)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_modulated_conv_transpose_equals_per_sample_weights(B, cin, cout, seed):
    """d * conv_transpose(x * s, W) == conv_transpose(x_b, W''_b), W''_b = (s_b W) / sqrt(sum (s_b W)^2 / 4 + eps)."""
    rng = np.random.default_rng(seed)
    x, W, s = rng.standard_normal((B, cin, 4, 4)), rng.standard_normal((cin, cout, 4, 4)), rng.standard_normal((B, cin))
    y = stylegan.modulated_conv_transpose2d(mg.tensor(x), mg.tensor(W), mg.tensor(s), stride=2, padding=1)
    y = y.detach().numpy()
    assert y.shape == (B, cout, 8, 8)
    for b in range(B):
        Wb = W * s[b][:, None, None, None]
        Wb = Wb / np.sqrt((Wb ** 2).sum(axis=(0, 2, 3), keepdims=True) / 4 + 1e-8)
        yb = mg.nn.functional.conv_transpose2d(mg.tensor(x[b:b + 1]), mg.tensor(Wb), stride=2, padding=1)
        np.testing.assert_allclose(y[b:b + 1], yb.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_modulated_conv_transpose_keeps_unit_variance():
    """The /stride^2 in the demodulation: unit-variance inputs give unit-variance outputs (each output pixel of
    a 4x4 stride-2 transposed conv reads a quarter of the taps)."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((64, 16, 8, 8)))
    y = stylegan.modulated_conv_transpose2d(x, mg.tensor(rng.standard_normal((16, 8, 4, 4))),
                                            mg.tensor(rng.uniform(0.5, 2.0, (64, 16))), stride=2, padding=1)
    inner = y.detach().numpy()[:, :, 1:-1, 1:-1]          # the border pixels read fewer input pixels
    assert 0.9 < inner.std() < 1.1


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 2), st.integers(2, 3), st.integers(0, 2**31 - 1))
def test_modulated_upsampling_convs_gradcheck(B, cin, cout, hw, seed):
    """float64 gradcheck of the two upsampling styled convs: the modulated transposed conv (4x4, stride 2) and
    up='after''s up(modconv(x)) (3x3 conv at the low resolution, then bilinear x2), w.r.t. x, W and s."""
    from minigen.nn import functional as F

    rng = np.random.default_rng(seed)
    x, s = _leaf(rng.standard_normal((B, cin, hw, hw))), _leaf(rng.uniform(0.5, 2.0, (B, cin)))
    Wt, Wc = _leaf(rng.standard_normal((cin, cout, 4, 4))), _leaf(rng.standard_normal((cout, cin, 3, 3)))
    assert gradcheck(lambda x, W, s: stylegan.modulated_conv_transpose2d(x, W, s, stride=2, padding=1), (x, Wt, s))
    assert gradcheck(lambda x, W, s: F.interpolate(stylegan.modulated_conv2d(x, W, s, padding=1), scale_factor=2,
                                                   mode="bilinear", align_corners=False), (x, Wc, s))


def test_up_conv_synthesis_and_noise_lr_mul():
    """up='transposed': the 14x14 and 28x28 blocks' first StyleConv doubles the resolution itself (no bilinear
    upsampling); noise_lr_mul m: the strength used is m * the stored parameter, and its gradient is m times
    the gradient with respect to the strength."""
    mg.manual_seed(0)
    S = stylegan.SynthesisNetwork(w_dim=4, width=8, up="transposed", noise_lr_mul=0.1)
    assert [c.up for c in S.convs] == [None, None, "transposed", None, "transposed", None]
    assert S.convs[2].weight.shape == (8, 4, 4, 4) and S.convs[4].weight.shape == (4, 2, 4, 4)
    ws = mg.randn(2, stylegan.N_STYLES, 4)
    noise = [mg.randn(1, 1, s, s) for s in (7, 7, 14, 14, 28, 28)]
    assert S(ws, noise).shape == (2, 1, 28, 28)
    c = stylegan.StyleConv(3, 2, 4, up="transposed", noise_lr_mul=0.1)
    c.noise_strength.array[...] = 2.0
    x, w = mg.randn(2, 3, 5, 5), mg.randn(2, 4)
    n = mg.randn(1, 1, 10, 10)
    ref = stylegan.StyleConv(3, 2, 4, up="transposed")
    ref.load_state_dict(c.state_dict())
    ref.noise_strength.array[...] = 0.2                    # 0.1 * 2.0
    np.testing.assert_allclose(c(x, w, n).detach().numpy(), ref(x, w, n).detach().numpy(), rtol=1e-6)
    c(x, w, n).sum().backward()
    ref(x, w, n).sum().backward()
    assert c.noise_strength.grad.item() == pytest.approx(0.1 * ref.noise_strength.grad.item(), rel=1e-4)
    with pytest.raises(mg.errors.InvalidArgumentError, match="upsampling"):
        stylegan.SynthesisNetwork(w_dim=4, width=8, up="nearest")
    with pytest.raises(mg.errors.InvalidArgumentError, match="StyleConv up"):
        stylegan.StyleConv(3, 2, 4, up="before")


def test_conv_then_upsample_style_conv_by_hand():
    """up='after': y = sqrt(2) lrelu(up(modconv(x, W, A(w))) + strength * noise + b, 0.2), the conv at the low
    resolution; in the synthesis network the 14x14 and 28x28 blocks' first conv is such a layer."""
    from minigen.nn import functional as F

    mg.manual_seed(0)
    c = stylegan.StyleConv(3, 2, 4, up="after")
    c.noise_strength.array[...] = 0.3
    c.bias.array[...] = np.array([0.5, -0.25], dtype=np.float32)
    x, w, n = mg.randn(2, 3, 5, 5), mg.randn(2, 4), mg.randn(1, 1, 10, 10)
    y = stylegan.modulated_conv2d(x, c.weight * c.scale, c.affine(w), padding=1)
    y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
    want = F.leaky_relu(y + 0.3 * n + c.bias.reshape(1, 2, 1, 1), 0.2) * math.sqrt(2)
    got = c(x, w, n)
    assert got.shape == (2, 2, 10, 10)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    S = stylegan.SynthesisNetwork(w_dim=4, width=8, up="after")
    assert [c.up for c in S.convs] == [None, None, "after", None, "after", None]
    assert S.convs[2].weight.shape == (4, 8, 3, 3)
    noise = [mg.zeros(1, 1, s, s) for s in (7, 7, 14, 14, 28, 28)]
    assert S(mg.randn(2, stylegan.N_STYLES, 4), noise).shape == (2, 1, 28, 28)


def test_equalised_learning_rate_layers_by_hand():
    # EqLinear(2 -> 1, bias 0.5, lr_mul 0.1): stored b = 0.5 / 0.1 = 5; effective W = stored * 0.1 / sqrt(2)
    lin = stylegan.EqLinear(2, 1, bias_init=0.5, lr_mul=0.1)
    assert lin.bias.item() == pytest.approx(5.0)
    lin.weight.array[:] = np.array([[10.0, -20.0]], dtype=np.float32)
    y = lin(mg.tensor([[1.0, 1.0]])).item()
    assert y == pytest.approx((10.0 - 20.0) * 0.1 / math.sqrt(2) + 0.5, rel=1e-6)
    conv = stylegan.EqConv2d(3, 2, 3, padding=1)
    x = mg.randn(1, 3, 4, 4)
    ref = mg.nn.functional.conv2d(x, conv.weight.detach() / math.sqrt(27), conv.bias.detach(), padding=1)
    np.testing.assert_allclose(conv(x).detach().numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    big = stylegan.EqLinear(400, 300)          # stored ~ N(0, 1): the effective weights have std 1/sqrt(fan_in)
    assert big.weight.detach().numpy().std() == pytest.approx(1.0, rel=0.02)


def test_minibatch_stddev_by_hand_and_gradients():
    # B = 4, group 2: samples (0, 2) and (1, 3) form the groups; x = 1, 10, 3, 14 -> stds 1 and 2
    x = mg.tensor(np.array([1.0, 10.0, 3.0, 14.0]).reshape(4, 1, 1, 1))
    y = stylegan.minibatch_stddev(x, group=2).detach().numpy()
    assert y.shape == (4, 2, 1, 1)
    np.testing.assert_allclose(y[:, 0].ravel(), [1, 10, 3, 14])
    np.testing.assert_allclose(y[:, 1].ravel(), np.sqrt([1 + 1e-8, 4 + 1e-8, 1 + 1e-8, 4 + 1e-8]), rtol=1e-12)
    # a group size that does not divide the batch falls back to gcd(group, B)
    assert stylegan.minibatch_stddev(mg.randn(6, 2, 3, 3), group=4).shape == (6, 3, 3, 3)
    xs = _leaf(np.random.default_rng(0).standard_normal((4, 2, 2, 2)))
    assert gradcheck(lambda x: stylegan.minibatch_stddev(x, group=2), (xs,))


def test_mapping_network_keeps_unit_scale():
    """With StyleGAN's sqrt(2) LeakyReLU gain, w = f(z) varies with z at the scale of z (at initialisation):
    without it, 4 layers shrink the variance ~14x and every style is nearly the same."""
    mg.manual_seed(0)
    f = stylegan.MappingNetwork(64, 64, 4)
    w = f(mg.randn(2000, 64)).detach().numpy()
    assert 0.6 < w.std(axis=0).mean() < 1.6
    a = stylegan.ScaledLeakyReLU()(mg.tensor([-1.0, 2.0])).detach().numpy()
    np.testing.assert_allclose(a, [-0.2 * math.sqrt(2), 2 * math.sqrt(2)], rtol=1e-6)


def test_style_mixing_and_truncation():
    mg.manual_seed(0)
    G = stylegan.StyleGenerator(z_dim=8, w_dim=8, width=8, n_mapping=2)
    G.eval()
    noise = [mg.zeros(1, 1, s, s) for s in (7, 7, 14, 14, 28, 28)]
    z1, z2 = mg.randn(2, 8), mg.randn(2, 8)
    w1, w2 = G.broadcast(G.mapping(z1)), G.broadcast(G.mapping(z2))
    mixed = G.mix(w1, w2, 3).detach().numpy()
    np.testing.assert_array_equal(mixed[:, :3], w1.detach().numpy()[:, :3])
    np.testing.assert_array_equal(mixed[:, 3:], w2.detach().numpy()[:, 3:])
    mid = G.mix(w1, w2, (2, 4)).detach().numpy()
    np.testing.assert_array_equal(mid[:, 2:4], w2.detach().numpy()[:, 2:4])
    np.testing.assert_array_equal(mid[:, [0, 1, 4, 5, 6]], w1.detach().numpy()[:, [0, 1, 4, 5, 6]])
    # G(z1, z2, cut) is the synthesis of the mixed styles
    np.testing.assert_allclose(G(z1, z2, cut=3, noise=noise).detach().numpy(),
                               G.synthesis(G.mix(w1, w2, 3), noise).detach().numpy(), rtol=1e-6)
    # mixing from layer 0 gives G(z2); truncation psi = 0 maps every z to w_avg
    np.testing.assert_allclose(G(z1, z2, cut=0, noise=noise).detach().numpy(), G(z2, noise=noise).detach().numpy(),
                               rtol=1e-6)
    G.w_avg.array[:] = np.random.default_rng(1).standard_normal(8).astype(np.float32)
    t = G(mg.randn(3, 8), truncation=0.0, noise=noise).detach().numpy()
    np.testing.assert_allclose(t[0], t[1], rtol=1e-5, atol=1e-6)
    assert t.shape == (3, 1, 28, 28)


def test_w_avg_tracks_the_mean_w_in_training():
    mg.manual_seed(0)
    G = stylegan.StyleGenerator(z_dim=4, w_dim=4, width=8, n_mapping=1, w_avg_beta=0.5)
    z = mg.randn(5, 4)
    G.train()
    G(z)
    w = G.mapping(z).detach().numpy().mean(0)
    np.testing.assert_allclose(G.w_avg.detach().numpy(), 0.5 * w, rtol=1e-5)   # lerp(mean w, 0, 0.5)
    G.eval()
    G(z)
    np.testing.assert_allclose(G.w_avg.detach().numpy(), 0.5 * w, rtol=1e-5)   # no update in eval mode


def test_skip_synthesis_sums_the_upsampled_torgb_images():
    """skip=True: img = up(up(ToRGB_7(x_7, w_1)) + ToRGB_14(x_14, w_3)) + ToRGB_28(x_28, w_6), by hand."""
    from minigen.nn import functional as F

    mg.manual_seed(0)
    S = stylegan.SynthesisNetwork(w_dim=4, width=8, skip=True)
    ws = mg.randn(2, stylegan.N_STYLES, 4)
    noise = [mg.randn(1, 1, s, s) for s in (7, 7, 14, 14, 28, 28)]
    got = S(ws, noise).detach().numpy()
    x, c = S.const.expand(2, 8, 7, 7), S.convs
    x = c[1](c[0](x, ws[:, 0], noise[0]), ws[:, 1], noise[1])
    img = S.to_rgb_7(x, ws[:, 1])

    def up(t):
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

    x = up(x)
    x = c[3](c[2](x, ws[:, 2], noise[2]), ws[:, 3], noise[3])
    img = up(img) + S.to_rgb_14(x, ws[:, 3])
    x = up(x)
    x = c[5](c[4](x, ws[:, 4], noise[4]), ws[:, 5], noise[5])
    want = (up(img) + S.to_rgb(x, ws[:, 6])).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got.shape == (2, 1, 28, 28)
    # the 7x7 image depends on the coarse styles only: changing w_0 changes the output, so does w_6
    ws2 = ws.detach().clone()
    ws2.array[:, 6] += 1.0
    assert not np.allclose(S(ws2, noise).detach().numpy(), got)
    flat = stylegan.SynthesisNetwork(w_dim=4, width=8, skip=False)
    assert not hasattr(flat, "to_rgb_7") and flat(ws, noise).shape == (2, 1, 28, 28)


def test_ema_of_generator_weights_by_hand():
    """theta_ema <- beta theta_ema + (1 - beta) theta; buffers copied; beta = 0.5 ** (B / min(h, 0.05 n))."""
    mg.manual_seed(0)
    G = stylegan.StyleGenerator(z_dim=4, w_dim=4, width=8, n_mapping=1)
    E = stylegan.StyleGenerator(z_dim=4, w_dim=4, width=8, n_mapping=1)
    before = {k: v.detach().numpy().copy() for k, v in E.state_dict().items()}
    G.w_avg.array[:] = 3.0
    stylegan.ema_update_(E, G, 0.75)
    gs = G.state_dict()
    for k, v in E.state_dict().items():
        want = gs[k].detach().numpy() if k == "w_avg" else 0.75 * before[k] + 0.25 * gs[k].detach().numpy()
        np.testing.assert_allclose(v.detach().numpy(), want, rtol=1e-6, atol=1e-7, err_msg=k)
    assert E.synthesis.convs[0].noise_strength.array.shape == ()          # 0-d parameters stay 0-d arrays
    assert stylegan.ema_beta(32, 10**7, half_life=10_000) == pytest.approx(0.5 ** (32 / 10_000))
    assert stylegan.ema_beta(32, 6400, half_life=10_000) == pytest.approx(0.5 ** (32 / 320))   # ramp-up: 5% of 6400
    assert stylegan.ema_beta(32, 0) == pytest.approx(0.0)                 # the first step copies G


def test_tanh_output_torgb_bias_init_and_d_dropout():
    """tanh=True: img = tanh(ToRGB(x_28, w_6)) of the same network; rgb_bias_init sets ToRGB's bias;
    StyleDiscriminator(dropout=p) drops in training only."""
    mg.manual_seed(0)
    lin = stylegan.SynthesisNetwork(w_dim=4, width=8, rgb_bias_init=-1.0)
    th = stylegan.SynthesisNetwork(w_dim=4, width=8, tanh=True)
    th.load_state_dict(lin.state_dict())
    np.testing.assert_array_equal(lin.to_rgb.bias.detach().numpy(), [-1.0])
    ws = mg.randn(2, stylegan.N_STYLES, 4)
    noise = [mg.randn(1, 1, s, s) for s in (7, 7, 14, 14, 28, 28)]
    a, b = lin(ws, noise).detach().numpy(), th(ws, noise).detach().numpy()
    np.testing.assert_allclose(b, np.tanh(a), rtol=1e-5, atol=1e-6)
    assert np.abs(b).max() < 1.0 and np.abs(a).max() > 1.0     # the linear output leaves [-1, 1], tanh does not
    G = stylegan.StyleGenerator(z_dim=4, w_dim=4, width=8, n_mapping=1, tanh=True)
    assert G.synthesis.tanh and not stylegan.StyleGenerator(z_dim=4, w_dim=4, width=8, n_mapping=1).synthesis.tanh
    D = stylegan.StyleDiscriminator(width=4, dropout=0.5)
    x = mg.randn(4, 1, 28, 28)
    D.eval()
    np.testing.assert_array_equal(D(x).detach().numpy(), D(x).detach().numpy())
    D.train()
    assert not np.allclose(D(x).detach().numpy(), D(x).detach().numpy())


def test_discriminator_kernel_option():
    """kernel=3: two 3x3 stride-2 convs, 28 -> 14 -> 7, the same 7x7 logit layer; the output equals the
    layers applied by hand; kernel 4 is refused."""
    from minigen.nn import functional as F

    mg.manual_seed(0)
    D = stylegan.StyleDiscriminator(width=4, kernel=3, mbstd_group=1)
    c1, c2 = D.features[0], D.features[2]
    assert c1.weight.shape == (4, 1, 3, 3) and c2.weight.shape == (8, 4, 3, 3)
    x = mg.randn(2, 1, 28, 28)
    h = F.leaky_relu(F.conv2d(x, c1.weight / 3.0, c1.bias, stride=2, padding=1), 0.2) * math.sqrt(2)
    h = F.leaky_relu(F.conv2d(h, c2.weight / 6.0, c2.bias, stride=2, padding=1), 0.2) * math.sqrt(2)
    assert h.shape == (2, 8, 7, 7)
    h = mg.cat([h, mg.zeros(2, 1, 7, 7) + math.sqrt(1e-8)], dim=1)      # group 1: the stddev map is sqrt(eps)
    want = D.out(h.reshape(2, -1)).reshape(-1)
    np.testing.assert_allclose(D(x).detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(mg.errors.InvalidArgumentError, match="kernel"):
        stylegan.StyleDiscriminator(width=4, kernel=4)


def test_noise_maps_give_the_stochastic_variation_only():
    """y = lrelu(conv + strength * noise + b): with the noise maps at 0 the output is a function of z alone;
    with fresh N(0, 1) maps and a nonzero strength two calls differ."""
    mg.manual_seed(0)
    G = stylegan.StyleGenerator(z_dim=4, w_dim=4, width=8, n_mapping=1, tanh=True).eval()
    for c in G.synthesis.convs:
        c.noise_strength.array[...] = 0.5
    z = mg.randn(2, 4)
    zeros = [mg.zeros(1, 1, s, s) for s in (7, 7, 14, 14, 28, 28)]
    np.testing.assert_array_equal(G(z, noise=zeros).detach().numpy(), G(z, noise=zeros).detach().numpy())
    assert not np.allclose(G(z).detach().numpy(), G(z).detach().numpy())


def test_adain_generator_runs_and_r1_by_hand():
    G = stylegan.StyleGenerator(z_dim=4, w_dim=4, width=8, n_mapping=1, mode="adain")
    assert G(mg.randn(2, 4)).shape == (2, 1, 28, 28)
    D = _LinearCritic([[3.0, 4.0]])           # ||grad_x D||^2 = 25 for every x
    assert stylegan.r1_penalty(D, mg.tensor(np.ones((3, 1, 2)))).item() == pytest.approx(25.0)


# ============================================================================ VAE
def test_reparameterisation_and_its_gradients():
    mu, logvar = _leaf([1.0, -2.0]), _leaf([0.0, math.log(4.0)])
    eps = mg.tensor([0.5, -1.0], dtype=mg.float64)
    z = vae.reparameterize(mu, logvar, eps)
    np.testing.assert_allclose(z.detach().numpy(), [1.5, -4.0])
    z.sum().backward()
    np.testing.assert_allclose(mu.grad.numpy(), [1.0, 1.0])                       # dz/dmu = 1
    np.testing.assert_allclose(logvar.grad.numpy(), [0.5 * 1 * 0.5, 0.5 * 2 * -1.0])  # 0.5 exp(lv/2) eps


def test_reparameterisation_distribution():
    mu, logvar = mg.full((20000,), 3.0), mg.full((20000,), math.log(0.25))
    z = vae.reparameterize(mu, logvar).detach().numpy()
    assert z.mean() == pytest.approx(3.0, abs=0.02) and z.std() == pytest.approx(0.5, rel=0.03)


def test_vae_loss_by_hand():
    # KL: mu = (1, 0), logvar = (0, ln 2): -0.5 [(1 + 0 - 1 - 1) + (1 + ln 2 - 0 - 2)] = 1 - 0.5 ln 2
    mu, logvar = mg.tensor([[1.0, 0.0]], dtype=mg.float64), mg.tensor([[0.0, math.log(2.0)]], dtype=mg.float64)
    # BCE: x = (1, 0), p = sigmoid(logits) = (0.8, 0.25): -ln 0.8 - ln 0.75
    x = mg.tensor([[1.0, 0.0]], dtype=mg.float64)
    logits = mg.tensor([[math.log(4.0), math.log(1 / 3)]], dtype=mg.float64)
    total, bce, kl = vae.vae_loss(x, logits, mu, logvar)
    assert kl.item() == pytest.approx(1 - 0.5 * math.log(2), rel=1e-12)
    assert bce.item() == pytest.approx(-math.log(0.8) - math.log(0.75), rel=1e-12)
    assert total.item() == pytest.approx(bce.item() + kl.item(), rel=1e-12)


def test_vae_shapes_and_gradcheck():
    for arch in ("mlp", "conv"):
        m = vae.build_vae(arch, latent_dim=3, hidden=8, width=2)
        logits, mu, logvar = m(mg.rand(2, 1, 28, 28))
        assert logits.shape == (2, 1, 28, 28) and mu.shape == (2, 3) and logvar.shape == (2, 3)
    m = vae.MLPVAE(latent_dim=2, hidden=3)
    m.to(mg.float64)
    x = mg.tensor(np.random.default_rng(0).random((2, 1, 28, 28)))
    eps = mg.tensor(np.random.default_rng(1).standard_normal((2, 2)))

    def f(w):
        return vae.vae_loss(x, *m(x, eps))[0]

    assert gradcheck(f, (m.fc21.weight,)) and gradcheck(f, (m.fc22.bias,))


@requires_torch
def test_mlp_vae_matches_torch():
    import torch
    import torch.nn.functional as TF

    m = vae.MLPVAE(latent_dim=4, hidden=16)
    m.to(mg.float64)
    rng = np.random.default_rng(0)
    x, eps = rng.random((3, 1, 28, 28)), rng.standard_normal((3, 4))
    total, _, _ = vae.vae_loss(mg.tensor(x), *m(mg.tensor(x), mg.tensor(eps)))
    total.backward()
    W = {k: torch.tensor(v.detach().numpy(), requires_grad=True) for k, v in m.state_dict().items()}
    tx = torch.tensor(x).reshape(3, 784)
    h = TF.relu(TF.linear(tx, W["fc1.weight"], W["fc1.bias"]))
    mu, lv = TF.linear(h, W["fc21.weight"], W["fc21.bias"]), TF.linear(h, W["fc22.weight"], W["fc22.bias"])
    z = mu + (0.5 * lv).exp() * torch.tensor(eps)
    logits = TF.linear(TF.relu(TF.linear(z, W["fc3.weight"], W["fc3.bias"])), W["fc4.weight"], W["fc4.bias"])
    t = TF.binary_cross_entropy_with_logits(logits, tx, reduction="sum") - 0.5 * (1 + lv - mu ** 2 - lv.exp()).sum()
    t.backward()
    assert total.item() == pytest.approx(t.item(), rel=1e-10)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), W[name].grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


def test_norm_ppf_inverts_the_normal_cdf():
    for p in (0.025, 0.5, 0.8413447460685429):
        x = recipes_vae.norm_ppf(p)
        assert 0.5 * (1 + math.erf(x / math.sqrt(2))) == pytest.approx(p, abs=1e-12)
    assert recipes_vae.norm_ppf(0.975) == pytest.approx(1.959963984540054, abs=1e-9)


# ============================================================================ classifier scores
def test_scores_by_hand():
    # two confident, different predictions: M = 1, H(p_bar) = ln 2, IS = exp(ln 2) = 2
    s = classifier.scores_from_probs([[1.0, 0.0], [0.0, 1.0]])
    assert s["mean_max_prob"] == 1.0 and s["class_entropy"] == pytest.approx(math.log(2), abs=1e-9)
    assert s["inception_score"] == pytest.approx(2.0, rel=1e-9) and s["class_freq"] == [0.5, 0.5]
    # mode collapse (both images the same confident class): IS = 1, entropy 0
    s = classifier.scores_from_probs([[1.0, 0.0], [1.0, 0.0]])
    assert s["inception_score"] == pytest.approx(1.0) and s["class_entropy"] == pytest.approx(0.0, abs=1e-9)
    # a hand case: p1 = (0.5, 0.5), p2 = (0.9, 0.1): p_bar = (0.7, 0.3)
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    kl = [(r * np.log(r / np.array([0.7, 0.3]))).sum() for r in p]
    s = classifier.scores_from_probs(p)
    assert s["mean_max_prob"] == pytest.approx(0.7)
    assert s["class_entropy"] == pytest.approx(-(0.7 * math.log(0.7) + 0.3 * math.log(0.3)), rel=1e-9)
    assert s["inception_score"] == pytest.approx(math.exp(np.mean(kl)), rel=1e-9)


def test_random_shift_moves_pixels():
    x = mg.zeros(50, 1, 5, 5)
    x.array[:, 0, 2, 2] = 1.0
    y = recipes_classifier.random_shift(x, 1, generator=mg.Generator().manual_seed(0)).detach().numpy()
    pos = [tuple(np.argwhere(y[k, 0])[0]) for k in range(50)]
    assert all(abs(r - 2) <= 1 and abs(c - 2) <= 1 for r, c in pos) and len(set(pos)) > 4
    assert (y.sum(axis=(1, 2, 3)) == 1).all()     # shifted, not lost
    assert recipes_classifier.random_shift(x, 0) is x


def test_classifier_forward_and_probs():
    for m in (classifier.MNISTClassifier(width=4, hidden=8), classifier.MLPClassifier(hidden=8)):
        p = m.probs(np.random.default_rng(0).random((7, 1, 28, 28)).astype(np.float32), batch_size=3)
        assert p.shape == (7, 10) and np.allclose(p.sum(1), 1.0)


def test_mlp_classifier_by_hand():
    """logits = W_3 relu(W_2 relu(W_1 x + b_1) + b_2) + b_3 on a flattened image."""
    m = classifier.MLPClassifier(hidden=3).double()
    rng = np.random.default_rng(1)
    x = rng.random((2, 1, 28, 28))
    P = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    h = np.maximum(x.reshape(2, 784) @ P["net.1.weight"].T + P["net.1.bias"], 0)
    h = np.maximum(h @ P["net.3.weight"].T + P["net.3.bias"], 0)
    want = h @ P["net.5.weight"].T + P["net.5.bias"]
    np.testing.assert_allclose(m(mg.tensor(x)).detach().numpy(), want, rtol=1e-12)
