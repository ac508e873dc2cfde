"""``Optimizer``: the base class of every optimizer (``minigen.optim``).

An optimizer holds ``param_groups``: a list of dicts, each with its ``'params'``
(a list of Parameters) and its hyperparameters (``'lr'``, ``'momentum'``...;
missing ones are filled from ``defaults``). Per-parameter memory (momentum
buffers, Adam's moments, the step count) lives in ``state[param]``, a dict.

``step()`` applies one update to every parameter that has a ``.grad``. Updates
are plain array expressions on ``p.array`` (NumPy or CuPy via ``xp``) done in
place, outside autograd; each subclass writes its rule once, per parameter, in
``_update(p, grad, state, group)`` (so a fused kernel can replace the loop over a
group, see ``_step_group``). Every update bumps the parameter's version counter,
so autograd notices a parameter changed under a graph that saved it.

``state_dict()`` uses PyTorch's layout, with parameters replaced by their index
(counted over all groups in order)::

    {'state': {0: {'step': 3, 'exp_avg': Tensor, ...}, 1: {...}},
     'param_groups': [{'lr': 0.001, 'betas': (0.9, 0.999), ..., 'params': [0, 1]}]}
"""
from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from ..autograd.grad_mode import enable_grad
from ..backend import get_array_module, move_array
from ..errors import InvalidArgumentError
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def _check_float(name, value, lo=0.0, hi=None, lo_open=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"invalid {name}: {value!r} is not a number") from None
    if (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and v >= hi):
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'})"
        raise InvalidArgumentError(f"invalid {name}: {value} (must be in {rng})")
    return v


class Optimizer:
    """Base class. Subclasses set ``defaults`` and implement ``_update``."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise InvalidArgumentError("params argument given to the optimizer should be an iterable of Tensors "
                                       "or dicts, but got a single Tensor (wrap it in a list)")
        groups = list(params)
        if len(groups) == 0:
            raise InvalidArgumentError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones come from ``defaults``)."""
        if not isinstance(param_group, dict):
            raise InvalidArgumentError(f"param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise InvalidArgumentError("optimizer parameters need to be an ordered collection, not a set")
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise InvalidArgumentError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise InvalidArgumentError(f"can't optimize a non-leaf Tensor (shape {tuple(p.shape)})")
            if p.dtype.kind not in "fc":
                raise InvalidArgumentError(f"can't optimize a Tensor of dtype {p.dtype} (floating point needed)")
        if len({id(p) for p in params}) != len(params):
            raise InvalidArgumentError("optimizer contains a parameter group with duplicate parameters")
        group["params"] = params
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise InvalidArgumentError(f"parameter group didn't specify a value of required "
                                           f"optimization parameter {k}")
            group.setdefault(k, v)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise InvalidArgumentError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (``None``, or zeros with ``set_to_none=False``)."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = Tensor._make(get_array_module(p.grad.array).zeros_like(p.grad.array))

    # ------------------------------------------------------------------ the update
    def step(self, closure=None):
        """One update of every parameter with a gradient. ``closure`` (optional) re-evaluates
        the model and returns the loss (run with grad enabled); its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, params)
                for p in params:
                    p._vc[0] += 1
        return loss

    def _step_group(self, group, params):
        """Update every parameter of ``group`` that has a gradient. A fused multi-parameter kernel
        can override this; the reference loops over ``_update``."""
        for p in params:
            self._update(p, p.grad.array, self.state[p], group)

    def _update(self, p, grad, state, group):  # pragma: no cover - abstract
        """Update ``p.array`` in place from the array ``grad``; ``state`` is this parameter's dict."""
        raise NotImplementedError

    @staticmethod
    def _zeros_state(p):
        return Tensor._make(get_array_module(p.array).zeros_like(p.array))

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> dict:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index...]}]}`` (PyTorch's layout).

        State tensors are the live ones (not copies), as in PyTorch; ``load_state_dict`` copies."""
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                if id(p) not in index:
                    index[id(p)] = len(index)
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = self.state[p]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and per-parameter state saved by :meth:`state_dict`.

        The saved groups must match this optimizer's groups in number and size. Floating
        point state is cast to its parameter's dtype and device (``step`` stays an int)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise InvalidArgumentError("optimizer state dict must be a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise InvalidArgumentError(f"loaded state dict has {len(saved_groups)} parameter group(s), "
                                       f"the optimizer has {len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise InvalidArgumentError(f"loaded state dict contains a parameter group ({i}) with "
                                           f"{len(s['params'])} parameters; the optimizer's group has "
                                           f"{len(g['params'])}")
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            for p, idx in zip(g["params"], s["params"]):
                id_map[_key(idx)] = p
        new_state = defaultdict(dict)
        for k, st in state_dict["state"].items():
            p = id_map.get(_key(k))
            if p is None:
                continue
            new_state[p] = {name: _cast_state(name, v, p) for name, v in st.items()}
        self.state = new_state
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            ng = {k: copy.deepcopy(v) for k, v in s.items() if k != "params"}
            if "betas" in ng and isinstance(ng["betas"], list):
                ng["betas"] = tuple(ng["betas"])
            ng["params"] = g["params"]
            new_groups.append(ng)
        self.param_groups = new_groups

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)


def _key(idx):
    """State-dict indices may come back from JSON as strings: '3' and 3 are the same parameter."""
    try:
        return int(idx)
    except (TypeError, ValueError):
        return idx


def _cast_state(name, v, p):
    if name == "step":
        if isinstance(v, Tensor):
            return int(float(v.item()))
        if hasattr(v, "item"):
            return int(float(v.item()))
        return int(v)
    if isinstance(v, Tensor):
        arr = v.array
    elif hasattr(v, "shape") and hasattr(v, "dtype") and type(v).__module__.split(".")[0] in ("numpy", "cupy"):
        arr = v
    elif hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor (duck typed)
        arr = v.detach().cpu().numpy()
    else:
        return copy.deepcopy(v)
    arr = move_array(arr, p.device)
    if arr.dtype.kind in "fc":
        arr = arr.astype(p.dtype)
    return Tensor._make(arr.copy())
