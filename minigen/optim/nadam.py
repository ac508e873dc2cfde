"""NAdam (Dozat, 2016: Adam with Nesterov momentum), PyTorch's formulation with its momentum schedule."""
from __future__ import annotations


import numpy as np

from .adamax import _check_betas, _lerp_
from .optimizer import Optimizer, _check_float

__all__ = ["NAdam"]


def _scalar_dtype():
    from ..tensor import get_default_dtype

    return np.float64 if np.dtype(get_default_dtype()) == np.float64 else np.float32


class NAdam(Optimizer):
    r"""NAdam: Adam whose first-moment step looks one step ahead (Nesterov), with a decaying momentum schedule.

    For each parameter p with gradient g, at step t = 1, 2, ... (m, v start at 0, the product P_0 = 1)::

        g = -g if maximize else g
        p = p * (1 - lr * weight_decay)                  (decoupled_weight_decay=True)
        g = g + weight_decay * p                         (else, if weight_decay != 0)
        mu_t     = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
        mu_{t+1} = beta1 * (1 - 0.5 * 0.96^((t + 1) * momentum_decay))
        P_t = P_{t-1} * mu_t
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        denom = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr * (1 - mu_t) / (1 - P_t) * g / denom
              - lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / denom

    Defaults as in PyTorch: ``lr=2e-3, betas=(0.9, 0.999), eps=1e-8, momentum_decay=4e-3``. State:
    ``step``, ``mu_product`` (P_t, rounded to the default
    scalar dtype after each step as PyTorch does), ``exp_avg`` (m), ``exp_avg_sq`` (v).
    """

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        _check_float("learning rate", lr)
        _check_float("epsilon value", eps)
        _check_float("weight_decay value", weight_decay)
        _check_float("momentum_decay value", momentum_decay)
        betas = _check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      foreach=foreach, maximize=maximize, capturable=capturable,
                                      differentiable=differentiable))

    def _update(self, p, grad, state, group):
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        psi = group["momentum_decay"]
        if "exp_avg" not in state:
            state["step"] = 0
            state["mu_product"] = 1.0
            state["exp_avg"] = self._zeros_state(p)
            state["exp_avg_sq"] = self._zeros_state(p)
        state["step"] += 1
        t = state["step"]
        g = self._step_grad(p, grad, group, lr, group["decoupled_weight_decay"])
        bc2 = 1 - b2 ** t
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        # the product is kept in the default scalar dtype (float32 unless the default dtype is float64), as
        # PyTorch keeps it in a 0-d tensor of that dtype: results then match torch.optim.NAdam to rounding
        sd = _scalar_dtype()
        mu_product = float(sd(state["mu_product"]) * sd(mu))
        state["mu_product"] = mu_product
        m, v = state["exp_avg"].array, state["exp_avg_sq"].array
        _lerp_(m, g, 1 - b1)
        v *= b2
        v += (1 - b2) * (g * g)
        denom = (v / bc2) ** 0.5 + eps
        p.array -= (lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
        p.array -= (lr * mu_next / (1.0 - mu_product * mu_next)) * (m / denom)
