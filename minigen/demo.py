"""``minigen demo``: a quick tour on the data shipped with the package, results written to ``out/``.

For now it trains the MNIST MLP for about one epoch on the bundled 9k/1k split
and writes its metrics, loss curve, checkpoint, and a grid of validation digits
with the model's predictions. (The model zoo extends :func:`run_demo`.)
"""
from __future__ import annotations

import os
import time

__all__ = ["add_demo_arguments", "run_demo"]


def add_demo_arguments(parser) -> None:
    parser.add_argument("--out", default="out", help="output folder (default out/)")
    parser.add_argument("--epochs", type=int, default=1, help="MLP epochs (default 1)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only (quick check)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_demo(args) -> int:
    import numpy as np

    import minigen as mg
    from .data import BundledMNIST, save_image_grid
    from .train import train_mnist

    out = args.out
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    print(f"minigen demo: MNIST MLP on the bundled 9k/1k split, {args.epochs} epoch(s) -> {out}/mnist-mlp")
    res = train_mnist("mlp", epochs=args.epochs, out=os.path.join(out, "mnist-mlp"), seed=args.seed,
                      limit=args.limit, progress=False if args.no_progress else None)
    if res["interrupted"]:
        return 130
    # a picture of what the model does: 64 validation digits, in rows, with the predictions printed below
    from .io import load
    from .train import mnist_model

    model = mnist_model("mlp")
    model.load_state_dict(load(res["checkpoint"])["model"])
    model.eval()
    val = BundledMNIST("val")
    x = mg.Tensor(val.images[:64])
    with mg.no_grad():
        pred = np.asarray(model(x).detach().numpy()).argmax(-1)
    grid = save_image_grid(x, os.path.join(out, "mnist_val_predictions.png"), nrow=8)
    rows = [" ".join(str(p) for p in pred[i:i + 8]) for i in range(0, 64, 8)]
    with open(os.path.join(out, "mnist_val_predictions.txt"), "w", encoding="utf-8") as f:
        f.write("predicted digits for mnist_val_predictions.png (row by row)\n" + "\n".join(rows) + "\n")
    correct = int((pred == val.labels[:64]).sum())
    print(f"wrote {grid} ({correct}/64 of these digits predicted correctly)")
    print(f"demo finished in {time.perf_counter() - t0:.1f}s; val accuracy {res.get('val_acc', float('nan')):.4f}")
    return 0
