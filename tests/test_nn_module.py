"""Module mechanics: registration, naming, modes, conversion, state dicts, containers, repr, hooks."""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import minigen as mg
from minigen import nn
from minigen.errors import CheckpointError, IndexOutOfRangeError, InvalidArgumentError
from conftest import requires_torch


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 2, bias=False))
        self.register_buffer("scale", mg.ones(2))
        self.register_buffer("tmp", mg.zeros(1), persistent=False)

    def forward(self, x):
        return self.head(self.bn(self.conv(x)) * self.scale.reshape(1, 2, 1, 1))


def test_registration_and_names():
    net = Net()
    names = [k for k, _ in net.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias",
                     "head.3.weight"]
    assert [k for k, _ in net.named_buffers()] == ["scale", "tmp", "bn.running_mean", "bn.running_var",
                                                   "bn.num_batches_tracked"]
    assert list(net.state_dict()) == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias",
                                      "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                                      "head.1.weight", "head.1.bias", "head.3.weight"]
    assert [k for k, _ in net.named_children()] == ["conv", "bn", "head"]
    assert [k for k, _ in net.named_modules()] == ["", "conv", "bn", "head", "head.0", "head.1", "head.2", "head.3"]
    assert [k for k, _ in net.named_parameters(prefix="m", recurse=False)] == []
    assert net.head[3].bias is None
    assert all(p.requires_grad and isinstance(p, nn.Parameter) for p in net.parameters())
    assert net.get_submodule("head.1") is net.head[1]
    assert net.get_parameter("head.1.weight") is net.head[1].weight
    with pytest.raises(InvalidArgumentError, match="no submodule"):
        net.get_submodule("head.9")


@requires_torch
def test_state_dict_keys_match_torch():
    import torch

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.bn = torch.nn.BatchNorm2d(2)
            self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 3), torch.nn.ReLU(),
                                            torch.nn.Linear(3, 2, bias=False))
            self.register_buffer("scale", torch.ones(2))
            self.register_buffer("tmp", torch.zeros(1), persistent=False)

    tsd = TNet().state_dict()
    sd = Net().state_dict()
    assert list(sd) == list(tsd)
    assert all(tuple(sd[k].shape) == tuple(tsd[k].shape) for k in sd)


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(mg.ones(2))
    assert "w" in m._parameters
    with pytest.raises(InvalidArgumentError, match="parameter 'w'"):
        m.w = mg.ones(2)  # a plain tensor cannot replace a parameter
    m.w = None
    assert m.w is None and "w" in m._parameters
    m.sub = nn.Linear(2, 2)
    assert "sub" in m._modules
    m.sub = nn.ReLU()  # a module replaced by a module
    assert isinstance(m.sub, nn.ReLU)
    m.register_buffer("b", mg.zeros(3))
    m.b = mg.ones(3)
    assert m._buffers["b"].numpy().tolist() == [1, 1, 1]
    with pytest.raises(InvalidArgumentError, match="buffer 'b'"):
        m.b = 3.0
    with pytest.raises(InvalidArgumentError, match="already exists"):
        m.register_buffer("sub", mg.zeros(1))
    with pytest.raises(InvalidArgumentError, match="contain"):
        m.register_parameter("a.b", None)
    m.x = nn.Buffer(mg.ones(1), persistent=False)
    assert "x" in m._buffers and "x" not in m.state_dict()
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(AttributeError):
        m.nothing

    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mg.ones(1))

    with pytest.raises(InvalidArgumentError, match="before Module.__init__"):
        Bad()


def test_shared_parameter_counted_once():
    a = nn.Linear(3, 3)
    m = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(m.parameters())) == 2
    assert nn.utils.count_parameters(m) == 12
    assert len(list(m.modules())) == 3  # Sequential, Linear (once), ReLU
    tied = nn.Module()
    tied.emb = nn.Embedding(5, 3)
    tied.out = nn.Linear(3, 5, bias=False)
    tied.out.weight = tied.emb.weight
    assert [k for k, _ in tied.named_parameters()] == ["emb.weight"]
    assert list(tied.state_dict()) == ["emb.weight", "out.weight"]  # both keys, as torch


def test_train_eval_zero_grad_requires_grad():
    net = Net()
    assert net.training and net.head[1].training
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(InvalidArgumentError):
        net.train("yes")
    x = mg.randn(2, 1, 4, 4)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_to_dtype_keeps_parameter_objects():
    net = Net()
    params = list(net.parameters())
    net(mg.randn(2, 1, 4, 4)).sum().backward()
    net.double()
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    assert net.bn.running_mean.dtype == np.float64
    assert net.bn.num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype
    net.to(mg.float32)
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.to("cpu", mg.float64)
    assert net.conv.weight.dtype == np.float64
    with pytest.raises(InvalidArgumentError):
        net.to(mg.int64)


def test_apply_and_hooks():
    net = Net()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[0] == "Conv2d"  # children first
    lin = nn.Linear(2, 2)
    calls = []
    h = lin.register_forward_hook(lambda m, inp, out: out * 2)
    h2 = lin.register_forward_pre_hook(lambda m, inp: calls.append(len(inp)))
    x = mg.randn(3, 2)
    y = lin(x)
    np.testing.assert_allclose(y.detach().numpy(), 2 * lin.forward(x).detach().numpy(), rtol=1e-6)
    assert calls == [1]
    h.remove()
    h2.remove()
    np.testing.assert_allclose(lin(x).detach().numpy(), lin.forward(x).detach().numpy())
    assert calls == [1]


def test_state_dict_round_trip_and_sharing():
    a, b = Net(), Net()
    a.bn.running_mean.array[...] = [1.0, 2.0]
    a.bn.num_batches_tracked.array[...] = 7
    sd = a.state_dict()
    assert not sd["conv.weight"].requires_grad
    assert np.shares_memory(sd["conv.weight"].array, a.conv.weight.array)
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy())
        assert not np.shares_memory(v.array, sd[k].array)
    x = mg.randn(2, 1, 4, 4)
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # plain NumPy arrays are accepted too
    b.load_state_dict({k: v.numpy() * 0 for k, v in sd.items()})
    assert not b.conv.weight.numpy().any() if not b.conv.weight.requires_grad else not b.conv.weight.detach().numpy().any()


def test_load_state_dict_errors_list_every_problem():
    net = Net()
    sd = net.state_dict()
    bad = OrderedDict(sd)
    del bad["conv.bias"]
    del bad["bn.running_var"]
    bad["extra.weight"] = mg.zeros(1)
    bad["head.1.weight"] = mg.zeros(3, 9)
    before = net.conv.weight.detach().numpy().copy()
    with pytest.raises(CheckpointError) as e:
        net.load_state_dict(bad)
    msg = str(e.value)
    assert "'conv.bias'" in msg and "'bn.running_var'" in msg and "'extra.weight'" in msg
    assert "head.1.weight: checkpoint shape (3, 9), model shape (3, 8)" in msg
    np.testing.assert_array_equal(net.conv.weight.detach().numpy(), before)  # nothing loaded
    # strict=False: missing / unexpected are reported, shape mismatches still fail
    bad["head.1.weight"] = sd["head.1.weight"]
    res = net.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["conv.bias", "bn.running_var"]
    assert res.unexpected_keys == ["extra.weight"]
    bad["head.1.weight"] = mg.zeros(2)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        net.load_state_dict(bad, strict=False)
    # BatchNorm: a state dict without num_batches_tracked (older checkpoints) still loads
    bn = nn.BatchNorm1d(3)
    sd = bn.state_dict()
    del sd["num_batches_tracked"]
    assert bn.load_state_dict(sd).missing_keys == []


def test_sequential():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[1], nn.ReLU) and isinstance(s[-1], nn.Linear)
    sub = s[:2]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is s[0]
    x = mg.randn(4, 2)
    np.testing.assert_allclose(s(x).detach().numpy(), s[2](s[1](s[0](x))).detach().numpy())
    s.append(nn.Sigmoid())
    assert len(s) == 4 and list(s._modules) == ["0", "1", "2", "3"]
    del s[1]
    assert list(s._modules) == ["0", "1", "2"] and isinstance(s[1], nn.Linear)
    s.insert(1, nn.Tanh())
    assert isinstance(s[1], nn.Tanh) and len(s) == 4
    with pytest.raises(IndexOutOfRangeError):
        s[10]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert isinstance(named[0], nn.Linear)


def test_module_list_dict_parameter_list():
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(ml) == 3 and list(ml.state_dict())[:2] == ["0.weight", "0.bias"]
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    assert len(ml) == 5 and isinstance(ml[-1], nn.Tanh) and ml.index(ml[2]) == 2
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2", "3"]
    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    assert "a" in md and list(md.keys()) == ["a", "b"] and len(md) == 2
    md["c"] = nn.Linear(1, 2)
    assert list(md.state_dict()) == ["a.weight", "a.bias", "c.weight", "c.bias"]
    assert isinstance(md.pop("b"), nn.ReLU) and "b" not in md
    pl = nn.ParameterList([mg.ones(2), nn.Parameter(mg.zeros(3))])
    assert len(pl) == 2 and all(isinstance(p, nn.Parameter) for p in pl)
    assert list(pl.state_dict()) == ["0", "1"]
    pd = nn.ParameterDict({"x": mg.ones(1)})
    assert list(pd.state_dict()) == ["x"] and isinstance(pd["x"], nn.Parameter)


@requires_torch
def test_repr_like_torch():
    import torch

    pairs = [
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1, bias=False)),
         torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1, bias=False))),
        (nn.Conv2d(1, 2, 3, stride=2, padding=1), torch.nn.Conv2d(1, 2, 3, stride=2, padding=1)),
        (nn.LSTM(3, 4, num_layers=2, batch_first=True), torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)),
        (nn.Dropout(0.2), torch.nn.Dropout(0.2)),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Embedding(10, 3, padding_idx=0), torch.nn.Embedding(10, 3, padding_idx=0)),
        (nn.LayerNorm(4), torch.nn.LayerNorm(4)),
    ]
    for m, t in pairs:
        assert repr(m) == repr(t)
    assert repr(nn.BatchNorm2d(3)) == repr(torch.nn.BatchNorm2d(3))


def test_deepcopy_and_parameter():
    lin = nn.Linear(2, 2)
    c = copy.deepcopy(lin)
    assert c.weight is not lin.weight and isinstance(c.weight, nn.Parameter) and c.weight.requires_grad
    np.testing.assert_array_equal(c.weight.detach().numpy(), lin.weight.detach().numpy())
    c.weight.array[...] = 0
    assert lin.weight.detach().numpy().any()
    t = mg.ones(3)
    p = nn.Parameter(t)
    assert np.shares_memory(p.array, t.array) and p.requires_grad and p.is_leaf
    assert "Parameter containing" in repr(p)
    q = p * 2
    assert type(q) is mg.Tensor
    frozen = nn.Parameter(mg.ones(1), requires_grad=False)
    assert not frozen.requires_grad
