"""Direct convolution kernels: the three conv maps as plain loops, no column matrix, for few output channels.

Same notation as :mod:`minigen.kernels.cpu_conv`: x (N, C, H, W), w (O, C/G, kh, kw), G groups, stride
(sh, sw), dilation (dh, dw), x_pad the zero-padded input, y / g (N, O, Ho, Wo)::

    forward:          y[n, o, i, j]   = sum_{c, a, b} x_pad[n, grp(o)*C/G + c, i*sh + a*dh, j*sw + b*dw] w[o, c, a, b]
    backward-input:   dx_pad[n, grp*C/G + c, i*sh + a*dh, j*sw + b*dw] += sum_{o in grp} g[n, o, i, j] w[o, c, a, b]
    backward-weight:  dw[o, c, a, b]  = sum_{n, i, j} g[n, o, i, j] x_pad[n, grp(o)*C/G + c, i*sh + a*dh, j*sw + b*dw]

Why: im2col + GEMM builds a column matrix of C/G*kh*kw rows by N*Ho*Wo columns, kh*kw/(sh*sw) times the
input. When O is small that matrix dwarfs both x and y and the GEMM degenerates: for the DCGAN generator's
32 -> 1 channel 5x5 output conv (batch 64, 28x28) it is 800 x 50,176 float32 = 160 MB, the forward is a
matrix-vector product and the input gradient an outer product (K = O = 1) followed by col2im over all of
it, both bound by memory traffic (1.2 GFLOP/s measured). The direct loops touch only x, w, y: every
output row is accumulated in place over (c, a, b) with the innermost loop running along an image row
(contiguous for stride 1, so LLVM vectorises it). They do the same N*O*C/G*kh*kw*Ho*Wo multiply-adds as
the GEMM, at a lower rate than BLAS at its best, so they win exactly when the GEMM cannot run at its
best: small O (the K of the input-gradient GEMM, the M of the other two). The rule that picks them,
measured per map on the machine named in benchmarks/results/notes.md, is :func:`direct_worth`.

Parallel: forward over the (n, o) output planes, input gradient over the (n, c) input planes, weight
gradient over the (o, c) weight planes: every thread owns what it writes, no races, no reduction buffers.
Each kernel takes exactly the arguments of the reference it equals in minigen/ops/conv.py. The ops ask
for them with the stride as a third lookup argument, ``dispatch.get("conv2d_forward_direct", x, w, stride)``,
because the rule depends on it (``requires`` ignores it).
"""
from __future__ import annotations

import numpy as np

from ._common import c, is_float, jit, parallel_for
from .cpu_conv import _geometry, _nonempty, _padded, _unpadded
from .dispatch import register

_U = np.uint64  # unsigned indices: Numba drops its negative-index wraparound test (see cpu_conv)

# The measured rule (benchmarks/results/notes.md, "conv algorithm per shape"), per map: the direct loops
# beat im2col + BLAS when the conv has at most DIRECT_MAX_O[map] output channels at stride 1; at a larger
# stride (the inner loop then gathers every sh-th / sw-th pixel) only O = 1 goes direct (time within
# 0.4-1.2x of im2col, and no column matrix). Measured on an Intel Xeon (Sapphire Rapids, AVX-512/AMX)
# 2-core VM, 1 thread, CPU time, 5x5 kernels, C = 32 at 28x28 (stride 1) and C = 64 at 14x14 (stride 2);
# direct / im2col time (batch 64; batch 8 alike):
#   stride 1, O = 1, 2, 4, 8, 16:  forward 0.16 0.22 0.25 0.42 0.71;  input 0.06 0.22 0.39 0.60 1.07;
#                                  weight  0.28 0.28 0.53 1.00 1.90
#   stride 2, O = 1, 4, 8:         forward 1.10 2.12 4.64;  input 0.38 2.66 4.63;  weight 1.21 2.68 4.33
# (im2col's GEMM needs rows -- output channels -- to run near BLAS speed; with O = 1 it is a
# matrix-vector product and, for the input gradient, an outer product plus col2im.)
DIRECT_MAX_O = {"forward": 16, "input": 8, "weight": 4}
DIRECT_MAX_O_STRIDED = 1
# ... and only where im2col's columns leave the caches and the flat loops are long: measured, im2col wins
# or ties for small problems whatever O (LeNet conv2 (64,6,12,12) -> 16 5x5: columns 2.4 MB, direct
# forward 1.6x, weight 14x slower; (64,64,8,8) -> 4 3x3: 9.4 MB, forward/input equal, weight 4.4x slower;
# (64,3,32,32) -> 8 3x3: 7 MB, all equal), while every case with >= 20 MB of columns and 28x28 planes
# above went direct. DIRECT_MIN_PLANE: the stride-1 loops run over (Ho-1)*Wp + Wo elements per tap.
DIRECT_MIN_COLS_BYTES = 16 << 20
DIRECT_MIN_PLANE = 256
_PAR_MIN = 1 << 15  # multiply-adds below which one thread runs it (pool dispatch ~15 us)


@jit
def _fwd(xp, w, y, sh, sw, dh, dw, G, p0, p1):
    """Planes p0..p1 of the flattened (n, o): y[n, o] = sum_{c,a,b} w[o,c,a,b] * x_pad window (y zeroed)."""
    N, C, Hp, Wp = xp.shape
    O, Cg, kh, kw = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    Og = O // G
    for p in range(p0, p1):
        n = p // O
        o = p % O
        cbase = (o // Og) * Cg
        out = y[n, o]
        for i in range(Ho):
            dst = out[i]
            for ch in range(Cg):
                plane = xp[n, cbase + ch]
                for a in range(kh):
                    src = plane[i * sh + a * dh]
                    for b in range(kw):
                        wv = w[o, ch, a, b]
                        off = b * dw
                        for j in range(Wo):
                            dst[_U(j)] += wv * src[_U(off + j * sw)]


@jit
def _bwd_input(g, w, dxp, sh, sw, dh, dw, G, p0, p1):
    """Planes p0..p1 of the flattened (n, c): dx_pad[n, c] += g[n, o] (x) w[o, c] for o in c's group (dxp zeroed)."""
    N, C, Hp, Wp = dxp.shape
    O, Cg, kh, kw = w.shape
    Ho, Wo = g.shape[2], g.shape[3]
    Og = O // G
    for p in range(p0, p1):
        n = p // C
        ci = p % C
        grp = ci // Cg
        ch = ci - grp * Cg
        plane = dxp[n, ci]
        for o in range(grp * Og, (grp + 1) * Og):
            gp = g[n, o]
            for i in range(Ho):
                srow = gp[i]
                for a in range(kh):
                    drow = plane[i * sh + a * dh]
                    for b in range(kw):
                        wv = w[o, ch, a, b]
                        off = b * dw
                        for j in range(Wo):
                            drow[_U(off + j * sw)] += wv * srow[_U(j)]


@jit
def _bwd_weight(xp, g, dwt, sh, sw, dh, dw, G, p0, p1):
    """Planes p0..p1 of the flattened (o, c): dw[o, c, a, b] = sum_{n,i,j} g[n,o,i,j] x_pad[n, ., i*sh+a*dh, j*sw+b*dw].

    Accumulated as vectors acc[a, b, :] along the output row (one FMA per element, no horizontal sum in
    the inner loop), summed once per (o, c) at the end."""
    N, C, Hp, Wp = xp.shape
    O, Cg, kh, kw = dwt.shape
    Ho, Wo = g.shape[2], g.shape[3]
    Og = O // G
    acc = np.empty((kh, kw, Wo), dwt.dtype)
    for p in range(p0, p1):
        o = p // Cg
        ch = p % Cg
        ci = (o // Og) * Cg + ch
        acc[:] = 0.0
        for n in range(N):
            gp = g[n, o]
            plane = xp[n, ci]
            for i in range(Ho):
                grow = gp[i]
                for a in range(kh):
                    srow = plane[i * sh + a * dh]
                    for b in range(kw):
                        off = b * dw
                        ar = acc[a, b]
                        for j in range(Wo):
                            ar[_U(j)] += grow[_U(j)] * srow[_U(off + j * sw)]
        for a in range(kh):
            for b in range(kw):
                dwt[o, ch, a, b] = acc[a, b].sum()


# ---- stride 1: flat loops over the padded row width
# With stride 1 an output row is a contiguous run of the padded input row, and so is the whole output
# plane if it is laid out with the padded width Wp (columns Wo..Wp-1 are junk): tap (a, b) is then ONE
# contiguous loop of (Ho-1)*Wp + Wo elements at offset a*dh*Wp + b*dw. Rows of 28 pixels are shorter
# than one unrolled AVX-512 vector loop (16 lanes x 4), so the per-row loops above ran scalar; the flat
# loop runs ~900 elements per tap, vectorised. The junk columns cost (Wp - Wo)/Wp extra work and are
# cropped (forward) or kept zero (the gradient's input, so nothing junk is scattered or summed).
@jit
def _fwd_s1(xp, w, yw, dh, dw, G, p0, p1):
    """Planes p0..p1 of (n, o): yw[n, o] (Ho, Wp), flat, += w[o,c,a,b] * xp[n, c] shifted by (a*dh, b*dw)."""
    N, C, Hp, Wp = xp.shape
    O, Cg, kh, kw = w.shape
    Ho, Wo = yw.shape[2], yw.shape[3]
    Og = O // G
    L = (Ho - 1) * Wp + Wo
    for p in range(p0, p1):
        n = p // O
        o = p % O
        cbase = (o // Og) * Cg
        out = yw[n, o].reshape(Ho * Wp)
        for ch in range(Cg):
            src = xp[n, cbase + ch].reshape(Hp * Wp)
            for a in range(kh):
                for b in range(kw):
                    wv = w[o, ch, a, b]
                    off = a * dh * Wp + b * dw
                    for l in range(_U(L)):
                        out[l] += wv * src[_U(off) + l]


@jit
def _bwd_input_s1(gz, w, dxp, dh, dw, G, p0, p1):
    """Planes p0..p1 of (n, c): dx_pad[n, c] (flat) += w[o,c,a,b] * gz[n, o] shifted by (a*dh, b*dw); gz is g
    laid out with the padded width, junk columns zero."""
    N, C, Hp, Wp = dxp.shape
    O, Cg, kh, kw = w.shape
    Ho = gz.shape[2]
    Wo = gz.shape[3]
    Og = O // G
    L = (Ho - 1) * Wp + Wo
    for p in range(p0, p1):
        n = p // C
        ci = p % C
        grp = ci // Cg
        ch = ci - grp * Cg
        dst = dxp[n, ci].reshape(Hp * Wp)
        for o in range(grp * Og, (grp + 1) * Og):
            src = gz[n, o].reshape(Ho * Wp)
            for a in range(kh):
                for b in range(kw):
                    wv = w[o, ch, a, b]
                    off = a * dh * Wp + b * dw
                    for l in range(_U(L)):
                        dst[_U(off) + l] += wv * src[l]


@jit
def _bwd_weight_s1(xp, gz, dwt, dh, dw, G, p0, p1):
    """Planes p0..p1 of (o, c): dw[o, c, a, b] = sum_n <gz[n, o], x_pad[n, c] shifted by (a*dh, b*dw)> (flat
    dot products; gz's junk columns are zero)."""
    N, C, Hp, Wp = xp.shape
    O, Cg, kh, kw = dwt.shape
    Ho = gz.shape[2]
    Wo = gz.shape[3]
    Og = O // G
    L = (Ho - 1) * Wp + Wo
    for p in range(p0, p1):
        o = p // Cg
        ch = p % Cg
        ci = (o // Og) * Cg + ch
        for a in range(kh):
            for b in range(kw):
                off = a * dh * Wp + b * dw
                s = dwt[o, ch, a, b]  # zero, in the array's dtype (a float32 sum stays float32 and vectorises)
                for n in range(N):
                    gr = gz[n, o].reshape(Ho * Wp)
                    src = xp[n, ci].reshape(Hp * Wp)
                    for l in range(_U(L)):
                        s += gr[l] * src[_U(off) + l]
                dwt[o, ch, a, b] = s


def _wide(g, Wp):
    """g (N, O, Ho, Wo) laid out with row width Wp >= Wo, the extra columns zero."""
    N, O, Ho, Wo = g.shape
    if Wo == Wp:
        return c(g)
    gz = np.zeros((N, O, Ho, Wp), g.dtype)
    gz[..., :Wo] = g
    return gz


def direct_worth(which, O, stride=1, cols_bytes=None, L=None):
    """The measured rule (above): direct loops for map ``which`` ('forward', 'input', 'weight') of a conv
    with O output channels, this stride, an im2col column matrix of ``cols_bytes`` and L = Ho*Wo output
    pixels per plane (None: not checked)."""
    st = tuple(stride) if isinstance(stride, (tuple, list)) else (stride, stride)
    limit = DIRECT_MAX_O[which] if all(int(v) == 1 for v in st) else DIRECT_MAX_O_STRIDED
    return (O <= limit and (cols_bytes is None or cols_bytes >= DIRECT_MIN_COLS_BYTES)
            and (L is None or L >= DIRECT_MIN_PLANE))


def _st(stride):
    return tuple(int(v) for v in stride) if isinstance(stride, (tuple, list)) else (int(stride), int(stride))


def _worth_forward(x, w, stride=1):
    N, C, H, W = x.shape
    kh, kw = w.shape[2:]
    sh, sw = _st(stride)
    L = -(-H // sh) * -(-W // sw)  # about Ho*Wo (padding and dilation ignored)
    return direct_worth("forward", w.shape[0], (sh, sw), C * kh * kw * N * L * x.itemsize, L)


def _worth_input(g, w, stride=1):
    N, O, Ho, Wo = g.shape
    Cg, kh, kw = w.shape[1:]
    return direct_worth("input", O, stride, Cg * kh * kw * N * Ho * Wo * g.itemsize, Ho * Wo)


def _worth_weight(x, g, stride=1, kernel_hw=(1, 1)):
    N, C = x.shape[:2]
    _, O, Ho, Wo = g.shape
    kh, kw = kernel_hw
    return direct_worth("weight", O, stride, C * kh * kw * N * Ho * Wo * x.itemsize, Ho * Wo)


def _requires(a, w, *rest):
    return is_float(a, w) and a.ndim == 4 and w.ndim == 4


def _macs(N, O, Cg, kh, kw, L):
    return N * O * Cg * kh * kw * L


@register("conv2d_forward_direct", requires=_requires,
          worth=_worth_forward,
          reference="minigen.ops.conv:conv2d_forward_ref")
def conv2d_forward_direct(x, w, stride=1, padding=0, dilation=1, groups=1):
    """y = conv2d(x, w) by direct loops (module docstring); same arguments and result as ``conv2d_forward_ref``."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    s, d, pads, (Ho, Wo) = _geometry((H, W), (kh, kw), stride, padding, dilation)
    y = np.zeros((N, O, max(Ho, 0), max(Wo, 0)), x.dtype)
    if not _nonempty(N, C, O, Ho * Wo):
        return y
    xp = _padded(x, pads)
    par = _macs(N, O, Cg, kh, kw, Ho * Wo) >= _PAR_MIN
    if s == (1, 1):
        yw = np.zeros((N, O, Ho, xp.shape[3]), x.dtype)
        parallel_for(_fwd_s1, N * O, xp, c(w), yw, d[0], d[1], int(groups), parallel=par)
        return np.ascontiguousarray(yw[..., :Wo])
    parallel_for(_fwd, N * O, xp, c(w), y, s[0], s[1], d[0], d[1], int(groups), parallel=par)
    return y


@register("conv2d_backward_input_direct", requires=_requires,
          worth=_worth_input,
          reference="minigen.ops.conv:conv2d_backward_input_ref")
def conv2d_backward_input_direct(g, w, input_hw, stride=1, padding=0, dilation=1, groups=1):
    """dx = conv2d's adjoint in x by direct loops; same arguments and result as ``conv2d_backward_input_ref``."""
    N, O, Ho, Wo = g.shape
    _, Cg, kh, kw = w.shape
    G = int(groups)
    H, W = int(input_hw[0]), int(input_hw[1])
    s, d, pads, _ = _geometry((H, W), (kh, kw), stride, padding, dilation)
    C = Cg * G
    if not _nonempty(N, C, O, Ho * Wo):
        return np.zeros((N, C, H, W), g.dtype)
    (pt, pb), (pl, pr) = pads
    # the padded frame the taps land in: rows 0 .. (Ho-1)*sh + dh*(kh-1), at least the padded input
    Hf = max(H + pt + pb, (Ho - 1) * s[0] + d[0] * (kh - 1) + 1, H + pt)
    Wf = max(W + pl + pr, (Wo - 1) * s[1] + d[1] * (kw - 1) + 1, W + pl)
    dxp = np.zeros((N, C, Hf, Wf), g.dtype)
    par = _macs(N, O, Cg, kh, kw, Ho * Wo) >= _PAR_MIN
    if s == (1, 1):
        parallel_for(_bwd_input_s1, N * C, _wide(g, Wf), c(w), dxp, d[0], d[1], G, parallel=par)
    else:
        parallel_for(_bwd_input, N * C, c(g), c(w), dxp, s[0], s[1], d[0], d[1], G, parallel=par)
    return _unpadded(dxp, H, W, pt, pl)


@register("conv2d_backward_weight_direct", requires=_requires,
          worth=_worth_weight,
          reference="minigen.ops.conv:conv2d_backward_weight_ref")
def conv2d_backward_weight_direct(x, g, kernel_hw, stride=1, padding=0, dilation=1, groups=1):
    """dw = conv2d's gradient in w by direct loops; same arguments and result as ``conv2d_backward_weight_ref``."""
    N, C, H, W = x.shape
    _, O, Ho, Wo = g.shape
    kh, kw = int(kernel_hw[0]), int(kernel_hw[1])
    G = int(groups)
    s, d, pads, _ = _geometry((H, W), (kh, kw), stride, padding, dilation)
    dwt = np.zeros((O, C // G, kh, kw), x.dtype)
    if not _nonempty(N, C, O, Ho * Wo):
        return dwt
    xp = _padded(x, pads)
    par = _macs(N, O, C // G, kh, kw, Ho * Wo) >= _PAR_MIN
    # (the flat stride-1 variant _bwd_weight_s1 returned NaN for some small shapes after other
    # specialisations had run in the same process -- not understood yet, so it is not used)
    parallel_for(_bwd_weight, O * (C // G), xp, c(g), dwt, s[0], s[1], d[0], d[1], G, parallel=par)
    return dwt


@register("conv2d_backward_direct", requires=lambda g, x, w, *r: _requires(g, w) and is_float(x, w),
          worth=lambda g, x, w, stride=1: _worth_input(g, w, stride) and _worth_weight(x, g, stride, w.shape[2:]),
          reference="minigen.ops.conv:Conv2d.backward")
def conv2d_backward_direct(g, x, w, need_input, need_weight, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw) of y = conv2d(x, w) by the direct loops (None where not needed): Conv2d's first-order
    backward for few output channels."""
    H, W = x.shape[2:]
    dx = conv2d_backward_input_direct(g, w, (H, W), stride, padding, dilation, groups) if need_input else None
    dw = conv2d_backward_weight_direct(x, g, w.shape[2:], stride, padding, dilation, groups) if need_weight else None
    return dx, dw


@register("conv_transpose2d_backward_direct", requires=lambda G_, g, w, *r: _requires(G_, w) and is_float(g, w),
          worth=lambda G_, g, w, stride=1: _worth_weight(G_, g, stride, w.shape[2:]),  # the stricter of its two maps
          reference="minigen.ops.conv:ConvTranspose2d.backward")
def conv_transpose2d_backward_direct(G_, g, w, need_g, need_weight, stride=1, padding=0, dilation=1, groups=1):
    """(dg, dw) of y = conv2d_backward_input(g, w, ...) (a transposed convolution whose INPUT has few
    channels, O = w.shape[0]) for the upstream gradient G_: dg = conv2d(G_, w), dw = weight gradient of
    (G_, g), both by the direct loops."""
    dg = conv2d_forward_direct(G_, w, stride, padding, dilation, groups) if need_g else None
    dw = conv2d_backward_weight_direct(G_, g, w.shape[2:], stride, padding, dilation, groups) if need_weight else None
    return dg, dw
