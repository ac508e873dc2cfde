"""Learning-rate schedules (``minigen.optim.lr_scheduler``), PyTorch's names and semantics.

A scheduler wraps an optimizer. Construction records each group's starting
learning rate as ``base_lr`` (``group['initial_lr']``) and sets the lr for
epoch 0; each ``scheduler.step()`` (after ``optimizer.step()``) advances
``last_epoch`` by one and writes the new lr into every param group.

Every schedule here is written in *closed form*: lr(t) is computed from the
base lr and t = ``last_epoch`` (the formula is in each docstring), so it
matches PyTorch's sequence to rounding and ``load_state_dict`` resumes exactly.
(PyTorch computes most schedules recursively from the current lr, which also
lets several schedulers be chained on one optimizer; minigen's closed forms
each own the lr, so use one scheduler per optimizer, or ``SequentialLR``.)
``ReduceLROnPlateau`` reacts to a metric and is inherently stateful.
"""
from __future__ import annotations

import math
from bisect import bisect_right

from ..argcheck import check_callable, check_int_value, check_iterable, check_number, check_size
from ..errors import InvalidArgumentError
from .optimizer import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
           "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "ReduceLROnPlateau",
           "WarmupCosineLR", "SequentialLR"]


def _check(op, optimizer, **args):
    """Check a scheduler's arguments (the one place they are validated): ``name=(value, kind)`` where kind is
    ``"int>=K"`` (an int, not a bool, at least K), ``"num"`` / ``"num>=0"`` / ``"num>0"`` (a real number, not
    NaN; ``"nums"``...: or a list of them, one per param group), ``"fn"`` (a callable, or one per param group) or ``"ints"`` (an iterable of ints, milestones)."""
    if not isinstance(optimizer, Optimizer):
        raise InvalidArgumentError(f"{op}: {type(optimizer).__name__} is not a minigen Optimizer")
    for name, (v, kind) in args.items():
        if kind.startswith("int>="):
            check_size(v, op, name, minimum=int(kind[5:]))
        elif kind.startswith("num"):  # a number ("nums...": or a list of them, one per param group)
            lo = 0.0 if kind.endswith((">=0", ">0")) else None
            for e in (v if isinstance(v, (list, tuple)) and kind.startswith("nums") else [v]):
                if check_number(e, op, name, lo=lo) == 0 and kind.endswith(">0"):
                    raise InvalidArgumentError(f"{op}: {name} must be > 0, got {v}")
        elif kind == "fn":
            for f in (v if isinstance(v, (list, tuple)) else [v]):
                check_callable(f, op, name)
        elif kind == "ints":
            vals = v if isinstance(v, dict) else check_iterable(v, op, name)
            for m in vals:
                check_size(m, op, f"an entry of {name}", minimum=0)


def _per_group(value, n, name):
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise InvalidArgumentError(f"expected {n} values for {name} (one per param group), got {len(value)}")
        return list(value)
    return [value] * n


class LRScheduler:
    """Base class: subclasses implement ``lr_at(base_lr, t, group_index)`` (closed form) or ``get_lr()``."""

    def __init__(self, optimizer, last_epoch: int = -1):
        _check(type(self).__name__, optimizer, last_epoch=(last_epoch, "int>=-1"))
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", g["lr"])
        else:
            for i, g in enumerate(optimizer.param_groups):
                if "initial_lr" not in g:
                    raise InvalidArgumentError(f"param 'initial_lr' is not specified in param_groups[{i}] when "
                                               f"resuming an optimizer (last_epoch={last_epoch})")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def lr_at(self, base_lr, t, i):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_lr(self):
        """The learning rates for the current ``last_epoch``."""
        return [self.lr_at(b, self.last_epoch, i) for i, b in enumerate(self.base_lrs)]

    def step(self, epoch=None):
        """Advance one step (or jump to ``epoch``) and write the new lr into every param group."""
        self._step_count += 1
        self.last_epoch = self.last_epoch + 1 if epoch is None else check_int_value(epoch, type(self).__name__,
                                                                                     "epoch")
        lrs = self.get_lr()
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates set by the last ``step()``."""
        return self._last_lr

    def state_dict(self) -> dict:
        """Everything but the optimizer (and functions, which are not data)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer" and not callable(v)
                and not (isinstance(v, list) and any(callable(x) for x in v))}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved. Only this scheduler's own entries are accepted, with the kind
        of value they hold now (another scheduler's or a garbled state raises here, not at the next step)."""
        op = type(self).__name__
        if not isinstance(state_dict, dict):
            raise InvalidArgumentError(f"{op}.load_state_dict expects a dict, got {type(state_dict).__name__}")
        mine = self.state_dict()
        unknown = sorted(str(k) for k in state_dict if k not in mine)
        if unknown:
            raise InvalidArgumentError(f"{op}.load_state_dict: unexpected key(s) {unknown} (a state saved by another "
                                       f"scheduler?); expected {sorted(mine)}")
        for k, v in state_dict.items():
            cur = mine[k]
            ok = (v is None or cur is None or isinstance(v, type(cur))
                  or (isinstance(cur, (int, float)) and isinstance(v, (int, float)))
                  or (isinstance(cur, (list, tuple, dict)) and isinstance(v, (list, tuple, dict))))
            if not ok or isinstance(v, bool) != isinstance(cur, bool):
                raise InvalidArgumentError(f"{op}.load_state_dict: {k!r} should be a {type(cur).__name__}, got "
                                           f"{type(v).__name__}")
        if "last_epoch" in state_dict:
            check_size(state_dict["last_epoch"], op, "last_epoch", minimum=-1)
        self.__dict__.update(state_dict)


_LRScheduler = LRScheduler


class LambdaLR(LRScheduler):
    """lr(t) = base_lr * lr_lambda(t)  (one function, or one per param group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        _check(type(self).__name__, optimizer, lr_lambda=(lr_lambda, "fn"))
        self.lr_lambdas = _per_group(lr_lambda, len(optimizer.param_groups), "lr_lambda")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t, i):
        return base_lr * self.lr_lambdas[i](t)

    def state_dict(self):
        sd = super().state_dict()
        sd["lr_lambdas"] = [None] * len(self.lr_lambdas)
        return sd

    def load_state_dict(self, state_dict):
        sd = dict(state_dict)
        sd.pop("lr_lambdas", None)
        super().load_state_dict(sd)


class MultiplicativeLR(LRScheduler):
    """lr(t) = lr(t - 1) * lr_lambda(t) for t >= 1 (so lr(t) = base_lr * prod_{s=1..t} lr_lambda(s))."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        _check(type(self).__name__, optimizer, lr_lambda=(lr_lambda, "fn"))
        self.lr_lambdas = _per_group(lr_lambda, len(optimizer.param_groups), "lr_lambda")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch > 0:
            return [g["lr"] * f(self.last_epoch) for g, f in zip(self.optimizer.param_groups, self.lr_lambdas)]
        return [g["lr"] for g in self.optimizer.param_groups]

    state_dict = LambdaLR.state_dict
    load_state_dict = LambdaLR.load_state_dict


class StepLR(LRScheduler):
    """lr(t) = base_lr * gamma ** floor(t / step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        _check("StepLR", optimizer, step_size=(step_size, "int>=1"), gamma=(gamma, "num"))
        if int(step_size) <= 0:
            raise InvalidArgumentError(f"step_size must be a positive int, got {step_size}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t, i):
        return base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """lr(t) = base_lr * gamma ** (number of milestones <= t)  (a repeated milestone counts twice)."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        _check("MultiStepLR", optimizer, milestones=(milestones, "ints"), gamma=(gamma, "num"))
        self.milestones = _milestone_list(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t, i):
        return base_lr * self.gamma ** bisect_right(self.milestones, t)

    def load_state_dict(self, state_dict):
        sd = dict(state_dict)
        if "milestones" in sd:
            sd["milestones"] = _milestone_list(sd["milestones"])
        super().load_state_dict(sd)


def _milestone_list(milestones):
    """A sorted list of milestones with repeats; also accepts PyTorch's Counter {milestone: count}
    (whose keys may have become strings in a JSON checkpoint)."""
    if isinstance(milestones, dict):
        return sorted(int(k) for k, n in milestones.items() for _ in range(int(n)))
    return sorted(int(m) for m in milestones)


class ConstantLR(LRScheduler):
    """lr(t) = base_lr * factor for t < total_iters, then base_lr."""

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1):
        _check("ConstantLR", optimizer, factor=(factor, "num"), total_iters=(total_iters, "int>=0"))
        if not 0 <= factor <= 1:
            raise InvalidArgumentError(f"ConstantLR factor must be in [0, 1], got {factor}")
        self.factor, self.total_iters = factor, int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t, i):
        return base_lr * (self.factor if t < self.total_iters else 1.0)


class LinearLR(LRScheduler):
    """lr(t) = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        _check("LinearLR", optimizer, start_factor=(start_factor, "num"), end_factor=(end_factor, "num"),
               total_iters=(total_iters, "int>=0"))
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise InvalidArgumentError(f"LinearLR needs 0 < start_factor <= 1 and 0 <= end_factor <= 1, got "
                                       f"{start_factor}, {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t, i):
        frac = min(t, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class ExponentialLR(LRScheduler):
    """lr(t) = base_lr * gamma ** t."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        _check("ExponentialLR", optimizer, gamma=(gamma, "num"))
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t, i):
        return base_lr * self.gamma ** t


class CosineAnnealingLR(LRScheduler):
    """lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2   (SGDR without restarts;
    past T_max the cosine keeps going, so the lr rises again, as in PyTorch)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        _check("CosineAnnealingLR", optimizer, T_max=(T_max, "int>=1"), eta_min=(eta_min, "num"))
        if T_max <= 0:
            raise InvalidArgumentError(f"T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t, i):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter, 2017): lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2,
    where T_cur counts steps since the last restart and the period T_i starts at T_0 and is
    multiplied by T_mult after each restart."""

    def __init__(self, optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1):
        _check("CosineAnnealingWarmRestarts", optimizer, T_0=(T_0, "int>=1"), T_mult=(T_mult, "int>=1"),
               eta_min=(eta_min, "num"))
        if T_0 <= 0 or not isinstance(T_0, int):
            raise InvalidArgumentError(f"T_0 must be a positive int, got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise InvalidArgumentError(f"T_mult must be an int >= 1, got {T_mult}")
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        super().__init__(optimizer, last_epoch)

    def _position(self, t):
        if self.T_mult == 1:
            return t % self.T_0, self.T_0
        if t < self.T_0:
            return t, self.T_0
        n = int(math.log(t / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
        start = self.T_0 * (self.T_mult ** n - 1) // (self.T_mult - 1)
        period = self.T_0 * self.T_mult ** n
        if t - start >= period:  # guard against log rounding
            start, period, n = start + period, period * self.T_mult, n + 1
        elif t < start:
            period //= self.T_mult
            start -= period
        return t - start, period

    def lr_at(self, base_lr, t, i):
        t_cur, t_i = self._position(t)
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


class WarmupCosineLR(LRScheduler):
    """Linear warmup, then cosine decay to ``min_lr``, then constant (nanoGPT's schedule).

    With lr the group's base lr and t = last_epoch (the iteration number)::

        t <  warmup_iters:                 lr(t) = lr * (t + 1) / (warmup_iters + 1)
        t >  lr_decay_iters:               lr(t) = min_lr
        otherwise, r = (t - warmup_iters) / (lr_decay_iters - warmup_iters):
                                           lr(t) = min_lr + (1 + cos(pi * r)) / 2 * (lr - min_lr)

    so the lr reaches ``lr`` at t = warmup_iters and ``min_lr`` at t = lr_decay_iters.
    ``min_lr`` is absolute (one value, or one per param group). A minigen schedule
    (PyTorch has no single class for it).
    """

    def __init__(self, optimizer, warmup_iters: int, lr_decay_iters: int, min_lr=0.0, last_epoch: int = -1):
        _check("WarmupCosineLR", optimizer, warmup_iters=(warmup_iters, "int>=0"),
               lr_decay_iters=(lr_decay_iters, "int>=0"), min_lr=(min_lr, "nums"))
        if warmup_iters < 0 or lr_decay_iters < warmup_iters:
            raise InvalidArgumentError(f"need 0 <= warmup_iters <= lr_decay_iters, got warmup_iters={warmup_iters}, "
                                       f"lr_decay_iters={lr_decay_iters}")
        self.warmup_iters, self.lr_decay_iters = int(warmup_iters), int(lr_decay_iters)
        self.min_lrs = _per_group(min_lr, len(optimizer.param_groups), "min_lr")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t, i):
        min_lr = self.min_lrs[i]
        if t < self.warmup_iters:
            return base_lr * (t + 1) / (self.warmup_iters + 1)
        if t > self.lr_decay_iters or self.lr_decay_iters == self.warmup_iters:
            return min_lr
        r = (t - self.warmup_iters) / (self.lr_decay_iters - self.warmup_iters)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * r)) * (base_lr - min_lr)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018).

    lr rises from ``initial_lr = max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start * total_steps - 1`` steps, then anneals to ``min_lr = initial_lr / final_div_factor``
    at step ``total_steps - 1``. ``three_phase=True``: up to max_lr, back down to initial_lr
    (ending at step ``2 * pct_start * total_steps - 2``), then down to min_lr. Within a phase from
    ``a`` to ``b`` at fraction ``x`` of the way:

        cos:     lr = b + (a - b) * (1 + cos(pi * x)) / 2
        linear:  lr = a + (b - a) * x

    With ``cycle_momentum`` the momentum (or Adam's beta1) moves the opposite way, between
    ``max_momentum`` and ``base_momentum``. Stepping past ``total_steps`` is an error.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        _check("OneCycleLR", optimizer, pct_start=(pct_start, "num"), base_momentum=(base_momentum, "nums"),
               max_momentum=(max_momentum, "nums"), div_factor=(div_factor, "num>0"),
               final_div_factor=(final_div_factor, "num>0"),
               **{k: (v, "int>=1") for k, v in (("total_steps", total_steps), ("epochs", epochs),
                                                 ("steps_per_epoch", steps_per_epoch)) if v is not None})
        for lr in (max_lr if isinstance(max_lr, (list, tuple)) else [max_lr]):
            check_number(lr, "OneCycleLR", "max_lr", lo=0.0)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise InvalidArgumentError("OneCycleLR needs total_steps, or both epochs and steps_per_epoch")
            if epochs <= 0 or steps_per_epoch <= 0:
                raise InvalidArgumentError(f"epochs and steps_per_epoch must be positive, got {epochs}, "
                                           f"{steps_per_epoch}")
            total_steps = epochs * steps_per_epoch
        if total_steps <= 0:
            raise InvalidArgumentError(f"total_steps must be positive, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise InvalidArgumentError(f"pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise InvalidArgumentError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy, self.cycle_momentum = int(total_steps), anneal_strategy, cycle_momentum
        n = len(optimizer.param_groups)
        max_lrs = _per_group(max_lr, n, "max_lr")
        if three_phase:
            self._phases = [
                (float(pct_start * self.total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (float(pct_start * self.total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        if last_epoch == -1:
            for g, m in zip(optimizer.param_groups, max_lrs):
                g["initial_lr"] = m / div_factor
                g["max_lr"] = m
                g["min_lr"] = g["initial_lr"] / final_div_factor
        if cycle_momentum:
            d = optimizer.defaults
            if "momentum" not in d and "betas" not in d:
                raise InvalidArgumentError("optimizer must support momentum or beta1 with cycle_momentum enabled")
            self._use_beta1 = "betas" in d
            bms = _per_group(base_momentum, n, "base_momentum")
            mms = _per_group(max_momentum, n, "max_momentum")
            if last_epoch == -1:
                for g, bm, mm in zip(optimizer.param_groups, bms, mms):
                    if self._use_beta1:
                        g["betas"] = (mm,) + tuple(g["betas"][1:])
                    else:
                        g["momentum"] = mm
                    g["max_momentum"], g["base_momentum"] = mm, bm
        super().__init__(optimizer, last_epoch)

    def _anneal(self, a, b, x):
        if self.anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * x) + 1)
        return (b - a) * x + a

    def get_lr(self):
        t = self.last_epoch
        if t > self.total_steps:
            raise InvalidArgumentError(f"OneCycleLR stepped {t} times but total_steps is {self.total_steps}")
        lrs = []
        for g in self.optimizer.param_groups:
            start = 0.0
            for k, (end, lr_a, lr_b, m_a, m_b) in enumerate(self._phases):
                if t <= end or k == len(self._phases) - 1:
                    x = (t - start) / (end - start)
                    lr = self._anneal(g[lr_a], g[lr_b], x)
                    if self.cycle_momentum:
                        mom = self._anneal(g[m_a], g[m_b], x)
                    break
                start = end
            lrs.append(lr)
            if self.cycle_momentum:
                if self._use_beta1:
                    g["betas"] = (mom,) + tuple(g["betas"][1:])
                else:
                    g["momentum"] = mom
        return lrs


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` (restarted at its epoch 0), ..."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        _check("SequentialLR", optimizer, milestones=(milestones, "ints"), last_epoch=(last_epoch, "int>=-1"))
        schedulers = check_iterable(schedulers, "SequentialLR", "schedulers")
        milestones = check_iterable(milestones, "SequentialLR", "milestones")
        if not schedulers or not all(isinstance(x, LRScheduler) for x in schedulers):
            raise InvalidArgumentError("SequentialLR: schedulers must be a non-empty list of LR schedulers")
        if len(milestones) != len(schedulers) - 1:
            raise InvalidArgumentError(f"SequentialLR needs len(milestones) == len(schedulers) - 1, got "
                                       f"{len(milestones)} and {len(schedulers)}")
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise InvalidArgumentError("SequentialLR: every scheduler must wrap the same optimizer")
        self._schedulers, self._milestones = list(schedulers), list(milestones)
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        # undo the lr changes the sub-schedulers made at construction; start the first one afresh
        for g, lr in zip(optimizer.param_groups, self.base_lrs):
            g["lr"] = lr
        self._schedulers[0].last_epoch = -1
        self._schedulers[0].step()
        self._last_lr = self._schedulers[0].get_last_lr()

    def step(self, epoch=None):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        s = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            s.last_epoch = -1
            s.step()
        else:
            s.step()
        self._last_lr = s.get_last_lr()

    def state_dict(self):
        sd = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict):
        sd = dict(state_dict)
        subs = sd.pop("_schedulers")
        self.__dict__.update(sd)
        for s, st in zip(self._schedulers, subs):
            s.load_state_dict(st)


def _metric(v) -> float:
    """The metric given to ReduceLROnPlateau.step: a real number or a one-element Tensor (NaN is kept, as in
    PyTorch: it never counts as an improvement)."""
    import numbers

    from ..tensor import Tensor

    if isinstance(v, Tensor) and v.numel() == 1:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise InvalidArgumentError(f"ReduceLROnPlateau.step: metrics must be a real number, got {type(v).__name__}")
    return float(v)


class ReduceLROnPlateau:
    """Multiply the lr by ``factor`` when a metric stops improving for ``patience`` epochs.

    ``step(metric)`` once per epoch. The metric improves when (mode 'min')
    metric < best * (1 - threshold) (``threshold_mode='rel'``) or metric < best - threshold ('abs');
    mode 'max' mirrors this. After more than ``patience`` epochs without improvement:
    lr = max(lr * factor, min_lr) (changes smaller than ``eps`` are skipped), then
    ``cooldown`` epochs during which bad epochs are not counted.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        _check("ReduceLROnPlateau", optimizer, factor=(factor, "num>=0"), patience=(patience, "int>=0"),
               threshold=(threshold, "num"), cooldown=(cooldown, "int>=0"), eps=(eps, "num>=0"))
        for m in (min_lr if isinstance(min_lr, (list, tuple)) else [min_lr]):
            check_number(m, "ReduceLROnPlateau", "min_lr", lo=0.0)
        if factor >= 1.0:
            raise InvalidArgumentError(f"factor should be < 1.0, got {factor}")
        if mode not in ("min", "max"):
            raise InvalidArgumentError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise InvalidArgumentError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not isinstance(optimizer, Optimizer):
            raise InvalidArgumentError(f"{type(optimizer).__name__} is not a minigen Optimizer")
        self.optimizer = optimizer
        self.factor, self.patience, self.threshold = factor, patience, threshold
        self.mode, self.threshold_mode, self.cooldown, self.eps = mode, threshold_mode, cooldown, eps
        self.min_lrs = _per_group(min_lr, len(optimizer.param_groups), "min_lr")
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def is_better(self, a, best):
        if self.mode == "min":
            return a < best * (1 - self.threshold) if self.threshold_mode == "rel" else a < best - self.threshold
        return a > best * (1 + self.threshold) if self.threshold_mode == "rel" else a > best + self.threshold

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def step(self, metrics, epoch=None):
        current = _metric(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else check_int_value(epoch, "ReduceLROnPlateau",
                                                                                     "epoch")
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(g["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        return self._last_lr

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
