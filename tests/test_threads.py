"""Thread ownership (minigen.kernels.threads): one budget for BLAS and the kernel pool, set_num_threads /
get_num_threads as PyTorch's, and a kernel call under set_num_threads(1) really running on one thread."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minigen  # noqa: F401
from minigen.errors import InvalidArgumentError
from minigen.kernels import dispatch, threads

pytestmark = pytest.mark.skipif(not dispatch.available(), reason="Numba is not installed")


@pytest.fixture
def restore_threads():
    before = threads._STATE["budget"]
    n = threads.get_num_threads()
    yield
    threads.set_num_threads(n)
    threads._STATE["budget"] = before


def _task_cpu_ticks():
    """{thread id: utime + stime in clock ticks} for every thread of this process (Linux)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = int(fields[11]) + int(fields[12])  # fields 14, 15 of stat(5)
        except OSError:
            pass
    return out


def _conv_work():
    """About 0.3-1 s of convolution kernels: im2col loops on the pool, GEMMs in BLAS, direct loops."""
    from minigen.kernels import cpu_conv, cpu_conv_direct

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 64, 14, 14)).astype(np.float32)
    w = rng.standard_normal((128, 64, 5, 5)).astype(np.float32)
    x1 = rng.standard_normal((16, 32, 28, 28)).astype(np.float32)
    w1 = rng.standard_normal((1, 32, 5, 5)).astype(np.float32)

    def run():
        for _ in range(3):
            y = cpu_conv.conv2d_forward(x, w, 2, 2)
            cpu_conv.conv2d_backward(y, x, w, None, True, True, 2, 2)
            cpu_conv_direct.conv2d_forward_direct(x1, w1, 1, 2)
    run()  # compile / warm up outside the measurement
    return run


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_a_kernel_call_under_one_thread_runs_on_one_thread(restore_threads):
    threads.set_num_threads(1)
    run = _conv_work()  # warm-up at 1 thread too: BLAS workers woken earlier spin-wait a moment before sleeping
    assert threads.get_num_threads() == 1 and threads.kernel_threads() == 1
    if threads.blas_info():
        assert threads.blas_threads() == 1
    me = threading_native_id()
    before = _task_cpu_ticks()
    run()
    after = _task_cpu_ticks()
    mine = after.get(me, 0) - before.get(me, 0)
    others = {t: after[t] - before.get(t, 0) for t in after if t != me}
    assert mine >= 5, mine  # the work ran (>= 50 ms at 100 ticks/s) ...
    assert sum(others.values()) <= 1, others  # ... and only on the calling thread


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2, reason="needs 2 cores, Linux")
def test_two_threads_do_use_a_second_thread(restore_threads):
    """The control of the test above: the same measurement sees a second thread working at 2 threads."""
    run = _conv_work()
    threads.set_num_threads(2)
    me = threading_native_id()
    before = _task_cpu_ticks()
    run()
    run()
    after = _task_cpu_ticks()
    others = sum(after[t] - before.get(t, 0) for t in after if t != me)
    assert others >= 1, (before, after)


def threading_native_id():
    import threading

    return threading.get_native_id()


def test_set_get_num_threads_and_blas_follow(restore_threads):
    threads.set_num_threads(2)
    assert threads.get_num_threads() == 2
    if threads.blas_info():
        assert threads.blas_threads() == 2
    with threads.blas_single():  # what parallel_for does around chunks that call BLAS
        if threads.blas_info():
            assert threads.blas_threads() == 1
        with threads.blas_single():
            pass
        if threads.blas_info():
            assert threads.blas_threads() == 1
    if threads.blas_info():
        assert threads.blas_threads() == 2
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(InvalidArgumentError):
            threads.set_num_threads(bad)


def test_owners_names_blas_and_the_pool():
    o = threads.owners()
    assert o["threads"] == threads.get_num_threads() and o["kernel_pool_threads"] <= o["threads"]
    assert "openblas" in o["blas"].lower() or "mkl" in o["blas"].lower() or "blis" in o["blas"].lower()
    from minigen import info

    text = info.format_info(info.collect())
    assert "kernel_pool_threads" in text and "blas" in text


@pytest.mark.parametrize("env, expect", [({"OMP_NUM_THREADS": "1"}, (1, 1, 1)),
                                         ({"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}, (2, 1, 2)),
                                         ({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}, (2, 2, 1))])
def test_environment_variables_are_honoured(env, expect):
    """(budget, kernel pool, BLAS threads) in a fresh process under the standard variables."""
    if (os.cpu_count() or 1) < 2 and "2" in env.values():
        pytest.skip("needs 2 cores")
    code = textwrap.dedent("""
        import minigen
        from minigen.kernels import threads, _common
        print(threads.get_num_threads(), _common.threads(), threads.blas_threads())
    """)
    e = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS",
                                                          "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    got = tuple(int(v) if v != "None" else None for v in out.stdout.split())
    assert got[:2] == expect[:2]
    if got[2] is not None:
        assert got[2] == expect[2]
