"""Stochastic gradient descent with momentum (PyTorch's formulation)."""
from __future__ import annotations

from .optimizer import Optimizer, _check_float
from ..kernels import dispatch
from ..errors import InvalidArgumentError

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""SGD with optional momentum, dampening, Nesterov momentum and L2 weight decay.

    For each parameter p with gradient g, at step t (buffer b starts empty)::

        d = -g if maximize else g
        d = d + weight_decay * p                       (L2 penalty, if weight_decay != 0)
        if momentum != 0:
            b = d                          at the first step
            b = momentum * b + (1 - dampening) * d     afterwards
            d = d + momentum * b   if nesterov   else   d = b
        p = p - lr * d

    (Sutskever et al., 2013 in PyTorch's form: the learning rate multiplies the
    whole step, not the gradient inside the buffer.) State: ``momentum_buffer``.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False):
        _check_float("learning rate", lr)
        _check_float("momentum value", momentum)
        _check_float("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise InvalidArgumentError("Nesterov momentum requires a momentum > 0 and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _step_group(self, group, params):
        kernel = dispatch.get("sgd_step", [p.array for p in params])
        if kernel is None:
            return super()._step_group(group, params)
        mom = group["momentum"]
        bufs, first = None, None
        if mom != 0:
            first = [self.state[p].get("momentum_buffer") is None for p in params]
            for p in params:
                if self.state[p].get("momentum_buffer") is None:
                    self.state[p]["momentum_buffer"] = self._zeros_state(p)
            bufs = [self.state[p]["momentum_buffer"].array for p in params]
        kernel([p.array for p in params], [p.grad.array for p in params], bufs, lr=group["lr"], momentum=mom,
               dampening=group["dampening"], weight_decay=group["weight_decay"], nesterov=group["nesterov"],
               maximize=group["maximize"], first_step=first)

    def _update(self, p, grad, state, group):
        lr, mom, damp, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
        d = -grad if group["maximize"] else grad
        if wd != 0:
            d = d + wd * p.array
        if mom != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = self._zeros_state(p)
                buf.array[...] = d
                state["momentum_buffer"] = buf
            else:
                b = buf.array
                b *= mom
                b += (1 - damp) * d
            d = d + mom * buf.array if group["nesterov"] else buf.array
        p.array -= lr * d
