"""Pooling and resampling layers (thin wrappers around ``minigen.nn.functional``).

Max pooling: y[n, c, p] = max over the window at p * stride (padding with -inf);
average pooling: the window mean (``count_include_pad`` decides whether padded zeros count);
adaptive pooling: windows [floor(i * L / out), ceil((i + 1) * L / out)) so the output has a fixed size;
Upsample: nearest / (bi)linear interpolation by ``size`` or ``scale_factor``.
"""
from __future__ import annotations

from .. import functional as F
from ...argcheck import check_size, check_tensor
from ...errors import ShapeError
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
           "PixelShuffle", "PixelUnshuffle"]


class _MaxPoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max over windows of (N, C, L)."""

    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class MaxPool2d(_MaxPoolNd):
    """Max over windows of (N, C, H, W)."""

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class _AvgPoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Mean over windows of (N, C, L)."""

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Mean over windows of (N, C, H, W); ``divisor_override`` replaces the window size as divisor."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x):
        if self.divisor_override is None:
            return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                self.count_include_pad)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class _Adaptive(Module):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_Adaptive):
    def forward(self, x):
        return F.adaptive_avg_pool1d(x, self.output_size)


class AdaptiveAvgPool2d(_Adaptive):
    """Average pooling to a fixed (H_out, W_out); ``None`` in output_size keeps that input size."""

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)


class AdaptiveMaxPool1d(_Adaptive):
    def forward(self, x):
        return F.adaptive_max_pool1d(x, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_Adaptive):
    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor`` with ``mode`` 'nearest', 'linear', 'bilinear', 'bicubic'..."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__()
        self.size, self.mode, self.align_corners = size, mode, align_corners
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) else scale_factor
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        s = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return s + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """(N, C * r^2, H, W) -> (N, C, H * r, W * r): y[n, c, h*r + i, w*r + j] = x[n, c*r^2 + i*r + j, h, w]."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = check_size(upscale_factor, "PixelShuffle", "upscale_factor", minimum=1)

    def forward(self, x):
        r = self.upscale_factor
        check_tensor(x, "PixelShuffle")
        if x.ndim < 3 or x.shape[-3] % (r * r):
            raise ShapeError(f"PixelShuffle(upscale_factor={r}) expects an input of at least 3 dims whose channel dim "
                             f"(-3) is divisible by {r * r}, got shape {tuple(x.shape)}")
        *lead, c, h, w = x.shape
        y = x.reshape(tuple(lead) + (c // (r * r), r, r, h, w))
        k = len(lead)
        y = y.permute(tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2))
        return y.reshape(tuple(lead) + (c // (r * r), h * r, w * r))

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """The inverse of PixelShuffle: (N, C, H * r, W * r) -> (N, C * r^2, H, W)."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = check_size(downscale_factor, "PixelUnshuffle", "downscale_factor", minimum=1)

    def forward(self, x):
        r = self.downscale_factor
        check_tensor(x, "PixelUnshuffle")
        if x.ndim < 3 or x.shape[-1] % r or x.shape[-2] % r:
            raise ShapeError(f"PixelUnshuffle(downscale_factor={r}) expects an input of at least 3 dims whose last "
                             f"two dims are divisible by {r}, got shape {tuple(x.shape)}")
        *lead, c, hr, wr = x.shape
        h, w = hr // r, wr // r
        y = x.reshape(tuple(lead) + (c, h, r, w, r))
        k = len(lead)
        y = y.permute(tuple(range(k)) + (k, k + 2, k + 4, k + 1, k + 3))
        return y.reshape(tuple(lead) + (c * r * r, h, w))

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
