r"""Weight averaging (``torch.optim.swa_utils``): stochastic weight averaging (Izmailov et al., 2018) and
exponential moving averages of a model's weights (the "EMA generator" of GAN and diffusion training).

- :class:`AveragedModel` keeps a copy of a model and, on each ``update_parameters(model)``, folds the model's
  current parameters into it. The first call copies them; call n + 1 (n = ``n_averaged``) then applies::

      SWA (default):       w_avg = w_avg + (w - w_avg) / (n + 1)        (the plain mean of all calls)
      EMA (get_ema_*_fn):  w_avg = decay * w_avg + (1 - decay) * w

  With ``use_buffers=True`` buffers (BatchNorm statistics) are averaged too; otherwise they are copied.
- :func:`update_bn` recomputes BatchNorm running statistics with one pass over a loader (cumulative average).
- :class:`SWALR` anneals each group's lr from its value to ``swa_lr`` over ``anneal_epochs`` steps::

      alpha(t) = t (linear) or (1 - cos(pi t)) / 2 (cos),  t = min(1, step / anneal_epochs)
      lr = swa_lr * alpha(t) + lr_0 * (1 - alpha(t))   (lr_0 recovered from the previous step's lr)
"""
from __future__ import annotations

import copy
import itertools
import math

from ..autograd.grad_mode import no_grad
from ..errors import InvalidArgumentError
from ..nn.modules.module import Module
from ..tensor import Tensor, tensor as _tensor
from .lr_scheduler import LRScheduler

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay):
    from ..argcheck import check_number

    return check_number(decay, "get_ema_avg_fn", "decay", 0.0, 1.0)


def _lerp_(a, b, w):
    """a <- a + w (b - a) in place on the arrays (PyTorch's lerp: the other form for w >= 0.5)."""
    if w < 0.5:
        a.array[...] = a.array + w * (b.array - a.array)
    else:
        a.array[...] = b.array - (b.array - a.array) * (1 - w)


def get_ema_multi_avg_fn(decay=0.999):
    """In-place EMA over lists of tensors: w_avg = decay * w_avg + (1 - decay) * w."""
    decay = _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _):
        with no_grad():
            for a, b in zip(ema_param_list, current_param_list):
                if a.dtype.kind in "fc":
                    _lerp_(a, b, 1 - decay)
                else:
                    a.array[...] = (a.array * decay + b.array * (1 - decay)).astype(a.dtype)
    return ema_update


def get_swa_multi_avg_fn():
    """In-place running mean over lists of tensors: w_avg = w_avg + (w - w_avg) / (n + 1)."""
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = float(num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged)
        with no_grad():
            for a, b in zip(averaged_param_list, current_param_list):
                if a.dtype.kind in "fc":
                    _lerp_(a, b, 1 / (n + 1))
                else:
                    a.array[...] = (a.array + (b.array - a.array) / (n + 1)).astype(a.dtype)
    return swa_update


def get_ema_avg_fn(decay=0.999):
    """EMA of one tensor: returns decay * w_avg + (1 - decay) * w."""
    decay = _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """Running mean of one tensor: returns w_avg + (w - w_avg) / (n + 1)."""
    def swa_update(averaged_param, current_param, num_averaged):
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose weights are the running average (SWA) or EMA of ``model``'s weights (see the
    module docstring). ``forward`` calls the averaged copy; ``n_averaged`` is a buffer (saved in state_dict)."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if not isinstance(model, Module):
            raise InvalidArgumentError(f"AveragedModel expects a Module, got {type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise InvalidArgumentError("AveragedModel: give avg_fn or multi_avg_fn, not both")
        for name, fn in (("avg_fn", avg_fn), ("multi_avg_fn", multi_avg_fn)):
            if fn is not None and not callable(fn):
                raise InvalidArgumentError(f"AveragedModel: {name} must be callable, got {type(fn).__name__}")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", _tensor(0, dtype="int64"))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = bool(use_buffers)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model):
        """Fold ``model``'s current parameters (and buffers with ``use_buffers``) into the average."""
        if not isinstance(model, Module):
            raise InvalidArgumentError(f"update_parameters expects a Module, got {type(model).__name__}")
        mine = list(itertools.chain(self.module.parameters(), self.module.buffers()) if self.use_buffers
                    else self.module.parameters())
        theirs = list(itertools.chain(model.parameters(), model.buffers()) if self.use_buffers
                      else model.parameters())
        if len(mine) != len(theirs) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(mine, theirs)):
            raise InvalidArgumentError("update_parameters: the model's parameters do not match the averaged "
                                       "model's (a different architecture?)")
        theirs = [b.detach().to(a.device) for a, b in zip(mine, theirs)]
        n = int(self.n_averaged.item())
        with no_grad():
            if n == 0:
                for a, b in zip(mine, theirs):
                    a.array[...] = b.array
            elif self.avg_fn is not None:
                for a, b in zip(mine, theirs):
                    a.array[...] = self.avg_fn(a.detach(), b, self.n_averaged).array
            else:
                (self.multi_avg_fn or get_swa_multi_avg_fn())(mine, theirs, self.n_averaged)
            for a in mine:
                a._vc[0] += 1
            if not self.use_buffers:
                for a, b in zip(self.module.buffers(), model.buffers()):
                    a.array[...] = b.detach().to(a.device).array
            self.n_averaged.array[...] = n + 1


def update_bn(loader, model, device=None):
    """Recompute every BatchNorm's running statistics of ``model`` with one pass over ``loader`` (batches are
    tensors, or lists/tuples whose first item is the input), as a cumulative average (momentum None)."""
    from ..nn.modules.normalization import _BatchNorm

    if not isinstance(model, Module):
        raise InvalidArgumentError(f"update_bn expects a Module, got {type(model).__name__}")
    momenta = {}
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            momenta[m] = m.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for m in momenta:
        m.momentum = None
    try:
        with no_grad():
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if device is not None:
                    batch = batch.to(device)
                model(batch)
    finally:
        for m, mom in momenta.items():
            m.momentum = mom
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal every group's lr to ``swa_lr`` (a number or one per group) over ``anneal_epochs`` steps, by
    ``anneal_strategy`` 'cos' or 'linear', then hold it (see the module docstring)."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        from ..argcheck import check_number

        groups = getattr(optimizer, "param_groups", None)
        if not isinstance(groups, list):
            raise InvalidArgumentError(f"SWALR expects an optimizer, got {type(optimizer).__name__}")
        lrs = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else [swa_lr] * len(groups)
        if len(lrs) != len(groups):
            raise InvalidArgumentError(f"SWALR: {len(lrs)} swa_lr values for {len(groups)} param groups")
        for lr, g in zip(lrs, groups):
            g["swa_lr"] = check_number(lr, "SWALR", "swa_lr", lo=0.0)
        if anneal_strategy not in ("cos", "linear"):
            raise InvalidArgumentError(f"SWALR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if not isinstance(anneal_epochs, int) or isinstance(anneal_epochs, bool) or anneal_epochs < 0:
            raise InvalidArgumentError(f"SWALR: anneal_epochs must be an int >= 0, got {anneal_epochs!r}")
        self.anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _alpha(self, t):
        return t if self.anneal_strategy == "linear" else (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _initial_lr(lr, swa_lr, alpha):
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self._alpha(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev = [self._initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        alpha = self._alpha(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev)]
