"""Convolution and pooling on NCHW arrays: im2col / col2im in Numba around one BLAS GEMM per group.

Notation: x (N, C, H, W), w (O, C/G, kh, kw), G groups, stride (sh, sw), dilation (dh, dw), padding
((top, bottom), (left, right)) (an int or a pair is accepted too; negative amounts crop), and
L = Ho * Wo output positions. The column matrix of group g is

    cols_g[(c, a, b), (n, i, j)] = x[n, g*C/G + c, i*sh - top + a*dh, j*sw - left + b*dw]   (0 outside x)

of shape (C/G*kh*kw, N*L), so that the three convolution maps are each one GEMM:

    forward:          Y_g  (O/G, N*L)     = W_g (O/G, K) @ cols_g                  -> y (N, O, Ho, Wo)
    backward-weight:  dW_g (O/G, K)       = dY_g (O/G, N*L) @ cols_g^T
    backward-input:   dcols_g (K, N*L)    = W_g^T @ dY_g,  then col2im adds each column back into dx

Why im2col + BLAS and not direct loops: measured on the DCGAN shapes (batch 64, 28x28, 5x5 stride 2,
1->64->128 channels) direct Numba loops ran at 6-9 GFLOP/s against 45-75 GFLOP/s for OpenBLAS SGEMM
on the column matrix; the column build costs 5-15% of the GEMM time. The same holds for LeNet (5x5,
stride 1): the K = C*25 reduction is long enough for BLAS. The im2col/col2im loops are split over the
batch (each thread owns samples n, so col2im's scatter-add has no races).

These kernels take exactly the arguments of the references in minigen/ops/conv.py
(``conv2d_forward_ref`` ...) so they can be registered with ``minigen.ops.conv.register_kernel``.
"""
from __future__ import annotations

import numpy as np

from ._common import c, is_float, jit, parallel_for
from .dispatch import register


def _two(v):
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pads(padding):
    ph, pw = _two_raw(padding)
    return tuple(tuple(int(q) for q in p) if isinstance(p, (tuple, list)) else (int(p), int(p)) for p in (ph, pw))


def _two_raw(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _out(size, k, s, p0, p1, d):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


# ------------------------------------------------------------------ im2col / col2im
@jit
def _im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, n0, n1):
    """cols (C*kh*kw, N*Ho*Wo) for all channels (the groups are row blocks); samples n0..n1."""
    N, C, H, W = x.shape
    L = Ho * Wo
    for n in range(n0, n1):
        for ch in range(C):
            for a in range(kh):
                for b in range(kw):
                    r = (ch * kh + a) * kw + b
                    for i in range(Ho):
                        ih = i * sh - ph + a * dh
                        base = n * L + i * Wo
                        if ih < 0 or ih >= H:
                            for j in range(Wo):
                                cols[r, base + j] = 0.0
                            continue
                        for j in range(Wo):
                            iw = j * sw - pw + b * dw
                            if iw >= 0 and iw < W:
                                cols[r, base + j] = x[n, ch, ih, iw]
                            else:
                                cols[r, base + j] = 0.0


@jit
def _col2im(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, n0, n1):
    """dx[n, c, ih, iw] += cols[(c, a, b), (n, i, j)] (dx zeroed by the caller); samples n0..n1."""
    N, C, H, W = dx.shape
    L = Ho * Wo
    for n in range(n0, n1):
        for ch in range(C):
            for a in range(kh):
                for b in range(kw):
                    r = (ch * kh + a) * kw + b
                    for i in range(Ho):
                        ih = i * sh - ph + a * dh
                        if ih < 0 or ih >= H:
                            continue
                        base = n * L + i * Wo
                        for j in range(Wo):
                            iw = j * sw - pw + b * dw
                            if iw >= 0 and iw < W:
                                dx[n, ch, ih, iw] += cols[r, base + j]


@jit
def _nlo_to_nol(src, dst, G, Og, L, n0, n1):
    """src (G*Og, N*L) laid out [(g, o), (n, l)] -> dst (N, G*Og, L); samples n0..n1."""
    O = G * Og
    for n in range(n0, n1):
        for o in range(O):
            for l in range(L):
                dst[n, o, l] = src[o, n * L + l]


@jit
def _nol_to_onl(src, dst, n0, n1):
    """src (N, O, L) -> dst (O, N*L); samples n0..n1."""
    N, O, L = src.shape
    for n in range(n0, n1):
        for o in range(O):
            for l in range(L):
                dst[o, n * L + l] = src[n, o, l]


def _geometry(x_hw, k_hw, stride, padding, dilation):
    (sh, sw), (dh, dw), ((pt, pb), (pl, pr)) = _two(stride), _two(dilation), _pads(padding)
    kh, kw = k_hw
    Ho = _out(x_hw[0], kh, sh, pt, pb, dh)
    Wo = _out(x_hw[1], kw, sw, pl, pr, dw)
    return (sh, sw), (dh, dw), (pt, pl), (Ho, Wo)


def _cols(x, kh, kw, s, d, p, out_hw):
    N, C = x.shape[:2]
    Ho, Wo = out_hw
    cols = np.empty((C * kh * kw, N * Ho * Wo), x.dtype)
    parallel_for(_im2col, N, x, cols, kh, kw, s[0], s[1], p[0], p[1], d[0], d[1], Ho, Wo,
                 parallel=cols.size >= _PAR_MIN)
    return cols


def _dy_matrix(g):
    """g (N, O, Ho, Wo) -> (O, N*L)."""
    N, O = g.shape[:2]
    g3 = c(g).reshape(N, O, -1)
    out = np.empty((O, N * g3.shape[2]), g.dtype)
    parallel_for(_nol_to_onl, N, g3, out, parallel=out.size >= _PAR_MIN)
    return out


_PAR_MIN = 1 << 14


def _conv_requires(a, w, *rest):
    return is_float(a, w) and a.ndim == 4 and w.ndim == 4


@register("conv2d_forward", requires=_conv_requires)
def conv2d_forward(x, w, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o, i, j] = sum_{c,a,b} x_pad[n, grp(o)*C/G + c, i*sh + a*dh, j*sw + b*dw] * w[o, c, a, b]
    (no bias: add it outside, or use the op's bias path). x (N, C, H, W), w (O, C/G, kh, kw).

    Same arguments and result as minigen/ops/conv.py ``conv2d_forward_ref``; wire with
    ``register_kernel("conv2d_forward", ...)`` (used by ``Conv2d.forward`` and by ``ConvTranspose2d``'s
    backward). Speed: fwd+bwd on the DCGAN and LeNet shapes against the reference and PyTorch in the conv2d
    rows of benchmarks/results/results.md. No size threshold.
    """
    x = c(x)
    w = c(w)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    s, d, p, (Ho, Wo) = _geometry((H, W), (kh, kw), stride, padding, dilation)
    G = int(groups)
    Og, K = O // G, Cg * kh * kw
    L = Ho * Wo
    if N == 0 or O == 0 or L <= 0:
        return np.zeros((N, O, max(Ho, 0), max(Wo, 0)), x.dtype)
    cols = _cols(x, kh, kw, s, d, p, (Ho, Wo))
    wm = w.reshape(G, Og, K)
    ym = np.empty((O, N * L), x.dtype)
    for g in range(G):
        np.matmul(wm[g], cols[g * K:(g + 1) * K], out=ym[g * Og:(g + 1) * Og])
    y = np.empty((N, O, L), x.dtype)
    parallel_for(_nlo_to_nol, N, ym, y, G, Og, L, parallel=y.size >= _PAR_MIN)
    return y.reshape(N, O, Ho, Wo)


@register("conv2d_backward_input", requires=_conv_requires)
def conv2d_backward_input(g, w, input_hw, stride=1, padding=0, dilation=1, groups=1):
    """dx = the adjoint of conv2d in x (= conv_transpose2d of g with w): g (N, O, Ho, Wo) -> dx (N, C, H, W)

    dcols_g = W_g^T @ dY_g, then col2im: dx[n, c, i*sh - top + a*dh, j*sw - left + b*dw] += dcols[(c,a,b),(n,i,j)].
    Same arguments as ``conv2d_backward_input_ref`` (``input_hw`` = (H, W)). Also the forward of
    conv_transpose2d (see :func:`conv_transpose2d_forward`). Speed: part of the conv2d fwd+bwd rows of
    benchmarks/results/results.md.
    """
    w = c(w)
    N, O, Ho, Wo = g.shape
    _, Cg, kh, kw = w.shape
    H, W = int(input_hw[0]), int(input_hw[1])
    s, d, p, _ = _geometry((H, W), (kh, kw), stride, padding, dilation)
    G = int(groups)
    Og, K = O // G, Cg * kh * kw
    C = Cg * G
    dx = np.zeros((N, C, H, W), g.dtype)
    if N == 0 or Ho * Wo == 0 or O == 0:
        return dx
    dy = _dy_matrix(g)
    wm = w.reshape(G, Og, K)
    dcols = np.empty((G * K, dy.shape[1]), g.dtype)
    for gi in range(G):
        np.matmul(wm[gi].T, dy[gi * Og:(gi + 1) * Og], out=dcols[gi * K:(gi + 1) * K])
    parallel_for(_col2im, N, dcols, dx, kh, kw, s[0], s[1], p[0], p[1], d[0], d[1], Ho, Wo,
                 parallel=dcols.size >= _PAR_MIN)
    return dx


@register("conv2d_backward_weight", requires=_conv_requires)
def conv2d_backward_weight(x, g, kernel_hw, stride=1, padding=0, dilation=1, groups=1):
    """dw[o, c, a, b] = sum_{n,i,j} g[n, o, i, j] * x_pad[n, grp(o)*C/G + c, i*sh + a*dh, j*sw + b*dw]
    = dY_g @ cols_g^T per group. Same arguments as ``conv2d_backward_weight_ref``.
    Speed: part of the conv2d fwd+bwd rows of benchmarks/results/results.md.
    """
    x = c(x)
    N, C, H, W = x.shape
    _, O, Ho, Wo = g.shape
    kh, kw = int(kernel_hw[0]), int(kernel_hw[1])
    s, d, p, _ = _geometry((H, W), (kh, kw), stride, padding, dilation)
    G = int(groups)
    Og, Cg = O // G, C // G
    K = Cg * kh * kw
    dw = np.zeros((O, K), x.dtype)
    if N == 0 or Ho * Wo == 0:
        return dw.reshape(O, Cg, kh, kw)
    cols = _cols(x, kh, kw, s, d, p, (Ho, Wo))
    dy = _dy_matrix(g)
    for gi in range(G):
        np.matmul(dy[gi * Og:(gi + 1) * Og], cols[gi * K:(gi + 1) * K].T, out=dw[gi * Og:(gi + 1) * Og])
    return dw.reshape(O, Cg, kh, kw)


@register("conv_transpose2d_forward", requires=_conv_requires)
def conv_transpose2d_forward(x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """PyTorch's conv_transpose2d (no bias): x (N, Cin, H, W), w (Cin, Cout/G, kh, kw) ->
    y (N, Cout, Ho, Wo), Ho = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1 (likewise Wo);
    y = conv2d_backward_input(x, w, (Ho, Wo), stride, padding, dilation, groups).
    Its gradients: dx = conv2d_forward(dy, w, ...), dw = conv2d_backward_weight(dy, x, ...) (roles swapped).
    Wired into: minigen/ops/conv.py ``ConvTranspose2d`` (through the conv2d_backward_input kernel).
    """
    (sh, sw), (dh, dw_), (ph, pw), (oph, opw) = _two(stride), _two(dilation), _two(padding), _two(output_padding)
    _, _, kh, kw = w.shape
    H, W = x.shape[2:]
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw_ * (kw - 1) + opw + 1
    return conv2d_backward_input(x, w, (Ho, Wo), (sh, sw), (ph, pw), (dh, dw_), groups)


# ------------------------------------------------------------------ pooling
@jit
def _maxpool(x, y, pos, kh, kw, sh, sw, pt, pl, dh, dw, Wp, p0, p1):
    """Planes p0..p1 of (N*C): y = window max, pos = flat index of its first maximum in the padded plane
    (NaN wins, as NumPy's argmax); padding is -inf."""
    P, H, W = x.shape
    Ho, Wo = y.shape[1], y.shape[2]
    for pl_ in range(p0, p1):
        for i in range(Ho):
            for j in range(Wo):
                best = -np.inf
                bi = -1
                found_nan = False
                for a in range(kh):
                    ih = i * sh - pt + a * dh
                    for b in range(kw):
                        iw = j * sw - pl + b * dw
                        if ih >= 0 and ih < H and iw >= 0 and iw < W:
                            v = x[pl_, ih, iw]
                        else:
                            v = -np.inf
                        if bi < 0:
                            best = v
                            bi = (ih + pt) * Wp + iw + pl
                            if v != v:
                                found_nan = True
                        elif not found_nan and (v > best or v != v):
                            best = v
                            bi = (ih + pt) * Wp + iw + pl
                            if v != v:
                                found_nan = True
                y[pl_, i, j] = best
                pos[pl_, i, j] = bi


@jit
def _scatter(g, pos, dxp, p0, p1):
    """dxp[p].flat[pos[p, k]] += g[p, k] for planes p0..p1 (padded planes, flattened)."""
    K = g.shape[1]
    for p in range(p0, p1):
        for k in range(K):
            dxp[p, pos[p, k]] += g[p, k]


def _pool_requires(x, *rest):
    return is_float(x) and x.ndim == 4


@register("max_pool2d_forward", requires=_pool_requires)
def max_pool2d_forward(x, kernel_hw, stride, pads, dilation, out_hw):
    """Max pooling with positions: y[n, c, i, j] = max over window (i, j) of x padded with -inf by
    ``pads`` ((top, bottom), (left, right)); pos = flat index in the padded (Hp, Wp) plane of the FIRST
    maximum in row-major window order (NaN counts as the maximum), int64, as ``max_pool2d_argmax_ref``.
    Returns (y, pos). ``max_pool2d_argmax`` (below) returns pos only, for register_kernel.
    Wired into: minigen/ops/pool.py ``_max_pool`` (argmax + PoolGather in one pass; PoolGather's result
    equals y). Not benchmarked separately yet (no threshold).
    """
    x = c(x)
    N, C, H, W = x.shape
    (pt, pb), (pl, pr) = _pads(pads)
    kh, kw = _two(kernel_hw)
    sh, sw = _two(stride)
    dh, dw = _two(dilation)
    Ho, Wo = _two(out_hw)
    Wp = W + pl + pr
    y = np.empty((N * C, Ho, Wo), x.dtype)
    pos = np.empty((N * C, Ho, Wo), np.int64)
    parallel_for(_maxpool, N * C, x.reshape(N * C, H, W), y, pos, kh, kw, sh, sw, pt, pl, dh, dw, Wp,
                 parallel=y.size * kh * kw >= _PAR_MIN)
    return y.reshape(N, C, Ho, Wo), pos.reshape(N, C, Ho, Wo)


@register("max_pool2d_argmax", requires=_pool_requires)
def max_pool2d_argmax(x, kernel_hw, stride, pads, dilation, out_hw):
    """Same arguments and result as minigen/ops/pool.py ``max_pool2d_argmax_ref`` (positions only)."""
    return max_pool2d_forward(x, kernel_hw, stride, pads, dilation, out_hw)[1]


@register("max_pool2d_backward", requires=lambda g, *r: is_float(g))
def max_pool2d_backward(g, pos, in_shape, pads):
    """dx: g scattered into the positions ``pos`` (overlapping windows add up), padding dropped —
    the forward of ``PoolScatter`` in minigen/ops/pool.py (same arguments). Not benchmarked separately yet."""
    N, C, H, W = in_shape
    (pt, pb), (pl, pr) = _pads(pads)
    Hp, Wp = H + pt + pb, W + pl + pr
    g2 = c(g).reshape(N * C, -1)
    p2 = c(np.broadcast_to(pos, g.shape)).reshape(N * C, -1)
    dxp = np.zeros((N * C, Hp * Wp), g.dtype)
    parallel_for(_scatter, N * C, g2, p2, dxp, parallel=g2.size >= _PAR_MIN)
    dxp = dxp.reshape(N, C, Hp, Wp)
    return np.ascontiguousarray(dxp[:, :, pt:pt + H, pl:pl + W])


@jit
def _avgpool(x, y, kh, kw, sh, sw, pt, pl, inv, p0, p1):
    P, H, W = x.shape
    Ho, Wo = y.shape[1], y.shape[2]
    for p in range(p0, p1):
        for i in range(Ho):
            for j in range(Wo):
                s = 0.0
                for a in range(kh):
                    ih = i * sh - pt + a
                    if ih < 0 or ih >= H:
                        continue
                    for b in range(kw):
                        iw = j * sw - pl + b
                        if iw >= 0 and iw < W:
                            s += x[p, ih, iw]
                y[p, i, j] = s * inv[i, j]


@jit
def _avgpool_bwd(g, dx, kh, kw, sh, sw, pt, pl, inv, p0, p1):
    P, H, W = dx.shape
    Ho, Wo = g.shape[1], g.shape[2]
    for p in range(p0, p1):
        for i in range(Ho):
            for j in range(Wo):
                v = g[p, i, j] * inv[i, j]
                for a in range(kh):
                    ih = i * sh - pt + a
                    if ih < 0 or ih >= H:
                        continue
                    for b in range(kw):
                        iw = j * sw - pl + b
                        if iw >= 0 and iw < W:
                            dx[p, ih, iw] += v


def _avg_divisor(H, W, k, s, p, out_hw, count_include_pad, divisor_override, dt):
    if divisor_override is not None:
        return np.full(out_hw, 1.0 / float(divisor_override), dt)

    def counts(size, k, s, p, out):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, size + p)
        if count_include_pad:
            return end - start
        return np.minimum(end, size) - np.maximum(start, 0)

    ch = counts(H, k[0], s[0], p[0], out_hw[0])
    cw = counts(W, k[1], s[1], p[1], out_hw[1])
    return (1.0 / (ch[:, None] * cw[None, :])).astype(dt)


@register("avg_pool2d_forward", requires=_pool_requires)
def avg_pool2d_forward(x, kernel_hw, stride, padding, out_hw, count_include_pad=True, divisor_override=None):
    """y[n, c, i, j] = (1 / D[i, j]) sum_{a,b} x_pad[n, c, i*sh + a, j*sw + b]  (zero padding (ph, pw)),
    D = divisor_override, else the window clipped to the padded input (count_include_pad) or to x itself
    (PyTorch's rule; ``out_hw`` already accounts for ceil_mode). Returns y.
    Wired into: minigen/ops/pool.py ``_avg_pool`` (replaces the box-filter Conv2d for the forward).
    Not benchmarked separately yet.
    """
    x = c(x)
    N, C, H, W = x.shape
    k, s, p = _two(kernel_hw), _two(stride), _two(padding)
    Ho, Wo = _two(out_hw)
    inv = _avg_divisor(H, W, k, s, p, (Ho, Wo), count_include_pad, divisor_override, np.float64)
    y = np.empty((N * C, Ho, Wo), x.dtype)
    parallel_for(_avgpool, N * C, x.reshape(N * C, H, W), y, k[0], k[1], s[0], s[1], p[0], p[1], inv,
                 parallel=y.size * k[0] * k[1] >= _PAR_MIN)
    return y.reshape(N, C, Ho, Wo)


@register("avg_pool2d_backward", requires=lambda g, *r: is_float(g) and g.ndim == 4)
def avg_pool2d_backward(g, in_hw, kernel_hw, stride, padding, count_include_pad=True, divisor_override=None):
    """dx[n, c, ih, iw] = sum over the windows (i, j) containing (ih, iw) of g[n, c, i, j] / D[i, j]."""
    N, C, Ho, Wo = g.shape
    H, W = _two(in_hw)
    k, s, p = _two(kernel_hw), _two(stride), _two(padding)
    inv = _avg_divisor(H, W, k, s, p, (Ho, Wo), count_include_pad, divisor_override, np.float64)
    dx = np.zeros((N * C, H, W), g.dtype)
    parallel_for(_avgpool_bwd, N * C, c(g).reshape(N * C, Ho, Wo), dx, k[0], k[1], s[0], s[1], p[0], p[1], inv,
                 parallel=g.size * k[0] * k[1] >= _PAR_MIN)
    return dx.reshape(N, C, H, W)
