"""Adagrad (Duchi et al., 2011), PyTorch's formulation."""
from __future__ import annotations

from .optimizer import Optimizer, _check_float

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad: per-coordinate learning rates from the sum of squared gradients.

    For each parameter p with gradient g, at step t = 1, 2, ... (s starts at
    ``initial_accumulator_value``)::

        g = -g if maximize else g
        g = g + weight_decay * p                        (if weight_decay != 0)
        lr_t = lr / (1 + (t - 1) * lr_decay)
        s = s + g^2
        p = p - lr_t * g / (sqrt(s) + eps)

    State (created for every parameter at construction, as in PyTorch): ``step``, ``sum`` (s).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False):
        _check_float("learning rate", lr)
        _check_float("lr_decay value", lr_decay)
        _check_float("weight_decay value", weight_decay)
        _check_float("initial_accumulator_value", initial_accumulator_value)
        _check_float("epsilon value", eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize))
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, self.state[p], group)

    def _init_state(self, p, state, group):
        if "sum" not in state:
            state["step"] = 0
            s = self._zeros_state(p)
            s.array[...] = group["initial_accumulator_value"]
            state["sum"] = s

    def _update(self, p, grad, state, group):
        self._init_state(p, state, group)
        state["step"] += 1
        t = state["step"]
        g = self._step_grad(p, grad, group)
        clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])
        s = state["sum"].array
        s += g * g
        p.array -= clr * g / (s ** 0.5 + group["eps"])
