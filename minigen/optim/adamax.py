"""Adamax (Kingma & Ba, 2015, section 7.1: Adam with the infinity norm), PyTorch's formulation."""
from __future__ import annotations

from .optimizer import Optimizer, _check_float
from ..backend import get_array_module
from ..errors import InvalidArgumentError

__all__ = ["Adamax"]


def _check_betas(betas):
    """A pair of floats in [0, 1) (the error names the bad one), returned as a tuple."""
    try:
        pair = tuple(betas)
    except TypeError:
        raise InvalidArgumentError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    if len(pair) != 2:
        raise InvalidArgumentError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    _check_float("beta parameter at index 0", pair[0], 0.0, 1.0)
    _check_float("beta parameter at index 1", pair[1], 0.0, 1.0)
    return pair


def _lerp_(a, b, w):
    """a <- a + w * (b - a) in place (PyTorch's lerp for w < 0.5; the other branch for w >= 0.5)."""
    if w < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


class Adamax(Optimizer):
    r"""Adamax: Adam's update with the second moment replaced by an exponentially weighted infinity norm.

    For each parameter p with gradient g, at step t = 1, 2, ... (m and u start at 0)::

        g = -g if maximize else g
        g = g + weight_decay * p                       (if weight_decay != 0)
        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, |g| + eps)
        p = p - (lr / (1 - beta1^t)) * m / u

    Defaults as in PyTorch: ``lr=2e-3, betas=(0.9, 0.999), eps=1e-8``. State: ``step``,
    ``exp_avg`` (m), ``exp_inf`` (u).
    """

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 foreach=None, *, maximize: bool = False, differentiable: bool = False, capturable: bool = False):
        _check_float("learning rate", lr)
        _check_float("epsilon value", eps)
        _check_float("weight_decay value", weight_decay)
        betas = _check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, capturable=capturable))

    def _update(self, p, grad, state, group):
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = self._zeros_state(p)
            state["exp_inf"] = self._zeros_state(p)
        state["step"] += 1
        t = state["step"]
        g = self._step_grad(p, grad, group)
        xp = get_array_module(p.array)
        m, u = state["exp_avg"].array, state["exp_inf"].array
        _lerp_(m, g, 1 - b1)
        u *= b2
        xp.maximum(u, xp.abs(g) + eps, out=u)
        clr = lr / (1 - b1 ** t)
        p.array -= clr * (m / u)
