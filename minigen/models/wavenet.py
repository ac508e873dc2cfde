"""WaveNet (van den Oord et al., 2016): an autoregressive model of raw audio, one sample at a time.

**Likelihood.** A waveform x = (x_1, ..., x_T) is factorised into next-sample conditionals,

    p(x | h) = prod_t p(x_t | x_1, ..., x_{t-1}, h),

each a 256-way softmax over the mu-law class of x_t, trained by cross-entropy on the next sample
(``logits[:, :, t]`` is the distribution of ``x[:, t + 1]``). ``h`` is an optional global condition
(here: which digit is spoken).

**mu-law companding** (ITU-T G.711, mu = 255) squeezes 16-bit audio into 256 classes with
finer steps near zero, where speech spends most of its time:

    f(x)  = sign(x) * ln(1 + mu |x|) / ln(1 + mu),          x in [-1, 1]
    q     = floor((f(x) + 1) / 2 * mu + 1/2)                 in {0, ..., 255}
    f^-1: y = 2 q / mu - 1,   x = sign(y) * ((1 + mu)^|y| - 1) / mu

**The network.** Input classes go through an embedding (a 1x1 convolution on the one-hot input)
to ``residual_channels`` C. Then ``stacks`` repetitions of ``layers_per_stack`` residual blocks
with dilations 1, 2, 4, ..., 2^(layers_per_stack - 1). Block k, with input x_k (B, C, T):

    a_k = W_k * x_k + b_k + V_k h                       (dilated causal conv, kernel K, dilation d_k;
                                                         W_k stacks [W_f,k ; W_g,k], V_k h = [V_f,k h ; V_g,k h])
    z_k = tanh(W_f,k * x_k + V_f,k h)  (.)  sigmoid(W_g,k * x_k + V_g,k h)      (gated activation unit)
    x_{k+1} = x_k + R_k z_k + r_k                       (residual connection, 1x1 conv)
    s_k     = S_k z_k + c_k                             (skip connection, 1x1 conv)

and the output head:  logits = E_2 relu(E_1 relu(sum_k s_k) + e_1) + e_2   (1x1 convs, 256 classes).

A *causal* convolution only looks back: ``(W * x)[t] = sum_{j=0}^{K-1} W[:, :, j] x[t - (K-1-j) d]``,
computed as ``F.conv1d(F.pad(x, ((K-1) d, 0)), W, dilation=d)`` (zero left padding: nothing before
the first sample). The output at t therefore depends on inputs 0..t only, and the receptive field is

    receptive_field = (K - 1) * sum_k d_k + 1       (= 2 * 255 + 1 = 511 samples for 2 stacks of 1..128, K=2)

**Global conditioning.** ``num_classes > 0`` adds a label embedding h = Emb(label) in R^{cond_channels}
and a per-block projection V_k (no bias) into every gate, as in the paper's
``tanh(W_f * x + V_f^T h) (.) sigmoid(W_g * x + V_g^T h)``; the same h at every time step.

**Fast generation** (Paine et al., 2016, "Fast Wavenet generation algorithm"): sampling one sample
at a time with the full network recomputes the whole receptive field at every step. Instead
:class:`FastWaveNetGenerator` keeps, for each block, a queue of its last (K-1) d_k inputs; a step
pops the inputs at t - d_k, ..., t - (K-1) d_k, pushes x_k[t], and costs O(number of blocks)
small matrix-vector products, independent of the receptive field. :meth:`WaveNet.generate` uses it;
:meth:`WaveNet.generate_naive` runs the full forward over the last ``receptive_field`` samples at
every step (the uncached reference). Both draw from the same softmax with the same uniforms, so
with the same seed they produce the same samples (their per-step probabilities agree to float
rounding: ~1e-6 relative in float32, ~1e-12 in float64).

**Start of a sequence.** Generation feeds the class of silence (0.0 -> 128) as the first input, with
zeros (the causal padding) before it; the recipe trains on recordings prefixed by that one silence
sample, so the first real sample is predicted in the same situation.

Shapes: classes (B, T) int64; activations (B, C, T); logits (B, 256, T); labels (B,) int64.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import Tensor, get_array_module, nn, no_grad  # the public API only
from ..errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from ..nn import functional as F

__all__ = ["WaveNet", "WaveNetConfig", "CausalConv1d", "ResidualBlock", "FastWaveNetGenerator",
           "mu_law_encode", "mu_law_decode", "sample_from_logits"]


# ----------------------------------------------------------------------------- mu-law companding
def _as_array(x):
    return x.array if isinstance(x, Tensor) else x


def mu_law_encode(x, quantization_channels: int = 256):
    """Waveform in [-1, 1] -> mu-law classes {0..Q-1} (mu = Q - 1), same array kind (NumPy/CuPy/Tensor).

    ``q = floor((sign(x) ln(1 + mu |x|) / ln(1 + mu) + 1) / 2 * mu + 1/2)``. Values outside [-1, 1]
    are clipped to it first (as a saturating codec does); NaN/inf raise.
    """
    is_t = isinstance(x, Tensor)
    a = _as_array(x)
    xp = get_array_module(a)
    a = xp.asarray(a)
    if a.dtype.kind != "f":
        raise DTypeError(f"mu_law_encode: expected a float waveform in [-1, 1], got dtype {a.dtype} "
                         "(16-bit PCM: pass samples / 32768)")
    Q = int(quantization_channels)
    if Q < 2:
        raise InvalidArgumentError(f"mu_law_encode: quantization_channels must be >= 2, got {quantization_channels}")
    a = a.astype(xp.float64)
    if a.size and not bool(xp.all(xp.isfinite(a))):
        raise InvalidArgumentError(f"mu_law_encode: the waveform (shape {tuple(a.shape)}) has NaN or inf values")
    mu = Q - 1.0
    a = xp.clip(a, -1.0, 1.0)
    f = xp.sign(a) * xp.log1p(mu * xp.abs(a)) / math.log1p(mu)
    q = xp.floor((f + 1.0) / 2.0 * mu + 0.5).astype(xp.int64)
    return Tensor(q) if is_t else q


def mu_law_decode(q, quantization_channels: int = 256, dtype=np.float32):
    """mu-law classes {0..Q-1} -> waveform in [-1, 1]: ``y = 2q/mu - 1``, ``x = sign(y)((1+mu)^|y| - 1)/mu``."""
    is_t = isinstance(q, Tensor)
    a = _as_array(q)
    xp = get_array_module(a)
    a = xp.asarray(a)
    if a.dtype.kind not in "iu":
        raise DTypeError(f"mu_law_decode: expected integer classes, got dtype {a.dtype} (shape {tuple(a.shape)})")
    Q = int(quantization_channels)
    if a.size and (int(a.min()) < 0 or int(a.max()) >= Q):
        raise IndexOutOfRangeError(f"mu_law_decode: classes must be in [0, {Q - 1}], got range "
                                   f"[{int(a.min())}, {int(a.max())}]")
    mu = Q - 1.0
    y = 2.0 * a.astype(xp.float64) / mu - 1.0
    x = (xp.sign(y) * ((1.0 + mu) ** xp.abs(y) - 1.0) / mu).astype(dtype)
    return Tensor(x) if is_t else x


# ----------------------------------------------------------------------------- layers
class CausalConv1d(nn.Module):
    """``y[:, :, t] = b + sum_{j<K} W[:, :, j] @ x[:, :, t - (K-1-j) d]`` with x = 0 before t = 0.

    (B, C_in, T) -> (B, C_out, T): zero left padding of (K-1) d, then ``F.conv1d(..., dilation=d)``.
    Weights and bias ~ U(-1/sqrt(C_in K), 1/sqrt(C_in K)) (PyTorch's Conv1d default).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1,
                 bias: bool = True):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("dilation", dilation)):
            if int(v) != v or v < 1:
                raise InvalidArgumentError(f"CausalConv1d: {name} must be a positive integer, got {v!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.dilation = int(kernel_size), int(dilation)
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size)
        self.weight = nn.Parameter(Tensor(np.empty((self.out_channels, self.in_channels, self.kernel_size),
                                                   dtype=np.float32)))
        nn.init.uniform_(self.weight, -bound, bound)
        if bias:
            self.bias = nn.Parameter(Tensor(np.empty((self.out_channels,), dtype=np.float32)))
            nn.init.uniform_(self.bias, -bound, bound)
        else:
            self.bias = None

    @property
    def left_pad(self) -> int:
        return (self.kernel_size - 1) * self.dilation

    def forward(self, x):
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ShapeError(f"CausalConv1d: expected input (B, {self.in_channels}, T), got {tuple(x.shape)}")
        if self.left_pad:
            x = F.pad(x, (self.left_pad, 0))
        return F.conv1d(x, self.weight, self.bias, dilation=self.dilation)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, bias={self.bias is not None}")


def _conv1x1(cin, cout):
    return CausalConv1d(cin, cout, kernel_size=1, dilation=1)


class ResidualBlock(nn.Module):
    """One WaveNet block: gated dilated causal conv, then residual and skip 1x1 convs.

    ``forward(x (B, C, T), cond (B, 2G) or None) -> (x + R z + r (B, C, T), S z + c (B, S, T))`` with
    ``z = tanh(a[:, :G]) * sigmoid(a[:, G:])``, ``a = W * x + b + cond[:, :, None]``.
    """

    def __init__(self, residual_channels: int, gate_channels: int, skip_channels: int, kernel_size: int = 2,
                 dilation: int = 1):
        super().__init__()
        self.gate_channels = int(gate_channels)
        self.dilated = CausalConv1d(residual_channels, 2 * gate_channels, kernel_size, dilation)  # [W_f ; W_g]
        self.res = _conv1x1(gate_channels, residual_channels)
        self.skip = _conv1x1(gate_channels, skip_channels)

    def gate(self, x, cond=None):
        a = self.dilated(x)
        if cond is not None:
            a = a + cond.unsqueeze(-1)
        G = self.gate_channels
        return F.tanh(a[:, :G]) * F.sigmoid(a[:, G:])

    def forward(self, x, cond=None):
        z = self.gate(x, cond)
        return x + self.res(z), self.skip(z)


@dataclass
class WaveNetConfig:
    """Hyper-parameters (defaults: small enough to train on 2 CPU cores in minutes; RF 511 samples = 64 ms)."""

    quantization_channels: int = 256
    residual_channels: int = 32
    gate_channels: int = 32
    skip_channels: int = 64
    end_channels: int = 128
    kernel_size: int = 2
    layers_per_stack: int = 8  # dilations 1, 2, ..., 2^(layers_per_stack - 1)
    stacks: int = 2
    num_classes: int = 0  # > 0: global conditioning on a label in [0, num_classes)
    cond_channels: int = 16
    dilations: list = field(default=None)  # computed; may be given explicitly

    def __post_init__(self):
        for name in ("quantization_channels", "residual_channels", "gate_channels", "skip_channels", "end_channels",
                     "kernel_size", "layers_per_stack", "stacks", "cond_channels"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise InvalidArgumentError(f"WaveNetConfig: {name} must be a positive integer, got {v!r}")
        if self.quantization_channels < 2:
            raise InvalidArgumentError("WaveNetConfig: quantization_channels must be >= 2")
        if not isinstance(self.num_classes, (int, np.integer)) or self.num_classes < 0:
            raise InvalidArgumentError(f"WaveNetConfig: num_classes must be an integer >= 0, got {self.num_classes!r}")
        if self.dilations is None:
            self.dilations = [2 ** i for _ in range(self.stacks) for i in range(self.layers_per_stack)]
        self.dilations = [int(d) for d in self.dilations]
        if not self.dilations or any(d < 1 for d in self.dilations):
            raise InvalidArgumentError(f"WaveNetConfig: dilations must be positive integers, got {self.dilations}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "WaveNetConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class WaveNet(nn.Module):
    """``forward(x (B, T) classes, labels (B,) or None) -> logits (B, Q, T)``; ``logits[:, :, t]`` predicts x[t+1].

    See the module docstring for the equations. ``receptive_field`` = (K-1) sum(dilations) + 1.
    """

    def __init__(self, config: WaveNetConfig | None = None, **kwargs):
        super().__init__()
        if config is None:
            config = WaveNetConfig(**kwargs)
        elif kwargs:
            raise InvalidArgumentError("WaveNet: pass either a WaveNetConfig or keyword arguments, not both")
        self.config = c = config
        self.input_embed = nn.Embedding(c.quantization_channels, c.residual_channels)  # 1x1 conv on one-hot
        self.blocks = nn.ModuleList([ResidualBlock(c.residual_channels, c.gate_channels, c.skip_channels,
                                                   c.kernel_size, d) for d in c.dilations])
        if c.num_classes:
            self.label_embed = nn.Embedding(c.num_classes, c.cond_channels)  # h
            self.cond_proj = nn.ModuleList([nn.Linear(c.cond_channels, 2 * c.gate_channels, bias=False)
                                            for _ in c.dilations])  # V_k = [V_f,k ; V_g,k]
        self.end1 = _conv1x1(c.skip_channels, c.end_channels)
        self.end2 = _conv1x1(c.end_channels, c.quantization_channels)

    @property
    def receptive_field(self) -> int:
        c = self.config
        return (c.kernel_size - 1) * sum(c.dilations) + 1

    @property
    def silence_class(self) -> int:
        """The class of the sample 0.0 (128 for 256 classes): the first input of every sequence."""
        return int(mu_law_encode(np.zeros(1), self.config.quantization_channels)[0])

    # ---- input checks
    def _check(self, x, labels):
        c = self.config
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x))
        if x.ndim != 2:
            raise ShapeError(f"WaveNet: expected classes of shape (B, T), got {tuple(x.shape)}")
        if x.dtype.kind not in "iu":
            raise DTypeError(f"WaveNet: expected integer mu-law classes, got dtype {x.dtype}")
        if x.shape[1] == 0:
            raise ShapeError(f"WaveNet: empty sequence (shape {tuple(x.shape)})")
        a = x.array
        if a.size and (int(a.min()) < 0 or int(a.max()) >= c.quantization_channels):
            raise IndexOutOfRangeError(f"WaveNet: classes must be in [0, {c.quantization_channels - 1}], got range "
                                       f"[{int(a.min())}, {int(a.max())}]")
        if c.num_classes:
            if labels is None:
                raise InvalidArgumentError(f"WaveNet: this model is conditioned on {c.num_classes} labels; pass labels")
            if not isinstance(labels, Tensor):
                labels = Tensor(np.asarray(labels, dtype=np.int64).reshape(-1))
            if labels.shape != (x.shape[0],):
                raise ShapeError(f"WaveNet: labels must have shape ({x.shape[0]},) for input {tuple(x.shape)}, "
                                 f"got {tuple(labels.shape)}")
            la = labels.array
            if labels.dtype.kind not in "iu":
                raise DTypeError(f"WaveNet: labels must be integers, got dtype {labels.dtype}")
            if la.size and (int(la.min()) < 0 or int(la.max()) >= c.num_classes):
                raise IndexOutOfRangeError(f"WaveNet: labels must be in [0, {c.num_classes - 1}], got range "
                                           f"[{int(la.min())}, {int(la.max())}]")
        elif labels is not None:
            raise InvalidArgumentError("WaveNet: labels given but the model has num_classes=0 (unconditional)")
        return x, labels

    def conditions(self, labels):
        """Per-block gate biases ``[V_k h for k]``, each (B, 2G); ``[None, ...]`` when unconditional."""
        if not self.config.num_classes:
            return [None] * len(self.blocks)
        h = self.label_embed(labels)
        return [proj(h) for proj in self.cond_proj]

    def skip_sum(self, x, labels=None):
        """``sum_k s_k`` (B, S, T): the blocks' summed skip outputs, before the output head."""
        x, labels = self._check(x, labels)
        h = self.input_embed(x).transpose(1, 2)  # (B, C, T)
        conds = self.conditions(labels)
        skips = None
        for block, cond in zip(self.blocks, conds):
            h, s = block(h, cond)
            skips = s if skips is None else skips + s
        return skips

    def forward(self, x, labels=None):
        return self.end2(F.relu(self.end1(F.relu(self.skip_sum(x, labels)))))

    def loss(self, inputs, targets, labels=None, ignore_index: int = -100):
        """Mean cross-entropy (nats/sample) of ``targets`` (B, T) given ``inputs`` (B, T), skipping ``ignore_index``.

        Usually ``inputs = x[:, :-1]``, ``targets = x[:, 1:]``.
        """
        if tuple(targets.shape) != tuple(inputs.shape):
            raise ShapeError(f"WaveNet.loss: targets {tuple(targets.shape)} must match inputs {tuple(inputs.shape)}")
        return F.cross_entropy(self(inputs, labels), targets, ignore_index=ignore_index)

    # ---- generation
    def _labels_for(self, n, labels):
        if not self.config.num_classes:
            if labels is not None:
                raise InvalidArgumentError("WaveNet.generate: labels given but the model is unconditional")
            return None
        if labels is None:
            raise InvalidArgumentError(f"WaveNet.generate: this model is conditioned on {self.config.num_classes} "
                                       "labels; pass labels (one per sequence)")
        la = np.asarray(_as_array(labels)).astype(np.int64).reshape(-1)
        if la.shape != (n,):
            raise ShapeError(f"WaveNet.generate: need {n} labels, got shape {la.shape}")
        return la

    def generate(self, n_samples: int, batch_size: int | None = None, labels=None, temperature: float = 1.0,
                 seed=None, return_logits: bool = False):
        """Sample ``n_samples`` classes for each of ``batch_size`` sequences with the cached (fast) generator.

        Returns ``classes`` (B, n) int64 NumPy (and the per-step logits (B, n, Q) when ``return_logits``).
        The draw at step t is ``#{i : cumsum(softmax(logits / temperature))_i <= u_t}`` with
        ``u = np.random.default_rng(seed).random((n, B))``.
        """
        B, la = self._gen_setup(batch_size, labels)
        gen = FastWaveNetGenerator(self, B, la)
        return _sample_loop(gen.step, n_samples, B, temperature, seed, return_logits, self.silence_class)

    def generate_naive(self, n_samples: int, batch_size: int | None = None, labels=None, temperature: float = 1.0,
                       seed=None, return_logits: bool = False):
        """As :meth:`generate`, but every step runs the whole network over the last ``receptive_field`` samples."""
        B, la = self._gen_setup(batch_size, labels)
        rf = self.receptive_field
        hist = []
        xp = get_array_module(self.input_embed.weight.array)
        lab = None if la is None else Tensor(xp.asarray(la))

        def step(xt):
            hist.append(np.asarray(xt, dtype=np.int64))
            window = np.stack(hist[-rf:], axis=1)
            with no_grad():
                logits = self(Tensor(xp.asarray(window)), lab)
            return logits.array[:, :, -1]

        return _sample_loop(step, n_samples, B, temperature, seed, return_logits, self.silence_class)

    def _gen_setup(self, batch_size, labels):
        if batch_size is None:
            if labels is None:
                batch_size = 1
            else:
                batch_size = int(np.asarray(_as_array(labels)).size)
        B = int(batch_size)
        if B < 1:
            raise InvalidArgumentError(f"WaveNet.generate: batch_size must be >= 1, got {batch_size}")
        la = self._labels_for(B, labels)
        if la is not None and la.size and (la.min() < 0 or la.max() >= self.config.num_classes):
            raise IndexOutOfRangeError(f"WaveNet.generate: labels must be in [0, {self.config.num_classes - 1}], "
                                       f"got {la.tolist()}")
        return B, la


def sample_from_logits(logits, u, temperature: float = 1.0):
    """Inverse-CDF draw per row: ``i = #{j : cumsum(p)_j <= u * sum(p)}``, p = softmax(logits / temperature).

    ``temperature == 0`` is the argmax. ``logits`` (B, Q) float array, ``u`` (B,) in [0, 1). Returns (B,) int64.
    """
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return np.argmax(z, axis=-1).astype(np.int64)
    if not temperature >= 0 or not math.isfinite(temperature):
        raise InvalidArgumentError(f"temperature must be a finite number >= 0, got {temperature}")
    z = z / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    c = np.cumsum(p, axis=-1)
    idx = (c <= (u * c[:, -1])[:, None]).sum(axis=-1)
    return np.minimum(idx, z.shape[-1] - 1).astype(np.int64)


def _sample_loop(step, n, B, temperature, seed, return_logits, first_class):
    n = int(n)
    if n < 0:
        raise InvalidArgumentError(f"WaveNet.generate: n_samples must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    u = rng.random((n, B))
    out = np.zeros((B, n), dtype=np.int64)
    all_logits = [] if return_logits else None
    # The first input is the class of silence (0.0): "nothing was said before".
    xt = np.full((B,), first_class, dtype=np.int64)
    for t in range(n):
        logits = step(xt)
        if hasattr(logits, "get"):  # CuPy -> NumPy for the draw
            logits = logits.get()
        if return_logits:
            all_logits.append(np.array(logits, dtype=np.float64))
        xt = sample_from_logits(logits, u[t], temperature)
        out[:, t] = xt
    if return_logits:
        Q = all_logits[0].shape[-1] if all_logits else 0
        return out, (np.stack(all_logits, axis=1) if all_logits else np.zeros((B, 0, Q)))
    return out


# ----------------------------------------------------------------------------- fast (queued) generation
class FastWaveNetGenerator:
    """Paine et al.'s queue-based generator: one step = O(#blocks) matrix-vector products.

    Block k keeps a ring buffer ``queue_k`` (length L_k = (K-1) d_k) of its past inputs x_k[t'];
    at step t the dilated conv needs x_k[t - m d_k] for m = 1..K-1, which sit at index
    (t - m d_k) mod L_k (zeros before t = 0, i.e. the same zero padding as the full forward);
    then x_k[t] is written at index t mod L_k. Works on the parameters' arrays (NumPy or CuPy)
    directly; nothing is recorded for autograd. ``step(x_t (B,) classes) -> logits (B, Q)``.
    """

    def __init__(self, model: WaveNet, batch_size: int, labels=None):
        c = model.config
        self.quantization_channels = c.quantization_channels
        self.B = B = int(batch_size)
        arr = lambda p: p.array  # noqa: E731
        self.emb = arr(model.input_embed.weight)
        xp = self.xp = get_array_module(self.emb)
        dt = self.emb.dtype
        self.t = 0
        with no_grad():
            conds = model.conditions(Tensor(xp.asarray(labels))) if c.num_classes else [None] * len(model.blocks)
        self.layers = []
        for block, cond in zip(model.blocks, conds):
            conv = block.dilated
            K, d = conv.kernel_size, conv.dilation
            W = arr(conv.weight)  # (2G, C, K)
            bias = arr(conv.bias) + (cond.array if cond is not None else 0)
            taps = [xp.ascontiguousarray(W[:, :, K - 1 - m].T) for m in range(K)]  # tap m multiplies x[t - m d]
            L = (K - 1) * d
            queue = xp.zeros((max(L, 1), B, W.shape[1]), dtype=dt)
            self.layers.append(dict(
                K=K, d=d, L=L, G=block.gate_channels, taps=taps, bias=xp.broadcast_to(bias, (B, W.shape[0])),
                queue=queue, Wr=xp.ascontiguousarray(arr(block.res.weight)[:, :, 0].T), br=arr(block.res.bias),
                Ws=xp.ascontiguousarray(arr(block.skip.weight)[:, :, 0].T), bs=arr(block.skip.bias)))
        self.E1 = xp.ascontiguousarray(arr(model.end1.weight)[:, :, 0].T)
        self.e1 = arr(model.end1.bias)
        self.E2 = xp.ascontiguousarray(arr(model.end2.weight)[:, :, 0].T)
        self.e2 = arr(model.end2.bias)

    def step(self, x_t):
        xp = self.xp
        idx = xp.asarray(x_t).astype(xp.int64).reshape(-1)
        if idx.shape != (self.B,):
            raise ShapeError(f"FastWaveNetGenerator.step: expected {self.B} classes, got shape {tuple(idx.shape)}")
        h = self.emb[idx]  # (B, C)
        t = self.t
        skip = None
        for ly in self.layers:
            a = h @ ly["taps"][0] + ly["bias"]
            q, L, d = ly["queue"], ly["L"], ly["d"]
            for m in range(1, ly["K"]):
                a = a + q[(t - m * d) % L] @ ly["taps"][m]
            if L:
                q[t % L] = h
            G = ly["G"]
            z = xp.tanh(a[:, :G]) * (0.5 + 0.5 * xp.tanh(0.5 * a[:, G:]))  # sigmoid(v) = (1 + tanh(v/2)) / 2
            s = z @ ly["Ws"] + ly["bs"]
            skip = s if skip is None else skip + s
            h = h + z @ ly["Wr"] + ly["br"]
        self.t = t + 1
        e = xp.maximum(xp.maximum(skip, 0) @ self.E1 + self.e1, 0)
        return e @ self.E2 + self.e2
