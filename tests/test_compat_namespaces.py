"""Namespaces a CPU program touches: minigen.backends, minigen.amp (autocast, GradScaler), minigen.compiler
(compile as an identity), minigen.accelerator; compared with torch's defaults where torch is installed."""
import warnings

import numpy as np
import pytest

import minigen as mg
import minigen.accelerator as acc
import minigen.amp as amp
import minigen.backends as backends
import minigen.compiler as compiler
from minigen._unsupported import FeatureUnavailableError
from minigen.errors import DeviceError, MinigenError


def test_backend_flags_default_like_torch_and_are_settable():
    torch = pytest.importorskip("torch")
    for name in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        assert getattr(backends.cudnn, name) == getattr(torch.backends.cudnn, name), name
    assert backends.cuda.matmul.allow_tf32 == torch.backends.cuda.matmul.allow_tf32
    assert backends.mps.is_available() == torch.backends.mps.is_available() is False
    assert backends.cpu.get_cpu_capability() in ("AVX512", "AVX2", "DEFAULT")
    backends.cudnn.benchmark = True
    backends.cuda.matmul.allow_tf32 = True
    try:
        assert backends.cudnn.benchmark and backends.cuda.matmul.allow_tf32
        with backends.cudnn.flags(enabled=False, deterministic=True):
            assert backends.cudnn.enabled is False and backends.cudnn.deterministic is True
        assert backends.cudnn.enabled is True and backends.cudnn.deterministic is False
    finally:
        backends.cudnn.benchmark = False
        backends.cuda.matmul.allow_tf32 = False
    assert backends.cudnn.is_available() is False and backends.cudnn.version() is None
    backends.cuda.enable_flash_sdp(False)
    assert backends.cuda.flash_sdp_enabled() is False
    backends.cuda.enable_flash_sdp(True)


def _tiny_step(use_amp_objects):
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(4, 8), mg.nn.ReLU(), mg.nn.Linear(8, 1))
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    x = mg.randn(16, 4)
    y = mg.randn(16, 1)
    scaler = amp.GradScaler("cpu", enabled=False)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        if use_amp_objects:
            with amp.autocast("cpu", dtype=mg.bfloat16 if hasattr(mg, "bfloat16") else None, enabled=False):
                loss = mg.nn.functional.mse_loss(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            scaler.step(opt)
            scaler.update()
        else:
            loss = mg.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        losses.append(float(loss.item()))
    return losses


def test_disabled_amp_is_an_exact_no_op():
    assert _tiny_step(True) == _tiny_step(False)
    s = amp.GradScaler(enabled=False)
    assert s.get_scale() == 1.0 and s.state_dict() == {} and not s.is_enabled()
    t = mg.ones(2)
    assert s.scale(t) is t


def test_disabled_grad_scaler_matches_torch():
    torch = pytest.importorskip("torch")
    ts = torch.amp.GradScaler("cpu", enabled=False)
    ms = amp.GradScaler("cpu", enabled=False)
    assert ts.get_scale() == ms.get_scale() and ts.state_dict() == ms.state_dict() == {}
    assert ts.is_enabled() == ms.is_enabled()


def test_enabled_amp_raises_a_clear_minigen_error():
    with pytest.raises(FeatureUnavailableError, match="no automatic mixed precision"):
        amp.autocast("cpu", dtype=np.float16)
    with pytest.raises(FeatureUnavailableError, match="bfloat16"):
        amp.autocast("cpu")
    with pytest.raises(FeatureUnavailableError, match="enabled=False"):
        amp.GradScaler("cpu")
    assert issubclass(FeatureUnavailableError, MinigenError) and issubclass(FeatureUnavailableError,
                                                                            NotImplementedError)
    with amp.autocast("cpu", dtype=np.float32):  # float32 autocast on a float32 program: exact no-op
        pass


@pytest.mark.skipif(mg.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_cuda_amp_without_gpu_warns_and_disables_like_torch():
    with pytest.warns(UserWarning, match="disabling"):
        s = amp.GradScaler()  # PyTorch's default device is 'cuda'
    assert not s.is_enabled()
    with pytest.warns(UserWarning, match="disabling"):
        with amp.autocast("cuda", dtype=np.float16):
            pass


def test_autocast_as_decorator():
    @amp.autocast("cpu", enabled=False)
    def f(x):
        return x * 2

    assert float(f(mg.tensor(3.0)).item()) == 6.0
    assert amp.custom_fwd(f) is f and amp.custom_bwd(device_type="cpu")(f) is f
    assert amp.is_autocast_available("cpu") is False


def test_compile_is_identity():
    m = mg.nn.Linear(2, 3)
    assert compiler.compile(m) is m
    assert compiler.compile(m, mode="max-autotune", fullgraph=True, dynamic=False) is m
    assert list(compiler.compile(m).state_dict()) == ["weight", "bias"]

    @compiler.compile
    def g(x):
        return x + 1

    @compiler.compile(mode="reduce-overhead")
    def h(x):
        return x + 2

    assert float(g(mg.tensor(1.0)).item()) == 2.0 and float(h(mg.tensor(1.0)).item()) == 3.0
    assert compiler.is_compiling() is False and compiler.disable(g) is g
    with pytest.raises(MinigenError):
        compiler.compile(42)


def test_accelerator_queries():
    avail = mg.cuda.is_available()
    assert acc.is_available() == avail
    assert acc.device_count() == mg.cuda.device_count()
    if not avail:
        assert acc.current_accelerator() is None
        with pytest.raises(DeviceError, match="no accelerator"):
            acc.current_device_index()
        acc.synchronize()  # nothing to wait for
        with acc.device_index(None):
            pass
        assert acc.memory_allocated() == 0
    else:  # pragma: no cover - GPU machines
        assert str(acc.current_accelerator()) == "cuda"


def test_accelerator_agrees_with_torch_on_a_cpu_machine():
    torch = pytest.importorskip("torch")
    if torch.accelerator.is_available() or mg.cuda.is_available():
        pytest.skip("compares the no-accelerator answers")
    assert acc.is_available() == torch.accelerator.is_available()
    assert acc.current_accelerator() == torch.accelerator.current_accelerator()
    assert acc.device_count() == torch.accelerator.device_count()


def test_import_does_not_warn():
    import importlib

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("minigen.backends", "minigen.amp", "minigen.compiler", "minigen.accelerator"):
            importlib.reload(importlib.import_module(name))
    assert [str(w.message) for w in caught] == []


@pytest.mark.skipif(mg.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_cuda_and_cpu_amp_paths_like_torch():
    import minigen.amp.cpu as cpu_amp
    import minigen.amp.cuda as cuda_amp

    with pytest.warns(UserWarning, match="disabling"):
        s = cuda_amp.GradScaler(enabled=True)  # nanoGPT: torch.cuda.amp.GradScaler(enabled=(dtype == 'float16'))
    assert not s.is_enabled() and cuda_amp.GradScaler(enabled=False).get_scale() == 1.0
    with pytest.warns(UserWarning, match="disabling"):
        with cuda_amp.autocast():
            pass
    with cpu_amp.autocast(enabled=False):
        pass
    with pytest.raises(FeatureUnavailableError):
        cpu_amp.autocast()
    torch = pytest.importorskip("torch")
    import inspect

    for mine, theirs in ((cuda_amp.autocast, torch.cuda.amp.autocast),
                         (cuda_amp.GradScaler, torch.cuda.amp.GradScaler), (cpu_amp.autocast, torch.cpu.amp.autocast)):
        assert list(inspect.signature(mine.__init__).parameters) == list(inspect.signature(theirs.__init__).parameters)
