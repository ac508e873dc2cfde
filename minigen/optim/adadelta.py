"""Adadelta (Zeiler, 2012), PyTorch's formulation."""
from __future__ import annotations

from .optimizer import Optimizer, _check_float
from ..errors import InvalidArgumentError

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta: steps scaled by the ratio of running RMS of past updates to running RMS of gradients.

    For each parameter p with gradient g (v and u start at 0)::

        g = -g if maximize else g
        g = g + weight_decay * p                          (if weight_decay != 0)
        v = rho * v + (1 - rho) * g^2                     (running mean of squared gradients)
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta^2                 (running mean of squared updates)
        p = p - lr * delta

    Defaults as in PyTorch: ``lr=1.0, rho=0.9, eps=1e-6``. State: ``step``, ``square_avg`` (v),
    ``acc_delta`` (u).
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
                 foreach=None, *, capturable: bool = False, maximize: bool = False, differentiable: bool = False):
        _check_float("learning rate", lr)
        _check_float("epsilon value", eps)
        _check_float("weight_decay value", weight_decay)
        if not 0.0 <= _check_float("rho value", rho) <= 1.0:
            raise InvalidArgumentError(f"invalid rho value: {rho} (must be in [0, 1])")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach,
                                      capturable=capturable, maximize=maximize, differentiable=differentiable))

    def _update(self, p, grad, state, group):
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = self._zeros_state(p)
            state["acc_delta"] = self._zeros_state(p)
        state["step"] += 1
        g = self._step_grad(p, grad, group)
        v, u = state["square_avg"].array, state["acc_delta"].array
        v *= rho
        v += (1 - rho) * (g * g)
        delta = (u + eps) ** 0.5 / (v + eps) ** 0.5 * g
        u *= rho
        u += (1 - rho) * (delta * delta)
        p.array -= lr * delta
