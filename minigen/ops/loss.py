"""Loss functions with PyTorch's names, arguments and ``reduction`` semantics.

``reduction``: ``'mean'`` (average; for losses with class weights, the weighted average
``sum_i l_i / sum_i w_{y_i}``), ``'sum'``, or ``'none'`` (the per-element losses).
The legacy ``size_average`` / ``reduce`` arguments are accepted and mapped as PyTorch does.

Most losses are compositions of differentiable ops (their backward is the chain rule,
so double backward works). Three are fused Functions with a closed-form backward,
because the composition is either numerically unsafe or wasteful:

* :class:`CrossEntropy` (class-index targets): stable log-softmax + NLL, backward
  ``(softmax(x) * sum_c A_c - A) * g`` with ``A`` the (weighted, smoothed) one-hot target;
* :class:`BCEWithLogits`: ``(1 - y) x + (1 + (p - 1) y) softplus(-x)``, finite for any x;
* :class:`BinaryCrossEntropy`: logs clamped at -100 as PyTorch.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..argcheck import check_flag as _check_flag, check_float_tensor as _check_float_tensor
from ..argcheck import check_number as _check_number, check_tensor as _check_tensor, norm_dim, same_device
from ..autograd.function import Function
from ..backend import get_array_module
from ..errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from ..kernels import dispatch
from ..tensor import Tensor
from .activation import log_softmax, logsigmoid, sigmoid, softmax
from .indexing import GetItem, IndexAddInto
from .pointwise import abs as _abs, clamp, log as _log, where
from .reduction import mean as _mean, norm as _norm, sum as _sum
from .shape import broadcast_to, permute, reshape

__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "kl_div", "gaussian_nll_loss",
           "cosine_similarity", "gaussian_kl"]


# ------------------------------------------------------------------ helpers
def _const(arr):
    return Tensor._make(arr)


def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's mapping of the deprecated ``size_average``/``reduce`` flags onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    for name, v in (("size_average", size_average), ("reduce", reduce)):
        if v is not None and not isinstance(v, (builtins.bool, np.bool_)):
            raise InvalidArgumentError(f"{name} must be None or a bool (deprecated; use reduction=), got {v!r}")
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _check_reduction(reduction, op, allowed=("mean", "sum", "none")):
    if not isinstance(reduction, str) or reduction not in allowed:
        raise InvalidArgumentError(f"{op}: reduction must be one of {', '.join(repr(a) for a in allowed)}, "
                                   f"got {reduction!r}")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return _mean(loss)
    if reduction == "sum":
        return _sum(loss)
    if reduction == "batchmean":
        return _sum(loss) / (loss.shape[0] if loss.ndim > 0 else 1)
    return loss


def _pair(input, target, op, same_shape=False):
    """Check an (input, target) pair of float tensors; return the broadcast shape."""
    x = _check_float_tensor(input, op, "input")
    y = _check_float_tensor(target, op, "target")
    same_device(op, x, y)
    if same_shape:
        if x.shape != y.shape:
            raise ShapeError(f"{op}: target shape {tuple(y.shape)} must equal input shape {tuple(x.shape)}")
        return x.shape
    try:
        return tuple(np.broadcast_shapes(x.shape, y.shape))
    except ValueError:
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} and target of shape {tuple(y.shape)} "
                         f"do not broadcast") from None


def _weight_arg(weight, shape, op, name="weight"):
    """An optional float tensor that must broadcast to ``shape``."""
    if weight is None:
        return None
    w = _check_float_tensor(weight, op, name)
    try:
        out = np.broadcast_shapes(w.shape, shape)
    except ValueError:
        out = None
    if out is None or tuple(out) != tuple(shape):
        raise ShapeError(f"{op}: {name} of shape {tuple(w.shape)} does not broadcast to the input shape "
                         f"{tuple(shape)}")
    return w


# ------------------------------------------------------------------ regression losses
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """l = (x - y)^2.   dx = 2 (x - y) g,  dy = -dx   (composed ops)."""
    op = "mse_loss"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction), op)
    _pair(input, target, op)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """l = |x - y|.   dx = sign(x - y) g  (0 at x = y, as PyTorch)."""
    op = "l1_loss"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction), op)
    _pair(input, target, op)
    return _reduce(_abs(input - target), reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """l = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta   (d = x - y; beta = 0 gives l1_loss).

    dx = g * d / beta inside, g * sign(d) outside (continuous at |d| = beta).
    """
    op = "smooth_l1_loss"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction), op)
    beta = _check_number(beta, op, "beta", lo=0.0)
    _pair(input, target, op)
    d = input - target
    ad = _abs(d)
    if beta == 0.0:
        return _reduce(ad, reduction)
    inside = _const(ad.array < beta)
    return _reduce(where(inside, d * d * (0.5 / beta), ad - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """l = 0.5 d^2 if |d| < delta else delta * (|d| - 0.5 delta)   (= delta * smooth_l1 with beta = delta)."""
    op = "huber_loss"
    reduction = _check_reduction(reduction, op)
    delta = _check_number(delta, op, "delta")
    if delta <= 0:
        raise InvalidArgumentError(f"{op}: delta must be positive, got {delta}")
    _pair(input, target, op)
    d = input - target
    ad = _abs(d)
    inside = _const(ad.array < delta)
    return _reduce(where(inside, d * d * 0.5, (ad - 0.5 * delta) * delta), reduction)


# ------------------------------------------------------------------ binary cross-entropy
def _clamped_log(xp, a):
    with np.errstate(divide="ignore"):
        return xp.maximum(xp.log(a), -100.0)


class BinaryCrossEntropy(Function):
    """l = -(y * log(x) + (1 - y) * log(1 - x)), each log clamped at -100 (so x = 0 or 1 gives a finite loss).

    dx = g * (x - y) / max(x (1 - x), 1e-12)          (the derivative inside the clamp, as PyTorch)
    dy = g * (log(1 - x) - log(x))                      (clamped logs)
    """

    reads = ((0, 1), (0,))

    @staticmethod
    def forward(ctx, x, y):
        xp = get_array_module(x)
        out = -(y * _clamped_log(xp, x) + (1 - y) * _clamped_log(xp, 1 - x))
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.args
        need_x, need_y = ctx.needs_input_grad
        dx = g * (x - y) / clamp(x * (1 - x), min=1e-12) if need_x else None
        dy = g * (clamp(_log(1 - x), min=-100.0) - clamp(_log(x), min=-100.0)) if need_y else None
        return dx, dy


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Binary cross-entropy of probabilities ``input`` in [0, 1] (see :class:`BinaryCrossEntropy`); l_i *= w_i."""
    op = "binary_cross_entropy"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction), op)
    shape = _pair(input, target, op, same_shape=True)
    w = _weight_arg(weight, shape, op)
    xd = input.array
    if builtins.bool(((xd < 0) | (xd > 1)).any()):
        raise InvalidArgumentError(f"{op}: all elements of input should be between 0 and 1 "
                                   f"(input of shape {tuple(input.shape)}; use binary_cross_entropy_with_logits "
                                   f"for unnormalised scores)")
    loss = BinaryCrossEntropy.apply(input, target)
    if w is not None:
        loss = loss * w
    return _reduce(loss, reduction)


class BCEWithLogits(Function):
    """l = (1 - y) x + L * softplus(-x),  L = 1 + (p - 1) y   (p = pos_weight, default 1; stable for any x).

    With p = 1 this is max(x, 0) - x y + log(1 + exp(-|x|)).
    dx = g * ((1 - y) - L * sigmoid(-x))          (= g * (sigmoid(x) - y) when p = 1)
    dy = g * (-x + (p - 1) * softplus(-x))
    dp = g * y * softplus(-x)                      (softplus(-x) = -logsigmoid(x))
    """

    reads = ((0, 1, 2), (0, 2), (0, 1))

    @staticmethod
    def forward(ctx, x, y, p):
        xp = get_array_module(x)
        sp = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))   # softplus(-x)
        lw = 1 if p is None else 1 + (p - 1) * y
        return ((1 - y) * x + lw * sp).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, y, p = ctx.args
        need_x, need_y, need_p = ctx.needs_input_grad
        dx = dy = dp = None
        if need_x:
            lw = 1 if p is None else (p - 1) * y + 1
            dx = g * ((1 - y) - sigmoid(-x) * lw)
        if need_y or need_p:
            sp = -logsigmoid(x)
            if need_y:
                dy = g * (-x if p is None else (p - 1) * sp - x)
            if need_p:
                dp = g * y * sp
        return dx, dy, dp


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable op (see :class:`BCEWithLogits`); l_i *= w_i.

    ``pos_weight`` (broadcast against the input, usually one value per class along the last dim)
    scales the positive term: l = -[p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))].
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction), op)
    shape = _pair(input, target, op, same_shape=True)
    w = _weight_arg(weight, shape, op)
    p = _weight_arg(pos_weight, shape, op, "pos_weight")
    same_device(op, input, w, p)
    loss = BCEWithLogits.apply(input, target, p)
    if w is not None:
        loss = loss * w
    return _reduce(loss, reduction)


# ------------------------------------------------------------------ class-index targets
def _class_targets(input, target, weight, ignore_index, op):
    """Validate (input, class-index target, weight) and flatten to 2-d.

    Returns ``(x2, t, w, out_shape)``: ``x2`` the input as (M, C) with the class dim last
    (a differentiable view/permutation), ``t`` the (M,) int64 target array, ``w`` the (C,)
    weight array or None, ``out_shape`` the shape of per-element losses.
    """
    x = input
    if x.ndim == 0:
        raise ShapeError(f"{op}: input must have a class dim: (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")
    cdim = 1 if x.ndim >= 2 else 0
    C = x.shape[cdim]
    if C == 0:
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} has no classes (class dim {cdim} is empty)")
    out_shape = tuple(s for i, s in enumerate(x.shape) if i != cdim)
    t = _check_tensor(target, op, "target")
    if t.dtype.kind == "f":
        raise DTypeError(f"{op}: target of dtype {t.dtype} and shape {tuple(t.shape)} looks like class indices "
                         f"(input {tuple(x.shape)}), which must be an integer tensor (use target.long()); "
                         f"probability targets must have the input's shape {tuple(x.shape)}")
    if t.dtype.kind not in "iu":
        raise DTypeError(f"{op}: class-index target must be an integer tensor, got dtype {t.dtype}")
    if tuple(t.shape) != out_shape:
        raise ShapeError(f"{op}: expected a target of shape {out_shape} for an input of shape {tuple(x.shape)} "
                         f"(class dim {cdim}), got {tuple(t.shape)}")
    if not isinstance(ignore_index, (builtins.int, np.integer)) or isinstance(ignore_index, builtins.bool):
        raise InvalidArgumentError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    w = None
    if weight is not None:
        wt = _check_float_tensor(weight, op, "weight")
        if tuple(wt.shape) != (C,):
            raise ShapeError(f"{op}: weight must have shape ({C},) (one value per class), got {tuple(wt.shape)}")
        w = wt.array.copy()  # a constant of the op: later in-place edits of weight do not reach it
    same_device(op, x, t, weight)
    xp = get_array_module(x.array)
    td = t.array.astype(np.int64).reshape(-1)
    bad = (td != ignore_index) & ((td < 0) | (td >= C))
    if builtins.bool(bad.any()):
        v = builtins.int(td[xp.nonzero(bad)[0][0]])
        raise IndexOutOfRangeError(f"{op}: target value {v} is out of range for {C} classes "
                                   f"(valid: 0..{C - 1}, or ignore_index={ignore_index}); input shape "
                                   f"{tuple(x.shape)}")
    if x.ndim == 1:
        x2 = reshape(x, (1, C))
    elif x.ndim == 2:
        x2 = x
    else:  # (N, C, d1, ...) -> (N, d1, ..., C) -> (M, C)
        x2 = reshape(permute(x, (0,) + tuple(range(2, x.ndim)) + (1,)), (td.size, C))
    return x2, td, w, out_shape


class CrossEntropy(Function):
    """Cross-entropy of logits x (M, C) with class indices t, fused: stable log-softmax + NLL.

    With a = (1 - s) w_{t_i} at class t_i plus s/C * w_c at every class (s = label_smoothing,
    w = class weights or 1; rows with t_i = ignore_index have a = 0):

        l_i = -sum_c A_ic log softmax(x_i)_c,           A_i = (1 - s) w_{t_i} onehot(t_i) + (s / C) w
        mean: sum_i l_i / sum_i w_{t_i} (non-ignored rows);  sum: sum_i l_i;  none: l_i

    backward (exact, as differentiable ops):  dx_i = g_i * (softmax(x_i) * sum_c A_ic - A_i),
    g_i = g / sum_i w_{t_i} for 'mean' -- i.e. (softmax - onehot) / N without weights or smoothing.
    ``fast_backward``: the ``cross_entropy`` kernel computes the loss and this gradient (for g = 1) in
    one pass over the logits; the first-order backward is then g * dlogits.
    """

    @staticmethod
    def forward(ctx, x, t, w, ignore_index, smoothing, reduction):
        xp = get_array_module(x)
        M, C = x.shape
        valid = t != ignore_index
        tt = xp.where(valid, t, 0)
        rows = xp.arange(M)
        wt = (w[tt] if w is not None else xp.ones(M, dtype=x.dtype)) * valid          # w_{t_i}, 0 if ignored
        ctx.rows, ctx.tt, ctx.wt, ctx.valid, ctx.w = rows, tt, wt, valid, w
        ctx.smoothing, ctx.reduction = smoothing, reduction
        if reduction == "mean":
            ctx.denom = wt.sum()
        if (k := dispatch.get("cross_entropy", x, t, w)) is not None:
            # fused kernel: loss and d(loss)/dx for an upstream gradient of 1, in one pass
            loss, dlogits = k(x, t, w, ignore_index, smoothing, reduction)
            if any(ctx.needs_input_grad):
                ctx.dlogits = dlogits
            return loss
        z = x - x.max(axis=1, keepdims=True)
        logp = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        loss = (1 - smoothing) * wt * -logp[rows, tt]
        if smoothing > 0:
            loss = loss + (smoothing / C) * valid * -((logp * w).sum(axis=1) if w is not None else logp.sum(axis=1))
        if reduction == "none":
            return loss.astype(x.dtype, copy=False)
        total = loss.sum()
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                total = total / ctx.denom
        return xp.asarray(total, dtype=x.dtype)

    @staticmethod
    def _coefficients(ctx, C, xp, dtype):
        """Row sums S_i = sum_c A_ic (M, 1) and the smoothing part of A (M, C) or None."""
        s = ctx.smoothing
        wsum = ctx.w.sum() if ctx.w is not None else C
        S = ((1 - s) * ctx.wt + (s / C) * wsum * ctx.valid).astype(dtype)[:, None]
        dense = None
        if s > 0:
            wrow = (ctx.w if ctx.w is not None else xp.ones(C, dtype=dtype)) * (s / C)
            dense = (ctx.valid.astype(dtype)[:, None] * wrow[None, :]).astype(dtype)
        return S, dense

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args[:1]
        xp = get_array_module(x.array)
        M, C = x.shape
        S, dense = CrossEntropy._coefficients(ctx, C, xp, x.dtype)
        onehot_coef = (1 - ctx.smoothing) * ctx.wt                      # A's one-hot part, (M,)
        index = (ctx.rows, ctx.tt)
        if ctx.reduction == "mean":
            # every target ignored: the loss is 0/0 = NaN but the gradient is 0 (no row takes part), as PyTorch
            inv = xp.asarray(1.0 / ctx.denom if ctx.denom != 0 else 0.0, dtype=x.dtype)
        if ctx.reduction == "none":
            g_col, g_row = reshape(g, (M, 1)), g
        else:
            gs = g * _const(inv) if ctx.reduction == "mean" else g
            g_col = gs
            g_row = broadcast_to(reshape(gs, (1,)), (M,))
        p = softmax(x, dim=1)
        dx = p * _const(S) if dense is None else p * _const(S) - _const(dense)
        dx = dx * g_col - IndexAddInto.apply(g_row * _const(onehot_coef.astype(x.dtype)), (M, C), index)
        return (dx,) + (None,) * 5

    @staticmethod
    def fast_backward(ctx, g):
        """g * dlogits, the gradient the forward kernel computed (NotImplemented without the kernel)."""
        dlogits = getattr(ctx, "dlogits", None)
        if dlogits is None:
            return NotImplemented
        return (dlogits * (g[:, None] if ctx.reduction == "none" else g),) + (None,) * 5


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy between logits ``input`` and ``target``: class indices or class probabilities.

    Class dim: 1 for (N, C, d1, ...) and (N, C), 0 for (C,). Class-index targets (integer, shape of the
    input without the class dim) use the fused :class:`CrossEntropy`; ``ignore_index`` rows add nothing
    and are not counted in the mean; ``weight`` (C,) is treated as a constant (no gradient), as PyTorch.
    Probability targets (float, the input's shape) give l = -sum_c w_c q_c log softmax(x)_c with
    q = (1 - s) y + s / C, averaged over the elements for 'mean' (composed ops; target gets a gradient).
    """
    op = "cross_entropy"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction), op)
    x = _check_float_tensor(input, op)
    smoothing = _check_number(label_smoothing, op, "label_smoothing", lo=0.0, hi=1.0)
    t = _check_tensor(target, op, "target")
    if t.dtype.kind == "f" and t.shape == x.shape and x.ndim >= 1:
        cdim = 1 if x.ndim >= 2 else 0
        C = x.shape[cdim]
        same_device(op, x, t, weight)
        if ignore_index != -100:
            raise InvalidArgumentError(f"{op}: ignore_index is only supported for class-index targets, got "
                                       f"probability targets (float, shape {tuple(t.shape)})")
        q = t * (1 - smoothing) + smoothing / C if smoothing > 0 else t
        terms = log_softmax(x, dim=cdim) * q
        if weight is not None:
            w = _check_float_tensor(weight, op, "weight")
            if tuple(w.shape) != (C,):
                raise ShapeError(f"{op}: weight must have shape ({C},), got {tuple(w.shape)}")
            terms = terms * reshape(w, (C,) + (1,) * (x.ndim - cdim - 1))
        return _reduce(-_sum(terms, cdim), reduction)
    x2, td, w, out_shape = _class_targets(x, t, weight, ignore_index, op)
    out = CrossEntropy.apply(x2, td, w, builtins.int(ignore_index), smoothing, reduction)
    return reshape(out, out_shape) if reduction == "none" else out


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` at class indices ``target``.

    l_i = -w_{t_i} x_{i, t_i} (0 for ignore_index); mean = sum_i l_i / sum_i w_{t_i}.
    Composed of indexing and arithmetic: dx = -g w_{t_i} at (i, t_i), zero elsewhere.
    """
    op = "nll_loss"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction), op)
    x = _check_float_tensor(input, op)
    x2, td, w, out_shape = _class_targets(x, target, weight, ignore_index, op)
    xp = get_array_module(x2.array)
    valid = td != ignore_index
    tt = xp.where(valid, td, 0)
    M = td.shape[0]
    picked = GetItem.apply(x2, (xp.arange(M), tt))
    wt = ((w[tt] if w is not None else xp.ones(M, dtype=x.dtype)) * valid).astype(x.dtype)
    loss = -picked * _const(wt)
    if reduction == "none":
        return reshape(loss, out_shape)
    if reduction == "sum":
        return _sum(loss)
    denom = wt.sum()
    if denom == 0:  # every target ignored: NaN loss (0/0) with a zero gradient, as PyTorch
        return _sum(loss) * 0.0 + float("nan")
    return _sum(loss) / _const(xp.asarray(denom, dtype=x.dtype))


# ------------------------------------------------------------------ distribution losses
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL divergence with ``input`` = log q (log-probabilities) and ``target`` = p (or log p if log_target):

        l = p * (log p - input)           (p log p taken as 0 where p = 0)
        l = exp(t) * (t - input)          (log_target=True)

    reduction 'batchmean' divides the sum by the batch size (the true KL per sample); 'mean' averages
    over all elements (PyTorch's default, which is not the KL). Composed ops.
    """
    op = "kl_div"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction), op,
                                 ("mean", "sum", "none", "batchmean"))
    _pair(input, target, op)
    if _check_flag(log_target, op, "log_target"):
        loss = target.exp() * (target - input)
    else:
        pos = _const(target.array > 0)
        plogp = target * where(pos, target, 1.0).log()   # xlogy(p, p): 0 where p = 0
        loss = plogp - target * input
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood with predicted mean ``input`` and variance ``var``:

        l = 0.5 * (log(max(var, eps)) + (input - target)^2 / max(var, eps))   (+ 0.5 log(2 pi) if full)

    ``var`` has the input's shape, or it with the last dim 1 (one variance shared by the features),
    or lacks the last dim. As PyTorch, the clamp at eps does not stop the gradient (identity).
    """
    op = "gaussian_nll_loss"
    reduction = _check_reduction(reduction, op)
    _pair(input, target, op)
    v = _check_float_tensor(var, op, "var")
    same_device(op, input, v)
    eps = _check_number(eps, op, "eps", lo=0.0)
    x = input
    if v.shape != x.shape:
        if x.ndim >= 1 and tuple(v.shape) == tuple(x.shape[:-1]):
            v = reshape(v, tuple(v.shape) + (1,))
        elif not (x.ndim >= 1 and v.ndim == x.ndim and v.shape[:-1] == x.shape[:-1] and v.shape[-1] == 1):
            raise ShapeError(f"{op}: var of shape {tuple(var.shape)} does not fit input of shape {tuple(x.shape)} "
                             f"(expected the input's shape, with the last dim 1, or without the last dim)")
    xp = get_array_module(v.array)
    if builtins.bool((v.array < 0).any()):
        raise InvalidArgumentError(f"{op}: var has negative entries")
    v = v + _const(xp.maximum(v.array, eps) - v.array)    # clamp whose gradient is the identity
    d = x - target
    loss = (v.log() + d * d / v) * 0.5
    if _check_flag(full, op, "full"):
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def gaussian_kl(mu, logvar, reduction="sum"):
    """KL( N(mu, exp(logvar)) || N(0, 1) ), the closed form in the VAE's ELBO (Kingma & Welling, appendix B):

        KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar))

    per element: l = -0.5 (1 + logvar - mu^2 - exp(logvar)) >= 0, zero iff mu = 0 and logvar = 0.
    Gradients: dmu = g * mu,  dlogvar = 0.5 g (exp(logvar) - 1).  reduction: 'sum' (default, as in the
    VAE loss), 'mean' (over elements), 'batchmean' (sum / batch size) or 'none'.
    """
    op = "gaussian_kl"
    reduction = _check_reduction(reduction, op, ("sum", "mean", "none", "batchmean"))
    m = _check_float_tensor(mu, op, "mu")
    lv = _check_float_tensor(logvar, op, "logvar")
    same_device(op, m, lv)
    try:
        np.broadcast_shapes(m.shape, lv.shape)
    except ValueError:
        raise ShapeError(f"{op}: mu of shape {tuple(m.shape)} and logvar of shape {tuple(lv.shape)} "
                         f"do not broadcast") from None
    loss = (1 + lv - m * m - lv.exp()) * -0.5
    return _reduce(loss, reduction)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """cos(x1, x2) = sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along ``dim`` (broadcast inputs).

    Composed ops; as PyTorch, each norm is clamped at eps with an identity gradient.
    """
    op = "cosine_similarity"
    a = _check_float_tensor(x1, op, "x1")
    b = _check_float_tensor(x2, op, "x2")
    same_device(op, a, b)
    eps = _check_number(eps, op, "eps", lo=0.0)
    try:
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise ShapeError(f"{op}: x1 of shape {tuple(a.shape)} and x2 of shape {tuple(b.shape)} "
                         f"do not broadcast") from None
    d = norm_dim(dim, len(shape))
    if len(shape) == 0:
        raise ShapeError(f"{op}: inputs must have at least 1 dim")
    a, b = broadcast_to(a, shape), broadcast_to(b, shape)

    def unit(t):
        n = _norm(t, 2, d, keepdim=True)
        xp = get_array_module(n.array)
        n = n + _const(xp.maximum(n.array, eps) - n.array)   # clamp_min(eps) with identity gradient
        return t / n

    return _sum(unit(a) * unit(b), d)
