"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), PyTorch's formulation."""
from __future__ import annotations

import math

from .adamax import _check_betas
from .optimizer import Optimizer, _check_float
from ..kernels import dispatch
from ..backend import get_array_module
from ..errors import InvalidArgumentError

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam with optional AMSGrad and L2 weight decay (``AdamW`` for the decoupled form).

    For each parameter p with gradient g, at step t = 1, 2, ... (m, v, v_max start at 0)::

        g = -g if maximize else g
        g = g + weight_decay * p                  (Adam: L2 penalty added to the gradient)
        p = p * (1 - lr * weight_decay)           (AdamW instead: decoupled decay of the weight)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v);  use v_max for v    (amsgrad only)
        p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The last line is the bias-corrected update m_hat / (sqrt(v_hat) + eps) with
    m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t), arranged as PyTorch does
    (so results match torch.optim.Adam to rounding). State: ``step``, ``exp_avg`` (m),
    ``exp_avg_sq`` (v), ``max_exp_avg_sq`` (amsgrad).
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False):
        _check_float("learning rate", lr)
        _check_float("epsilon value", eps)
        _check_float("weight_decay value", weight_decay)
        betas = _check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _init_state(self, p, state, amsgrad):
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = self._zeros_state(p)
            state["exp_avg_sq"] = self._zeros_state(p)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = self._zeros_state(p)

    def _step_group(self, group, params):
        kernel = dispatch.get("adam_step", [p.array for p in params])
        if kernel is None:
            return super()._step_group(group, params)
        amsgrad = group["amsgrad"]
        steps = []
        for p in params:
            st = self.state[p]
            self._init_state(p, st, amsgrad)
            st["step"] += 1
            steps.append(st["step"])
        b1, b2 = group["betas"]
        kernel([p.array for p in params], [p.grad.array for p in params],
               [self.state[p]["exp_avg"].array for p in params], [self.state[p]["exp_avg_sq"].array for p in params],
               [self.state[p]["max_exp_avg_sq"].array for p in params] if amsgrad else None, steps,
               lr=group["lr"], beta1=b1, beta2=b2, eps=group["eps"], weight_decay=group["weight_decay"],
               amsgrad=amsgrad, decoupled=self._decoupled, maximize=group["maximize"])

    def _update(self, p, grad, state, group):
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        self._init_state(p, state, group["amsgrad"])
        state["step"] += 1
        t = state["step"]
        g = self._step_grad(p, grad, group, lr, self._decoupled)
        m, v = state["exp_avg"].array, state["exp_avg_sq"].array
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"].array
            get_array_module(vmax).maximum(vmax, v, out=vmax)
            v = vmax
        bc1 = 1 - b1 ** t
        bc2_sqrt = math.sqrt(1 - b2 ** t)
        denom = v ** 0.5 / bc2_sqrt + eps
        p.array -= (lr / bc1) * m / denom


class AdamW(Adam):
    r"""Adam with decoupled weight decay: the weight shrinks by ``p *= 1 - lr * weight_decay``
    before the Adam step, instead of adding ``weight_decay * p`` to the gradient (see :class:`Adam`
    for the full update). Default ``weight_decay=0.01`` as in PyTorch."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
