"""Pooling and resampling: max/avg pooling (1-d, 2-d), adaptive pooling, interpolate/upsample.

How each op is built (x is (N, C, H, W); 1-d ops run on a height-1 image):

- **max pooling** = a non-differentiable choice followed by a linear map. The argmax of every
  window (first maximum in row-major window order on ties, as PyTorch) gives positions ``pos``
  in the padded input; then ``y = PoolGather(x, pos)`` picks those elements. Its backward
  ``PoolScatter`` adds g into the picked positions (overlapping windows accumulate), and the
  backward of that scatter is the gather again, so max pooling is twice differentiable
  (away from ties, where the argmax does not move).
- **average pooling** = a convolution with a box filter of ones, divided by the window's count:
  ``y[n, c, i, j] = (1 / D[i, j]) sum_{a,b} x_pad[n, c, i*s_h + a, j*s_w + b]``, so its backward
  (and double backward) are the convolution's.
- **adaptive average pooling** and **(bi)linear interpolation** are separable linear maps:
  ``y = A_h @ x @ A_w^T`` with an averaging / interpolation matrix per axis, so autograd of
  matmul gives every derivative.
- **nearest interpolation** gathers the source pixel: ``y[n, c, i, j] = x[n, c, src_h(i), src_w(j)]``.

Kernels (``dispatch.get``; the array references of this file run when it returns None):
``max_pool2d_forward`` returns the window maxima and ``max_pool2d_argmax_ref``'s positions in one pass;
``max_pool2d_backward`` is the scatter ``max_pool2d_backward_ref``. Average pooling runs the convolution's
kernels (see :mod:`minigen.ops.conv`).
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..argcheck import check_float_tensor, check_ints
from ..autograd.function import Function
from ..backend import get_array_module
from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..tensor import Tensor
from ..kernels import dispatch
from .conv import Conv2d, _lift, pad_axes, sliding_windows
from .shape import reshape

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "interpolate", "upsample", "upsample_nearest",
           "upsample_bilinear"]


# =====================================================================================
# gather / scatter on (padded) image planes: the linear part of max pooling
# =====================================================================================
def _plane_shape(in_shape, pads):
    (t, b), (l, r) = pads
    return in_shape[2] + t + b, in_shape[3] + l + r


class PoolGather(Function):
    """y[n, c, k...] = x_pad[n, c].flat[pos[n, c, k...]]   (x padded by ``pads`` with ``pad_value``).

    backward: dx = PoolScatter(g, pos): g added into the gathered positions, padding dropped.
    ``pos`` is an integer array of shape (N, C, ...) (or broadcastable to it).
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, pos, pads, pad_value, values=None):
        # values: the gathered result when the caller already has it (the max-pool kernel computes the
        # window maxima and their positions in one pass)
        if values is not None:
            ctx.in_shape = x.shape
            return values
        xp = get_array_module(x)
        xpad = pad_axes(xp, x, pads, pad_value)
        N, C, Hp, Wp = xpad.shape
        pos = xp.broadcast_to(pos, (N, C) + pos.shape[2:])
        ctx.in_shape = x.shape
        K = math.prod(pos.shape[2:])
        flat = xp.take_along_axis(xpad.reshape(N, C, Hp * Wp), pos.reshape(N, C, K), axis=2)
        return flat.reshape(pos.shape)

    @staticmethod
    def backward(ctx, g):
        _, pos, pads, _ = ctx.args
        return PoolScatter.apply(g, pos, pads, ctx.in_shape), None, None, None


class PoolScatter(Function):
    """dx = zeros(in_shape padded); dx_pad[n, c].flat[pos[n, c, k]] += g[n, c, k]; padding dropped.

    backward: dg = PoolGather(G, pos) (with zero padding).
    """

    reads = ()

    @staticmethod
    def forward(ctx, g, pos, pads, in_shape):
        k = dispatch.get("max_pool2d_backward", g) or max_pool2d_backward_ref
        return k(g, pos, in_shape, pads)

    @staticmethod
    def backward(ctx, G):
        _, pos, pads, _ = ctx.args
        return PoolGather.apply(G, pos, pads, 0.0), None, None, None


# =====================================================================================
# reference kernels (arrays in, arrays out): the oracles of the kernels of the same name without ``_ref``
# =====================================================================================
def max_pool2d_argmax_ref(x, kernel_hw, stride, pads, dilation, out_hw):
    """Positions of the window maxima: pos[n, c, i, j] = flat index, in the (N, C) plane of x padded with
    -inf by ``pads``, of the first maximum of window (i, j) (row-major order within the window)."""
    xp = get_array_module(x)
    kh, kw = kernel_hw
    xpad = pad_axes(xp, x, pads, -np.inf)
    Wp = xpad.shape[3]
    win = sliding_windows(xp, xpad, kernel_hw, stride, dilation, out_hw)
    N, C, Ho, Wo = win.shape[:4]
    t = win.reshape(N, C, Ho, Wo, kh * kw).argmax(axis=-1)     # first maximum (NaN counts as maximum)
    a, b = t // kw, t % kw
    rows = xp.arange(Ho)[:, None] * stride[0] + a * dilation[0]
    cols = xp.arange(Wo)[None, :] * stride[1] + b * dilation[1]
    return (rows * Wp + cols).astype(xp.int64)


def max_pool2d_backward_ref(g, pos, in_shape, pads):
    """The scatter of :class:`PoolScatter` on arrays: dx_pad[n, c].flat[pos[n, c, k]] += g[n, c, k] (positions in
    the plane of x padded by ``pads``; ``pos`` broadcasts to g's shape), then the padding is cut off.
    Returns dx of shape ``in_shape`` (N, C, H, W)."""
    xp = get_array_module(g)
    N, C = in_shape[:2]
    Hp, Wp = _plane_shape(in_shape, pads)
    pos = xp.broadcast_to(pos, g.shape).reshape(N * C, math.prod(g.shape[2:]))
    flat = pos + (xp.arange(N * C, dtype=pos.dtype) * (Hp * Wp))[:, None]
    out = xp.bincount(flat.ravel(), weights=g.reshape(-1), minlength=N * C * Hp * Wp)
    out = out.astype(g.dtype, copy=False).reshape(N, C, Hp, Wp)
    (t, b), (l, r) = pads
    return pad_axes(xp, out, ((-t, -b), (-l, -r)))


def adaptive_max_pool2d_argmax_ref(x, out_hw):
    """pos[n, c, i, j] = flat index into x[n, c] of the first maximum of adaptive window (i, j):
    rows floor(i*H/Ho) .. ceil((i+1)*H/Ho) - 1, columns likewise."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    pos = xp.empty((N, C, Ho, Wo), dtype=xp.int64)
    for i in range(Ho):
        h0, h1 = _adaptive_bounds(i, H, Ho)
        for j in range(Wo):
            w0, w1 = _adaptive_bounds(j, W, Wo)
            t = x[:, :, h0:h1, w0:w1].reshape(N, C, (h1 - h0) * (w1 - w0)).argmax(axis=-1)
            pos[:, :, i, j] = (h0 + t // (w1 - w0)) * W + w0 + t % (w1 - w0)
    return pos


def _adaptive_bounds(i, size, out):
    """Window i of an adaptive pool: [floor(i*size/out), ceil((i+1)*size/out))."""
    return (i * size) // out, -((-(i + 1) * size) // out)


# =====================================================================================
# argument checking
# =====================================================================================
def _check_input(op, x, nd, batched_only=False):
    """Float tensor of (N, C, *spatial) or (C, *spatial); returns (4-d view, unbatched?)."""
    check_float_tensor(x, op)
    allowed = (nd + 2,) if batched_only else (nd + 1, nd + 2)
    if x.ndim not in allowed:
        layout = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
        extra = "" if batched_only else f" (or {nd + 1}-d without batch)"
        raise ShapeError(f"{op}: expected a {nd + 2}-d input {layout}{extra}, got shape {tuple(x.shape)}")
    unbatched = x.ndim == nd + 1
    shp = ((1,) if unbatched else ()) + tuple(x.shape)
    if nd == 1:
        shp = shp[:2] + (1,) + shp[2:]
    return (reshape(x, shp) if shp != tuple(x.shape) else x), unbatched


def _restore(y, nd, unbatched):
    """Undo the lifting to a batched 4-d tensor."""
    shp = tuple(y.shape)
    if nd == 1:
        shp = shp[:2] + shp[3:]
    if unbatched:
        shp = shp[1:]
    return reshape(y, shp)


def _pool_out_size(size, k, s, p, d, ceil_mode):
    """PyTorch's rule: floor (or ceil) of (size + 2p - d(k-1) - 1)/s + 1; in ceil mode the last window
    must start inside the input or the left padding."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(op, nd, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate pooling arguments; returns 2-d kernel, stride, pads ((t, b), (l, r)), dilation, out_hw."""
    k = check_ints(kernel_size, nd, op, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else \
        check_ints(stride, nd, op, "stride", 1)
    p = check_ints(padding, nd, op, "padding", 0)
    d = check_ints(dilation, nd, op, "dilation", 1)
    if any(pi > ki // 2 for ki, pi in zip(k, p)):  # PyTorch's documented rule (and its autograd path's)
        raise InvalidArgumentError(f"{op}: padding {p} should be at most half of kernel_size {k}")
    spatial = tuple(x.shape[-nd:])
    out = tuple(_pool_out_size(n, ki, si, pi, di, ceil_mode) for n, ki, si, pi, di in zip(spatial, k, s, p, d))
    if any(o < 1 for o in out):
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} is too small for kernel_size {k} (dilation {d}, "
                         f"padding {p}, stride {s}): computed output size {out}")
    # pad after by enough for the last window (ceil mode may need more than p)
    pads = tuple((pi, max(pi, (o - 1) * si + di * (ki - 1) + 1 - n - pi))
                 for n, ki, si, pi, di, o in zip(spatial, k, s, p, d, out))
    return _lift(nd, k, 1), _lift(nd, s, 1), _lift(nd, pads, (0, 0)), _lift(nd, d, 1), _lift(nd, out, 1)


# =====================================================================================
# max pooling
# =====================================================================================
def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, unbatched = _check_input(op, input, nd)
    k, s, pads, d, out = _pool_geometry(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode)
    if (fk := dispatch.get("max_pool2d_forward", x.array)) is not None:  # maxima and positions in one pass
        vals, pos = fk(x.array, k, s, pads, d, out)
        y = _restore(PoolGather.apply(x, pos, pads, -np.inf, values=vals), nd, unbatched)
    else:
        pos = max_pool2d_argmax_ref(x.array, k, s, pads, d, out)
        y = _restore(PoolGather.apply(x, pos, pads, -np.inf), nd, unbatched)
    if not return_indices:
        return y
    # PyTorch's indices: flat position h*W + w in the unpadded (H, W) plane of each channel;
    # -1 for a (dilated) window that lies entirely on padding (its value is -inf)
    (t, _), (l, _) = pads
    H, W = x.shape[2:]
    h, w = pos // (W + sum(pads[1])) - t, pos % (W + sum(pads[1])) - l
    xp = get_array_module(pos)
    idx = xp.where((h >= 0) & (h < H) & (w >= 0) & (w < W), h * W + w, -1)
    return y, _restore(Tensor._make(idx), nd, unbatched)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-d max pooling over (N, C, H, W) or (C, H, W); ``stride`` defaults to ``kernel_size``.

    forward:  y[n, c, i, j] = max_{a,b} x_pad[n, c, i*s_h + a*d_h, j*s_w + b*d_w]   (x padded with -inf)
    backward: dx = g scattered to each window's argmax (first maximum on ties; overlapping windows add up);
              double backward: gather of the incoming gradient at the same positions.
    ``return_indices=True`` also returns the argmax as flat indices h*W + w into each input plane
    (-1 for a dilated window that covers only padding; its value is -inf and it passes no gradient).
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-d max pooling over (N, C, L) or (C, L): y[n, c, i] = max_a x_pad[n, c, i*s + a*d] (see max_pool2d)."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# =====================================================================================
# average pooling
# =====================================================================================
def _window_counts(size, k, s, p, out, count_include_pad):
    """Number of elements window i of one axis averages over (PyTorch's divisor rule)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)          # windows never count beyond the right padding
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x, unbatched = _check_input(op, input, nd)
    k, s, pads, d, out = _pool_geometry(op, nd, input, kernel_size, stride, padding, 1, ceil_mode)
    N, C, H, W = x.shape
    xp = get_array_module(x.array)
    if divisor_override is not None:
        if not isinstance(divisor_override, (builtins.int, np.integer)) or divisor_override == 0:
            raise InvalidArgumentError(f"{op}: divisor_override must be a nonzero int, got {divisor_override!r}")
        divisor = np.full(out, float(divisor_override))
    else:
        ch = _window_counts(H, k[0], s[0], pads[0][0], out[0], count_include_pad)
        cw = _window_counts(W, k[1], s[1], pads[1][0], out[1], count_include_pad)
        divisor = ch[:, None] * cw[None, :]
    box = Tensor._make(xp.ones((1, 1) + k, dtype=x.dtype))
    # sum over each window = a convolution of every channel with a box of ones
    sums = Conv2d.apply(reshape(x, (N * C, 1, H, W)), box, s, pads, (1, 1), 1)
    y = reshape(sums, (N, C) + out) * Tensor._make(xp.asarray((1.0 / divisor).astype(x.dtype)))
    return _restore(y, nd, unbatched)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-d average pooling over (N, C, H, W) or (C, H, W); ``stride`` defaults to ``kernel_size``.

    forward:  y[n, c, i, j] = (1 / D[i, j]) sum_{a,b} x_pad[n, c, i*s_h + a, j*s_w + b]   (zero padding),
              D = ``divisor_override``, else the window's size clipped to the padded input
              (``count_include_pad=True``) or to the input itself (False).
    backward: dx = conv_transpose of g / D with the box filter (every element of a window gets g / D);
              linear, so double backward is the forward map again.
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-d average pooling over (N, C, L) or (C, L): y[n, c, i] = (1/D_i) sum_a x_pad[n, c, i*s + a]."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


# =====================================================================================
# adaptive pooling
# =====================================================================================
def _adaptive_out(op, nd, x, output_size):
    vals = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    if len(vals) != nd:
        raise InvalidArgumentError(f"{op}: output_size must be an int or a tuple of {nd} ints, got {output_size!r}")
    spatial = tuple(x.shape[-nd:])
    out = []
    for v, n in zip(vals, spatial):
        if v is None:
            v = n
        if not isinstance(v, (builtins.int, np.integer)) or isinstance(v, builtins.bool) or v < 1:
            raise InvalidArgumentError(f"{op}: output_size must hold positive ints (or None), got {output_size!r}")
        out.append(builtins.int(v))
    if any(n < 1 for n in spatial):
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} has an empty spatial dimension")
    return tuple(out)


def _averaging_matrix(size, out, dtype):
    """A[i, h] = 1 / |window i| for h in window i = [floor(i*size/out), ceil((i+1)*size/out))."""
    A = np.zeros((out, size), dtype=np.float64)
    for i in range(out):
        h0, h1 = _adaptive_bounds(i, size, out)
        A[i, h0:h1] = 1.0 / (h1 - h0)
    return A.astype(dtype)


def _separable(x, Ah, Aw):
    """y = Ah @ x @ Aw^T over the last two axes (Ah None: identity), as differentiable matmuls."""
    xp = get_array_module(x.array)
    if Ah is not None:
        x = Tensor._make(xp.asarray(Ah)) @ x
    if Aw is not None:
        x = x @ Tensor._make(xp.asarray(np.ascontiguousarray(Aw.T)))
    return x


def _adaptive_avg(op, nd, input, output_size):
    x, unbatched = _check_input(op, input, nd)
    out = _lift(nd, _adaptive_out(op, nd, input, output_size), 1)
    H, W = x.shape[2:]
    Ah = None if nd == 1 else _averaging_matrix(H, out[0], x.dtype)
    y = _separable(x, Ah, _averaging_matrix(W, out[1], x.dtype))
    return _restore(y, nd, unbatched)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling to ``output_size`` ((Ho, Wo), an int, or None entries to keep a size).

    forward:  y[n, c, i, j] = mean of x[n, c, h0(i):h1(i), w0(j):w1(j)],
              h0(i) = floor(i*H/Ho), h1(i) = ceil((i+1)*H/Ho) (windows overlap when Ho does not divide H);
              computed as y = A_h @ x @ A_w^T with averaging matrices A.
    backward: dx = A_h^T @ g @ A_w (matmul's backward; linear, so double backward is the forward map).
    """
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool1d(input, output_size):
    """Adaptive average pooling of (N, C, L) or (C, L): y[n, c, i] = mean x[n, c, floor(iL/Lo):ceil((i+1)L/Lo)]."""
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def _adaptive_max(op, nd, input, output_size, return_indices):
    x, unbatched = _check_input(op, input, nd)
    out = _lift(nd, _adaptive_out(op, nd, input, output_size), 1)
    pos = adaptive_max_pool2d_argmax_ref(x.array, out)
    y = _restore(PoolGather.apply(x, pos, ((0, 0), (0, 0)), 0.0), nd, unbatched)
    if return_indices:
        return y, _restore(Tensor._make(pos), nd, unbatched)
    return y


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling: y[n, c, i, j] = max of the adaptive window (i, j) (windows as adaptive_avg_pool2d).

    backward: g scattered to each window's first maximum (as max_pool2d); indices are flat h*W + w.
    """
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive max pooling of (N, C, L) or (C, L) (see adaptive_max_pool2d)."""
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


# =====================================================================================
# interpolate / upsample
# =====================================================================================
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "area")


def _nearest_source(size, out, scale, exact):
    """Source index of each output index (PyTorch's float32 arithmetic):
    nearest: min(floor(i * s), size - 1); nearest-exact: min(floor((i + 0.5) * s), size - 1);
    s = 1/scale_factor when given, else size/out."""
    if not exact and out == size:
        return np.arange(out)
    if not exact and out == 2 * size:
        return np.arange(out) // 2
    s = np.float32(1.0 / scale) if scale else np.float32(size) / np.float32(out)
    if exact:
        src = np.floor(((np.arange(out) + 0.5) * np.float64(s)).astype(np.float32))
    else:
        src = np.floor(np.arange(out).astype(np.float32) * s)
    return np.minimum(src.astype(np.int64), size - 1)


def _linear_matrix(size, out, scale, align_corners, dtype):
    """M[i, h]: weight of input h in output i for linear interpolation (rows sum to 1).

    align_corners: src(i) = i * (size - 1)/(out - 1); else src(i) = max((i + 0.5) * s - 0.5, 0) with
    s = 1/scale_factor or size/out. y[i] = (1 - l) x[h0] + l x[h0 + 1], h0 = floor(src), l = src - h0.
    """
    dt = np.dtype(dtype).type
    dst = np.arange(out).astype(dt)
    if align_corners:
        s = dt(size - 1) / dt(out - 1) if out > 1 else dt(0)
        src = s * dst
    else:
        s = dt(1.0 / scale) if scale else dt(size) / dt(out)
        src = np.maximum(s * (dst + dt(0.5)) - dt(0.5), dt(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    i1 = i0 + (i0 < size - 1)
    l1 = np.clip(src - i0, 0, 1).astype(np.float64)
    M = np.zeros((out, size), dtype=np.float64)
    np.add.at(M, (np.arange(out), i0), 1.0 - l1)
    np.add.at(M, (np.arange(out), i1), l1)
    return M.astype(dtype)


def _interp_sizes(x, nd, size, scale_factor, recompute_scale_factor):
    spatial = tuple(x.shape[2:])
    if (size is None) == (scale_factor is None):
        raise InvalidArgumentError("interpolate: give exactly one of size and scale_factor, got "
                                   f"size={size!r}, scale_factor={scale_factor!r}")
    if size is not None:
        vals = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        if len(vals) != nd or not all(isinstance(v, (builtins.int, np.integer)) and not isinstance(v, builtins.bool)
                                      and v >= 1 for v in vals):
            raise InvalidArgumentError(f"interpolate: size must be a positive int or a tuple of {nd} positive "
                                       f"ints for input of shape {tuple(x.shape)}, got {size!r}")
        return tuple(builtins.int(v) for v in vals), (None,) * nd
    sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd
    if len(sf) != nd or not all(isinstance(v, (builtins.int, builtins.float, np.integer, np.floating))
                                and not isinstance(v, builtins.bool) and v > 0 for v in sf):
        raise InvalidArgumentError(f"interpolate: scale_factor must be a positive number or a tuple of {nd} "
                                   f"for input of shape {tuple(x.shape)}, got {scale_factor!r}")
    out = tuple(math.floor(n * float(v)) for n, v in zip(spatial, sf))
    if any(o < 1 for o in out):
        raise ShapeError(f"interpolate: scale_factor {scale_factor!r} gives an empty output {out} for input of "
                         f"shape {tuple(x.shape)}")
    scales = (None,) * nd if recompute_scale_factor else tuple(float(v) for v in sf)
    return out, scales


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize a (N, C, L) or (N, C, H, W) input to ``size`` or by ``scale_factor`` (PyTorch semantics).

    modes: 'nearest'  y[i] = x[min(floor(i * s), in - 1)] with s = in/out (or 1/scale_factor);
           'nearest-exact'  y[i] = x[min(floor((i + 0.5) * s), in - 1)];
           'linear' (3-d) / 'bilinear' (4-d)  y = M_h @ x @ M_w^T with linear interpolation matrices
           (``align_corners=True`` maps corner pixel centres onto each other);
           'area'  adaptive average pooling to the output size.
    backward: nearest modes scatter-add g to the source pixels; linear modes dx = M_h^T @ g @ M_w;
              all are linear maps of x, so their double backward is again the forward map.
    """
    if not isinstance(input, Tensor):
        raise DTypeError(f"interpolate: input must be a Tensor, got {type(input).__name__}")
    if mode not in _MODES:
        raise InvalidArgumentError(f"interpolate: unsupported mode {mode!r}; supported: {', '.join(_MODES)}")
    if antialias:
        raise InvalidArgumentError("interpolate: antialias=True is not supported")
    if input.ndim not in (3, 4):
        raise ShapeError(f"interpolate: expected a 3-d (N, C, L) or 4-d (N, C, H, W) input, got shape "
                         f"{tuple(input.shape)}")
    nd = input.ndim - 2
    linear = mode in ("linear", "bilinear")
    if linear and mode != ("linear" if nd == 1 else "bilinear"):
        raise ShapeError(f"interpolate: mode {mode!r} needs a {4 if mode == 'bilinear' else 3}-d input, got shape "
                         f"{tuple(input.shape)}")
    if not linear and align_corners is not None:
        raise InvalidArgumentError(f"interpolate: align_corners can only be set with the linear modes "
                                   f"(linear | bilinear), not mode {mode!r}")
    if input.dtype.kind != "f":
        raise DTypeError(f"interpolate: input must be a floating point tensor, got dtype {input.dtype}")
    out, scales = _interp_sizes(input, nd, size, scale_factor, recompute_scale_factor)
    if mode == "area":
        return _adaptive_avg("interpolate", nd, input, out)
    x, _ = _check_input("interpolate", input, nd, batched_only=True)
    H, W = x.shape[2:]
    out2, scales2 = _lift(nd, out, 1), _lift(nd, scales, None)
    if linear:
        Mh = None if nd == 1 else _linear_matrix(H, out2[0], scales2[0], bool(align_corners), x.dtype)
        Mw = _linear_matrix(W, out2[1], scales2[1], bool(align_corners), x.dtype)
        return _restore(_separable(x, Mh, Mw), nd, False)
    exact = mode == "nearest-exact"
    src_h = _nearest_source(H, out2[0], scales2[0], exact)
    src_w = _nearest_source(W, out2[1], scales2[1], exact)
    pos = get_array_module(x.array).asarray((src_h[:, None] * W + src_w[None, :])[None, None])
    return _restore(PoolGather.apply(x, pos, ((0, 0), (0, 0)), 0.0), nd, False)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Alias of :func:`interpolate` (PyTorch's deprecated ``F.upsample``)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """``interpolate(input, size, scale_factor, mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """``interpolate(input, size, scale_factor, mode='bilinear', align_corners=True)`` (as PyTorch)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
