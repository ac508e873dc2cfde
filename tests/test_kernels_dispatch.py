"""The kernel switch (minigen.kernels.dispatch): modes, registry, rules, and the env variable."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minigen  # noqa: F401  (registers minigen.kernels)
from minigen.errors import InvalidArgumentError
from minigen.kernels import dispatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_modes_and_context_managers():
    start = dispatch.mode()
    with dispatch.use_reference():
        assert dispatch.mode() == "reference"
        assert dispatch.get("softmax_forward", np.ones((4, 30), np.float32)) is None
        with dispatch.use_kernels():
            assert dispatch.mode() == "numba"
        assert dispatch.mode() == "reference"
    assert dispatch.mode() == start
    with dispatch.set_mode("auto"):
        assert dispatch.mode() == "auto"
    assert dispatch.mode() == start
    with pytest.raises(InvalidArgumentError, match="kernel mode"):
        dispatch.set_mode("fast")


def test_registry_rules():
    names = dispatch.kernel_names()
    for n in ("softmax_forward", "cross_entropy", "layer_norm_forward", "batch_norm_backward", "gelu_forward",
              "lstm_cell_forward", "gru_cell_backward", "lstm_seq_forward", "sdpa_forward",
              "sdpa_backward", "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
              "max_pool2d_forward", "avg_pool2d_backward", "linear_act_forward", "adam_step", "sgd_step"):
        assert n in names
    big = np.ones((64, 1000), np.float32)
    small = np.ones((2, 3), np.float32)

    # the two rules, on a kernel registered for the test: requires (hard) and worth (a size threshold)
    @dispatch.register("_test_kernel", requires=lambda x: x.dtype == np.float32, worth=lambda x: x.size >= 100)
    def _k(x):
        return x

    try:
        with dispatch.set_mode("auto"):
            assert dispatch.get("_test_kernel", small) is None  # below the measured threshold
            assert dispatch.get("_test_kernel", big) is _k
            assert not dispatch.applies("_test_kernel", big.astype(np.float64))  # hard rule
            assert dispatch.get("softmax_forward", big) is not None  # no threshold: faster at every size
            assert not dispatch.applies("softmax_forward", small.astype(np.int64))  # dtype rule
            assert dispatch.get("nope", small) is None
        with dispatch.use_kernels():
            assert dispatch.get("_test_kernel", small) is _k  # thresholds ignored when forced
            assert dispatch.get("_test_kernel", big.astype(np.float16)) is None  # hard rules are not
            assert dispatch.get("softmax_forward", small.astype(np.float16)) is None
    finally:
        dispatch._REGISTRY.pop("_test_kernel", None)


def test_non_numpy_arrays_get_reference():
    class FakeCupy:  # anything that is not a NumPy ndarray (CuPy arrays) goes to the op's xp path
        shape = (8, 512)
        dtype = np.dtype(np.float32)
        ndim = 2
        size = 8 * 512

    with dispatch.use_kernels():
        assert dispatch.get("softmax_forward", FakeCupy()) is None


def test_stats_count_hand_outs():
    dispatch.reset_stats()
    with dispatch.use_kernels():
        dispatch.get("softmax_forward", np.ones((2, 2)))
        dispatch.applies("softmax_forward", np.ones((2, 2)))
    assert dispatch.stats() == {"softmax_forward": 1}


def test_env_variable_selects_mode():
    code = "import minigen; from minigen.kernels import dispatch; print(dispatch.mode())"
    env = dict(os.environ, MINIGEN_KERNELS="reference", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "reference"


def test_threads_follow_numba():
    import numba

    assert dispatch.num_threads() == numba.get_num_threads()
