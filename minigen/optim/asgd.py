"""ASGD (Polyak & Juditsky, 1992: averaged stochastic gradient descent), PyTorch's formulation."""
from __future__ import annotations

import numpy as np

from .nadam import _scalar_dtype
from .optimizer import Optimizer, _check_float

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""Averaged SGD: plain SGD steps with a decaying rate, plus a running average of the iterates.

    For each parameter p with gradient g, at step t = 1, 2, ... (eta_0 = lr, mu_0 = 1, ax = 0)::

        g = -g if maximize else g
        g = g + weight_decay * p                        (if weight_decay != 0)
        p = p * (1 - lambd * eta) - eta * g
        ax = p                       if mu == 1
             ax + mu * (p - ax)      otherwise           (the average of the iterates since t0)
        eta = lr / (1 + lambd * lr * t)^alpha
        mu = 1 / max(1, t - t0)

    ``ax`` (state ``'ax'``) is the averaged parameter; eta and mu are kept in the default scalar dtype
    (float32 unless the default dtype is float64) as PyTorch keeps them, so results match torch.optim.ASGD.
    Defaults as in PyTorch: ``lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6``. State: ``step``, ``eta``, ``mu``,
    ``ax``.
    """

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0.0, foreach=None, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        _check_float("learning rate", lr)
        _check_float("weight_decay value", weight_decay)
        _check_float("lambd value", lambd, lo=None)
        _check_float("alpha value", alpha, lo=None)
        _check_float("t0 value", t0, lo=None)
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _update(self, p, grad, state, group):
        sd = _scalar_dtype()
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        if "ax" not in state:
            state["step"] = 0
            state["eta"] = float(sd(lr))
            state["mu"] = 1.0
            state["ax"] = self._zeros_state(p)
        state["step"] += 1
        t = state["step"]
        g = self._step_grad(p, grad, group)
        eta, mu = float(state["eta"]), float(state["mu"])
        p.array *= 1 - lambd * eta
        p.array -= eta * g
        ax = state["ax"].array
        if mu != 1:
            ax += (p.array - ax) * np.asarray(mu, dtype=p.array.dtype)
        else:
            ax[...] = p.array
        state["eta"] = float(sd(lr / ((1 + lambd * lr * t) ** alpha)))
        state["mu"] = float(sd(1 / max(1, t - t0)))
