"""Image grid PNG and loss-curve PNG."""
import numpy as np
import pytest
from PIL import Image

import minigen as mg
from minigen.data import make_grid, plot_curves, save_image_grid
from minigen.errors import ShapeError


def test_make_grid_layout_hand_case():
    imgs = np.stack([np.full((1, 2, 2), v) for v in (0.25, 0.5, 1.0)])  # 3 grey 2x2 images
    g = make_grid(imgs, nrow=2, padding=1, pad_value=0.0)
    # 2 columns, 2 rows: H = 2*(2+1)+1 = 7, W = 7
    assert g.shape == (1, 7, 7)
    assert np.all(g[0, 1:3, 1:3] == 0.25) and np.all(g[0, 1:3, 4:6] == 0.5) and np.all(g[0, 4:6, 1:3] == 1.0)
    assert np.all(g[0, 4:6, 4:6] == 0.0) and g[0, 0, 0] == 0.0 and g[0, 3, 3] == 0.0


def test_normalize_and_value_range():
    imgs = np.array([[[[-1.0, 1.0]]]])
    assert make_grid(imgs, padding=0, normalize=True).tolist() == [[[0.0, 1.0]]]
    assert make_grid(imgs, padding=0, normalize=True, value_range=(-1, 3)).tolist() == [[[0.0, 0.5]]]
    assert make_grid(imgs, padding=0).tolist() == [[[0.0, 1.0]]]  # clipped
    two = np.array([[[[0.0, 2.0]]], [[[0.0, 4.0]]]])
    assert make_grid(two, padding=0, normalize=True, scale_each=True).tolist() == [[[0.0, 1.0, 0.0, 1.0]]]


def test_save_image_grid_png_readable(tmp_path):
    x = mg.rand(10, 1, 5, 4)
    p = save_image_grid(x, tmp_path / "sub" / "grid.png", nrow=4, padding=2)
    im = Image.open(p)
    assert im.format == "PNG" and im.mode == "L"
    assert im.size == (4 * (4 + 2) + 2, 3 * (5 + 2) + 2)  # (W, H)
    a = np.asarray(im)
    assert np.array_equal(a[2:7, 2:6], np.round(x.numpy()[0, 0] * 255).astype(np.uint8))
    rgb = save_image_grid(np.random.default_rng(0).random((2, 3, 4, 4)), tmp_path / "rgb.png", normalize=True)
    assert Image.open(rgb).mode == "RGB"
    with pytest.raises(ShapeError, match="channels"):
        save_image_grid(np.zeros((2, 2, 4, 4)), tmp_path / "bad.png")


def test_plot_curves_png(tmp_path):
    p = plot_curves({"train": [(0, 2.0), (10, 1.0), (20, 0.5)], "val": [1.5, 0.9]}, tmp_path / "loss.png",
                    title="loss", logy=True)
    im = Image.open(p)
    assert im.format == "PNG" and im.size == (640, 400)
    assert np.asarray(im.convert("L")).std() > 5  # something was drawn
