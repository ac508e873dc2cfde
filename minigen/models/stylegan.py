"""A small StyleGAN-style generator (Karras et al. 2019, 2020) for 28x28 MNIST.

**Mapping network** z -> w: the noise is pixel-normalised, then passed through an MLP::

    z' = z / sqrt(mean_i z_i^2 + 1e-8),      w = f(z')   (``n_mapping`` x [Linear, sqrt(2) LeakyReLU(0.2)])

**Synthesis network**: a learned constant (C, 7, 7) is refined by style-modulated 3x3 convolutions, each
followed by per-pixel noise (a learned strength times N(0, 1)), a bias and LeakyReLU(0.2) times sqrt(2)
(StyleGAN's gain, which keeps the activations at unit variance from layer to layer); between
resolutions the maps are upsampled x2 (bilinear)::

    const 7x7 -> StyleConv(w_0) -> StyleConv(w_1)                       coarse  (7 x 7,   C channels)
      -> up -> StyleConv(w_2) -> StyleConv(w_3)                          middle  (14 x 14, C/2)
      -> up -> StyleConv(w_4) -> StyleConv(w_5)                          fine    (28 x 28, C/4)
      -> ToRGB(w_6): modulated 1x1 conv without demodulation, + bias     (1 channel, linear output)
      [-> tanh, with ``tanh=True``: img = tanh(ToRGB(x_28, w_6))]

Where the x2 upsampling sits (``up``): ``"bilinear"`` (the class default, StyleGAN1's order) upsamples the
maps and then runs StyleConv(w_2) / StyleConv(w_4) at the new resolution, x -> conv(up(x)); ``"after"`` (the
recipe's default) runs those two convs at the low resolution and upsamples their output before the noise,
bias and activation, y = sqrt(2) lrelu(up(modconv(x, w)) + noise + b): the same two styled 3x3 convs and noise
maps (noise still at 14 x 14 and 28 x 28), a quarter of their multiply-adds (measured: a training step 355 ->
285 ms, one thread, batch 64); ``"transposed"``: a 4x4 stride-2 modulated transposed conv
(:func:`modulated_conv_transpose2d`, StyleGAN2's upsampling conv without its blur filter; it drew checkerboard
speckle here, see :mod:`minigen.recipes.stylegan`). ``noise_lr_mul`` scales the noise strengths' learning rate
(strength = noise_lr_mul x the stored parameter, the equalised-lr device used for the mapping network): at 1
the strengths grew to ~0.24 within 3 epochs and the samples carried salt-and-pepper speckle; the recipe uses 0.1.

``tanh=True`` (the recipe's default for MNIST) is the DCGAN's output layer, not StyleGAN's: MNIST's
background is exactly -1 on ~80% of the pixels, which a tanh reaches by saturating, while the linear output had
to hit -1 exactly and left grey, blotchy backgrounds after a few epochs (see :mod:`minigen.recipes.stylegan`).

With ``skip=True`` (StyleGAN2's "skip" generator; not the default, which was measured better on MNIST at a CPU
budget) every resolution also has a ToRGB and the image is their upsampled sum::

    img = up( up( ToRGB_7(x_7, w_1) ) + ToRGB_14(x_14, w_3) ) + ToRGB_28(x_28, w_6)

Each layer reads its own copy w_l of w (``ws`` of shape (B, 7, w_dim)); giving different layers the w of
different z is **style mixing**: w_0, w_1 (7 x 7) set the coarse shape of the digit, w_2, w_3 (14 x 14) the
middle-scale strokes, w_4..w_6 (28 x 28) the fine detail (stroke width, edges).

**EMA of G** (:func:`ema_update_`, :func:`ema_beta`): the generator that is sampled and scored is a running
average of G's weights, theta_ema <- beta theta_ema + (1 - beta) theta after every G step, beta =
0.5 ** (B / h), h = min(10k images, r x the images seen) (StyleGAN2-ADA's half-life with its ramp-up, r = 0.05
there; the recipe's default is r = 0.25, which averages over more of a short run).

**Weight modulation / demodulation** (StyleGAN2, the default ``mode='modconv'``): with style s = A(w)
(an affine map, bias initialised to 1) and conv weight W (Cout, Cin, k, k)::

    W'_{b,j,i,k}  = s_{b,i} * W_{j,i,k}                                         (modulation)
    W''_{b,j,i,k} = W'_{b,j,i,k} / sqrt( sum_{i,k} W'_{b,j,i,k}^2 + 1e-8 )      (demodulation)
    y_b = conv(x_b, W''_b)

computed without materialising one weight per sample: conv(x_b, W''_b) = d_{b,j} * conv(x_b * s_b, W) with
d_{b,j} = 1 / sqrt( sum_i s_{b,i}^2 sum_k W_{j,i,k}^2 + 1e-8 ) (the two are equal term by term).

**AdaIN** (StyleGAN1, ``mode='adain'``): the conv is unmodulated and the style (y_s, y_b) = A(w) rescales the
normalised feature maps:  AdaIN(x, y)_{b,c} = y_{s,b,c} (x_{b,c} - mu(x_{b,c})) / sigma(x_{b,c}) + y_{b,b,c},
with mu, sigma the mean and standard deviation over the H x W positions (sigma^2 = biased variance + 1e-5).

Every weight of G and D uses the **equalised learning rate**: stored ~ N(0, 1), multiplied by
1/sqrt(fan_in) at run time (:class:`EqLinear`, :class:`EqConv2d`), so Adam changes every layer at the same
relative rate; the mapping network's layers also carry lr_mul = 0.01 (they learn 100x slower, as StyleGAN).
The discriminator's regulariser is R1 on real images, R1 = gamma/2 * E||grad_x D(x)||^2 (:func:`r1_penalty`).
Training (the non-saturating logistic loss of :mod:`minigen.models.gan`, lazy R1, Adam 2e-3 / betas (0, 0.99),
mixing regularisation) and the style-mixing figures: :mod:`minigen.recipes.stylegan`. The discriminator
(:class:`StyleDiscriminator`) has the DCGAN layout (5x5 stride-2 convs; ``kernel=3`` for StyleGAN's 3x3)
with equalised layers, no dropout and no normalisation, plus StyleGAN's minibatch standard deviation feature (without it, the linear-output generator collapsed to one
digit within three epochs here; the tanh-output one did not, on one seed).
``w_avg`` (a running mean of w) allows the truncation trick w = w_avg + psi (w - w_avg).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd.engine import grad as autograd_grad
from ..errors import InvalidArgumentError
from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["pixel_norm", "adain", "modulated_conv2d", "modulated_conv_transpose2d", "EqLinear", "EqConv2d", "minibatch_stddev", "StyleDiscriminator",
           "ScaledLeakyReLU", "MappingNetwork", "StyleConv", "ToRGB", "SynthesisNetwork", "StyleGenerator",
           "r1_penalty", "ema_update_", "ema_beta", "N_STYLES"]

N_STYLES = 7
LRELU_GAIN = math.sqrt(2.0)


# ----------------------------------------------------------------------------- the formulas
def pixel_norm(z, eps=1e-8):
    """z / sqrt(mean_i z_i^2 + eps) along dim 1."""
    return z * ((z * z).mean(dim=1, keepdim=True) + eps).rsqrt()


def adain(x, ys, yb, eps=1e-5):
    """AdaIN(x, y) = ys * (x - mu) / sigma + yb, per sample and channel; mu, sigma over (H, W).

    x (B, C, H, W), ys / yb (B, C). sigma = sqrt(biased variance + eps).
    """
    mu = x.mean(dim=(2, 3), keepdim=True)
    xc = x - mu
    sigma = ((xc * xc).mean(dim=(2, 3), keepdim=True) + eps).sqrt()
    B, C = ys.shape
    return ys.reshape(B, C, 1, 1) * (xc / sigma) + yb.reshape(B, C, 1, 1)


def modulated_conv_transpose2d(x, weight, s, demodulate=True, stride=2, padding=1, eps=1e-8):
    """The upsampling modulated convolution: y_b = conv_transpose(x_b, W''_b, stride), weight (Cin, Cout, k, k).

    W'_{b,i,j,k} = s_{b,i} W_{i,j,k};  W''_{b,i,j,k} = W'_{b,i,j,k} / sqrt( sum_{i,k} W'_{b,i,j,k}^2 / stride^2 + eps ).
    A stride-``stride`` transposed conv gives every output pixel 1 / stride^2 of the kernel's taps (for k a
    multiple of the stride), so the /stride^2 makes the expected output variance 1 for unit-variance inputs, as
    the demodulation of :func:`modulated_conv2d` does (StyleGAN2 gets the same factor from its upsampling
    filter's gain up^2). Computed as d * conv_transpose(x * s, W), d_{b,j} = 1 / sqrt( sum_i s_{b,i}^2
    sum_k W_{i,j,k}^2 / stride^2 + eps ).
    """
    B, Cin = s.shape
    y = F.conv_transpose2d(x * s.reshape(B, Cin, 1, 1), weight, stride=stride, padding=padding)
    if not demodulate:
        return y
    w2 = (weight * weight).sum(dim=(2, 3)) * (1.0 / (stride * stride))   # (Cin, Cout)
    d = ((s * s) @ w2 + eps).rsqrt()                                      # (B, Cout)
    return y * d.reshape(B, -1, 1, 1)


def modulated_conv2d(x, weight, s, demodulate=True, padding=0, eps=1e-8):
    """y_b = conv(x_b, W''_b) with W'' the modulated (and demodulated) weight (module docstring).

    x (B, Cin, H, W), weight (Cout, Cin, k, k), s (B, Cin). Computed as d * conv(x * s, W).
    """
    B, Cin = s.shape
    y = F.conv2d(x * s.reshape(B, Cin, 1, 1), weight, padding=padding)
    if not demodulate:
        return y
    w2 = (weight * weight).sum(dim=(2, 3))                    # (Cout, Cin): sum_k W_{j,i,k}^2
    d = ((s * s) @ w2.transpose(0, 1) + eps).rsqrt()          # (B, Cout)
    return y * d.reshape(B, -1, 1, 1)


# ----------------------------------------------------------------------------- networks
class EqLinear(nn.Module):
    """Linear layer with the equalised learning rate: y = x (c W)^T + m b, c = lr_mul / sqrt(in), m = lr_mul.

    W is stored ~ N(0, 1 / lr_mul^2) and b as b_init / lr_mul, so the effective weights start at the usual
    He scale while Adam moves every stored parameter at the same relative rate (``lr_mul`` slows a layer).
    """

    def __init__(self, in_features, out_features, bias_init=0.0, lr_mul=1.0):
        super().__init__()
        self.weight = nn.Parameter(np.zeros((out_features, in_features), dtype=np.float32))
        nn.init.normal_(self.weight, 0.0, 1.0 / lr_mul)
        self.bias = nn.Parameter(np.full((out_features,), bias_init / lr_mul, dtype=np.float32))
        self.scale, self.lr_mul = lr_mul / math.sqrt(in_features), lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqConv2d(nn.Module):
    """Conv2d with the equalised learning rate: weight ~ N(0, 1) times 1 / sqrt(fan_in) at run time."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.weight = nn.Parameter(np.zeros((cout, cin, kernel, kernel), dtype=np.float32))
        nn.init.normal_(self.weight, 0.0, 1.0)
        self.bias = nn.Parameter(np.zeros((cout,), dtype=np.float32))
        self.scale, self.stride, self.padding = 1.0 / math.sqrt(cin * kernel * kernel), stride, padding

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class ScaledLeakyReLU(nn.Module):
    """sqrt(2) * LeakyReLU(x, 0.2): StyleGAN's activation, which keeps unit-variance inputs at unit variance
    (without the gain each layer halves the variance: the mapping network's w, and so the styles, would
    barely depend on z)."""

    def forward(self, x):
        return F.leaky_relu(x, 0.2) * LRELU_GAIN


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``n_layers`` x (EqLinear with lr_mul 0.01, sqrt(2) LeakyReLU(0.2))."""

    def __init__(self, z_dim=64, w_dim=64, n_layers=4, lr_mul=0.01):
        super().__init__()
        layers, d = [], z_dim
        for _ in range(n_layers):
            layers += [EqLinear(d, w_dim, lr_mul=lr_mul), ScaledLeakyReLU()]
            d = w_dim
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(pixel_norm(z))


def _Affine(w_dim, n, bias_init):
    """A(w): an EqLinear(w_dim -> n) whose bias starts at ``bias_init`` (1: styles start at the identity)."""
    return EqLinear(w_dim, n, bias_init=bias_init)


def minibatch_stddev(x, group=4, eps=1e-8):
    """Append one feature map: the mean over (C, H, W) of the standard deviation across a group of samples.

    Samples b = g * (B / G) + m (g < G) form group m; every sample of group m gets the map
    s_m = mean_{c,h,w} sqrt( mean_g (x_{g,m} - mean_g x_{g,m})^2 + eps ). A generator that collapses to
    one image makes s small, which the discriminator can see (ProGAN / StyleGAN).
    """
    import minigen as mg

    B, C, H, W = x.shape
    G = math.gcd(int(group), int(B))
    y = x.reshape(G, B // G, C, H, W)
    y = y - y.mean(dim=0, keepdim=True)
    s = ((y * y).mean(dim=0) + eps).sqrt().mean(dim=(1, 2, 3))            # (B / G,)
    s = s.reshape(1, B // G, 1, 1, 1).expand(G, B // G, 1, H, W).reshape(B, 1, H, W)
    return mg.cat([x, s], dim=1)


class StyleDiscriminator(nn.Module):
    """The DCGAN discriminator's layout with equalised-learning-rate layers, no dropout, no normalisation,
    and StyleGAN's minibatch standard deviation before the output layer:
    x -> EqConv 5x5 s2 (W) -> sqrt(2) LeakyReLU(0.2) -> EqConv 5x5 s2 (2W) -> sqrt(2) LeakyReLU(0.2)
      -> minibatch stddev (+1 map) -> EqLinear 1 (a logit). ``dropout`` > 0 adds the DCGAN discriminator's
    dropout after each conv block; ``kernel=3``: 3x3 stride-2 convs (StyleGAN's kernel size) instead of the
    DCGAN's 5x5, 9/25 of the multiply-adds."""

    def __init__(self, width=64, in_channels=1, mbstd_group=4, dropout=0.0, kernel=5):
        super().__init__()
        if kernel not in (3, 5):
            raise InvalidArgumentError(f"StyleDiscriminator kernel must be 3 or 5, got {kernel!r}")
        self.mbstd_group = mbstd_group
        k, p = int(kernel), int(kernel) // 2
        layers = [EqConv2d(in_channels, width, k, 2, p), ScaledLeakyReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [EqConv2d(width, 2 * width, k, 2, p), ScaledLeakyReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.out = EqLinear((2 * width + 1) * 7 * 7, 1)

    def forward(self, x):
        h = minibatch_stddev(self.features(x), self.mbstd_group)
        return self.out(h.reshape(h.shape[0], -1)).reshape(-1)


class StyleConv(nn.Module):
    """conv 3x3 modulated by w ('modconv') or followed by AdaIN ('adain'), + noise + bias, LeakyReLU(0.2).

    ``up``: the layer doubles the resolution itself. ``"transposed"``: a 4x4 stride-2 transposed conv
    (:func:`modulated_conv_transpose2d`; weight (Cin, Cout, 4, 4), every output pixel reads 2 x 2 input pixels
    per channel, fan-in Cin * 4). ``"after"``: the 3x3 conv runs at the input's (low) resolution and its output
    is upsampled x2 (bilinear) before the noise, bias and activation: y = lrelu(up(conv(x)) + noise + b), a
    quarter of the multiply-adds of conv(up(x)). ``None``: no upsampling (the synthesis network may upsample
    the input, ``up="bilinear"``). ``noise_lr_mul``: the per-pixel noise strength is ``noise_lr_mul`` times
    its stored parameter (the equalised-lr device: Adam moves the strength ``noise_lr_mul`` times slower).
    """

    def __init__(self, cin, cout, w_dim, mode="modconv", kernel=3, up=None, noise_lr_mul=1.0):
        super().__init__()
        if mode not in ("modconv", "adain"):
            raise ValueError(f"style mode must be 'modconv' or 'adain', got {mode!r}")
        if up not in (None, "transposed", "after"):
            raise InvalidArgumentError(f"StyleConv up must be None, 'transposed' or 'after', got {up!r}")
        self.mode, self.up, self.noise_lr_mul = mode, up, float(noise_lr_mul)
        if self.up == "transposed":
            kernel = 4
            shape, fan_in = (cin, cout, kernel, kernel), cin * kernel * kernel // 4
        else:
            shape, fan_in = (cout, cin, kernel, kernel), cin * kernel * kernel
        self.pad = 1 if self.up == "transposed" else kernel // 2
        self.weight = nn.Parameter(np.zeros(shape, dtype=np.float32))
        nn.init.normal_(self.weight, 0.0, 1.0)
        self.scale = 1.0 / math.sqrt(fan_in)                       # equalised learning rate
        self.affine = _Affine(w_dim, cin, 1.0) if mode == "modconv" else None
        self.adain_scale = _Affine(w_dim, cout, 1.0) if mode == "adain" else None
        self.adain_bias = _Affine(w_dim, cout, 0.0) if mode == "adain" else None
        self.noise_strength = nn.Parameter(np.zeros((), dtype=np.float32))
        self.bias = nn.Parameter(np.zeros((cout,), dtype=np.float32))

    def forward(self, x, w, noise=None):
        W = self.weight * self.scale
        if self.up == "transposed":
            if self.mode == "modconv":
                y = modulated_conv_transpose2d(x, W, self.affine(w), demodulate=True, stride=2, padding=1)
            else:
                y = F.conv_transpose2d(x, W, stride=2, padding=1)
        elif self.mode == "modconv":
            y = modulated_conv2d(x, W, self.affine(w), demodulate=True, padding=self.pad)
        else:
            y = F.conv2d(x, W, padding=self.pad)
        if self.up == "after":
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        B, C, H, Wd = y.shape
        if noise is None:
            import minigen as mg

            noise = mg.randn(B, 1, H, Wd, device=y.device)
        strength = self.noise_strength * self.noise_lr_mul if self.noise_lr_mul != 1.0 else self.noise_strength
        y = F.leaky_relu(y + strength * noise + self.bias.reshape(1, C, 1, 1), 0.2) * LRELU_GAIN
        if self.mode == "adain":
            y = adain(y, self.adain_scale(w), self.adain_bias(w))
        return y


class ToRGB(nn.Module):
    """A modulated 1x1 conv without demodulation, + bias: the image (linear output)."""

    def __init__(self, cin, w_dim, channels=1, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(np.zeros((channels, cin, 1, 1), dtype=np.float32))
        nn.init.normal_(self.weight, 0.0, 1.0)
        self.scale = 1.0 / math.sqrt(cin)
        self.affine = _Affine(w_dim, cin, 1.0)
        self.bias = nn.Parameter(np.full((channels,), bias_init, dtype=np.float32))

    def forward(self, x, w):
        y = modulated_conv2d(x, self.weight * self.scale, self.affine(w), demodulate=False)
        return y + self.bias.reshape(1, -1, 1, 1)


class SynthesisNetwork(nn.Module):
    """ws (B, 7, w_dim) -> image (B, 1, 28, 28): const 7x7 -> 2 StyleConvs per resolution 7/14/28.

    ``skip=True`` (StyleGAN2's "skip" generator): every resolution adds its own ToRGB image to
    the upsampled image of the one below, img_7 = ToRGB(x_7, w_1), img_14 = up(img_7) + ToRGB(x_14, w_3),
    img_28 = up(img_14) + ToRGB(x_28, w_6), so the coarse layers draw the digit's outline from the first step
    on. ``skip=False``: one ToRGB(w_6) at 28 x 28 (StyleGAN1's output layer).
    """

    TORGB_STYLES = (1, 3, 6)   # which w_l each resolution's ToRGB reads (skip=True)

    def __init__(self, w_dim=64, width=64, mode="modconv", skip=False, rgb_bias_init=0.0, tanh=False, up="bilinear",
                 noise_lr_mul=1.0):
        super().__init__()
        if up not in ("bilinear", "transposed", "after"):
            raise InvalidArgumentError(f"synthesis upsampling must be 'bilinear', 'transposed' or 'after', got {up!r}")
        C = width
        self.skip, self.tanh, self.up = bool(skip), bool(tanh), up
        self.const = nn.Parameter(np.zeros((1, C, 7, 7), dtype=np.float32))
        nn.init.normal_(self.const, 0.0, 1.0)
        chans = [(C, C), (C, C), (C, C // 2), (C // 2, C // 2), (C // 2, C // 4), (C // 4, C // 4)]
        self.convs = nn.ModuleList([StyleConv(a, b, w_dim, mode, up=(up if up != "bilinear" and i in (2, 4) else None),
                                              noise_lr_mul=noise_lr_mul) for i, (a, b) in enumerate(chans)])
        self.to_rgb = ToRGB(C // 4, w_dim, bias_init=rgb_bias_init)
        if self.skip:
            self.to_rgb_7 = ToRGB(C, w_dim)
            self.to_rgb_14 = ToRGB(C // 2, w_dim)

    def forward(self, ws, noise=None):
        B = ws.shape[0]
        x = self.const.expand(B, *self.const.shape[1:])
        img = None
        for i, conv in enumerate(self.convs):
            if i in (2, 4):
                if self.skip:
                    rgb = (self.to_rgb_7 if i == 2 else self.to_rgb_14)(x, ws[:, self.TORGB_STYLES[i // 2 - 1]])
                    img = rgb if img is None else img + rgb
                    img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
                if self.up == "bilinear":
                    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = conv(x, ws[:, i], None if noise is None else noise[i])
        out = self.to_rgb(x, ws[:, N_STYLES - 1])
        out = out if img is None else img + out
        return out.tanh() if self.tanh else out


class StyleGenerator(nn.Module):
    """G(z) = synthesis(broadcast(mapping(z))); ``mix`` / ``truncation`` as in StyleGAN."""

    def __init__(self, z_dim=64, w_dim=64, width=64, n_mapping=4, mode="modconv", w_avg_beta=0.995,
                 mapping_lr_mul=0.01, skip=False, rgb_bias_init=0.0, tanh=False, up="bilinear", noise_lr_mul=1.0):
        super().__init__()
        self.z_dim, self.w_dim, self.w_avg_beta = z_dim, w_dim, w_avg_beta
        self.mapping = MappingNetwork(z_dim, w_dim, n_mapping, mapping_lr_mul)
        self.synthesis = SynthesisNetwork(w_dim, width, mode, skip, rgb_bias_init, tanh, up, noise_lr_mul)
        self.register_buffer("w_avg", Tensor(np.zeros((w_dim,), dtype=np.float32)))

    def broadcast(self, w):
        """(B, w_dim) -> (B, 7, w_dim): every layer gets the same w."""
        return w.reshape(w.shape[0], 1, self.w_dim).expand(w.shape[0], N_STYLES, self.w_dim)

    @staticmethod
    def mix(ws1, ws2, cut):
        """Layers < cut take ws1, layers >= cut take ws2 (``cut`` an int, or (lo, hi): layers lo..hi-1 from ws2)."""
        import minigen as mg

        lo, hi = (cut, N_STYLES) if isinstance(cut, int) else cut
        mask = np.zeros((1, N_STYLES, 1), dtype=np.float32)
        mask[:, lo:hi] = 1.0
        m = mg.tensor(mask, device=ws1.device)
        return ws1 * (1.0 - m) + ws2 * m

    def forward(self, z, z2=None, cut=None, truncation=1.0, noise=None):
        w = self.mapping(z)
        if self.training:  # track the mean w for the truncation trick
            wm = w.detach().mean(dim=0)
            self.w_avg.array = (wm + (self.w_avg - wm) * self.w_avg_beta).array
        if truncation != 1.0:
            w = self.w_avg + (w - self.w_avg) * truncation
        ws = self.broadcast(w)
        if z2 is not None:
            w2 = self.mapping(z2)
            if truncation != 1.0:
                w2 = self.w_avg + (w2 - self.w_avg) * truncation
            ws = self.mix(ws, self.broadcast(w2), cut)
        return self.synthesis(ws, noise)


def ema_update_(ema, model, beta):
    """theta_ema <- beta * theta_ema + (1 - beta) * theta for every parameter; buffers (w_avg) copied.

    StyleGAN samples from this exponential moving average of G's weights: G's own weights, moved by Adam with
    beta1 = 0 at a high learning rate, jitter from step to step; their running mean draws cleaner digits.
    ``ema`` and ``model`` have the same architecture. Returns ``ema``.
    """
    b = float(beta)
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.array[...] = pe.array * b + p.array * (1.0 - b)        # in place: 0-d arrays stay arrays
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.array[...] = bm.array
    return ema


def ema_beta(batch_size, images_seen, half_life=10_000, rampup=0.05):
    """StyleGAN2-ADA's EMA decay per step: beta = 0.5 ** (B / h), h = min(half_life, rampup * images_seen).

    The ramp-up keeps the average short early in training (h = 5% of the images seen so far), so a run of a
    few epochs is not dominated by its random initial weights.
    """
    h = max(min(float(half_life), float(rampup) * float(images_seen)), 1e-8)
    return 0.5 ** (float(batch_size) / h)


# ----------------------------------------------------------------------------- regularisation
def r1_penalty(D, real):
    """R1 = mean_b ||grad_x D(x_b)||^2 on real images (differentiable w.r.t. D's parameters)."""
    x = real.detach().requires_grad_(True)
    (g,) = autograd_grad(D(x).sum(), x, create_graph=True)
    return (g * g).reshape(g.shape[0], -1).sum(dim=1).mean()
