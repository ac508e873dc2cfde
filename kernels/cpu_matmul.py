"""Everything around the matmul: fused bias + activation epilogues for linear layers, and batched small
matmuls where the per-matrix BLAS call overhead dominates.

The GEMM itself stays in BLAS (NumPy's ``@`` with ``out=``: OpenBLAS is the fastest thing available
here); what the kernel layer saves is the passes over the output: ``x @ W^T + b`` followed by an
activation is 3 NumPy passes (and 2 temporaries) — here it is the GEMM plus ONE pass.
"""
from __future__ import annotations

import numpy as np

from ._common import c, is_float, jit, parallel_for
from .cpu_activation import act_grad, act_value
from .dispatch import register

ACTS = {"none": -1, "identity": -1, "relu": 3, "gelu": 0, "gelu_tanh": 1, "silu": 2}
_PAR_MIN = 1 << 17  # elements (see cpu_norm)


@jit
def _epilogue(z, b, has_b, y, kind, r0, r1):
    """y = act(z + b) rows r0..r1; z is overwritten with z + b (the pre-activation, kept for backward)."""
    N = z.shape[1]
    for r in range(r0, r1):
        for j in range(N):
            v = z[r, j] + b[j] if has_b else z[r, j]
            z[r, j] = v
            y[r, j] = act_value(v, kind)


@jit
def _epilogue_bwd(g, z, kind, gz, dbp, nch, c0, c1):
    """gz = g * act'(z); dbp[ci] = partial column sums of gz over chunk ci's rows."""
    R, N = z.shape
    for ci in range(c0, c1):
        r0 = ci * R // nch
        r1 = (ci + 1) * R // nch
        for r in range(r0, r1):
            for j in range(N):
                v = g[r, j] * act_grad(z[r, j], kind)
                gz[r, j] = v
                dbp[ci, j] += v


def _lin_requires(x, w, b=None, *rest):
    return is_float(x, w, b) and x.ndim >= 1 and w.ndim == 2


@register("linear_act_forward", requires=_lin_requires, worth=lambda x, w, b=None: x.size * w.shape[0] >= 4096,
          reference="minigen.ops.linalg:linear")
def linear_act_forward(x, w, b=None, act="none"):
    """y = act(x @ W^T + b) with the GEMM in BLAS and bias + activation fused into one pass over the output.

    x (..., K), W (N, K) (PyTorch's Linear layout), b (N,) or None; act in 'none', 'relu', 'gelu'
    (exact erf), 'gelu_tanh', 'silu'. Returns (y, z): z = x @ W^T + b, the pre-activation the backward
    needs (z is y itself for 'none'; for 'relu' the backward may use y > 0 instead).
    Wired into: minigen/ops/linalg or nn.functional ``linear`` (a ``Linear`` Function: forward here,
    backward :func:`linear_act_backward`), and a fused Linear+activation used by nn modules.
    Not benchmarked separately yet; the GEMM dominates, the epilogue saves two passes over the output
    (for gelu/silu it uses the scalar-libm activation, see cpu_activation's measured crossover).
    """
    kind = ACTS[act]
    lead = x.shape[:-1]
    x2 = c(x).reshape(-1, x.shape[-1])
    R, N = x2.shape[0], w.shape[0]
    z = np.empty((R, N), x2.dtype)
    np.matmul(x2, w.T, out=z)
    if kind == -1:
        if b is not None:
            z += b
        z = z.reshape(lead + (N,))
        return z, z
    y = np.empty_like(z)
    bb = c(b) if b is not None else np.zeros(1, z.dtype)
    parallel_for(_epilogue, R, z, bb, b is not None, y, kind, parallel=z.size >= _PAR_MIN)
    return y.reshape(lead + (N,)), z.reshape(lead + (N,))


@register("linear_act_backward", requires=lambda g, z, *r: is_float(g, z), reference="minigen.ops.linalg:linear")
def linear_act_backward(g, z, act="none"):
    """gz = g * act'(z) and db = sum over rows of gz, in one pass (z = the forward's pre-activation).

    Returns (gz, db); the caller finishes with dx = gz @ W and dW = gz^T x (two BLAS calls).
    relu'(0) = 0 as PyTorch.  Wired into: the Linear(+activation) Function's backward fast path.
    """
    kind = ACTS[act]
    N = z.shape[-1]
    z2 = c(z).reshape(-1, N)
    g2 = c(g).reshape(-1, N)
    R = z2.shape[0]
    if kind == -1:
        return g, g2.sum(0)
    gz = np.empty_like(z2)
    nch = 2 if z2.size >= _PAR_MIN and R > 1 else 1
    dbp = np.zeros((nch, N), np.float64)
    parallel_for(_epilogue_bwd, nch, g2, z2, kind, gz, dbp, nch, parallel=nch > 1)
    return gz.reshape(z.shape), dbp.sum(0).astype(z2.dtype)


# ------------------------------------------------------------------ batched small matmuls
@jit
def _bmm(a, b, out, b0, b1):
    M, K = a.shape[1], a.shape[2]
    N = b.shape[2]
    acc = np.empty(N, out.dtype)
    for bi in range(b0, b1):
        ab = a[bi]
        bb = b[bi]
        for i in range(M):
            acc[:] = 0.0
            for k in range(K):
                aik = ab[i, k]
                brow = bb[k]
                for j in range(N):
                    acc[j] += aik * brow[j]
            out[bi, i, :] = acc


def _bmm_requires(a, b):
    return is_float(a, b) and a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0] and a.shape[2] == b.shape[1]


def _bmm_worth(a, b):
    # measured: np.matmul won at every size tried (see bmm_small's docstring), so 'auto' never picks it
    return False


@register("bmm_small", requires=_bmm_requires, worth=_bmm_worth, reference="minigen.ops.linalg:bmm")
def bmm_small(a, b):
    """out[i] = a[i] @ b[i] for a stack of small matrices: a (B, M, K), b (B, K, N) -> (B, M, N).

    Plain Numba loops (the j loop vectorises), split over the batch — no BLAS call per matrix.
    Measured (2 cores, float32, B=48 square matrices): n=8 11.8 us vs np.matmul 7.2 us; n=16 174 us vs
    14 us; n=32 907 us vs 177 us. NumPy 2.x's matmul already batches small products without a BLAS call
    per matrix, and beats these loops at every size, so ``worth`` is False: 'auto' mode never uses this
    kernel (it stays as the measured negative result and for the 'numba' mode). Not to be wired.
    """
    a, b = c(a), c(b)
    B, M, K = a.shape
    out = np.empty((B, M, b.shape[2]), np.result_type(a, b))
    parallel_for(_bmm, B, a, b, out, parallel=B * M * K * b.shape[2] >= (1 << 16))
    return out
