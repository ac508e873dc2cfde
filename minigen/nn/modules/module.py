"""``Module``: the base class of every layer and model.

A Module is a tree. Each node keeps three ordered registries, filled in
automatically by attribute assignment in ``__init__``::

    self.weight = Parameter(...)    -> _parameters['weight']   (trained, saved)
    self.register_buffer('running_mean', t)  -> _buffers   (saved, not trained)
    self.fc = Linear(3, 4)          -> _modules['fc']          (a child Module)

Everything else follows from walking that tree: ``named_parameters()`` yields
``'fc.weight'``-style dotted names (the same names PyTorch gives the same
architecture, so ``state_dict`` keys interchange), ``train()/eval()`` flip the
``training`` flag on every node, ``to(dtype/device)`` converts every parameter
and buffer *in place* (the Parameter objects stay the same, so an optimizer
built before ``.to`` still holds them), and ``state_dict()`` /
``load_state_dict()`` save and restore parameters and persistent buffers.

Subclasses implement ``forward``; call the module (``m(x)``), not
``m.forward(x)``, so forward hooks run.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
import itertools

import numpy as np

from ...autograd.grad_mode import no_grad
from ...backend import as_device, get_array_module, move_array
from ...argcheck import brief, check_callable
from ...errors import CheckpointError, InvalidArgumentError
from ...tensor import Tensor, as_dtype
from ..parameter import Buffer, Parameter

__all__ = ["Module", "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = "What ``load_state_dict`` found: keys the model wanted but did not get, and extra keys."


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``handle.remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, registry):
        self.registry = registry
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self.registry.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _check_str(v, op, name):
    if not isinstance(v, str):
        raise InvalidArgumentError(f"Module.{op}: {name} must be a string, got {brief(v)}")


def _as_array(v):
    """A state-dict value as a NumPy/CuPy array: minigen Tensors, arrays, torch tensors, nested lists."""
    arr = v.array if isinstance(v, Tensor) else v
    if type(arr).__module__.split(".")[0] in ("numpy", "cupy") and hasattr(arr, "shape"):
        return arr
    if hasattr(arr, "detach") and hasattr(arr, "cpu"):  # a torch tensor (duck typed; torch is never imported)
        arr = arr.detach().cpu().numpy()
    return np.asarray(arr)


def _addindent(s, n):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class Module:
    """Base class of all layers; see the module docstring."""

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise InvalidArgumentError(f"Module.__init__() takes no arguments, got {args!r} {kwargs!r}")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()

    # ------------------------------------------------------------------ forward
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); subclasses of Module define it")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                r = hook(self, args, out)
                if r is not None:
                    out = r
        return out

    def register_forward_hook(self, hook):
        """``hook(module, inputs, output) -> None or new output`` runs after every forward."""
        h = RemovableHandle(self._forward_hooks)
        self._forward_hooks[h.id] = hook
        return h

    def register_forward_pre_hook(self, hook):
        """``hook(module, inputs) -> None or new inputs`` runs before every forward."""
        h = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[h.id] = hook
        return h

    # ------------------------------------------------------------------ registration
    def _check_name(self, name, kind):
        if not isinstance(name, str):
            raise InvalidArgumentError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise InvalidArgumentError(f"{kind} name can't be empty or contain '.', got {name!r}")
        if "_parameters" not in self.__dict__:
            raise InvalidArgumentError(f"cannot assign {kind} {name!r} before Module.__init__() call")

    def register_parameter(self, name: str, param) -> None:
        """Add a parameter (or ``None``, a declared-but-absent parameter like a disabled bias)."""
        self._check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise InvalidArgumentError(f"attribute {name!r} already exists on {type(self).__name__}")
        if param is not None and not isinstance(param, Parameter):
            raise InvalidArgumentError(
                f"cannot assign an object of type {type(param).__name__} as parameter {name!r} "
                f"(minigen.nn.Parameter or None expected)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a buffer: state that is saved (``persistent=True``) but not trained, e.g. running statistics."""
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise InvalidArgumentError(f"attribute {name!r} already exists on {type(self).__name__}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise InvalidArgumentError(
                f"cannot assign an object of type {type(tensor).__name__} as buffer {name!r} (Tensor or None expected)")
        if isinstance(tensor, Buffer):
            tensor = Tensor._make(tensor.array)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module) -> None:
        """Add a child module (``None`` allowed, as in PyTorch)."""
        self._check_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise InvalidArgumentError(f"attribute {name!r} already exists on {type(self).__name__}")
        if module is not None and not isinstance(module, Module):
            raise InvalidArgumentError(f"{type(module).__name__} is not a Module subclass (child {name!r})")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")

        def remove_from(*dicts):
            for dd in dicts:
                if name in dd:
                    del dd[name]
            d.pop(name, None)

        if isinstance(value, Parameter):
            if params is None:
                raise InvalidArgumentError("cannot assign parameters before Module.__init__() call")
            remove_from(self._buffers, self._modules)
            self._non_persistent.discard(name)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise InvalidArgumentError(
                    f"cannot assign an object of type {type(value).__name__} as parameter {name!r} "
                    f"(minigen.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                raise InvalidArgumentError("cannot assign a submodule before Module.__init__() call")
            remove_from(self._parameters, self._buffers)
            self._non_persistent.discard(name)
            self._modules[name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise InvalidArgumentError(
                    f"cannot assign an object of type {type(value).__name__} as child module {name!r} "
                    f"(Module or None expected)")
            d["_modules"][name] = None
        elif isinstance(value, Buffer):
            if params is None:
                raise InvalidArgumentError("cannot assign a buffer before Module.__init__() call")
            remove_from(self._parameters, self._modules)
            self.register_buffer(name, value, value.persistent)
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise InvalidArgumentError(
                    f"cannot assign an object of type {type(value).__name__} as buffer {name!r} (Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            r = d.get(reg)
            if r is not None and name in r:
                return r[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for reg in ("_parameters", "_buffers", "_modules"):
            r = self.__dict__[reg]
            if name in r:
                del r[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = list(object.__dir__(self))
        keys += list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(k for k in keys if not k[0].isdigit()))

    def get_submodule(self, target: str) -> "Module":
        """``m.get_submodule('encoder.layers.0')``."""
        _check_str(target, "get_submodule", "target")
        mod = self
        if target == "":
            return mod
        for item in target.split("."):
            if item not in mod._modules or mod._modules[item] is None:
                raise InvalidArgumentError(f"{type(mod).__name__} has no submodule {item!r} (looking for {target!r})")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target: str):
        _check_str(target, "get_parameter", "target")
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise InvalidArgumentError(f"{type(mod).__name__} has no parameter {name!r} (looking for {target!r})")
        return mod._parameters[name]

    def get_buffer(self, target: str):
        _check_str(target, "get_buffer", "target")
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._buffers:
            raise InvalidArgumentError(f"{type(mod).__name__} has no buffer {name!r} (looking for {target!r})")
        return mod._buffers[name]

    # ------------------------------------------------------------------ iteration
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """Yield ``(dotted_name, module)`` for this module and every descendant (pre-order)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from m.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, get_members, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for k, v in get_members(mod):
                if v is None:
                    continue
                if remove_duplicate:
                    if id(v) in seen:
                        continue
                    seen.add(id(v))
                yield mod_prefix + ("." if mod_prefix else "") + k, v

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Yield ``(name, Parameter)``; a parameter shared by two submodules is yielded once."""
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True):
        """Set training mode (dropout active, batch norm uses batch statistics) on every submodule."""
        if not isinstance(mode, bool):
            raise InvalidArgumentError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        """``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (to None, or to zeros with ``set_to_none=False``)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = Tensor._make(get_array_module(p.grad.array).zeros_like(p.grad.array))

    # ------------------------------------------------------------------ conversion
    def _apply_arrays(self, fn):
        """Replace every parameter's, gradient's and buffer's array by ``fn(array)``, in place."""
        for m in self.modules():
            for p in m._parameters.values():
                if p is None:
                    continue
                new = fn(p.array)
                if new is not p.array:
                    p.array = new
                    p._vc[0] += 1
                if p.grad is not None:
                    p.grad = Tensor._make(fn(p.grad.array))
            for k, b in m._buffers.items():
                if b is not None:
                    new = fn(b.array)
                    if new is not b.array:
                        b.array = new
                        b._vc[0] += 1
        return self

    def to(self, *args, dtype=None, device=None):
        """``m.to(mg.float64)``, ``m.to('cuda')``, ``m.to('cpu', mg.float32)``, ``m.to(tensor)``.

        Floating point parameters and buffers get the dtype (integer buffers such as
        ``num_batches_tracked`` keep theirs); everything moves to the device.
        The Parameter objects are kept, only their arrays change.
        """
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) or type(a).__name__ == "Device":
                device = a
            else:
                dtype = a
        dt = as_dtype(dtype) if dtype is not None else None
        if dt is not None and dt.kind not in "fc":
            raise InvalidArgumentError(f"Module.to only accepts floating point dtypes, got {dt}")
        dev = as_device(device) if device is not None else None

        def convert(arr):
            out = arr
            if dt is not None and arr.dtype.kind in "fc" and arr.dtype != dt:
                out = out.astype(dt)
            if dev is not None:
                out = move_array(out, dev)
            return out

        return self._apply_arrays(convert)

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def half(self):
        return self.to(dtype=np.float16)

    def cpu(self):
        return self.to(device="cpu")

    def cuda(self, device=None):
        return self.to(device="cuda" if device is None else f"cuda:{device}")

    def apply(self, fn):
        """Call ``fn(m)`` on every submodule (children first) and on this module; e.g. custom init."""
        check_callable(fn, "Module.apply", "fn")
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ state dict
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered ``{dotted name: Tensor}`` of parameters and persistent buffers.

        Keys are PyTorch's for the same architecture (``'0.weight'``, ``'bn.running_mean'``...).
        The tensors share storage with the module (detached, unless ``keep_vars=True``).
        """
        if destination is None:
            destination = OrderedDict()
        elif not isinstance(destination, dict):
            raise InvalidArgumentError(f"Module.state_dict: destination must be a dict, got {brief(destination)}")
        _check_str(prefix, "state_dict", "prefix")
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def _load_hook(self, state_dict, prefix):
        """Subclasses may fix up old or foreign state dicts here (called before loading)."""

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict`` into this module.

        Values may be minigen Tensors or anything ``numpy.asarray`` accepts (e.g. a
        NumPy array, a CPU torch tensor). Returns ``IncompatibleKeys(missing_keys,
        unexpected_keys)``. With ``strict=True`` any missing or unexpected key is an
        error; a shape mismatch is always an error. The error
        (:class:`minigen.errors.CheckpointError`) lists every problem, and nothing is
        modified when it is raised.
        """
        if not hasattr(state_dict, "keys"):
            raise InvalidArgumentError(f"load_state_dict expects a dict, got {type(state_dict).__name__}")
        state_dict = OrderedDict(state_dict)
        for prefix, m in self.named_modules():
            m._load_hook(state_dict, prefix + "." if prefix else "")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        plan = []
        for k, target in own.items():
            if k not in state_dict:
                continue
            arr = _as_array(state_dict[k])
            if tuple(arr.shape) != tuple(target.shape):
                mismatched.append(f"{k}: checkpoint shape {tuple(arr.shape)}, model shape {tuple(target.shape)}")
                continue
            plan.append((target, arr))
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        if problems:
            raise CheckpointError(
                f"error(s) in loading state_dict for {type(self).__name__}:\n  " + "\n  ".join(problems))
        with no_grad():
            for target, arr in plan:
                arr = move_array(arr, target.device)
                if assign:
                    target.array = arr.astype(target.dtype, copy=True)
                else:
                    target.array[...] = arr.astype(target.dtype, copy=False)
                target._vc[0] += 1
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """One line of the layer's settings, shown inside ``Name(...)`` by repr."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, m in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(m), 2))
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)
