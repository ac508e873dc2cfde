"""Image utilities: a grid of samples to PNG (Pillow) and training curves to PNG (matplotlib, headless).

Both import their plotting library only when called, so ``import minigen`` stays
light, and matplotlib is used through its object API with the Agg canvas (no
display, no global backend switch).
"""
from __future__ import annotations

import math
import os

import numpy as np

from .. import backend
from ..argcheck import check_number, check_path, check_size
from ..errors import InvalidArgumentError, ShapeError
from ..tensor import Tensor

__all__ = ["make_grid", "save_image_grid", "plot_curves"]


def _as_images(images) -> np.ndarray:
    if isinstance(images, Tensor):
        arr = backend.to_numpy(images.detach().array)
    elif isinstance(images, (list, tuple)):
        if not images:
            raise ShapeError("images: need at least one image, got an empty list")
        try:
            parts = [backend.to_numpy(i.detach().array) if isinstance(i, Tensor) else np.asarray(i) for i in images]
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(f"images: a list of images must hold arrays or Tensors ({e})") from None
        shapes = sorted({tuple(p.shape) for p in parts})
        if len(shapes) != 1:
            raise ShapeError(f"images: a list of images must share one shape, got shapes {shapes}")
        arr = np.stack(parts)
    elif isinstance(images, np.ndarray) or hasattr(images, "__cuda_array_interface__"):
        arr = backend.to_numpy(images)
    else:
        raise InvalidArgumentError(f"images must be a Tensor, an array or a list of them, got "
                                   f"{type(images).__name__}")
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"images must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 2:  # one H x W image
        arr = arr[None, None]
    elif arr.ndim == 3:  # N x H x W (grey)
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ShapeError(f"images must have shape (N, C, H, W), (N, H, W) or (H, W), got {arr.shape}")
    if arr.shape[1] not in (1, 3, 4):
        raise ShapeError(f"images must have 1, 3 or 4 channels (dim 1), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ShapeError("images: need at least one image")
    return arr.astype(np.float64)


def make_grid(images, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0.0):
    """Tile ``images`` (N, C, H, W) into one (C, H', W') float array in [0, 1].

    ``nrow`` images per row; ``padding`` pixels of ``pad_value`` around each image.
    With ``normalize``, values are mapped linearly from ``value_range`` (default:
    the min and max of the images, or of each image with ``scale_each``) to [0, 1];
    without it, values are only clipped to [0, 1].
    """
    x = _as_images(images)
    nrow = check_size(nrow, "make_grid", "nrow", 1)
    padding = check_size(padding, "make_grid", "padding", 0)
    check_number(pad_value, "make_grid", "pad_value")
    if nrow < 1 or padding < 0:
        raise InvalidArgumentError(f"make_grid: need nrow >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    if normalize:
        def norm(a, lo, hi):
            return (a - lo) / max(hi - lo, 1e-12)

        if value_range is not None:
            lo, hi = value_range
            if hi <= lo:
                raise InvalidArgumentError(f"make_grid: value_range must be (low, high) with low < high, "
                                           f"got {value_range}")
            x = norm(x, lo, hi)
        elif scale_each:
            x = np.stack([norm(a, a.min(), a.max()) for a in x])
        else:
            x = norm(x, x.min(), x.max())
    x = np.clip(x, 0.0, 1.0)
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    H, W = nrows * (h + padding) + padding, ncol * (w + padding) + padding
    grid = np.full((c, H, W), float(pad_value))
    for k in range(n):
        r, q = divmod(k, ncol)
        y0, x0 = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, y0:y0 + h, x0:x0 + w] = x[k]
    return grid


def save_image_grid(images, path, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False,
                    pad_value=0.0):
    """Write ``images`` (N, C, H, W) as one PNG grid (see :func:`make_grid` for the options). Returns the path."""
    from PIL import Image

    check_path(path, "save_image_grid")
    grid = make_grid(images, nrow, padding, normalize, value_range, scale_each, pad_value)
    u8 = np.round(grid * 255.0).astype(np.uint8)
    if u8.shape[0] == 1:
        img = Image.fromarray(u8[0])  # a 2-d uint8 array is a greyscale ("L") image
    else:
        img = Image.fromarray(np.ascontiguousarray(u8.transpose(1, 2, 0)))
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    img.save(path, format="PNG")
    return path


def _xy(series):
    """A list of values or of (step, value) pairs -> (steps, values)."""
    if isinstance(series, dict):
        items = sorted(series.items())
        return [float(k) for k, _ in items], [float(v) for _, v in items]
    series = list(series)
    if not series:
        return [], []
    first = series[0]
    if isinstance(first, (tuple, list)) and len(first) == 2:
        return [float(s) for s, _ in series], [float(v) for _, v in series]
    return list(range(len(series))), [float(v) for v in series]


def plot_curves(curves, path, title=None, xlabel="step", ylabel="value", logy=False, figsize=(6.4, 4.0)):
    """Plot named curves (``{'train loss': [(step, v), ...] or [v0, v1, ...]}``) to a PNG file. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(curves, dict) or not curves:
        raise InvalidArgumentError("plot_curves: curves must be a non-empty dict of name -> values")
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, series in curves.items():
        xs, ys = _xy(series)
        ax.plot(xs, ys, label=str(name), marker="o" if len(xs) <= 20 else None, markersize=3)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format="png")
    return path
