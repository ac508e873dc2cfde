"""GPU (CuPy) recurrent kernels: fused LSTM / GRU cells (forward + backward) and a whole LSTM layer.

Same names, arguments and results as :mod:`minigen.kernels.cpu_rnn` (PyTorch gate layouts: LSTM
[i, f, g, o] in (B, 4H), GRU [r, z, n] in (B, 3H)):

    LSTM:  i, f, o = sigmoid(.), g = tanh(.);  c = f c_prev + i g;  h = o tanh(c)
           dc_t = dc + dh o (1 - tanh(c)^2);  dgates = [dc_t g i(1-i), dc_t c_prev f(1-f), dc_t i (1-g^2),
           dh tanh(c) o(1-o)];  dc_prev = dc_t f
    GRU:   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r gh_n);  h' = (1-z) n + z h
           dn = dh' (1-z)(1-n^2); dz = dh' (h-n) z(1-z); dr = dn gh_n r(1-r);  dgi = [dr, dz, dn];
           dgh = [dr, dz, dn r];  dh = dh' z

A cell kernel does all the pointwise work of one step in one pass, one thread per (b, j) element.
The sequence version runs the recurrence on the host side of the stream: per step one cuBLAS GEMM
(h_{t-1} W_hh^T, written into a reused buffer) and one cell kernel that adds the precomputed input
projection itself (so no separate add); the input projection of all steps and, in the backward, all
weight gradients are single large GEMMs. Nothing is copied to the host.
"""
from __future__ import annotations

from .gpu_common import compile_module, contiguous, cupy_of, declare_source, i32, is_float_dev, register_gpu

_BLOCK = 256

SOURCE = r"""
// LSTM step: pre-activations = a (+ b if has_b), both (B, 4H). c_prev (B, H). Outputs h, c, tc (B, H),
// acts (B, 4H). Pointers may alias only where noted (none here).
extern "C" __global__ void lstm_fwd(const MG_T* a, const MG_T* b, int has_b, const MG_T* c_prev,
                                    MG_T* h, MG_T* c, MG_T* acts, MG_T* tc, int B, int H) {
    long long n = (long long)B * H;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += (long long)gridDim.x * blockDim.x) {
        long long bi = idx / H, j = idx - bi * H;
        long long g0 = bi * 4 * H + j;
        MG_T pi = a[g0], pf = a[g0 + H], pg = a[g0 + 2 * H], po = a[g0 + 3 * H];
        if (has_b) { pi += b[g0]; pf += b[g0 + H]; pg += b[g0 + 2 * H]; po += b[g0 + 3 * H]; }
        MG_T i = mg_sigmoid(pi), f = mg_sigmoid(pf), g = mg_tanh(pg), o = mg_sigmoid(po);
        MG_T cn = f * c_prev[idx] + i * g;
        MG_T t = mg_tanh(cn);
        acts[g0] = i; acts[g0 + H] = f; acts[g0 + 2 * H] = g; acts[g0 + 3 * H] = o;
        c[idx] = cn;
        tc[idx] = t;
        h[idx] = o * t;
    }
}

// LSTM step backward. dh_eff = dh (+ dy if has_dy). dc may alias dc_prev (updated in place: each thread
// reads its element before writing it).
extern "C" __global__ void lstm_bwd(const MG_T* dh, const MG_T* dy, int has_dy, const MG_T* dc, const MG_T* acts,
                                    const MG_T* c_prev, const MG_T* tc, MG_T* dgates, MG_T* dc_prev, int B, int H) {
    long long n = (long long)B * H;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += (long long)gridDim.x * blockDim.x) {
        long long bi = idx / H, j = idx - bi * H;
        long long g0 = bi * 4 * H + j;
        MG_T i = acts[g0], f = acts[g0 + H], g = acts[g0 + 2 * H], o = acts[g0 + 3 * H];
        MG_T t = tc[idx];
        MG_T d_h = dh[idx];
        if (has_dy) d_h += dy[idx];
        MG_T dcc = dc[idx] + d_h * o * (MG_T(1) - t * t);
        dgates[g0] = dcc * g * i * (MG_T(1) - i);
        dgates[g0 + H] = dcc * c_prev[idx] * f * (MG_T(1) - f);
        dgates[g0 + 2 * H] = dcc * i * (MG_T(1) - g * g);
        dgates[g0 + 3 * H] = d_h * t * o * (MG_T(1) - o);
        dc_prev[idx] = dcc * f;
    }
}

extern "C" __global__ void gru_fwd(const MG_T* gi, const MG_T* gh, const MG_T* h, MG_T* hn, MG_T* acts, int B, int H) {
    long long n = (long long)B * H;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += (long long)gridDim.x * blockDim.x) {
        long long bi = idx / H, j = idx - bi * H;
        long long g0 = bi * 3 * H + j;
        MG_T r = mg_sigmoid(gi[g0] + gh[g0]);
        MG_T z = mg_sigmoid(gi[g0 + H] + gh[g0 + H]);
        MG_T nn = mg_tanh(gi[g0 + 2 * H] + r * gh[g0 + 2 * H]);
        acts[g0] = r; acts[g0 + H] = z; acts[g0 + 2 * H] = nn;
        hn[idx] = (MG_T(1) - z) * nn + z * h[idx];
    }
}

extern "C" __global__ void gru_bwd(const MG_T* dhn, const MG_T* h, const MG_T* acts, const MG_T* gh,
                                   MG_T* dgi, MG_T* dgh, MG_T* dh, int B, int H) {
    long long n = (long long)B * H;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += (long long)gridDim.x * blockDim.x) {
        long long bi = idx / H, j = idx - bi * H;
        long long g0 = bi * 3 * H + j;
        MG_T r = acts[g0], z = acts[g0 + H], nn = acts[g0 + 2 * H];
        MG_T d = dhn[idx];
        MG_T dn = d * (MG_T(1) - z) * (MG_T(1) - nn * nn);
        MG_T dz = d * (h[idx] - nn) * z * (MG_T(1) - z);
        MG_T dr = dn * gh[g0 + 2 * H] * r * (MG_T(1) - r);
        dgi[g0] = dr; dgi[g0 + H] = dz; dgi[g0 + 2 * H] = dn;
        dgh[g0] = dr; dgh[g0 + H] = dz; dgh[g0 + 2 * H] = dn * r;
        dh[idx] = d * z;
    }
}
"""

declare_source("gpu_rnn", SOURCE, [("-DMG_T=float",), ("-DMG_T=double",)])


def _grid(n):
    return (max(1, min((n + _BLOCK - 1) // _BLOCK, 65535)),), (_BLOCK,)


def _fn(cp, dt, name):
    return compile_module(cp, "gpu_rnn", SOURCE, dt).get_function(name)


def _cell_req(*arrays):
    arrs = [a for a in arrays if a is not None and hasattr(a, "dtype")]
    return is_float_dev(*arrs) and arrays[0].ndim == 2 and len({a.dtype for a in arrs}) == 1


@register_gpu("lstm_cell_forward", requires=_cell_req)
def lstm_cell_forward(gates, c_prev):
    """Returns (h, c, acts, tanh_c) as ``cpu_rnn.lstm_cell_forward``."""
    cp = cupy_of(gates)
    gates = contiguous(cp, gates)
    c_prev = contiguous(cp, c_prev, gates.dtype)
    B, H4 = gates.shape
    H = H4 // 4
    h = cp.empty((B, H), gates.dtype)
    cn, tc, acts = cp.empty_like(h), cp.empty_like(h), cp.empty_like(gates)
    if B * H:
        _fn(cp, gates.dtype, "lstm_fwd")(*_grid(B * H), (gates, gates, i32(0), c_prev, h, cn, acts, tc, i32(B), i32(H)))
    return h, cn, acts, tc


@register_gpu("lstm_cell_backward", requires=_cell_req)
def lstm_cell_backward(dh, dc, acts, c_prev, tanh_c):
    """Returns (dgates, dc_prev) as ``cpu_rnn.lstm_cell_backward`` (dh / dc None = 0)."""
    cp = cupy_of(acts)
    acts = contiguous(cp, acts)
    dt = acts.dtype
    B, H4 = acts.shape
    H = H4 // 4
    dh = cp.zeros((B, H), dt) if dh is None else contiguous(cp, dh, dt)
    dc = cp.zeros((B, H), dt) if dc is None else contiguous(cp, dc, dt)
    dgates = cp.empty_like(acts)
    dcp = cp.empty((B, H), dt)
    if B * H:
        _fn(cp, dt, "lstm_bwd")(*_grid(B * H), (dh, dh, i32(0), dc, acts, contiguous(cp, c_prev, dt),
                                                contiguous(cp, tanh_c, dt), dgates, dcp, i32(B), i32(H)))
    return dgates, dcp


@register_gpu("gru_cell_forward", requires=_cell_req)
def gru_cell_forward(gi, gh, h):
    """Returns (h', acts) as ``cpu_rnn.gru_cell_forward``."""
    cp = cupy_of(gi)
    gi = contiguous(cp, gi)
    dt = gi.dtype
    gh, h = contiguous(cp, gh, dt), contiguous(cp, h, dt)
    B, H3 = gi.shape
    H = H3 // 3
    hn = cp.empty((B, H), dt)
    acts = cp.empty_like(gi)
    if B * H:
        _fn(cp, dt, "gru_fwd")(*_grid(B * H), (gi, gh, h, hn, acts, i32(B), i32(H)))
    return hn, acts


@register_gpu("gru_cell_backward", requires=_cell_req)
def gru_cell_backward(dh_new, h, acts, gh):
    """Returns (dgi, dgh, dh_direct) as ``cpu_rnn.gru_cell_backward``."""
    cp = cupy_of(acts)
    acts = contiguous(cp, acts)
    dt = acts.dtype
    B, H3 = acts.shape
    H = H3 // 3
    dgi, dgh = cp.empty_like(acts), cp.empty_like(acts)
    dh = cp.empty((B, H), dt)
    if B * H:
        _fn(cp, dt, "gru_bwd")(*_grid(B * H), (contiguous(cp, dh_new, dt), contiguous(cp, h, dt), acts,
                                               contiguous(cp, gh, dt), dgi, dgh, dh, i32(B), i32(H)))
    return dgi, dgh, dh


def _seq_req(x, w_ih, w_hh, *rest):
    arrs = [x, w_ih, w_hh] + [a for a in rest if a is not None and hasattr(a, "dtype")]
    return (is_float_dev(*arrs) and x.ndim == 3 and w_ih.ndim == 2 and w_hh.ndim == 2
            and len({a.dtype for a in arrs}) == 1)


@register_gpu("lstm_seq_forward", requires=_seq_req)
def lstm_seq_forward(x, w_ih, w_hh, bias=None, h0=None, c0=None):
    """One LSTM layer over a time-major sequence; returns (y, h_T, c_T, saved) as ``cpu_rnn.lstm_seq_forward``."""
    cp = cupy_of(x)
    x = contiguous(cp, x)
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    xw = x.reshape(T * B, I) @ contiguous(cp, w_ih).T
    if bias is not None:
        xw += bias
    xw = xw.reshape(T, B, 4 * H)
    hs = cp.empty((T + 1, B, H), dt)
    cs = cp.empty((T + 1, B, H), dt)
    hs[0] = 0 if h0 is None else h0
    cs[0] = 0 if c0 is None else c0
    acts = cp.empty((T, B, 4 * H), dt)
    tcs = cp.empty((T, B, H), dt)
    whT = contiguous(cp, w_hh).T
    hw = cp.empty((B, 4 * H), dt)
    if B * H:
        fwd = _fn(cp, dt, "lstm_fwd")
        grid = _grid(B * H)
        for t in range(T):
            cp.matmul(hs[t], whT, out=hw)
            fwd(*grid, (xw[t], hw, i32(1), cs[t], hs[t + 1], cs[t + 1], acts[t], tcs[t], i32(B), i32(H)))
    return hs[1:], hs[T].copy(), cs[T].copy(), (hs, cs, acts, tcs)


@register_gpu("lstm_seq_backward", requires=lambda *a: True)
def lstm_seq_backward(dy, dh_T, dc_T, x, w_ih, w_hh, saved, need_bias=True):
    """Backward of :func:`lstm_seq_forward`; returns (dx, dW_ih, dW_hh, dbias or None, dh_0, dc_0)."""
    hs, cs, acts, tcs = saved
    cp = cupy_of(acts)
    T, B, H4 = acts.shape
    H = H4 // 4
    dt = acts.dtype
    x = contiguous(cp, x, dt)
    I = x.shape[2]
    dy = cp.zeros((T, B, H), dt) if dy is None else contiguous(cp, dy, dt)
    dh = cp.zeros((B, H), dt) if dh_T is None else cp.array(dh_T, dtype=dt)
    dc = cp.zeros((B, H), dt) if dc_T is None else cp.array(dc_T, dtype=dt)
    w_hh = contiguous(cp, w_hh, dt)
    dgates = cp.empty((T, B, H4), dt)
    if B * H:
        bwd = _fn(cp, dt, "lstm_bwd")
        grid = _grid(B * H)
        for t in range(T - 1, -1, -1):
            bwd(*grid, (dh, dy[t], i32(1), dc, acts[t], cs[t], tcs[t], dgates[t], dc, i32(B), i32(H)))
            cp.matmul(dgates[t], w_hh, out=dh)
    dG = dgates.reshape(T * B, H4)
    dx = (dG @ contiguous(cp, w_ih, dt)).reshape(T, B, I)
    dw_ih = dG.T @ x.reshape(T * B, I)
    dw_hh = dG.T @ hs[:T].reshape(T * B, H)
    db = dG.sum(0) if need_bias else None
    return dx, dw_ih, dw_hh, db, dh, dc
