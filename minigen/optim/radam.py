"""RAdam (Liu et al., 2020: rectified Adam), PyTorch's formulation."""
from __future__ import annotations

import math

from .adamax import _check_betas, _lerp_
from .optimizer import Optimizer, _check_float

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam: Adam whose adaptive step is switched on, and rectified, once the variance of the adaptive
    learning rate is tractable.

    For each parameter p with gradient g, at step t = 1, 2, ... (m, v start at 0)::

        g = -g if maximize else g
        p = p * (1 - lr * weight_decay)                  (decoupled_weight_decay=True)
        g = g + weight_decay * p                         (else, if weight_decay != 0)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p = p - lr * m_hat * r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps)
        else:
            p = p - lr * m_hat                            (plain momentum SGD while rho_t <= 5)

    Defaults as in PyTorch: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8``. State: ``step``,
    ``exp_avg`` (m), ``exp_avg_sq`` (v).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False):
        _check_float("learning rate", lr)
        _check_float("epsilon value", eps)
        _check_float("weight_decay value", weight_decay)
        betas = _check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, foreach=foreach,
                                      maximize=maximize, capturable=capturable, differentiable=differentiable))

    def _update(self, p, grad, state, group):
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = self._zeros_state(p)
            state["exp_avg_sq"] = self._zeros_state(p)
        state["step"] += 1
        t = state["step"]
        g = self._step_grad(p, grad, group, lr, group["decoupled_weight_decay"])
        m, v = state["exp_avg"].array, state["exp_avg_sq"].array
        _lerp_(m, g, 1 - b1)
        v *= b2
        v += (1 - b2) * (g * g)
        bc1 = 1 - b1 ** t
        bc2 = 1 - b2 ** t
        m_hat = m / bc1
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * (b2 ** t) / bc2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive = math.sqrt(bc2) / (v ** 0.5 + eps)
            p.array -= m_hat * lr * adaptive * rect
        else:
            p.array -= m_hat * lr
