"""Fuzzing a public API with wrong calls: the oracle, the time bound and the argument pools.

The promise checked (``tests/test_fuzz_public.py`` applies it to every public callable of minigen):
a call with wrong types, values, shapes, dtypes or sizes either returns or raises a documented
:class:`minigen.errors.MinigenError`. The other outcomes allowed are Python's own ``TypeError`` for a
wrong *number* of arguments or an unknown keyword (raised while binding the arguments, before the callee's
body runs), Python's operator protocol error when every operand declined (``t + object()``), and NumPy's
``MemoryError`` "Unable to allocate ..." for a size the machine cannot hold. Anything else is a bug: a raw
``AttributeError``/``IndexError``/``ValueError`` from NumPy or Python deep inside, any other ``MemoryError``
(a Python list growing without bound), a ``RecursionError``, or a call that does not return in time.

Public pieces:

- :func:`call_bounded` runs one call under a wall-clock limit (``signal.setitimer`` in the main thread;
  the timeout is raised into the call as :class:`CallTimeout`, a BaseException that ``except Exception``
  cannot swallow) and classifies what happened into an :class:`Outcome`.
- :func:`memory_limit`: a context manager capping the address space (``RLIMIT_AS``) at the current size plus
  a margin, so an unchecked huge size fails fast instead of eating the machine.
- :class:`Tally` counts outcomes per kind (``ok``, ``minigen:<ErrorClass>``, ``arity``, ``operand``,
  ``alloc``, ``raw``, ``timeout``) overall and per target, for the run's report.
- Hypothesis strategies: :data:`TENSORS` / :func:`tensors`, :data:`ANY` (every kind of wrong value),
  :func:`value_for` (a value for a parameter, guided by its name), :func:`calls` ((args, kwargs) near a
  function's arity).

Use (a fuzz test)::

    from minigen.testing import fuzz
    outcome = fuzz.call_bounded(fn, args, kwargs, seconds=2.0)
    assert outcome.allowed, outcome.describe()
"""
from __future__ import annotations

import collections
import contextlib
import inspect
import math
import os
import signal
import threading
import time

import numpy as np
from hypothesis import strategies as st

from ..errors import MinigenError

__all__ = ["CallTimeout", "Outcome", "Tally", "call_bounded", "memory_limit", "describe", "TENSORS", "ANY",
           "GARBAGE", "INTS", "tensors", "SHAPES", "DTYPES", "value_for", "calls", "signature_params"]

# ------------------------------------------------------------------------------------------ the oracle


class CallTimeout(BaseException):
    """Raised into a call that ran past its time limit (a BaseException, so ``except Exception`` in the
    code under test cannot swallow it)."""


class Outcome:
    """What one call did: ``kind`` is ``ok``, ``minigen`` (a MinigenError), ``arity`` (Python's binding
    TypeError), ``operand`` (Python's "unsupported operand type" when every operand declined), ``alloc``
    (NumPy's MemoryError "Unable to allocate ..." for a size the machine cannot hold), ``raw`` (any other exception: a bug) or ``timeout`` (a bug)."""

    __slots__ = ("kind", "error", "seconds", "result")

    def __init__(self, kind, error=None, seconds=0.0, result=None):
        self.kind, self.error, self.seconds, self.result = kind, error, seconds, result

    @property
    def allowed(self) -> bool:
        return self.kind in ("ok", "minigen", "arity", "operand", "alloc")

    @property
    def key(self) -> str:
        if self.kind == "minigen":
            return f"minigen:{type(self.error).__name__}"
        return self.kind

    def describe(self) -> str:
        if self.kind == "timeout":
            return f"did not return within {self.seconds:.1f} s"
        if self.error is None:
            return self.kind
        return f"{self.kind} {type(self.error).__name__}: {str(self.error)[:300]}"


_ARITY_WORDS = ("positional argument", "unexpected keyword argument", "required keyword-only argument",
                "takes no arguments", "takes no keyword arguments", "got multiple values for argument",
                "missing 1 required", "missing 2 required")
_OPERAND_WORDS = ("unsupported operand type", "not supported between instances of", "bad operand type for unary",
                  "doesn't define __round__")


def _python_type_error(e: TypeError):
    """``"arity"`` when Python raised ``e`` while binding the arguments of a call (wrong number / unknown
    keyword): its message is CPython's binding wording and the innermost traceback frame is the *caller* (the
    callee never started), at most three frames below the fuzzed call (wrappers such as ``Module.__call__`` or an
    in-place method passing the user's arguments on). ``"operand"`` for Python's operator protocol (every
    operand method returned NotImplemented). None otherwise: a TypeError from inside the callee is a bug."""
    tb, depth = e.__traceback__, 0
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb, depth = tb.tb_next, depth + 1
    msg = str(e)
    if depth == 0 and any(w in msg for w in _OPERAND_WORDS):
        return "operand"
    if depth <= 3 and any(w in msg for w in _ARITY_WORDS):
        name = msg.split("(", 1)[0].rsplit(".", 1)[-1].strip()
        if name and name != tb.tb_frame.f_code.co_name:  # raised at a call site, not inside the named function
            return "arity"
    return None


@contextlib.contextmanager
def memory_limit(extra_bytes: int = 4 << 30):
    """Cap this process's address space at its current size + ``extra_bytes`` (RLIMIT_AS) inside the block,
    so an unchecked huge allocation raises MemoryError quickly instead of swapping the machine."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        old = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (vm + extra_bytes, old[1]))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


def _alarm(signum, frame):
    raise CallTimeout()


def call_bounded(fn, args=(), kwargs=None, seconds: float = 2.0) -> Outcome:
    """Call ``fn(*args, **kwargs)`` with a wall-clock limit and classify the outcome (never raises, except
    KeyboardInterrupt). The limit is a SIGALRM timer (main thread only; elsewhere the call runs unbounded)."""
    kwargs = kwargs or {}
    use_timer = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    old = signal.signal(signal.SIGALRM, _alarm) if use_timer else None
    t0 = time.perf_counter()
    try:
        if use_timer:
            signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            result = fn(*args, **kwargs)
        finally:
            if use_timer:
                signal.setitimer(signal.ITIMER_REAL, 0)
        return Outcome("ok", seconds=time.perf_counter() - t0, result=result)
    except CallTimeout:
        return Outcome("timeout", seconds=time.perf_counter() - t0)
    except MinigenError as e:
        return Outcome("minigen", e, time.perf_counter() - t0)
    except TypeError as e:
        return Outcome(_python_type_error(e) or "raw", e, time.perf_counter() - t0)
    except MemoryError as e:
        # NumPy could not allocate what was asked (e.g. 4 TiB): the machine's limit, not a missing check.
        # Any other MemoryError (a Python list growing without bound) is a bug.
        return Outcome("alloc" if "Unable to allocate" in str(e) else "raw", e, time.perf_counter() - t0)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - the point of the oracle (SystemExit included)
        return Outcome("raw", e, time.perf_counter() - t0)
    finally:
        if use_timer:
            signal.signal(signal.SIGALRM, old)


class Tally:
    """Counts of outcomes, overall and per target (``add(target, outcome)``); ``summary()`` is one line."""

    def __init__(self):
        self.total = collections.Counter()
        self.by_target = collections.defaultdict(collections.Counter)
        self.bad = {}

    def add(self, target: str, outcome: Outcome, call: str = "") -> None:
        self.total[outcome.key] += 1
        self.by_target[target][outcome.key] += 1
        if not outcome.allowed and target not in self.bad:
            self.bad[target] = f"{call} -> {outcome.describe()}"

    @property
    def calls(self) -> int:
        return sum(self.total.values())

    def as_dict(self) -> dict:
        return {"calls": self.calls, "targets": len(self.by_target), "outcomes": dict(sorted(self.total.items())),
                "bad_targets": dict(sorted(self.bad.items()))}

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.total.items(), key=lambda kv: -kv[1]))
        return f"{self.calls} calls over {len(self.by_target)} targets: {parts}"


def describe(v) -> str:
    """A short, reproducible description of an argument (tensors by shape and dtype)."""
    from ..tensor import Tensor

    if isinstance(v, Tensor):
        return f"Tensor(shape={tuple(v.shape)}, dtype={v.dtype}{', requires_grad' if v.requires_grad else ''})"
    if isinstance(v, np.ndarray):
        return f"ndarray(shape={v.shape}, dtype={v.dtype})"
    if isinstance(v, list):
        return "[" + ", ".join(describe(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(describe(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {describe(x)}" for k, x in v.items()) + "}"
    r = repr(v)
    return r if len(r) < 80 else r[:77] + "..."


# ------------------------------------------------------------------------------------------ the pools
class Opaque:
    """An arbitrary object with no array protocol, no length, no number conversion."""

    def __repr__(self):
        return "<opaque>"


HUGE = [2 ** 31, 2 ** 40, 2 ** 63 - 1, 2 ** 64, 10 ** 30]
INTS = st.one_of(st.integers(-3, 5), st.sampled_from([0, -1, -2 ** 31] + HUGE))
FLOATS = st.sampled_from([0.5, -1.5, 2.0, 0.0, -0.0, 1e300, -1e-300, float("nan"), float("inf"), float("-inf")])
STRINGS = st.sampled_from(["abc", "", "mean", "sum", "none", "nearest", "bilinear", "reflect", "float32", "cpu",
                           "cuda", "ij,jk->ik", "0", "3", "\x00"])


def _dtype_pool():
    import minigen as mg

    return [mg.float32, mg.float64, mg.float16, mg.int64, mg.int32, mg.int8, mg.uint8, mg.bool_,
            "float32", "int64", "blah", np.complex64, np.str_, np.object_, "datetime64", float, int, bool, complex, 3]


DTYPES = st.deferred(lambda: st.sampled_from(_dtype_pool()))

_SIZE_ELEMS = st.one_of(st.integers(-2, 4), st.sampled_from([2 ** 40, 2.5, float("nan"), None, "3", True]))
SHAPES = st.one_of(st.lists(st.integers(0, 4), max_size=4).map(tuple),
                   st.lists(_SIZE_ELEMS, max_size=3).map(tuple),
                   st.lists(_SIZE_ELEMS, max_size=3))


def tensors(sides=(0, 1, 2, 3, 4), max_dims: int = 4):
    """Tensors of random shape (0-d and empty included; each side drawn from ``sides``) and dtype (float32,
    float64 with NaN/inf, float16, int64, int32, int8, uint8, bool); float ones sometimes require grad."""
    import minigen as mg
    from hypothesis.extra import numpy as hnp

    kinds = {
        "float32": (np.float32, st.floats(-3, 3, allow_nan=False, width=32)),
        "float64": (np.float64, st.one_of(st.floats(-3, 3), st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))),
        "float16": (np.float16, st.floats(-3, 3, allow_nan=False, width=16)),
        "int64": (np.int64, st.integers(-3, 5)),
        "int32": (np.int32, st.integers(-3, 5)),
        "int8": (np.int8, st.integers(-128, 127)),
        "uint8": (np.uint8, st.integers(0, 255)),
        "bool": (np.bool_, st.booleans()),
    }
    weights = ["float32"] * 4 + ["float64"] * 3 + ["int64"] * 2 + ["bool", "int32", "int8", "uint8", "float16"]
    shapes = st.lists(st.sampled_from(list(sides)), max_size=max_dims).map(tuple)

    @st.composite
    def build(draw):
        dt, elements = kinds[draw(st.sampled_from(weights))]
        arr = draw(hnp.arrays(dt, draw(shapes), elements=elements))
        t = mg.tensor(arr)
        if t.dtype.kind == "f" and draw(st.integers(0, 3)) == 0:
            t.requires_grad_(True)
        return t

    return build()


TENSORS = st.deferred(tensors)

GARBAGE = st.one_of(
    # built fresh for every draw, so a call that mutates its argument cannot change later examples
    st.sampled_from([lambda: [[1, 2], [3]], lambda: [[1.0, 2.0]], list, lambda: [1, "a"], lambda: ((1,),),
                     lambda: {"a": 1}, dict, lambda: "abc", lambda: b"xy", lambda: 1j, lambda: object(),
                     lambda: [None], lambda: (1, None), lambda: slice(None, 2), lambda: Ellipsis,
                     lambda: np.array(["a", "b"]), lambda: np.array([1, 2], dtype=object), lambda: set(),
                     lambda: np.float64(float("nan")), lambda: np.int64(-1), lambda: [float("nan")],
                     lambda: lambda *a: a, Opaque]).map(lambda make: make()),
    st.builds(lambda a: a.copy(), st.deferred(lambda: __import__("hypothesis.extra.numpy", fromlist=["arrays"])
                                                .arrays(np.float64, (2, 3), elements=st.floats(-2, 2)))),
)

PLAIN = st.one_of(st.none(), INTS, FLOATS, st.booleans(), STRINGS, SHAPES)
ANY = st.one_of(TENSORS, TENSORS, PLAIN, PLAIN, GARBAGE, DTYPES)

# parameter names and what kind of value they usually take
_TENSOR_NAMES = {"x", "input", "a", "b", "other", "target", "weight", "bias", "index", "source", "src", "mat1",
                 "mat2", "vec", "vec2", "mask", "condition", "running_mean", "running_var", "indices", "tensor",
                 "input1", "input2", "batch1", "batch2", "query", "key", "value", "attn_mask", "pos_weight", "var",
                 "x1", "x2", "mu", "logvar", "tensor1", "tensor2", "end", "exponent", "hx", "h", "c", "src_mask",
                 "tgt", "memory", "tgt_mask", "memory_mask", "key_padding_mask", "gradient", "grad", "out",
                 "test_elements", "other_tensor", "elements", "self"}
_DIM_NAMES = {"dim", "dim0", "dim1", "axis", "start_dim", "end_dim", "source_dim", "destination", "dims",
              "diagonal", "k", "n", "offset", "chunks", "sections", "indices_or_sections", "shifts", "repeats",
              "split_size_or_sections", "split_size", "length", "start", "step", "num_classes", "upscale_factor",
              "downscale_factor", "num_samples", "high", "low", "p", "correction", "unbiased", "keepdim",
              "stable", "descending", "largest", "sorted", "inplace", "steps"}
_SIZE_NAMES = {"size", "sizes", "shape", "dims", "output_size", "kernel_size", "stride", "padding", "dilation",
               "normalized_shape", "unflattened_size", "scale_factor", "repeats", "pad", "output_padding"}
_DTYPE_NAMES = {"dtype"}
_LIST_NAMES = {"tensors", "operands", "params", "parameters"}


def value_for(name: str):
    """A strategy for a parameter called ``name``: half the time a value of the kind the name suggests
    (often out of range), half the time anything at all."""
    if name in _LIST_NAMES:
        hinted = st.lists(TENSORS, max_size=3)
    elif name in _DTYPE_NAMES:
        hinted = st.one_of(DTYPES, st.none())
    elif name in _SIZE_NAMES:
        hinted = st.one_of(SHAPES, INTS)
    elif name in _DIM_NAMES:
        hinted = st.one_of(INTS, st.booleans(), st.none())
    elif name in _TENSOR_NAMES:
        hinted = TENSORS
    else:
        hinted = PLAIN
    return st.one_of(hinted, hinted, ANY)


def signature_params(fn):
    """``inspect.signature(fn)``'s parameters, or None when there is no signature."""
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None


@st.composite
def calls(draw, fn, value=value_for):
    """``(args, kwargs)`` for ``fn``: its required positionals (one more or one fewer now and then), some
    optional ones and keywords, each drawn by ``value(name)``; now and then an unknown keyword."""
    params = signature_params(fn)
    if params is None:
        n = draw(st.integers(0, 3))
        return [draw(ANY) for _ in range(n)], {}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    varargs = [p for p in params if p.kind == p.VAR_POSITIONAL]
    n = len(required)
    # Hypothesis favours small and boundary draws: the rare branches sit on interior values
    r = draw(st.integers(0, 9))
    if r == 7:
        n = max(0, n + draw(st.sampled_from([-1, 1])))
    elif r <= 4:
        n = draw(st.integers(n, len(positional)))
    names = [p.name for p in positional[:n]] + ["extra"] * max(0, n - len(positional))
    if varargs and n >= len(positional):
        names += [varargs[0].name] * draw(st.integers(0 if names else 1, 3))
    args = [draw(value(name)) for name in names]
    kwargs = {}
    used = set(names[:len(positional)])
    optional = [p.name for p in params if p.name not in used and p.kind == p.KEYWORD_ONLY
                or (p.kind == p.POSITIONAL_OR_KEYWORD and p.default is not p.empty and p.name not in used)]
    if optional and draw(st.booleans()):
        for name in draw(st.lists(st.sampled_from(optional), min_size=1, max_size=3, unique=True)):
            kwargs[name] = draw(value(name))
    if draw(st.integers(0, 24)) == 13:
        kwargs["no_such_argument"] = 1
    return args, kwargs


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
