"""Fuzz the public functional API with wrong calls: only minigen errors may come out.

For every op in ``minigen.nn.functional`` Hypothesis builds calls from a pool of wrong
(and occasionally right) arguments: tensors of random shapes and dtypes (0-d and empty
included), None, strings, numbers (nan/inf included), nested and ragged lists, tuples of
ints, NumPy arrays and arbitrary objects, with too few / too many positional arguments and
random keyword arguments. A call may succeed or raise a
:class:`minigen.errors.MinigenError`; a ``TypeError`` is accepted only when Python itself
raised it while binding the arguments (wrong arity or an unknown keyword). Anything else --
a raw NumPy ``ValueError``, ``IndexError``, ``AttributeError``, ``ZeroDivisionError``... --
is a bug: the user should get an error that names the shapes/dtypes involved.

Examples are derandomized, so the run is reproducible and the known bugs below can be
``xfail(strict=True)``: when the owner fixes one, its xfail turns into a failure that says
"remove me from KNOWN_BUGS".
Mismatched devices can only be fuzzed with a GPU; without CuPy they are not drawn.
"""
import inspect
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.errors import MinigenError

# out-of-domain values (log of negatives, 0/0) are part of the fuzz: NumPy's RuntimeWarnings are expected
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _functional():
    import minigen.nn.functional as F

    return F


F = _functional()


def _distinct_ops():
    """Public names, one per function object (aliases such as clip/clamp are fuzzed once)."""
    seen, out = set(), []
    for name in sorted(F.__all__):
        fn = getattr(F, name)
        if id(fn) not in seen and callable(fn):
            seen.add(id(fn))
            out.append(name)
    return out


OPS = _distinct_ops()

# Ops whose fuzzing found a raw (non-minigen) exception, per test; op -> the first failing call seen.
# An op listed here runs as xfail(strict=True): fix the op, then delete its entry.
KNOWN_BUGS_WRONG_VALUES = {}
KNOWN_BUGS_WRONG_TYPES = {}

# parameter names that take tensors ("either" names take tensors in some ops and numbers in others)
TENSOR_PARAMS = {"x", "input", "a", "b", "other", "target", "weight", "bias", "index", "source", "src", "mat1",
                 "mat2", "vec", "vec2", "mask", "condition", "running_mean", "running_var", "indices", "tensor",
                 "input1", "input2", "batch1", "batch2", "query", "key", "attn_mask", "pos_weight", "var", "x1",
                 "x2", "mu", "logvar"}
EITHER_PARAMS = {"start", "end", "value", "min", "max"}
LIST_PARAMS = {"tensors", "operands"}


# ------------------------------------------------------------------ the pools of arguments
def _tensors(dtype):
    if dtype == "float":
        elements = st.floats(-3, 3, allow_nan=False, width=32)
        dt = st.sampled_from([np.float32, np.float64])
    elif dtype == "int":
        elements, dt = st.integers(-3, 5), st.just(np.int64)
    else:
        elements, dt = st.booleans(), st.just(np.bool_)
    shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)

    @st.composite
    def build(draw):
        arr = draw(hnp.arrays(draw(dt), draw(shapes), elements=elements))
        t = mg.tensor(arr)
        if dtype == "float" and draw(st.booleans()):
            t.requires_grad_(True)
        return t

    return build()


class _Opaque:
    """An arbitrary object with no array protocol."""

    def __repr__(self):
        return "<opaque>"


# tensors of any shape (0-d and empty included) and dtype
TENSORS = st.one_of(_tensors("float"), _tensors("float"), _tensors("int"), _tensors("bool"))
# values of the right kind for non-tensor parameters, but often wrong: negative or huge dims, nan, odd strings
PLAIN = st.one_of(
    st.none(),
    st.integers(-4, 5),
    st.sampled_from([0.5, -1.5, 2.0, 0.0, float("nan"), float("inf")]),
    st.booleans(),
    st.sampled_from(["abc", "mean", "sum", "none", "", "nearest", "bilinear", "reflect", "ij,jk->ik"]),
    st.lists(st.integers(-2, 3), max_size=3).map(tuple),
)
# values of the wrong kind anywhere: ragged / mixed lists, dicts, arrays, arbitrary objects
GARBAGE = st.one_of(
    # built fresh for every draw, so an op that mutates its argument cannot change later examples
    st.sampled_from([lambda: [[1, 2], [3]], lambda: [[1.0, 2.0]], list, lambda: [1, "a"], lambda: ((1,),),
                     lambda: {"a": 1}, lambda: "abc", lambda: b"xy", lambda: 1j]).map(lambda make: make()),
    hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=3), elements=st.floats(-2, 2)),
    st.just(_Opaque()),
    st.none(),
)


def _params(fn):
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return []


def _well_typed(draw, name):
    if name in LIST_PARAMS:
        return draw(st.lists(TENSORS, min_size=0, max_size=3))
    if name in TENSOR_PARAMS:
        return draw(TENSORS) if draw(st.integers(0, 5)) else None
    if name in EITHER_PARAMS:
        return draw(st.one_of(TENSORS, PLAIN))
    return draw(PLAIN)


@st.composite
def calls(draw, fn, garbage):
    """(args, kwargs) for ``fn``, near its arity. ``garbage``: one argument is a value of the wrong kind."""
    params = _params(fn)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    varargs = [p for p in params if p.kind == p.VAR_POSITIONAL]
    n = len(required)
    if draw(st.integers(0, 9)) == 0:       # wrong arity now and then
        n = max(0, n + draw(st.sampled_from([-1, 1])))
    elif draw(st.booleans()):              # some optional positionals
        n = draw(st.integers(n, len(positional)))
    names = [p.name for p in positional[:n]] + ["extra"] * max(0, n - len(positional))
    if varargs and n >= len(positional):
        names += [varargs[0].name] * draw(st.integers(0, 3))
    args = [_well_typed(draw, name) for name in names]
    kwargs = {}
    optional = [p.name for p in params if p.default is not p.empty and p.name not in names[:len(positional)]
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if optional and draw(st.booleans()):
        for name in draw(st.lists(st.sampled_from(optional), min_size=1, max_size=2, unique=True)):
            kwargs[name] = _well_typed(draw, name)
    if garbage:
        slots = [("arg", i) for i in range(len(args))] + [("kw", k) for k in kwargs]
        if slots:
            kind, where = draw(st.sampled_from(slots))
            if kind == "arg":
                args[where] = draw(GARBAGE)
            else:
                kwargs[where] = draw(GARBAGE)
    if draw(st.integers(0, 19)) == 0:
        kwargs["no_such_argument"] = 1
    return args, kwargs


def _describe(v):
    if isinstance(v, mg.Tensor):
        return f"Tensor(shape={tuple(v.shape)}, dtype={v.dtype}{', requires_grad' if v.requires_grad else ''})"
    if isinstance(v, np.ndarray):
        return f"ndarray(shape={v.shape}, dtype={v.dtype})"
    if isinstance(v, list):
        return "[" + ", ".join(_describe(x) for x in v) + "]"
    return repr(v)


def call_and_classify(fn, args, kwargs):
    """Return None when the call behaved (result or minigen error), else a description of the raw error."""
    try:
        fn(*args, **kwargs)
    except MinigenError:
        return None
    except TypeError as e:
        if e.__traceback__ is not None and e.__traceback__.tb_next is None:
            return None  # raised by Python while binding the arguments: wrong arity / unknown keyword
        return f"raw {type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - the point of the test
        return f"raw {type(e).__name__}: {e}"
    return None


def _cases(known):
    # MINIGEN_FUZZ_NO_XFAIL=1 runs every op unmarked: the way to see (and regenerate) the current bug list
    if os.environ.get("MINIGEN_FUZZ_NO_XFAIL"):
        known = {}
    out = []
    for op in OPS:
        marks = [pytest.mark.xfail(strict=True, reason=f"known bug: {known[op]}")] if op in known else []
        out.append(pytest.param(op, marks=marks, id=op))
    return out


FUZZ = settings(derandomize=True, database=None, deadline=None, phases=(Phase.explicit, Phase.generate),
                max_examples=max(4, settings.default.max_examples // 3),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def _check(op, data, garbage):
    fn = getattr(F, op)
    args, kwargs = data.draw(calls(fn, garbage), label="call")
    problem = call_and_classify(fn, args, kwargs)
    call = f"{op}({', '.join([_describe(a) for a in args] + [f'{k}={_describe(v)}' for k, v in kwargs.items()])})"
    assert problem is None, f"{call} -> {problem}"


@pytest.mark.parametrize("op", _cases(KNOWN_BUGS_WRONG_VALUES))
@FUZZ
@given(data=st.data())
def test_wrong_values_raise_only_minigen_errors(op, data):
    """Tensors of any shape/dtype where tensors go; wrong dims, sizes, modes, None elsewhere."""
    _check(op, data, garbage=False)


@pytest.mark.parametrize("op", _cases(KNOWN_BUGS_WRONG_TYPES))
@FUZZ
@given(data=st.data())
def test_wrong_types_raise_only_minigen_errors(op, data):
    """As above, with one argument replaced by a value of the wrong kind (list, string, object, array)."""
    _check(op, data, garbage=True)


def test_classifier_itself():
    """The fuzz oracle must be able to fail: raw errors are reported, minigen errors and arity errors pass."""
    def raw_index(x):
        return [][1]

    def good(x):
        raise mg.errors.ShapeError("bad shape (2, 3)")

    def nested_type_error(x):
        return len(5)

    assert call_and_classify(raw_index, (1,), {}) is not None
    assert call_and_classify(nested_type_error, (1,), {}) is not None
    assert call_and_classify(good, (1,), {}) is None
    assert call_and_classify(good, (1, 2), {}) is None          # arity TypeError from Python
    assert call_and_classify(good, (), {"y": 1}) is None        # unknown keyword
    assert len(OPS) > 50 and "cross_entropy" in OPS
