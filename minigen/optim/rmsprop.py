"""RMSprop (Hinton's lecture 6e; centred variant of Graves, 2013), PyTorch's formulation."""
from __future__ import annotations

from .optimizer import Optimizer, _check_float

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop with optional centring and momentum.

    For each parameter p with gradient g (s, a, b start at 0)::

        g = -g if maximize else g
        g = g + weight_decay * p                        (if weight_decay != 0)
        s = alpha * s + (1 - alpha) * g^2               (running mean of squares)
        if centered:
            a = alpha * a + (1 - alpha) * g             (running mean)
            denom = sqrt(s - a^2) + eps
        else:
            denom = sqrt(s) + eps
        if momentum > 0:
            b = momentum * b + g / denom
            p = p - lr * b
        else:
            p = p - lr * g / denom

    State: ``step``, ``square_avg`` (s), ``grad_avg`` (a, centered), ``momentum_buffer`` (b, momentum > 0).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *, maximize: bool = False):
        _check_float("learning rate", lr)
        _check_float("epsilon value", eps)
        _check_float("momentum value", momentum)
        _check_float("weight_decay value", weight_decay)
        _check_float("alpha value", alpha)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _update(self, p, grad, state, group):
        lr, alpha, eps, wd, mom = group["lr"], group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = self._zeros_state(p)
        if mom > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = self._zeros_state(p)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = self._zeros_state(p)
        state["step"] += 1
        g = -grad if group["maximize"] else grad
        if wd != 0:
            g = g + wd * p.array
        s = state["square_avg"].array
        s *= alpha
        s += (1 - alpha) * (g * g)
        if group["centered"]:
            a = state["grad_avg"].array
            a *= alpha
            a += (1 - alpha) * g
            denom = (s - a * a) ** 0.5 + eps
        else:
            denom = s ** 0.5 + eps
        if mom > 0:
            b = state["momentum_buffer"].array
            b *= mom
            b += g / denom
            p.array -= lr * b
        else:
            p.array -= lr * (g / denom)
