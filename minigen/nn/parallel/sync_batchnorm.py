"""``SyncBatchNorm``: batch normalisation whose statistics are taken over the whole distributed batch.

With plain BatchNorm under DistributedDataParallel every rank normalises with the mean and variance of its own
shard (B samples); SyncBatchNorm uses those of all W·B samples, as one process with the whole batch would:

    N      = sum_r n_r                                  (n_r = elements per channel on rank r)
    mean_c = (1/N) sum_r sum_{i in r} x_ic
    var_c  = (1/N) sum_r sum_{i in r} (x_ic - mean_c)^2          (biased, used to normalise)
    y_ic   = (x_ic - mean_c) / sqrt(var_c + eps) * weight_c + bias_c

The two sums over ranks are differentiable all-reduces (:func:`minigen.distributed.functional.all_reduce`),
so the backward all-reduces the matching gradient sums and every rank's activations receive the gradient of
the global loss. Running statistics are updated as in BatchNorm, with the unbiased variance var_c·N/(N-1).
In eval mode, or without a multi-process group, it is exactly BatchNorm. Inputs (N, C, *) of any rank >= 2.
"""
from __future__ import annotations

import numpy as np

from ...autograd import no_grad
from ...errors import InvalidArgumentError, ShapeError
from ..modules.normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, *) whose batch statistics are all-reduced across ``process_group`` (default: world)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, x):
        if x.ndim < 2:
            raise ShapeError(f"SyncBatchNorm expects an input (N, C, *) of at least 2 dims, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ShapeError(f"SyncBatchNorm({self.num_features}) got an input with {x.shape[1]} channels "
                             f"(shape {tuple(x.shape)})")

    def _world(self):
        from ... import distributed as dist

        if not dist.is_initialized():
            return None
        g = self.process_group if self.process_group is not None else dist.process_group._require()
        return g if g.size > 1 else None

    def forward(self, x):
        self._check_input_dim(x)
        group = self._world() if self.training else None
        if group is None:
            return super().forward(x)
        from ...distributed import functional as dF
        from ...distributed.process_group import _host_group

        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.array += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.array)
        C = self.num_features
        dims = (0,) + tuple(range(2, x.ndim))
        shape = (1, C) + (1,) * (x.ndim - 2)
        count = np.array([x.numel() // C], np.float64)  # host-side, also under NCCL
        _host_group(group).all_reduce(count, "sum").wait()
        n = float(count[0])
        if n <= 1:
            raise InvalidArgumentError(f"SyncBatchNorm: expected more than 1 value per channel over all ranks in "
                                       f"training, got input shape {tuple(x.shape)} and {int(n)} in total")
        mean = dF.all_reduce(x.sum(dim=dims), group=group) / n
        xc = x - mean.reshape(shape)
        var = dF.all_reduce((xc * xc).sum(dim=dims), group=group) / n
        y = xc * ((var + self.eps) ** -0.5).reshape(shape)
        if self.weight is not None:
            y = y * self.weight.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.reshape(shape)
        if self.track_running_stats:
            with no_grad():
                rm, rv = self.running_mean.array, self.running_var.array
                rm[...] = (1 - factor) * rm + factor * mean.array.astype(rm.dtype)
                rv[...] = (1 - factor) * rv + factor * (var.array * (n / (n - 1))).astype(rv.dtype)
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Return ``module`` with every BatchNorm1d/2d/3d replaced by a SyncBatchNorm that shares its parameters
        and buffers (the module itself when it is a BatchNorm; children are replaced in place)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group)
            for name in ("weight", "bias"):
                out.register_parameter(name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                out.register_buffer(name, getattr(module, name))
            out.train(module.training)
        for name, child in list(module.named_children()):
            new = cls.convert_sync_batchnorm(child, process_group)
            if new is not child:
                out.add_module(name, new)
        return out
