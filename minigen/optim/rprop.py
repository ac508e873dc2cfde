"""Rprop (Riedmiller & Braun, 1993: resilient backpropagation), PyTorch's formulation."""
from __future__ import annotations

from .optimizer import Optimizer, _check_float
from ..backend import get_array_module
from ..errors import InvalidArgumentError

__all__ = ["Rprop"]


class Rprop(Optimizer):
    r"""Rprop: per-coordinate step sizes adapted from the sign of successive gradients; the gradient's size
    is ignored.

    For each parameter p with gradient g (g_prev starts at 0, the step sizes s at ``lr``)::

        g = -g if maximize else g
        f = eta_plus   where g * g_prev > 0        (same sign: grow the step)
            eta_minus  where g * g_prev < 0        (sign flip: shrink it, and skip this coordinate)
            1          where g * g_prev == 0
        s = clamp(s * f, step_min, step_max)
        g = 0          where f == eta_minus
        p = p - sign(g) * s
        g_prev = g

    Defaults as in PyTorch: ``lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50)``. State: ``step``,
    ``prev`` (g_prev), ``step_size`` (s).
    """

    def __init__(self, params, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False,
                 foreach=None, maximize: bool = False, differentiable: bool = False):
        _check_float("learning rate", lr)
        try:
            eta_minus, eta_plus = (float(e) for e in etas)
            step_min, step_max = (float(s) for s in step_sizes)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"Rprop: etas and step_sizes must be pairs of numbers, got {etas!r}, "
                                       f"{step_sizes!r}") from None
        if not 0.0 < eta_minus < 1.0 < eta_plus:
            raise InvalidArgumentError(f"invalid eta values: {eta_minus}, {eta_plus} (need 0 < eta_minus < 1 < "
                                       "eta_plus)")
        super().__init__(params, dict(lr=lr, etas=(eta_minus, eta_plus), step_sizes=(step_min, step_max),
                                      capturable=capturable, foreach=foreach, maximize=maximize,
                                      differentiable=differentiable))

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        eta_minus, eta_plus = group["etas"]
        step_min, step_max = group["step_sizes"]
        if "prev" not in state:
            state["step"] = 0
            state["prev"] = self._zeros_state(p)
            s0 = self._zeros_state(p)
            s0.array[...] = group["lr"]
            state["step_size"] = s0
        state["step"] += 1
        g = -grad if group["maximize"] else grad
        prev, s = state["prev"].array, state["step_size"].array
        f = xp.sign(g * prev)
        f = xp.where(f > 0, xp.asarray(eta_plus, dtype=f.dtype), f)
        f = xp.where(f < 0, xp.asarray(eta_minus, dtype=f.dtype), f)
        f = xp.where(f == 0, xp.asarray(1, dtype=f.dtype), f)
        s *= f
        xp.clip(s, step_min, step_max, out=s)
        g = xp.where(f == xp.asarray(eta_minus, dtype=f.dtype), xp.zeros_like(g), g)
        p.array -= xp.sign(g) * s
        prev[...] = g
