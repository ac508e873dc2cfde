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
import math
import numbers
from collections import defaultdict

import numpy as np

from ..autograd.grad_mode import enable_grad
from ..backend import get_array_module, move_array
from ..argcheck import brief, check_iterable
from ..errors import DeviceError, DTypeError, InvalidArgumentError, ShapeError
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def _check_float(name, value, lo=0.0, hi=None, lo_open=False):
    """A hyperparameter: a real number (a 0-d Tensor is read; not a bool, string or NaN) in [lo, hi).
    (PyTorch accepts ``lr=nan``; minigen refuses NaN hyperparameters.)"""
    if isinstance(value, Tensor) and value.ndim == 0 and value.dtype.kind in "fiu":
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"invalid {name}: {brief(value)} is not a real number")
    v = float(value)
    if math.isnan(v):
        raise InvalidArgumentError(f"invalid {name}: nan")
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
        if isinstance(params, dict):
            raise InvalidArgumentError("params argument given to the optimizer should be an iterable of Tensors "
                                       "or dicts, but got a dict (wrap a param group in a list)")
        groups = check_iterable(params, type(self).__name__, "params")
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
        if "params" not in group:
            raise InvalidArgumentError(f"param group must have a 'params' entry, got keys {sorted(map(str, group))}")
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise InvalidArgumentError("optimizer parameters need to be an ordered collection, not a set")
        else:
            params = check_iterable(params, type(self).__name__, "the group's params")
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
            _check_group_value(k, group[k], v)
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
            for p in params:
                _check_grad(p)
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
    def _step_grad(p, grad, group, lr=0.0, decoupled=False):
        """The gradient an update rule uses: g = -grad under ``maximize``; then weight decay wd, either as the L2
        term g + wd * p, or (``decoupled``, AdamW-style) applied to the parameter itself: p *= 1 - lr * wd."""
        g = -grad if group["maximize"] else grad
        wd = group["weight_decay"]
        if wd != 0:
            if decoupled:
                p.array *= 1 - lr * wd
            else:
                g = g + wd * p.array
        return g

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

        The saved groups must match this optimizer's groups in number and size, and every saved state tensor
        its parameter's shape (PyTorch checks only the group sizes and fails at the next ``step()``; minigen refuses
        another model's state here). Nothing changes unless everything checks out. Floating point state is cast
        to its parameter's dtype and device (``step`` stays an int)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise InvalidArgumentError("optimizer state dict must be a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, (list, tuple)) or not all(
                isinstance(s, dict) and isinstance(s.get("params"), (list, tuple)) for s in saved_groups):
            raise InvalidArgumentError("optimizer state dict: 'param_groups' must be a list of dicts, each with a "
                                       "'params' list")
        if not isinstance(state_dict["state"], dict) or not all(isinstance(v, dict)
                                                                 for v in state_dict["state"].values()):
            raise InvalidArgumentError("optimizer state dict: 'state' must map parameter indices to dicts")
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
                raise InvalidArgumentError(f"optimizer state dict has state for parameter index {k!r}, which no "
                                           f"parameter group lists (another optimizer's state?)")
            new_state[p] = {name: _cast_state(name, v, p) for name, v in st.items()}
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            ng = {k: copy.deepcopy(v) for k, v in s.items() if k != "params"}
            if "betas" in ng and isinstance(ng["betas"], list):
                ng["betas"] = tuple(ng["betas"])
            for k, default in self.defaults.items():
                if k not in ng:  # a state saved before this hyperparameter existed: keep the current value
                    ng[k] = g[k]
                _check_group_value(k, ng[k], default)
            ng["params"] = g["params"]
            new_groups.append(ng)
        # nothing is changed until everything has been checked
        self.state = new_state
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


def _check_group_value(name, value, default):
    """A param group's hyperparameter must have the kind of its default: a real number where the default is a
    number (not NaN), a bool where it is a bool, a pair of numbers where it is a pair (betas)."""
    if value is required:
        return
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidArgumentError(f"optimizer hyperparameter {name!r} must be a bool, got {brief(value)}")
    elif isinstance(default, numbers.Real) or default is required:
        _check_float(name, value, lo=None)
    elif isinstance(default, tuple) and all(isinstance(d, numbers.Real) for d in default):
        if not isinstance(value, (tuple, list)) or len(value) != len(default):
            raise InvalidArgumentError(f"optimizer hyperparameter {name!r} must be a tuple of {len(default)} "
                                       f"numbers, got {brief(value)}")
        for i, x in enumerate(value):
            _check_float(f"{name}[{i}]", x, lo=None)


def _check_grad(p):
    """A parameter's ``.grad`` must be a Tensor of the parameter's shape, floating point, on its device: a
    wrong-shaped gradient is never broadcast into the update (PyTorch refuses it as well)."""
    g = p.grad
    if not isinstance(g, Tensor):
        raise DTypeError(f"the gradient of a parameter of shape {tuple(p.shape)} must be a Tensor, got "
                         f"{brief(g)}")
    if tuple(g.shape) != tuple(p.shape):
        raise ShapeError(f"a parameter of shape {tuple(p.shape)} has a gradient of shape {tuple(g.shape)}")
    if g.dtype.kind not in "fc":
        raise DTypeError(f"a parameter of dtype {p.dtype} has a gradient of dtype {g.dtype} (floating point "
                         f"needed)")
    if type(g.array) is not type(p.array):
        raise DeviceError(f"a parameter on {p.device} has its gradient on {g.device}")


def _cast_state(name, v, p):
    if name == "step":
        count = v.numel() if hasattr(v, "numel") else getattr(v, "size", None)  # minigen/torch / NumPy
        if hasattr(v, "item") and count == 1:
            v = v.item()
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            raise InvalidArgumentError(f"optimizer state dict: 'step' must be a count >= 0, got {brief(v)}")
        return int(v)
    if isinstance(v, Tensor):
        arr = v.array
    elif hasattr(v, "shape") and hasattr(v, "dtype") and type(v).__module__.split(".")[0] in ("numpy", "cupy"):
        arr = v
    elif hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor (duck typed)
        arr = v.detach().cpu().numpy()
    else:
        return copy.deepcopy(v)
    if arr.ndim > 0 and tuple(arr.shape) != tuple(p.shape):
        raise ShapeError(f"optimizer state dict: state {name!r} has shape {tuple(arr.shape)} but its parameter has "
                         f"shape {tuple(p.shape)} (a state saved for another model?)")
    arr = move_array(arr, p.device)
    if arr.dtype.kind in "fc":
        arr = arr.astype(p.dtype)
    return Tensor._make(arr.copy())
