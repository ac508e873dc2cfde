"""The vectorisable exp / expm1 / sigmoid / tanh of minigen.kernels._math against NumPy (and by hand)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

pytest.importorskip("numba")
import minigen  # noqa: F401,E402  (registers minigen.kernels)
from minigen.kernels import _common, _math  # noqa: E402


def _vec(fn):
    @_common.jit
    def apply(x, y):
        for i in range(np.uint64(x.size)):
            y[i] = fn(x[i])
    return apply


EXP, EXPM1, SIG, TANH = (_vec(f) for f in (_math.exp, _math.expm1, _math.sigmoid, _math.tanh))


def run(fn, x):
    x = np.asarray(x, np.float64)
    y = np.empty_like(x)
    fn(x, y)
    return y


def ulp_err(y, ref):
    return np.max(np.abs(y - ref) / np.maximum(np.abs(ref), np.finfo(np.float64).tiny) / np.finfo(np.float64).eps)


def test_exp_family_accuracy_on_a_grid():
    x = np.concatenate([np.linspace(-700, 700, 40001), np.linspace(-1, 1, 20001), np.logspace(-300, 0, 301),
                        -np.logspace(-300, 0, 301)])
    assert ulp_err(run(EXP, x), np.exp(x)) < 4
    assert ulp_err(run(EXPM1, x), np.expm1(x)) < 8  # measured max 4.8 (cancellation in 2^k p + 2^k - 1)
    xs = x[np.abs(x) < 40]
    assert ulp_err(run(SIG, xs), 1 / (1 + np.exp(-xs))) < 4
    assert ulp_err(run(TANH, xs), np.tanh(xs)) < 8


@given(st.lists(st.floats(-800, 800, allow_nan=False), min_size=1, max_size=50))
def test_exp_family_random(xs):
    x = np.array(xs)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    ok = (x > -708) & (x < 709)  # flush / overflow outside
    if ok.any():
        assert ulp_err(run(EXP, x[ok]), ref[ok]) < 4
    np.testing.assert_allclose(run(TANH, x), np.tanh(x), rtol=1e-15, atol=1e-300)


def test_special_values_and_hand_cases():
    x = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 1000.0, -1000.0]
    e = run(EXP, x)
    assert np.isnan(e[0]) and e[1] == np.inf and e[2] == 0.0 and e[3] == 1.0 and e[4] == 1.0
    assert abs(e[5] - 2.718281828459045) < 1e-15 and e[6] == np.inf and e[7] == 0.0
    m = run(EXPM1, [1e-20, -np.inf, np.inf])
    assert m[0] == 1e-20 and m[1] == -1.0 and m[2] == np.inf
    s = run(SIG, [0.0, np.inf, -np.inf, 1000.0, -1000.0])
    np.testing.assert_array_equal(s, [0.5, 1.0, 0.0, 1.0, 0.0])
    t = run(TANH, [0.0, -0.0, np.inf, -np.inf, 1e-300, np.nan])
    assert t[0] == 0.0 and t[2] == 1.0 and t[3] == -1.0 and t[4] == 1e-300 and np.isnan(t[5])


def test_normal_cdf_pdf_against_math_erfc():
    import math

    @_common.jit
    def apply(x, c, p):
        for i in range(np.uint64(x.size)):
            c[i], p[i] = _math.normal_cdf_pdf(x[i])

    x = np.concatenate([np.linspace(-37, 37, 74001), [0.0, -0.0, 1e-300, -1e-300, 40.0, -40.0]])
    c, p = np.empty_like(x), np.empty_like(x)
    apply(x, c, p)
    ref_c = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    ref_p = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(c, ref_c, rtol=5e-13, atol=0)  # relative, also deep in the lower tail (x = -37)
    np.testing.assert_allclose(p, ref_p, rtol=5e-15, atol=0)
    assert c[-2] == 1.0 and c[-1] < 1e-300 and abs(c[-6] - 0.5) < 1e-14  # Phi(0) = 1/2 by hand


def test_float32_accuracy_variants():
    import math

    @_common.jit
    def apply(x, c, p, e):
        for i in range(np.uint64(x.size)):
            c[i], p[i] = _math.normal_cdf_pdf_f32acc(x[i])
            e[i] = _math.exp_f32acc(x[i])

    x = np.linspace(-14, 14, 28001)
    c, p, e = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    apply(x, c, p, e)
    np.testing.assert_allclose(c, [0.5 * math.erfc(-v / math.sqrt(2)) for v in x], rtol=3e-8, atol=0)
    np.testing.assert_allclose(p, np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), rtol=3e-8, atol=0)
    np.testing.assert_allclose(e, np.exp(x), rtol=3e-8, atol=0)
