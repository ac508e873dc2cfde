"""Loss modules vs torch.nn (same inputs, same weights buffers -> same loss and input gradients)."""
import numpy as np
import pytest

import minigen as mg
from minigen import nn
from minigen.errors import InvalidArgumentError
from conftest import requires_torch
from nn_testutil import compare_with_torch, gradcheck_module


def rnd(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


REDUCTIONS = ["mean", "sum", "none"]


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_vs_torch(reduction):
    import torch

    x, y = rnd(0, 3, 4), rnd(1, 3, 4)
    for name, kw in [("MSELoss", {}), ("L1Loss", {}), ("SmoothL1Loss", dict(beta=0.5)), ("HuberLoss", dict(delta=0.7))]:
        compare_with_torch(getattr(nn, name)(reduction=reduction, **kw),
                           getattr(torch.nn, name)(reduction=reduction, **kw), [x, y])
    var = np.abs(rnd(2, 3, 4)) + 0.1
    compare_with_torch(nn.GaussianNLLLoss(full=True, reduction=reduction),
                       torch.nn.GaussianNLLLoss(full=True, reduction=reduction), [x, y, var])


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_classification_losses_vs_torch(reduction):
    import torch

    logits = rnd(0, 5, 4)
    idx = np.array([0, 3, 1, 1, 2])
    w = np.abs(rnd(1, 4)) + 0.5
    for kw in [{}, dict(label_smoothing=0.1), dict(ignore_index=1)]:
        m, t = nn.CrossEntropyLoss(reduction=reduction, **kw), torch.nn.CrossEntropyLoss(reduction=reduction, **kw)
        compare_with_torch(m, t, [logits, mg.tensor(idx)], tcall=lambda t, xs: t(xs[0], torch.tensor(idx)))
    m = nn.CrossEntropyLoss(weight=mg.tensor(w), reduction=reduction)
    t = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), reduction=reduction)
    assert list(m.state_dict()) == list(t.state_dict()) == ["weight"]
    compare_with_torch(m, t, [logits, mg.tensor(idx)], tcall=lambda t, xs: t(xs[0], torch.tensor(idx)))
    probs = np.abs(rnd(3, 5, 4))
    probs /= probs.sum(1, keepdims=True)
    compare_with_torch(nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
                       [logits, probs])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    compare_with_torch(nn.NLLLoss(reduction=reduction), torch.nn.NLLLoss(reduction=reduction),
                       [logp, mg.tensor(idx)], tcall=lambda t, xs: t(xs[0], torch.tensor(idx)))
    p = 1 / (1 + np.exp(-logits))
    tgt = (rnd(4, 5, 4) > 0).astype(float)
    compare_with_torch(nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction), [p, tgt])
    pw = np.abs(rnd(5, 4)) + 0.5
    compare_with_torch(nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=mg.tensor(pw)),
                       torch.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor(pw)), [logits, tgt])
    red = "batchmean" if reduction == "mean" else reduction
    compare_with_torch(nn.KLDivLoss(reduction=red), torch.nn.KLDivLoss(reduction=red), [logp, probs])
    compare_with_torch(nn.CosineSimilarity(dim=1), torch.nn.CosineSimilarity(dim=1), [logits, probs])


def test_loss_gradcheck_and_hand_case():
    ce = nn.CrossEntropyLoss()
    x = mg.tensor(rnd(0, 3, 4), requires_grad=True)
    gradcheck_module(ce, x, mg.tensor([0, 2, 3]))
    # hand case: uniform logits over 4 classes -> loss = log 4
    assert ce(mg.zeros(2, 4), mg.tensor([1, 3])).item() == pytest.approx(np.log(4), rel=1e-6)
    assert nn.MSELoss()(mg.tensor([1.0, 3.0]), mg.tensor([0.0, 0.0])).item() == pytest.approx(5.0)
    with pytest.raises(InvalidArgumentError):
        nn.MSELoss(reduction="avg")
