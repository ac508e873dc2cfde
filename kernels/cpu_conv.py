"""Convolution and pooling on NCHW arrays: im2col / col2im in Numba around one BLAS GEMM per group.

Notation: x (N, C, H, W), w (O, C/G, kh, kw), G groups, stride (sh, sw), dilation (dh, dw), padding
((top, bottom), (left, right)) (an int or a pair is accepted too; negative amounts crop), and
L = Ho * Wo output positions. With x_pad the zero-padded input, the column matrix of group g is

    cols_g[(c, a, b), (n, i, j)] = x_pad[n, g*C/G + c, i*sh + a*dh, j*sw + b*dw]

of shape (C/G*kh*kw, N*L), so that the three convolution maps are each one GEMM:

    forward:          Y_g  (O/G, N*L)     = W_g (O/G, K) @ cols_g                  -> y (N, O, Ho, Wo)
    backward-weight:  dW_g (O/G, K)       = dY_g (O/G, N*L) @ cols_g^T
    backward-input:   dcols_g (K, N*L)    = W_g^T @ dY_g,  then col2im adds each column back into dx

Why im2col + BLAS and not direct loops: measured on the DCGAN shapes (batch 64, 28x28, 5x5 stride 2,
1->64->128 channels) direct Numba loops ran at 6-9 GFLOP/s against 35-75 GFLOP/s for OpenBLAS SGEMM
on the column matrix. The column build works on an explicitly zero-padded copy of x, so its inner loop
has no bounds tests (3.5x faster than testing every tap against the image border: ~6 ms instead of
~22 ms for the 20 MB column matrix of DCGAN D conv2, against ~35 ms for its GEMM, 1 thread); col2im
likewise adds into a padded buffer that is cropped at the end. The loops are split over the batch
(each thread owns samples n, so col2im's scatter-add has no races).

Two fused entry points serve the first-order backward of minigen/ops/conv.py (so it runs one column
build per layer and step instead of two): :func:`conv2d_forward_cols` also returns the column matrix
(kept by ``Conv2d`` for its weight gradient when it is at most ``CACHE_COLS_MAX_BYTES``), and
:func:`conv2d_backward` / :func:`conv_transpose2d_backward` compute both gradients from one dY matrix
and one column matrix.

The plain kernels take exactly the arguments of the references in minigen/ops/conv.py
(``conv2d_forward_ref`` ...); the op module finds them through :mod:`minigen.kernels.dispatch`.
"""
from __future__ import annotations

import numpy as np

from ._common import c, is_float, jit, parallel_for
from .dispatch import register

# the largest column matrix Conv2d keeps from forward to backward (bigger ones are rebuilt in backward)
CACHE_COLS_MAX_BYTES = 64 << 20


def _two(v):
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pads(padding):
    ph, pw = _two_raw(padding)
    return tuple(tuple(int(q) for q in p) if isinstance(p, (tuple, list)) else (int(p), int(p)) for p in (ph, pw))


def _two_raw(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _out(size, k, s, p0, p1, d):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


# ------------------------------------------------------------------ padding, im2col / col2im
def _padded(x, pads):
    """x zero-padded by ((top, bottom), (left, right)) as a C-contiguous array (negative amounts crop)."""
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return c(x)
    N, C, H, W = x.shape
    x = x[:, :, max(-pt, 0):H - max(-pb, 0), max(-pl, 0):W - max(-pr, 0)]
    pt, pb, pl, pr = max(pt, 0), max(pb, 0), max(pl, 0), max(pr, 0)
    h, w = x.shape[2:]
    out = np.zeros((N, C, h + pt + pb, w + pl + pr), x.dtype)
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _unpadded(dxp, H, W, pt, pl):
    """The inverse of :func:`_padded` for gradients: dx[n, c, r, s] = dxp[n, c, r + pt, s + pl] where that
    exists in dxp, 0 elsewhere (rows a negative padding cropped away got no gradient)."""
    N, C, Hp, Wp = dxp.shape
    if pt >= 0 and pl >= 0 and pt + H <= Hp and pl + W <= Wp:
        return np.ascontiguousarray(dxp[:, :, pt:pt + H, pl:pl + W])
    dx = np.zeros((N, C, H, W), dxp.dtype)
    r0, r1 = max(0, -pt), min(H, Hp - pt)
    s0, s1 = max(0, -pl), min(W, Wp - pl)
    if r1 > r0 and s1 > s0:
        dx[:, :, r0:r1, s0:s1] = dxp[:, :, r0 + pt:r1 + pt, s0 + pl:s1 + pl]
    return dx


# Indices in the inner loops are cast to unsigned: Numba then drops its negative-index wraparound test,
# which measured 3-5x faster on the short rows of small convolutions (LeNet: 8-wide output rows).
_U = np.uint64


@jit
def _im2col(xp, cols, kh, kw, sh, sw, dh, dw, Ho, Wo, n0, n1):
    """cols[(c, a, b), (n, i, j)] = xp[n, c, i*sh + a*dh, j*sw + b*dw] (xp already padded); samples n0..n1."""
    N, C, Hp, Wp = xp.shape
    L = Ho * Wo
    for n in range(n0, n1):
        for ch in range(C):
            plane = xp[n, ch]
            for a in range(kh):
                for b in range(kw):
                    row = cols[(ch * kh + a) * kw + b]
                    for i in range(Ho):
                        src = plane[i * sh + a * dh]
                        base = n * L + i * Wo
                        off = b * dw
                        for j in range(Wo):
                            row[_U(base + j)] = src[_U(off + j * sw)]


@jit
def _col2im(cols, dxp, kh, kw, sh, sw, dh, dw, Ho, Wo, n0, n1):
    """dxp[n, c, i*sh + a*dh, j*sw + b*dw] += cols[(c, a, b), (n, i, j)] (dxp zeroed, padded); samples n0..n1."""
    N, C, Hp, Wp = dxp.shape
    L = Ho * Wo
    for n in range(n0, n1):
        for ch in range(C):
            plane = dxp[n, ch]
            for a in range(kh):
                for b in range(kw):
                    row = cols[(ch * kh + a) * kw + b]
                    for i in range(Ho):
                        dst = plane[i * sh + a * dh]
                        base = n * L + i * Wo
                        off = b * dw
                        for j in range(Wo):
                            dst[_U(off + j * sw)] += row[_U(base + j)]


@jit
def _nlo_to_nol(src, dst, n0, n1):
    """src (O, N*L) -> dst (N, O, L); samples n0..n1."""
    N, O, L = dst.shape
    for n in range(n0, n1):
        for o in range(O):
            s = src[o]
            d = dst[n, o]
            for l in range(L):
                d[_U(l)] = s[_U(n * L + l)]


@jit
def _nol_to_onl(src, dst, n0, n1):
    """src (N, O, L) -> dst (O, N*L); samples n0..n1."""
    N, O, L = src.shape
    for n in range(n0, n1):
        for o in range(O):
            s = src[n, o]
            d = dst[o]
            for l in range(L):
                d[_U(n * L + l)] = s[_U(l)]


# ---- batch-innermost layout: x as (C, Hp, Wp, N), columns ordered (i, j, n)
# With the batch as the innermost axis every copy / add in im2col and col2im is a contiguous run of N
# values that LLVM vectorises, instead of Wo values read with stride sw. Measured on DCGAN D conv2
# (N = 64, 7x7 outputs, stride 2; 1 thread, CPU time): im2col 0.9 ms vs 3.8 ms, col2im 0.9 ms vs 5.7 ms;
# the two layout transposes around them cost ~1 ms each. Used when N >= _BATCH_INNER_MIN.
_BATCH_INNER_MIN = 8


@jit
def _to_chwn(x, xt, pt, pl, c0, c1):
    """xt[c, pt + h, pl + w, n] = x[n, c, h, w] (xt's border zeroed by the caller); channels c0..c1."""
    N, C, H, W = x.shape
    for ch in range(c0, c1):
        for h in range(H):
            for n in range(N):
                src = x[n, ch, h]
                dst = xt[ch, pt + h]
                for w in range(_U(W)):
                    dst[_U(pl) + w, n] = src[w]


@jit
def _from_chwn(dxt, dx, pt, pl, c0, c1):
    """dx[n, c, h, w] = dxt[c, pt + h, pl + w, n] (the padding dropped); channels c0..c1."""
    N, C, H, W = dx.shape
    for ch in range(c0, c1):
        for h in range(H):
            for n in range(N):
                src = dxt[ch, pt + h]
                dst = dx[n, ch, h]
                for w in range(_U(W)):
                    dst[w] = src[_U(pl) + w, n]


@jit
def _im2col_t(xt, cols, kh, kw, sh, sw, dh, dw, Ho, Wo, c0, c1):
    """cols[(c, a, b), (i, j, n)] = xt[c, i*sh + a*dh, j*sw + b*dw, n]; channels c0..c1."""
    C, Hp, Wp, N = xt.shape
    for ch in range(c0, c1):
        for a in range(kh):
            for b in range(kw):
                row = cols[(ch * kh + a) * kw + b]
                for i in range(Ho):
                    for j in range(Wo):
                        src = xt[ch, i * sh + a * dh, j * sw + b * dw]
                        base = _U((i * Wo + j) * N)
                        for n in range(_U(N)):
                            row[base + n] = src[n]


@jit
def _col2im_t(cols, dxt, kh, kw, sh, sw, dh, dw, Ho, Wo, c0, c1):
    """dxt[c, i*sh + a*dh, j*sw + b*dw, n] += cols[(c, a, b), (i, j, n)] (dxt zeroed); channels c0..c1."""
    C, Hp, Wp, N = dxt.shape
    for ch in range(c0, c1):
        for a in range(kh):
            for b in range(kw):
                row = cols[(ch * kh + a) * kw + b]
                for i in range(Ho):
                    for j in range(Wo):
                        dst = dxt[ch, i * sh + a * dh, j * sw + b * dw]
                        base = _U((i * Wo + j) * N)
                        for n in range(_U(N)):
                            dst[n] += row[base + n]


_NB = 16  # samples per block in the two transposes below: one 64-byte line of the (l, n)-ordered side


@jit
def _oln_to_nol(src, dst, o0, o1):
    """src (O, L*N) ordered (l, n) -> dst (N, O, L); rows o0..o1 (blocks of _NB samples, so both sides
    move whole cache lines)."""
    N, O, L = dst.shape
    for o in range(o0, o1):
        s = src[o]
        for nb in range(0, N, _NB):
            ne = min(nb + _NB, N)
            for l in range(L):
                base = _U(l) * _U(N)
                for n in range(nb, ne):
                    dst[n, o, l] = s[base + _U(n)]


@jit
def _nol_to_oln(src, dst, o0, o1):
    """src (N, O, L) -> dst (O, L*N) ordered (l, n); rows o0..o1 (blocks of _NB samples)."""
    N, O, L = src.shape
    for o in range(o0, o1):
        d = dst[o]
        for nb in range(0, N, _NB):
            ne = min(nb + _NB, N)
            for l in range(L):
                base = _U(l) * _U(N)
                for n in range(nb, ne):
                    d[base + _U(n)] = src[n, o, l]


_PAR_MIN = 1 << 14


def _geometry(x_hw, k_hw, stride, padding, dilation):
    (sh, sw), (dh, dw), pads = _two(stride), _two(dilation), _pads(padding)
    kh, kw = k_hw
    Ho = _out(x_hw[0], kh, sh, pads[0][0], pads[0][1], dh)
    Wo = _out(x_hw[1], kw, sw, pads[1][0], pads[1][1], dw)
    return (sh, sw), (dh, dw), pads, (Ho, Wo)


def im2col(x, kernel_hw, stride=1, padding=0, dilation=1):
    """The column matrix cols (C*kh*kw, N*Ho*Wo) of x (see the module docstring; the groups are row blocks)."""
    N, C, H, W = x.shape
    kh, kw = _two(kernel_hw)
    s, d, pads, (Ho, Wo) = _geometry((H, W), (kh, kw), stride, padding, dilation)
    return _cols(x, kh, kw, s, d, pads, (Ho, Wo), False)


def _batch_inner(x_shape, w_shape, out_hw):
    """Whether a convolution of an x of ``x_shape`` with a weight of ``w_shape`` uses the batch-innermost
    layout (columns ordered (i, j, n)) rather than (n, i, j). It pays when the column matrix is large
    against the two layout transposes it needs (of x and of y / dY): measured (1 thread) a win on DCGAN D
    conv2 (C*kh*kw*L = 4.2x (C*H*W + O*L)) and LeNet conv2 (5x), a loss on DCGAN D conv1 (0.4x) and LeNet
    conv1 (3.4x, whose 24-wide output rows copy well in NCHW). Every entry point decides once, so a
    layer's forward columns, dY matrix and col2im always agree."""
    N, C, H, W = x_shape
    O, Cg, kh, kw = w_shape
    L = out_hw[0] * out_hw[1]
    return N >= _BATCH_INNER_MIN and C * kh * kw * L >= 4 * (C * H * W + O * L)


def _cropped(x, pads):
    """x with negative paddings applied (rows/columns cropped) and the remaining non-negative pads."""
    (pt, pb), (pl, pr) = pads
    if min(pt, pb, pl, pr) < 0:
        H, W = x.shape[2:]
        x = x[:, :, max(-pt, 0):H - max(-pb, 0), max(-pl, 0):W - max(-pr, 0)]
    return x, ((max(pt, 0), max(pb, 0)), (max(pl, 0), max(pr, 0)))


def _cols(x, kh, kw, s, d, pads, out_hw, bi):
    """The column matrix (C*kh*kw, N*Ho*Wo) of x, in the layout :func:`_batch_inner` picks."""
    N, C = x.shape[:2]
    Ho, Wo = out_hw
    cols = np.empty((C * kh * kw, N * Ho * Wo), x.dtype)
    par = cols.size >= _PAR_MIN
    if bi:
        x, ((pt, pb), (pl, pr)) = _cropped(x, pads)
        h, w = x.shape[2:]
        xt = np.zeros((C, h + pt + pb, w + pl + pr, N), x.dtype)
        parallel_for(_to_chwn, C, x, xt, pt, pl, parallel=par)
        parallel_for(_im2col_t, C, xt, cols, kh, kw, s[0], s[1], d[0], d[1], Ho, Wo, parallel=par)
    else:
        xp = _padded(x, pads)
        parallel_for(_im2col, N, xp, cols, kh, kw, s[0], s[1], d[0], d[1], Ho, Wo, parallel=par)
    return cols


def _dy_matrix(g, bi):
    """g (N, O, Ho, Wo) -> the (O, N*L) matrix, columns in the layout :func:`_batch_inner` picks."""
    N, O = g.shape[:2]
    g3 = c(g).reshape(N, O, -1)
    out = np.empty((O, N * g3.shape[2]), g.dtype)
    if bi:
        parallel_for(_nol_to_oln, O, g3, out, parallel=out.size >= _PAR_MIN)
    else:
        parallel_for(_nol_to_onl, N, g3, out, parallel=out.size >= _PAR_MIN)
    return out


def _grouped_matmul(a, b, G, out, ta=False, tb=False):
    """out[g-th row block] = op(a_g) @ op(b_g) for each group (a, b split into G row blocks; op = transpose)."""
    ra, rb, ro = a.shape[0] // G, b.shape[0] // G, out.shape[0] // G
    for gi in range(G):
        A = a[gi * ra:(gi + 1) * ra]
        B = b[gi * rb:(gi + 1) * rb]
        np.matmul(A.T if ta else A, B.T if tb else B, out=out[gi * ro:(gi + 1) * ro])
    return out


def _forward_from_cols(cols, w, N, out_hw, G, bi):
    O = w.shape[0]
    Ho, Wo = out_hw
    L = Ho * Wo
    ym = _grouped_matmul(c(w).reshape(O, -1), cols, G, np.empty((O, N * L), cols.dtype))
    y = np.empty((N, O, L), cols.dtype)
    if bi:
        parallel_for(_oln_to_nol, O, ym, y, parallel=y.size >= _PAR_MIN)
    else:
        parallel_for(_nlo_to_nol, N, ym, y, parallel=y.size >= _PAR_MIN)
    return y.reshape(N, O, Ho, Wo)


def _input_from_dy(dy, w, N, input_hw, out_hw, s, d, pads, G, bi):
    """dx from the dY matrix (O, N*L): dcols = W^T dY per group, col2im into a padded buffer, crop."""
    O, Cg, kh, kw = w.shape
    C = Cg * G
    H, W = input_hw
    Ho, Wo = out_hw
    (pt, pb), (pl, pr) = pads
    dcols = _grouped_matmul(c(w).reshape(O, -1), dy, G, np.empty((C * kh * kw, dy.shape[1]), dy.dtype), ta=True)
    par = dcols.size >= _PAR_MIN
    if bi and min(pt, pb, pl, pr) >= 0:
        dxt = np.zeros((C, H + pt + pb, W + pl + pr, N), dy.dtype)
        parallel_for(_col2im_t, C, dcols, dxt, kh, kw, s[0], s[1], d[0], d[1], Ho, Wo, parallel=par)
        dx = np.empty((N, C, H, W), dy.dtype)
        parallel_for(_from_chwn, C, dxt, dx, pt, pl, parallel=par)
        return dx
    if bi:  # a negative padding (crop): go through the NCHW buffer, which handles it
        dcols = c(dcols.reshape(-1, Ho * Wo, N).transpose(0, 2, 1)).reshape(dcols.shape)
    dxp = np.zeros((N, C, H + pt + pb, W + pl + pr), dy.dtype)
    parallel_for(_col2im, N, dcols, dxp, kh, kw, s[0], s[1], d[0], d[1], Ho, Wo, parallel=par)
    return _unpadded(dxp, H, W, pt, pl)


def _weight_from_cols(dy, cols, w_shape, G):
    O = w_shape[0]
    dw = _grouped_matmul(dy, cols, G, np.empty((O, cols.shape[0] // G), cols.dtype), tb=True)
    return dw.reshape(w_shape)


def _conv_requires(a, w, *rest):
    return is_float(a, w) and a.ndim == 4 and w.ndim == 4


def _nonempty(N, C, O, L):
    return N > 0 and C > 0 and O > 0 and L > 0


# ---- the column matrix is bounded: a convolution whose columns would exceed COLS_CHUNK_BYTES runs over
# chunks of the batch (each chunk its own im2col + GEMM), so the columns never dwarf the tensors.
# Measured on the DCGAN step of benchmarks/run.py (batch 64, 1 thread, Xeon SPR): the step's peak memory
# above its resting RSS was 51 MB with 32 MB chunks (+ D conv2's 20 MB columns kept for dW), 55 MB with
# 16 MB, 30-32 MB with 8 MB (PyTorch: 30 MB), at the same step time within the noise (282-301 ms vs
# 303-309 ms): the GEMMs of 8 MB chunks still have >= 1,500 columns.
COLS_CHUNK_BYTES = 8 << 20


def _batch_chunks(N, per_sample_bytes):
    """[(n0, n1), ...] covering range(N), each chunk's column matrix at most COLS_CHUNK_BYTES (>= 1 sample)."""
    nb = max(1, COLS_CHUNK_BYTES // max(1, per_sample_bytes))
    k = -(-N // nb)  # chunks, of even sizes (64 samples at 53 a chunk: 32 + 32, not 53 + 11)
    return [(i * N // k, (i + 1) * N // k) for i in range(k)]


def _cols_bytes(C, kh, kw, L, itemsize):
    return C * kh * kw * L * itemsize


def _is_1x1(kh, kw, pads, G):
    """A 1x1 kernel without padding and groups: the columns ARE the (subsampled) input, no im2col at all."""
    return kh == 1 and kw == 1 and G == 1 and all(p == 0 for pp in pads for p in pp)


def _sub(x, s):
    """x[:, :, ::sh, ::sw] as (N, C, L) (a copy only when a stride skips pixels)."""
    if s != (1, 1):
        x = x[:, :, ::s[0], ::s[1]]
    x = c(x)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _fwd_1x1(x, w, s, out_hw):
    """y[n] = W (O, C) @ x[n] (C, L): one GEMM per sample, no column matrix."""
    N, O = x.shape[0], w.shape[0]
    return np.matmul(c(w).reshape(O, -1), _sub(x, s)).reshape(N, O, out_hw[0], out_hw[1])


def _input_1x1(g, w, s, input_hw):
    """dx[n] = W^T @ g[n], scattered to the strided pixels (the others get no gradient)."""
    N, O, Ho, Wo = g.shape
    C = w.shape[1]
    d = np.matmul(c(w).reshape(O, C).T, c(g).reshape(N, O, Ho * Wo)).reshape(N, C, Ho, Wo)
    if s == (1, 1):
        return d
    dx = np.zeros((N, C) + tuple(input_hw), g.dtype)
    dx[:, :, ::s[0], ::s[1]] = d
    return dx


def _weight_1x1(x, g, s):
    """dw = sum_n g[n] (O, L) @ x[n]^T (L, C) as one GEMM over (n, l)."""
    N, O = g.shape[:2]
    dw = np.tensordot(c(g).reshape(N, O, -1), _sub(x, s), axes=([0, 2], [0, 2]))
    return dw.reshape(O, -1, 1, 1).astype(g.dtype, copy=False)


@register("conv2d_forward", requires=_conv_requires, reference="minigen.ops.conv:conv2d_forward_ref")
def conv2d_forward(x, w, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o, i, j] = sum_{c,a,b} x_pad[n, grp(o)*C/G + c, i*sh + a*dh, j*sw + b*dw] * w[o, c, a, b]
    (no bias: add it outside). x (N, C, H, W), w (O, C/G, kh, kw).

    Same arguments and result as minigen/ops/conv.py ``conv2d_forward_ref``. Wired into ``Conv2d.forward``
    and ``ConvTranspose2d``'s backward. Speed: the conv2d rows of benchmarks/results/results.md.
    """
    return conv2d_forward_cols(x, w, stride, padding, dilation, groups, keep_cols=False)[0]


@register("conv2d_forward_cols", requires=_conv_requires, reference="minigen.ops.conv:conv2d_forward_ref")
def conv2d_forward_cols(x, w, stride=1, padding=0, dilation=1, groups=1, keep_cols=True):
    """(y, cols): conv2d_forward plus its column matrix (C*kh*kw, N*L), for the weight gradient
    (:func:`conv2d_backward`); cols is None when ``keep_cols`` is False, when it is larger than
    ``CACHE_COLS_MAX_BYTES``, when the batch was cut into chunks, or for a 1x1 kernel (none is built)."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    s, d, pads, (Ho, Wo) = _geometry((H, W), (kh, kw), stride, padding, dilation)
    G = int(groups)
    if not _nonempty(N, C, O, Ho * Wo):
        return np.zeros((N, O, max(Ho, 0), max(Wo, 0)), x.dtype), None
    if _is_1x1(kh, kw, pads, G):
        return _fwd_1x1(x, w, s, (Ho, Wo)), None
    chunks = _batch_chunks(N, _cols_bytes(C, kh, kw, Ho * Wo, x.itemsize))
    if len(chunks) > 1:
        y = np.empty((N, O, Ho, Wo), x.dtype)
        for n0, n1 in chunks:
            y[n0:n1] = conv2d_forward_cols(x[n0:n1], w, s, pads, d, G, keep_cols=False)[0]
        return y, None
    bi = _batch_inner(x.shape, w.shape, (Ho, Wo))
    cols = _cols(x, kh, kw, s, d, pads, (Ho, Wo), bi)
    y = _forward_from_cols(cols, w, N, (Ho, Wo), G, bi)
    return y, (cols if keep_cols and cols.nbytes <= CACHE_COLS_MAX_BYTES else None)


@register("conv2d_backward_input", requires=_conv_requires, reference="minigen.ops.conv:conv2d_backward_input_ref")
def conv2d_backward_input(g, w, input_hw, stride=1, padding=0, dilation=1, groups=1):
    """dx = the adjoint of conv2d in x (= conv_transpose2d of g with w): g (N, O, Ho, Wo) -> dx (N, C, H, W)

    dcols_g = W_g^T @ dY_g, then col2im: dx_pad[n, c, i*sh + a*dh, j*sw + b*dw] += dcols[(c,a,b),(n,i,j)].
    Same arguments as ``conv2d_backward_input_ref`` (``input_hw`` = (H, W)). Also the forward of
    conv_transpose2d (wired into ``ConvTranspose2d.forward`` and ``Conv2d``'s backward). The batch is cut
    into chunks when dcols would exceed COLS_CHUNK_BYTES; a 1x1 kernel needs no dcols at all.
    """
    N, O, Ho, Wo = g.shape
    _, Cg, kh, kw = w.shape
    H, W = int(input_hw[0]), int(input_hw[1])
    s, d, pads, _ = _geometry((H, W), (kh, kw), stride, padding, dilation)
    G = int(groups)
    if not _nonempty(N, Cg, O, Ho * Wo):
        return np.zeros((N, Cg * G, H, W), g.dtype)
    if _is_1x1(kh, kw, pads, G):
        return _input_1x1(g, w, s, (H, W))
    chunks = _batch_chunks(N, _cols_bytes(Cg * G, kh, kw, Ho * Wo, g.itemsize))
    if len(chunks) > 1:
        dx = np.empty((N, Cg * G, H, W), g.dtype)
        for n0, n1 in chunks:
            dx[n0:n1] = conv2d_backward_input(g[n0:n1], w, (H, W), s, pads, d, G)
        return dx
    bi = _batch_inner((N, Cg * G, H, W), w.shape, (Ho, Wo))
    return _input_from_dy(_dy_matrix(g, bi), w, N, (H, W), (Ho, Wo), s, d, pads, G, bi)


@register("conv2d_backward_weight", requires=_conv_requires, reference="minigen.ops.conv:conv2d_backward_weight_ref")
def conv2d_backward_weight(x, g, kernel_hw, stride=1, padding=0, dilation=1, groups=1):
    """dw[o, c, a, b] = sum_{n,i,j} g[n, o, i, j] * x_pad[n, grp(o)*C/G + c, i*sh + a*dh, j*sw + b*dw]
    = dY_g @ cols_g^T per group, summed over batch chunks when the columns would exceed COLS_CHUNK_BYTES.
    Same arguments as ``conv2d_backward_weight_ref``.
    """
    N, C, H, W = x.shape
    _, O, Ho, Wo = g.shape
    kh, kw = int(kernel_hw[0]), int(kernel_hw[1])
    s, d, pads, _ = _geometry((H, W), (kh, kw), stride, padding, dilation)
    G = int(groups)
    if not _nonempty(N, C, O, Ho * Wo):
        return np.zeros((O, C // G, kh, kw), x.dtype)
    if _is_1x1(kh, kw, pads, G):
        return _weight_1x1(x, g, s)
    chunks = _batch_chunks(N, _cols_bytes(C, kh, kw, Ho * Wo, x.itemsize))
    if len(chunks) > 1:
        dw = np.zeros((O, C // G, kh, kw), x.dtype)
        for n0, n1 in chunks:
            dw += conv2d_backward_weight(x[n0:n1], g[n0:n1], (kh, kw), s, pads, d, G)
        return dw
    bi = _batch_inner(x.shape, (O, C // G, kh, kw), (Ho, Wo))
    return _weight_from_cols(_dy_matrix(g, bi), _cols(x, kh, kw, s, d, pads, (Ho, Wo), bi), (O, C // G, kh, kw), G)


@register("conv2d_backward", requires=lambda g, x, w, *rest: _conv_requires(g, w) and is_float(x, w),
          reference="minigen.ops.conv:Conv2d.backward")
def conv2d_backward(g, x, w, cols, need_input, need_weight, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw) of y = conv2d(x, w) for the upstream gradient g, in one pass: one dY matrix for both,
    and the weight gradient from ``cols`` (the forward's column matrix, :func:`conv2d_forward_cols`) when
    given, else from a fresh im2col of x. An entry is None when not needed. The first-order backward of
    ``Conv2d`` in minigen/ops/conv.py (equal to conv2d_backward_input / conv2d_backward_weight). Without
    kept columns the batch is cut into chunks as in those two kernels."""
    N, C, H, W = x.shape
    _, O, Ho, Wo = g.shape
    _, Cg, kh, kw = w.shape
    s, d, pads, _ = _geometry((H, W), (kh, kw), stride, padding, dilation)
    G = int(groups)
    if not _nonempty(N, C, O, Ho * Wo):
        return (np.zeros(x.shape, g.dtype) if need_input else None,
                np.zeros(w.shape, g.dtype) if need_weight else None)
    if _is_1x1(kh, kw, pads, G):
        return (_input_1x1(g, w, s, (H, W)) if need_input else None,
                _weight_1x1(x, g, s) if need_weight else None)
    chunks = _batch_chunks(N, _cols_bytes(C, kh, kw, Ho * Wo, x.itemsize))
    if cols is None and len(chunks) > 1:
        dx = np.empty(x.shape, g.dtype) if need_input else None
        dw = np.zeros(w.shape, g.dtype) if need_weight else None
        for n0, n1 in chunks:
            dxc, dwc = conv2d_backward(g[n0:n1], x[n0:n1], w, None, need_input, need_weight, s, pads, d, G)
            if need_input:
                dx[n0:n1] = dxc
            if need_weight:
                dw += dwc
        return dx, dw
    bi = _batch_inner(x.shape, w.shape, (Ho, Wo))
    dy = _dy_matrix(g, bi)
    dw = dx = None
    if need_weight:
        if cols is None:
            cols = _cols(x, kh, kw, s, d, pads, (Ho, Wo), bi)
        dw = _weight_from_cols(dy, cols, w.shape, G)
        cols = None  # the columns may go before col2im's buffer is made
    if need_input:
        dx = _input_from_dy(dy, w, N, (H, W), (Ho, Wo), s, d, pads, G, bi)
    return dx, dw


@register("conv_transpose2d_backward", requires=lambda G_, g, w, *rest: _conv_requires(G_, w) and is_float(g, w),
          reference="minigen.ops.conv:ConvTranspose2d.backward")
def conv_transpose2d_backward(G_, g, w, need_g, need_weight, stride=1, padding=0, dilation=1, groups=1):
    """(dg, dw) of y = conv2d_backward_input(g, w, ...) (a transposed convolution) for the upstream gradient
    G_ (N, C, H, W): dg = conv2d_forward(G_, w), dw = conv2d_backward_weight(G_, g), both from ONE column
    matrix of G_ (per batch chunk when it would exceed COLS_CHUNK_BYTES). The first-order backward of
    ``ConvTranspose2d`` in minigen/ops/conv.py."""
    N, C, H, W = G_.shape
    _, O, Ho, Wo = g.shape
    _, Cg, kh, kw = w.shape
    s, d, pads, out_hw = _geometry((H, W), (kh, kw), stride, padding, dilation)
    Gr = int(groups)
    if not _nonempty(N, C, O, Ho * Wo):
        return (np.zeros(g.shape, G_.dtype) if need_g else None,
                np.zeros(w.shape, G_.dtype) if need_weight else None)
    if _is_1x1(kh, kw, pads, Gr):
        return (_fwd_1x1(G_, w, s, out_hw) if need_g else None, _weight_1x1(G_, g, s) if need_weight else None)
    chunks = _batch_chunks(N, _cols_bytes(C, kh, kw, Ho * Wo, G_.itemsize))
    if len(chunks) > 1:
        dg = np.empty(g.shape, G_.dtype) if need_g else None
        dw = np.zeros(w.shape, G_.dtype) if need_weight else None
        for n0, n1 in chunks:
            dgc, dwc = conv_transpose2d_backward(G_[n0:n1], g[n0:n1], w, need_g, need_weight, s, pads, d, Gr)
            if need_g:
                dg[n0:n1] = dgc
            if need_weight:
                dw += dwc
        return dg, dw
    bi = _batch_inner(G_.shape, w.shape, out_hw)
    cols = _cols(G_, kh, kw, s, d, pads, out_hw, bi)
    dg = _forward_from_cols(cols, w, N, out_hw, Gr, bi) if need_g else None
    dw = _weight_from_cols(_dy_matrix(g, bi), cols, w.shape, Gr) if need_weight else None
    return dg, dw


@register("conv_transpose2d_forward", requires=_conv_requires, reference="minigen.ops.conv:ConvTranspose2d.forward")
def conv_transpose2d_forward(x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """PyTorch's conv_transpose2d (no bias): x (N, Cin, H, W), w (Cin, Cout/G, kh, kw) ->
    y (N, Cout, Ho, Wo), Ho = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1 (likewise Wo);
    y = conv2d_backward_input(x, w, (Ho, Wo), stride, padding, dilation, groups).
    Its gradients: dx = conv2d_forward(dy, w, ...), dw = conv2d_backward_weight(dy, x, ...) (roles swapped).
    minigen/ops/conv.py reaches it through the conv2d_backward_input kernel (``ConvTranspose2d``).
    """
    (sh, sw), (dh, dw_), (ph, pw), (oph, opw) = _two(stride), _two(dilation), _two(padding), _two(output_padding)
    _, _, kh, kw = w.shape
    H, W = x.shape[2:]
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw_ * (kw - 1) + opw + 1
    # the adjoint of a convolution padded (p, p - output_padding) on an input of the output's size
    return conv2d_backward_input(x, w, (Ho, Wo), (sh, sw), ((ph, ph - oph), (pw, pw - opw)), (dh, dw_), groups)


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


@register("max_pool2d_forward", requires=_pool_requires, reference="minigen.ops.pool:max_pool2d_argmax_ref")
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


@register("max_pool2d_argmax", requires=_pool_requires, reference="minigen.ops.pool:max_pool2d_argmax_ref")
def max_pool2d_argmax(x, kernel_hw, stride, pads, dilation, out_hw):
    """Same arguments and result as minigen/ops/pool.py ``max_pool2d_argmax_ref`` (positions only)."""
    return max_pool2d_forward(x, kernel_hw, stride, pads, dilation, out_hw)[1]


@register("max_pool2d_backward", requires=lambda g, *r: is_float(g),
          reference="minigen.ops.pool:max_pool2d_backward_ref")
def max_pool2d_backward(g, pos, in_shape, pads):
    """dx: g scattered into the positions ``pos`` (overlapping windows add up), padding dropped —
    the forward of ``PoolScatter`` in minigen/ops/pool.py (same arguments). Not benchmarked separately yet."""
    N, C, H, W = in_shape
    (pt, pb), (pl, pr) = _pads(pads)
    Hp, Wp = H + pt + pb, W + pl + pr
    K = int(np.prod(g.shape[2:]))
    g2 = c(g).reshape(N * C, K)  # explicit sizes: an empty batch has no -1 to infer
    p2 = c(np.broadcast_to(pos, g.shape)).reshape(N * C, K)
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


@register("avg_pool2d_forward", requires=_pool_requires, reference="minigen.ops.pool:avg_pool2d")
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


@register("avg_pool2d_backward", requires=lambda g, *r: is_float(g) and g.ndim == 4,
          reference="minigen.ops.pool:avg_pool2d")
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


# the direct kernels (few output channels) register themselves next to these
from . import cpu_conv_direct  # noqa: E402,F401
