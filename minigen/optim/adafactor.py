"""Adafactor (Shazeer & Stern, 2018), in PyTorch's formulation (``torch.optim.Adafactor``)."""
from __future__ import annotations

import math

import numpy as np

from .adamax import _lerp_
from .optimizer import Optimizer, _check_float
from ..backend import get_array_module
from ..errors import InvalidArgumentError

__all__ = ["Adafactor"]


class Adafactor(Optimizer):
    r"""Adafactor: Adam-like steps whose second-moment estimate of a matrix is stored factored, as one row
    and one column vector (memory O(R + C) instead of O(R C)), with a relative step size.

    For each parameter p with gradient g, at step t = 1, 2, ... (eps1 = machine epsilon of p's dtype unless
    given, eps2 = ``eps[1]``)::

        g = -g if maximize else g
        beta2_t = t ** beta2_decay                            (decays towards 0; 1 at t = 1)
        rho_t = min(lr, 1 / sqrt(t))
        alpha = max(eps2, RMS(p)) * rho_t                     (RMS(x) = ||x||_2 / sqrt(numel))
        p = p * (1 - lr * weight_decay)                       (if weight_decay != 0)
        if p has >= 2 dims:                                   (factored, over the last two dims)
            r = lerp(r, mean(g^2, last dim), beta2_t);  c = lerp(c, mean(g^2, second-to-last dim), beta2_t)
            v = (r c) / max(mean(r over rows), eps1)           (rank-1 estimate of the second moment)
        else:
            v = lerp(v, g^2, beta2_t)
        u = g / sqrt(max(v, eps1^2))
        p = p - alpha / max(1, RMS(u) / d) * u

    Defaults as in PyTorch: ``lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0``. State: ``step``,
    ``row_var`` / ``col_var`` (factored) or ``variance``.
    """

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps=(None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, foreach=None, maximize: bool = False):
        _check_float("learning rate", lr)
        if _check_float("beta2_decay", beta2_decay, lo=None) > 0:
            raise InvalidArgumentError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        try:
            eps1, eps2 = eps
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"eps must be a pair (eps1 or None, eps2), got {eps!r}") from None
        if eps1 is not None:
            _check_float("epsilon1 value", eps1)
        _check_float("epsilon2 value", eps2)
        if _check_float("d value", d) < 1.0:
            raise InvalidArgumentError(f"clipping threshold d should be >= 1 but is: {d}")
        _check_float("weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=(eps1, eps2), d=d,
                                      weight_decay=weight_decay, foreach=foreach, maximize=maximize))

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.array)
        lr, decay, wd, d = group["lr"], group["beta2_decay"], group["weight_decay"], group["d"]
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = float(np.finfo(p.array.dtype).eps)
        g = -grad if group["maximize"] else grad
        factored = g.ndim > 1
        if "step" not in state:
            state["step"] = 0
            if factored:
                rs, cs = list(g.shape), list(g.shape)
                rs[-1], cs[-2] = 1, 1
                state["row_var"] = self._zeros_like_shape(p, rs)
                state["col_var"] = self._zeros_like_shape(p, cs)
            else:
                state["variance"] = self._zeros_state(p)
        state["step"] += 1
        t = float(state["step"])
        beta2_t = t ** decay
        rho_t = min(lr, 1 / math.sqrt(t))
        a = p.array
        alpha = max(eps2, float(xp.sqrt((a * a).sum())) / math.sqrt(max(a.size, 1))) * rho_t
        if wd != 0:
            a *= 1 - lr * wd
        if factored:
            r, c = state["row_var"].array, state["col_var"].array
            _lerp_(r, (g * g).sum(axis=-1, keepdims=True) / g.shape[-1], beta2_t)
            _lerp_(c, (g * g).sum(axis=-2, keepdims=True) / g.shape[-2], beta2_t)
            v = xp.matmul(r, c) / xp.maximum(r.mean(axis=-2, keepdims=True), eps1)
        else:
            v = state["variance"].array
            _lerp_(v, g * g, beta2_t)
            v = v.copy()
        u = g / xp.sqrt(xp.maximum(v, eps1 * eps1))
        denom = max(1.0, float(xp.sqrt((u * u).sum())) / (math.sqrt(max(u.size, 1)) * d))
        a -= (alpha / denom) * u

    def load_state_dict(self, state_dict: dict) -> None:
        """As :meth:`Optimizer.load_state_dict`; the factored ``row_var`` / ``col_var`` (whose shapes are not
        their parameter's) are checked against the shapes they must have and restored here."""
        from ..backend import move_array
        from ..tensor import Tensor
        from .optimizer import _key

        if not isinstance(state_dict, dict) or not isinstance(state_dict.get("state"), dict):
            return super().load_state_dict(state_dict)  # the base class reports what is wrong
        factored, rest = {}, {}
        for k, st in state_dict["state"].items():
            st = dict(st) if isinstance(st, dict) else st
            if isinstance(st, dict):
                factored[k] = {n: st.pop(n) for n in ("row_var", "col_var") if n in st}
            rest[k] = st
        super().load_state_dict({**state_dict, "state": rest})
        id_map = {}
        for g, sg in zip(self.param_groups, state_dict["param_groups"]):
            for p, idx in zip(g["params"], sg["params"]):
                id_map[_key(idx)] = p
        for k, f in factored.items():
            p = id_map[_key(k)]
            want = {"row_var": tuple(p.shape[:-1]) + (1,), "col_var": tuple(p.shape[:-2]) + (1, p.shape[-1])} \
                if p.ndim > 1 else {}
            for name, v in f.items():
                arr = v.array if isinstance(v, Tensor) else (v.detach().cpu().numpy() if hasattr(v, "detach")
                                                             else np.asarray(v))
                if name not in want or tuple(arr.shape) != want[name]:
                    raise InvalidArgumentError(f"Adafactor state {name!r} has shape {tuple(arr.shape)}; a parameter "
                                               f"of shape {tuple(p.shape)} needs {want.get(name, 'none')}")
                self.state[p][name] = Tensor._make(move_array(arr, p.device).astype(p.dtype).copy())

    @staticmethod
    def _zeros_like_shape(p, shape):
        from ..tensor import Tensor

        return Tensor._make(get_array_module(p.array).zeros(shape, dtype=p.array.dtype))
