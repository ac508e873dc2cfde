"""Convolutions: conv1d, conv2d, conv_transpose1d, conv_transpose2d (NCL / NCHW, PyTorch weight layouts).

The whole module rests on three linear maps, written once for 2-d and reused for 1-d
(a 1-d signal is a 2-d image of height 1). With ``x`` the input (N, C, H, W), ``w`` the
weight (O, C/G, kh, kw), ``G`` groups, ``s`` stride, ``d`` dilation and ``x_pad`` the
input zero-padded by ``(top, bottom)`` rows and ``(left, right)`` columns:

**Conv2d** (cross-correlation, what deep learning calls convolution)::

    y[n, o, i, j] = sum_{c, a, b} x_pad[n, grp(o)*C/G + c, i*s_h + a*d_h, j*s_w + b*d_w] * w[o, c, a, b]
    H_out = (H + top + bottom - d_h*(kh - 1) - 1) // s_h + 1        (same for W)

**ConvTranspose2d** (the adjoint of Conv2d in its input; the gradient of conv2d w.r.t. x)::

    x_pad[n, grp*C/G + c, i*s_h + a*d_h, j*s_w + b*d_w] += sum_{o in grp} g[n, o, i, j] * w[o, c, a, b]
    then drop the padding: dx = x_pad[:, :, top : top + H, left : left + W]

**Conv2dWeightGrad** (the gradient of conv2d w.r.t. w: a correlation of the input with g)::

    dw[o, c, a, b] = sum_{n, i, j} g[n, o, i, j] * x_pad[n, grp(o)*C/G + c, i*s_h + a*d_h, j*s_w + b*d_w]

Each map is linear in each of its two tensor arguments, and the three are each other's
adjoints, so every backward is again one of the three (see the Function docstrings).
That closure is what makes double backward work (WGAN-GP differentiates a conv
discriminator's input gradient once more).

The public ``conv_transpose2d`` is the same ConvTranspose2d map: a transposed convolution
with padding ``p`` and output padding ``op`` is the adjoint of a convolution with padding
``(p, p - op)`` on an input of the transposed output's size (a negative padding crops).

Kernels: each forward asks ``dispatch.get(name, *arrays)`` for the kernel of that name (the Numba
kernels of ``minigen.kernels.cpu_conv``; None in ``MINIGEN_KERNELS=reference`` mode or when the kernel
does not apply) and runs the array-level reference of this file when there is none:
``conv2d_forward_ref``, ``conv2d_backward_input_ref``, ``conv2d_backward_weight_ref`` (plain
NumPy/CuPy: im2col through a strided view and one batched matmul per group) -- the teaching text and
the oracle the kernels must equal. ``Conv2d`` and ``ConvTranspose2d`` also declare a ``fast_backward``:
the engine calls it for a first-order backward (no ``create_graph``), and it computes both gradients
with one fused kernel (``conv2d_backward``, ``conv_transpose2d_backward``: one dY matrix, and the
forward's im2col matrix reused for the weight gradient); ``backward`` stays the one formula.

Algorithm per shape (the kernels' measured ``worth`` rules; benchmarks/results/notes.md): convolutions
with few output channels per group run the direct loops of ``minigen.kernels.cpu_conv_direct`` (no
column matrix: for O = 1 im2col's GEMM is a matrix-vector product over a matrix kh*kw times the input);
the others im2col + one BLAS GEMM per group (per batch chunk when the columns would pass 8 MB); a 1x1
kernel without padding or groups is a GEMM on the input itself.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..argcheck import check_float_tensor, check_ints
from ..autograd.function import Function
from ..backend import get_array_module
from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..kernels import dispatch
from .shape import reshape

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


# =====================================================================================
# array helpers
# =====================================================================================
def _two(v):
    """int -> (v, v); pair -> tuple."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def norm_pads(padding):
    """Padding as ((top, bottom), (left, right)); accepts p, (ph, pw) or ((top, bottom), (left, right))."""
    ph, pw = _two(padding)
    return tuple(tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in (ph, pw))


def pad_axes(xp, x, pads, value=0.0):
    """Pad (positive) or crop (negative) the last two axes of ``x``; ``pads = ((top, bottom), (left, right))``."""
    (t, b), (l, r) = pads
    if min(t, b, l, r) < 0:  # crop first: a negative amount removes rows/columns
        H, W = x.shape[-2:]
        x = x[..., max(-t, 0): H - max(-b, 0), max(-l, 0): W - max(-r, 0)]
        t, b, l, r = max(t, 0), max(b, 0), max(l, 0), max(r, 0)
    if t or b or l or r:
        x = xp.pad(x, [(0, 0)] * (x.ndim - 2) + [(t, b), (l, r)], mode="constant", constant_values=value)
    return x


def conv_out_size(size, k, stride, pad_before, pad_after, dilation):
    """Output length of a convolution: (size + pads - d*(k-1) - 1) // stride + 1."""
    return (size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


def sliding_windows(xp, x, kernel_hw, stride, dilation, out_hw):
    """A strided view (no copy) of shape (N, C, Ho, Wo, kh, kw) with
    ``view[n, c, i, j, a, b] = x[n, c, i*s_h + a*d_h, j*s_w + b*d_w]``."""
    N, C = x.shape[:2]
    sN, sC, sH, sW = x.strides
    (kh, kw), (sh, sw), (dh, dw), (Ho, Wo) = kernel_hw, stride, dilation, out_hw
    return xp.lib.stride_tricks.as_strided(
        x, shape=(N, C, Ho, Wo, kh, kw), strides=(sN, sC, sH * sh, sW * sw, sH * dh, sW * dw))


def _im2col(xp, x, kernel_hw, stride, pads, dilation, out_hw, groups):
    """Columns (G, N*Ho*Wo, C/G*kh*kw): row (n, i, j) of group g holds the input patch under output (i, j)."""
    N, C = x.shape[:2]
    Cg = C // groups
    (kh, kw), (Ho, Wo) = kernel_hw, out_hw
    win = sliding_windows(xp, pad_axes(xp, x, pads), kernel_hw, stride, dilation, out_hw)
    win = win.reshape(N, groups, Cg, Ho, Wo, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    return win.reshape(groups, N * Ho * Wo, Cg * kh * kw)


def conv2d_forward_ref(x, w, stride=1, padding=0, dilation=1, groups=1):
    """Reference conv2d on arrays: x (N, C, H, W), w (O, C/groups, kh, kw) -> y (N, O, Ho, Wo).

    ``y[n, o, i, j] = sum_{c,a,b} x_pad[n, grp(o)*C/G + c, i*s_h + a*d_h, j*s_w + b*d_w] * w[o, c, a, b]``,
    computed as im2col (a strided view of the padded input) times the weight matrix, per group.
    ``padding``: p, (ph, pw) or ((top, bottom), (left, right)); negative amounts crop.
    """
    xp = get_array_module(x)
    stride, dilation, pads = _two(stride), _two(dilation), norm_pads(padding)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Ho = conv_out_size(H, kh, stride[0], *pads[0], dilation[0])
    Wo = conv_out_size(W, kw, stride[1], *pads[1], dilation[1])
    cols = _im2col(xp, x, (kh, kw), stride, pads, dilation, (Ho, Wo), groups)      # (G, N*Ho*Wo, Cg*kh*kw)
    wmat = w.reshape(groups, O // groups, Cg * kh * kw)                              # (G, O/G, Cg*kh*kw)
    y = cols @ wmat.transpose(0, 2, 1)                                               # (G, N*Ho*Wo, O/G)
    y = y.reshape(groups, N, Ho, Wo, O // groups).transpose(1, 0, 4, 2, 3)
    return y.reshape(N, O, Ho, Wo)


def conv2d_backward_input_ref(g, w, input_hw, stride=1, padding=0, dilation=1, groups=1):
    """Reference ConvTranspose2d on arrays (the gradient of conv2d w.r.t. its input).

    g (N, O, Ho, Wo), w (O, C/groups, kh, kw) -> dx (N, C, H, W) with ``(H, W) = input_hw``:
    every output position (i, j) spreads ``sum_o g[n, o, i, j] * w[o, c, a, b]`` back onto the
    padded input at (i*s_h + a*d_h, j*s_w + b*d_w) (col2im); the padding is then cut off.
    """
    xp = get_array_module(g)
    stride, dilation, pads = _two(stride), _two(dilation), norm_pads(padding)
    N, O, Ho, Wo = g.shape
    _, Cg, kh, kw = w.shape
    H, W = input_hw
    (sh, sw), (dh, dw) = stride, dilation
    Og = O // groups
    gmat = g.reshape(N, groups, Og, Ho * Wo).transpose(1, 0, 3, 2).reshape(groups, N * Ho * Wo, Og)
    patches = gmat @ w.reshape(groups, Og, Cg * kh * kw)                 # (G, N*Ho*Wo, Cg*kh*kw)
    patches = patches.reshape(groups, N, Ho, Wo, Cg, kh, kw).transpose(1, 0, 4, 5, 6, 2, 3)  # (N,G,Cg,kh,kw,Ho,Wo)
    # col2im: kernel tap (a, b) lands on rows a*dh, a*dh + sh, ... and columns b*dw, b*dw + sw, ...
    Hf, Wf = (Ho - 1) * sh + dh * (kh - 1) + 1, (Wo - 1) * sw + dw * (kw - 1) + 1
    xpad = xp.zeros((N, groups, Cg, Hf, Wf), dtype=patches.dtype)
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dh, a * dh + (Ho - 1) * sh + 1, sh)
            cols = slice(b * dw, b * dw + (Wo - 1) * sw + 1, sw)
            xpad[..., rows, cols] += patches[:, :, :, a, b]
    xpad = xpad.reshape(N, groups * Cg, Hf, Wf)
    (t, _), (l, _) = pads
    # rows t .. t+H-1 of the padded input are the real input; rows past Hf got no contribution (zero rows
    # are appended first when t + H reaches past Hf, e.g. a top padding larger than the whole frame)
    eh, ew = max(0, t + H - Hf), max(0, l + W - Wf)
    xpad = pad_axes(xp, xpad, ((0, eh), (0, ew)))
    return pad_axes(xp, xpad, ((-t, H + t - Hf - eh), (-l, W + l - Wf - ew)))


def conv2d_backward_weight_ref(x, g, kernel_hw, stride=1, padding=0, dilation=1, groups=1):
    """Reference gradient of conv2d w.r.t. its weight, on arrays.

    x (N, C, H, W), g (N, O, Ho, Wo) -> dw (O, C/groups, kh, kw) with
    ``dw[o, c, a, b] = sum_{n,i,j} g[n, o, i, j] * x_pad[n, grp(o)*C/G + c, i*s_h + a*d_h, j*s_w + b*d_w]``
    (the transposed im2col matrix times g, per group).
    """
    xp = get_array_module(x)
    stride, dilation, pads = _two(stride), _two(dilation), norm_pads(padding)
    N, C = x.shape[:2]
    _, O, Ho, Wo = g.shape
    kh, kw = kernel_hw
    Og, Cg = O // groups, C // groups
    cols = _im2col(xp, x, (kh, kw), stride, pads, dilation, (Ho, Wo), groups)        # (G, N*Ho*Wo, Cg*kh*kw)
    gmat = g.reshape(N, groups, Og, Ho * Wo).transpose(1, 2, 0, 3).reshape(groups, Og, N * Ho * Wo)
    return (gmat @ cols).reshape(O, Cg, kh, kw)



# =====================================================================================
# Functions: three linear maps, each the other's adjoint
# =====================================================================================
class Conv2d(Function):
    """y = conv2d(x, w) (no bias; see the module docstring for the formula).

    backward:  dx = ConvTranspose2d(g, w)          (adjoint of x -> conv2d(x, w))
               dw = Conv2dWeightGrad(x, g)         (d<g, conv2d(x, w)>/dw)
    fast_backward (first order): the ``conv2d_backward`` kernel, both gradients from one dY matrix and
    the forward's im2col matrix (kept by ``conv2d_forward_cols`` when w needs a gradient).
    Arguments: x, w, stride (sh, sw), pads ((top, bottom), (left, right)), dilation (dh, dw), groups.
    """

    reads = ((1,), (0,))  # dx reads w, dw reads x

    @staticmethod
    def forward(ctx, x, w, stride, pads, dilation, groups):
        if (k := dispatch.get("conv2d_forward_direct", x, w, stride)) is not None:  # few output channels
            return k(x, w, stride, pads, dilation, groups)
        if ctx.needs_input_grad[1] and (k := dispatch.get("conv2d_forward_cols", x, w)) is not None:
            y, ctx.cols = k(x, w, stride, pads, dilation, groups)  # the columns serve dw in fast_backward
            return y
        k = dispatch.get("conv2d_forward", x, w) or conv2d_forward_ref
        return k(x, w, stride, pads, dilation, groups)

    @staticmethod
    def backward(ctx, g):
        x, w, stride, pads, dilation, groups = ctx.args
        need_x, need_w = ctx.needs_input_grad[:2]
        gx = ConvTranspose2d.apply(g, w, x.shape[2:], stride, pads, dilation, groups) if need_x else None
        gw = Conv2dWeightGrad.apply(x, g, w.shape[2:], stride, pads, dilation, groups) if need_w else None
        return gx, gw, None, None, None, None

    @staticmethod
    def fast_backward(ctx, g):
        x, w, stride, pads, dilation, groups = ctx.args
        need_x, need_w = ctx.needs_input_grad[:2]
        if (k := dispatch.get("conv2d_backward_direct", g, x.array, w.array, stride)) is not None:
            return k(g, x.array, w.array, need_x, need_w, stride, pads, dilation, groups)
        k = dispatch.get("conv2d_backward", g, x.array, w.array)
        if k is None:
            return NotImplemented
        return k(g, x.array, w.array, getattr(ctx, "cols", None), need_x, need_w, stride, pads, dilation, groups)


class ConvTranspose2d(Function):
    """y = ConvTranspose2d(g, w): the adjoint of x -> conv2d(x, w), output of spatial size ``input_hw``.

    Formula: y_pad[n, grp*C/G + c, i*s_h + a*d_h, j*s_w + b*d_w] += sum_{o in grp} g[n, o, i, j] w[o, c, a, b],
    y = y_pad without its padding.
    backward:  dg = Conv2d(G, w)                  (the adjoint of an adjoint is the map itself)
               dw = Conv2dWeightGrad(G, g)        (<G, T_w g> = <conv2d(G, w), g>, differentiate in w)
    fast_backward (first order): the ``conv_transpose2d_backward`` kernel (both from one im2col matrix of G).
    """

    reads = ((1,), (0,))  # dg reads w, dw reads g

    @staticmethod
    def forward(ctx, g, w, input_hw, stride, pads, dilation, groups):
        k = (dispatch.get("conv2d_backward_input_direct", g, w, stride) or dispatch.get("conv2d_backward_input", g, w)
             or conv2d_backward_input_ref)
        return k(g, w, input_hw, stride, pads, dilation, groups)

    @staticmethod
    def backward(ctx, G):
        g, w, _, stride, pads, dilation, groups = ctx.args
        need_g, need_w = ctx.needs_input_grad[:2]
        gg = Conv2d.apply(G, w, stride, pads, dilation, groups) if need_g else None
        gw = Conv2dWeightGrad.apply(G, g, w.shape[2:], stride, pads, dilation, groups) if need_w else None
        return gg, gw, None, None, None, None, None

    @staticmethod
    def fast_backward(ctx, G):
        g, w, _, stride, pads, dilation, groups = ctx.args
        need_g, need_w = ctx.needs_input_grad[:2]
        k = (dispatch.get("conv_transpose2d_backward_direct", G, g.array, w.array, stride)
             or dispatch.get("conv_transpose2d_backward", G, g.array, w.array))
        if k is None:
            return NotImplemented
        return k(G, g.array, w.array, need_g, need_w, stride, pads, dilation, groups)


class Conv2dWeightGrad(Function):
    """dw = Conv2dWeightGrad(x, g), the gradient of conv2d w.r.t. its weight:
    dw[o, c, a, b] = sum_{n,i,j} g[n, o, i, j] x_pad[n, grp(o)*C/G + c, i*s_h + a*d_h, j*s_w + b*d_w].

    It is bilinear: <V, dw(x, g)> = <g, conv2d(x, V)> = <ConvTranspose2d(g, V), x>, so
    backward:  dx = ConvTranspose2d(g, V),   dg = Conv2d(x, V).
    """

    reads = ((1,), (0,))  # dx reads g, dg reads x

    @staticmethod
    def forward(ctx, x, g, kernel_hw, stride, pads, dilation, groups):
        k = (dispatch.get("conv2d_backward_weight_direct", x, g, stride, kernel_hw)
             or dispatch.get("conv2d_backward_weight", x, g) or conv2d_backward_weight_ref)
        return k(x, g, kernel_hw, stride, pads, dilation, groups)

    @staticmethod
    def backward(ctx, V):
        x, g, _, stride, pads, dilation, groups = ctx.args
        need_x, need_g = ctx.needs_input_grad[:2]
        gx = ConvTranspose2d.apply(g, V, x.shape[2:], stride, pads, dilation, groups) if need_x else None
        gg = Conv2d.apply(x, V, stride, pads, dilation, groups) if need_g else None
        return gx, gg, None, None, None, None, None


# =====================================================================================
# argument checking (shared by the 1-d and 2-d public functions)
# =====================================================================================
def _check_common(op, nd, x, weight, bias, groups):
    """Types, dtypes, ndim; returns (x batched, unbatched?)."""
    check_float_tensor(x, op, "input")
    check_float_tensor(weight, op, "weight")
    check_float_tensor(bias, op, "bias", allow_none=True)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise DTypeError(f"{op}: input dtype {x.dtype} and {name} dtype {t.dtype} differ "
                             f"(input {tuple(x.shape)}, {name} {tuple(t.shape)})")
    layout = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    if x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected a {nd + 2}-d input {layout} (or {nd + 1}-d without batch), "
                         f"got shape {tuple(x.shape)}")
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 2}-d weight, got shape {tuple(weight.shape)} "
                         f"(input shape {tuple(x.shape)})")
    if not isinstance(groups, (builtins.int, np.integer)) or isinstance(groups, builtins.bool) or groups < 1:
        raise InvalidArgumentError(f"{op}: groups must be a positive int, got {groups!r}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = reshape(x, (1,) + tuple(x.shape))
    return x, unbatched


def _padding_pairs(op, padding, nd, kernel, stride, dilation):
    """int / tuple / 'valid' / 'same' -> ((before, after), ...) per spatial dim."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise InvalidArgumentError(f"{op}: padding='same' needs stride 1, got stride {stride}")
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)  # the odd extra goes after (as PyTorch)
        raise InvalidArgumentError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    p = check_ints(padding, nd, op, "padding", 0)
    return tuple((e, e) for e in p)


def _lift(nd, vals, fill):
    """1-d parameters become 2-d ones with a trivial height dimension."""
    return tuple(vals) if nd == 2 else (fill,) + tuple(vals)


def _conv_nd(op, nd, input, weight, bias, stride, padding, dilation, groups):
    x, unbatched = _check_common(op, nd, input, weight, bias, groups)
    stride = check_ints(stride, nd, op, "stride", 1)
    dilation = check_ints(dilation, nd, op, "dilation", 1)
    kernel_sz = tuple(weight.shape[2:])
    pads = _padding_pairs(op, padding, nd, kernel_sz, stride, dilation)
    N, C = x.shape[:2]
    O, Cg = weight.shape[:2]
    if C != Cg * groups:
        raise ShapeError(f"{op}: input has {C} channels (shape {tuple(input.shape)}) but weight of shape "
                         f"{tuple(weight.shape)} with groups={groups} expects {Cg * groups} "
                         f"(= weight.shape[1] * groups)")
    if O % groups:
        raise ShapeError(f"{op}: out_channels {O} (weight shape {tuple(weight.shape)}) is not divisible by "
                         f"groups={groups}")
    if bias is not None and tuple(bias.shape) != (O,):
        raise ShapeError(f"{op}: bias must have shape ({O},) for weight of shape {tuple(weight.shape)}, "
                         f"got {tuple(bias.shape)}")
    spatial = tuple(x.shape[2:])
    padded = tuple(s + a + b for s, (a, b) in zip(spatial, pads))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel_sz, dilation))
    if any(e > p for e, p in zip(eff, padded)):
        raise ShapeError(f"{op}: kernel size {kernel_sz} (dilated: {eff}) is larger than the padded input "
                         f"{padded} (input shape {tuple(input.shape)}, padding {padding!r})")
    if nd == 1:
        x = reshape(x, (N, C, 1, spatial[0]))
        w = reshape(weight, (O, Cg, 1, kernel_sz[0]))
    else:
        w = weight
    y = Conv2d.apply(x, w, _lift(nd, stride, 1), _lift(nd, pads, (0, 0)), _lift(nd, dilation, 1), builtins.int(groups))
    if bias is not None:
        y = y + reshape(bias, (1, O, 1, 1))
    out_shape = ((N, O) if not unbatched else (O,)) + tuple(y.shape[4 - nd:])
    return reshape(y, out_shape)


def _conv_transpose_nd(op, nd, input, weight, bias, stride, padding, output_padding, groups, dilation):
    x, unbatched = _check_common(op, nd, input, weight, bias, groups)
    stride = check_ints(stride, nd, op, "stride", 1)
    dilation = check_ints(dilation, nd, op, "dilation", 1)
    if isinstance(padding, str):
        raise InvalidArgumentError(f"{op}: padding must be an int or a tuple of ints, got {padding!r}")
    pad = check_ints(padding, nd, op, "padding", 0)
    opad = check_ints(output_padding, nd, op, "output_padding", 0)
    for o, s, d in zip(opad, stride, dilation):
        if o >= max(s, d):
            raise InvalidArgumentError(f"{op}: output_padding {opad} must be smaller than either stride {stride} "
                                       f"or dilation {dilation}")
    N, Cin = x.shape[:2]
    Cw, Og = weight.shape[:2]
    kernel_sz = tuple(weight.shape[2:])
    if Cin != Cw:
        raise ShapeError(f"{op}: input has {Cin} channels (shape {tuple(input.shape)}) but weight of shape "
                         f"{tuple(weight.shape)} expects {Cw} (= weight.shape[0]; layout (in, out/groups, ...))")
    if Cin % groups:
        raise ShapeError(f"{op}: in_channels {Cin} (weight shape {tuple(weight.shape)}) is not divisible by "
                         f"groups={groups}")
    O = Og * groups
    if bias is not None and tuple(bias.shape) != (O,):
        raise ShapeError(f"{op}: bias must have shape ({O},) for weight of shape {tuple(weight.shape)} and "
                         f"groups={groups}, got {tuple(bias.shape)}")
    spatial = tuple(x.shape[2:])
    out = tuple((i - 1) * s - 2 * p + d * (k - 1) + o + 1
                for i, s, p, d, k, o in zip(spatial, stride, pad, dilation, kernel_sz, opad))
    if any(o < 1 for o in out):
        raise ShapeError(f"{op}: output size {out} is too small (input shape {tuple(input.shape)}, weight "
                         f"{tuple(weight.shape)}, stride {stride}, padding {pad}, output_padding {opad})")
    # the adjoint of a convolution with padding (p, p - output_padding) on an input of size `out`
    pads = tuple((p, p - o) for p, o in zip(pad, opad))
    if nd == 1:
        x = reshape(x, (N, Cin, 1, spatial[0]))
        w = reshape(weight, (Cw, Og, 1, kernel_sz[0]))
    else:
        w = weight
    y = ConvTranspose2d.apply(x, w, _lift(nd, out, 1), _lift(nd, stride, 1), _lift(nd, pads, (0, 0)),
                              _lift(nd, dilation, 1), builtins.int(groups))
    if bias is not None:
        y = y + reshape(bias, (1, O, 1, 1))
    return reshape(y, ((N, O) if not unbatched else (O,)) + out)


# =====================================================================================
# public functions (PyTorch signatures)
# =====================================================================================
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution (cross-correlation) over an (N, C, H, W) or (C, H, W) input.

    ``weight``: (out_channels, in_channels/groups, kh, kw); ``bias``: (out_channels,) or None.
    ``padding``: int, (ph, pw), 'valid' (no padding) or 'same' (output size = input size, stride 1;
    an odd total padding puts the extra row/column at the bottom/right, as PyTorch).
    forward:  y[n, o, i, j] = b[o] + sum_{c,a,b} x_pad[n, grp(o)*C/G + c, i*s_h + a*d_h, j*s_w + b*d_w] w[o, c, a, b]
    backward: dx = conv_transpose2d(g, w) (same stride/padding/dilation/groups),
              dw[o, c, a, b] = sum_{n,i,j} g[n, o, i, j] x_pad[n, ., i*s_h + a*d_h, j*s_w + b*d_w],
              db[o] = sum_{n,i,j} g[n, o, i, j]; all differentiable again (double backward).
    """
    return _conv_nd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution over an (N, C, L) or (C, L) input; ``weight``: (out_channels, in_channels/groups, k).

    forward:  y[n, o, i] = b[o] + sum_{c,a} x_pad[n, grp(o)*C/G + c, i*s + a*d] w[o, c, a]
    backward: as conv2d (computed as conv2d on a height-1 image).
    """
    return _conv_nd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution ("deconvolution"): the gradient of conv2d w.r.t. its input.

    ``input`` (N, C_in, H, W) or (C_in, H, W); ``weight`` (C_in, C_out/groups, kh, kw).
    Output size: H_out = (H - 1)*s - 2p + d*(kh - 1) + output_padding + 1 (same for W);
    ``output_padding`` (< stride or < dilation) picks among the input sizes a stride-s conv maps to H.
    forward:  y_full[n, grp*C_out/G + o, i*s_h + a*d_h, j*s_w + b*d_w] += sum_{c in grp} x[n, c, i, j] w[c, o, a, b],
              y = y_full[:, :, p_h : p_h + H_out, p_w : p_w + W_out] + b   (zero rows past y_full's end)
    backward: dx = conv2d(g, w) (same stride/padding/dilation/groups), dw = correlation of g with x,
              db = sum of g; differentiable again.
    """
    return _conv_transpose_nd("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding,
                              groups, dilation)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-d transposed convolution over (N, C_in, L) or (C_in, L); ``weight`` (C_in, C_out/groups, k).

    L_out = (L - 1)*s - 2p + d*(k - 1) + output_padding + 1; formulas as conv_transpose2d.
    """
    return _conv_transpose_nd("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding,
                              groups, dilation)
