"""L-BFGS (Nocedal, 1980; Liu & Nocedal, 1989) with an optional strong-Wolfe line search, PyTorch's
formulation (itself after Mark Schmidt's minFunc)."""
from __future__ import annotations

import numbers

from ..autograd.grad_mode import enable_grad, no_grad
from ..backend import get_array_module
from ..errors import InvalidArgumentError
from .optimizer import Optimizer, _check_float, _check_grad

__all__ = ["LBFGS"]


def _check_count(name, v):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
        raise InvalidArgumentError(f"LBFGS: {name} must be a positive int, got {v!r}")
    return int(v)


def _cubic_min(x1, f1, g1, x2, f2, g2, bounds=None):
    r"""Minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clipped to ``bounds``
    (default: the interval between x1 and x2)::

        d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)
        d2 = sqrt(d1^2 - g1 g2)
        x* = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)      (x1 <= x2; symmetric otherwise)

    When d1^2 - g1 g2 < 0 the cubic has no minimum: the midpoint of the bounds is returned.
    """
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 ** 2 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = disc ** 0.5
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, lo), hi)


def _line_search_strong_wolfe(phi, t, d, f0, g0, gtd0, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    r"""Find a step t along d that satisfies the strong Wolfe conditions::

        f(x + t d) <= f(x) + c1 t g(x).d          (sufficient decrease)
        |g(x + t d).d| <= c2 |g(x).d|             (curvature)

    ``phi(t)`` returns (f, flat gradient) at x + t d. Phase 1 grows t (cubic extrapolation within
    [t + 0.01 (t - t_prev), 10 t]) until an interval [lo, hi] is known to contain such a point;
    phase 2 shrinks it by cubic interpolation, moving a trial that lands within 10% of an end
    0.1 * width inside when progress stalls (Nocedal & Wright, algorithms 3.5 and 3.6).
    Returns (f, g, t, evaluations).
    """
    xp = get_array_module(d)
    d_norm = xp.abs(d).max()
    f_new, g_new = phi(t)
    evals = 1
    gtd_new = g_new.dot(d)
    # points are (t, f, g, g.d)
    prev = (0, f0, g0.copy(), gtd0)
    pts, found, it = None, False, 0
    while it < max_ls:
        if f_new > f0 + c1 * t * gtd0 or (it > 1 and f_new >= prev[1]):
            pts = [prev, (t, f_new, g_new.copy(), gtd_new)]
            break
        if abs(gtd_new) <= -c2 * gtd0:
            pts, found = [(t, f_new, g_new, gtd_new)], True
            break
        if gtd_new >= 0:
            pts = [prev, (t, f_new, g_new.copy(), gtd_new)]
            break
        t_next = _cubic_min(prev[0], prev[1], prev[3], t, f_new, gtd_new, bounds=(t + 0.01 * (t - prev[0]), t * 10))
        prev = (t, f_new, g_new.copy(), gtd_new)
        t = t_next
        f_new, g_new = phi(t)
        evals += 1
        gtd_new = g_new.dot(d)
        it += 1
    if it == max_ls:  # no bracket found within the budget: fall back to [0, t]
        pts = [(0, f0, g0, gtd0), (t, f_new, g_new, gtd_new)]
    low = 0 if pts[0][1] <= pts[-1][1] else 1
    stalled = False
    while not found and it < max_ls:
        (ta, fa, _, da), (tb, fb, _, db) = pts
        if abs(tb - ta) * d_norm < tolerance_change:
            break
        t = _cubic_min(ta, fa, da, tb, fb, db)
        left, right = min(ta, tb), max(ta, tb)
        margin = 0.1 * (right - left)
        if min(right - t, t - left) < margin:
            if stalled or t >= right or t <= left:
                t = right - margin if abs(t - right) < abs(t - left) else left + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f_new, g_new = phi(t)
        evals += 1
        gtd_new = g_new.dot(d)
        it += 1
        high = 1 - low
        if f_new > f0 + c1 * t * gtd0 or f_new >= pts[low][1]:
            pts[high] = (t, f_new, g_new.copy(), gtd_new)
            low = 0 if pts[0][1] <= pts[1][1] else 1
        else:
            if abs(gtd_new) <= -c2 * gtd0:
                found = True
            elif gtd_new * (pts[high][0] - pts[low][0]) >= 0:
                pts[high] = pts[low]
            pts[low] = (t, f_new, g_new.copy(), gtd_new)
    t, f_best, g_best, _ = pts[low]
    return f_best, g_best, t, evals


class LBFGS(Optimizer):
    r"""L-BFGS: quasi-Newton steps d = -H g with H the inverse-Hessian estimate built from the last
    ``history_size`` pairs s_k = x_{k+1} - x_k, y_k = g_{k+1} - g_k (kept only when y.s > 1e-10).

    ``step(closure)`` runs up to ``max_iter`` iterations (at most ``max_eval`` closure calls). Each one:

    - direction by the two-loop recursion: q = -g; for k newest..oldest: a_k = rho_k s_k.q,
      q -= a_k y_k; r = gamma q with gamma = y.s / y.y (latest pair); for k oldest..newest:
      b = rho_k y_k.r, r += (a_k - b) s_k; d = r (rho_k = 1 / y_k.s_k). First iteration: d = -g;
    - step t: first iteration ``min(1, 1 / sum|g|) * lr``, then ``lr``; with
      ``line_search_fn='strong_wolfe'`` t is refined by a strong-Wolfe line search (c1 = 1e-4,
      c2 = 0.9); x <- x + t d;
    - stop when max|g| <= tolerance_grad, g.d > -tolerance_change, max|t d| <= tolerance_change,
      or |f - f_prev| < tolerance_change.

    One parameter group only, all parameters on one device, as in PyTorch. State (kept under the
    first parameter): ``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``,
    ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``.
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval=None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100, line_search_fn=None):
        _check_float("learning rate", lr)
        max_iter = _check_count("max_iter", max_iter)
        max_eval = max_iter * 5 // 4 if max_eval is None else _check_count("max_eval", max_eval)
        history_size = _check_count("history_size", history_size)
        _check_float("tolerance_grad", tolerance_grad)
        _check_float("tolerance_change", tolerance_change)
        if line_search_fn not in (None, "strong_wolfe"):
            raise InvalidArgumentError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        super().__init__(params, dict(lr=lr, max_iter=int(max_iter), max_eval=int(max_eval),
                                      tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                                      history_size=int(history_size), line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise InvalidArgumentError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        devs = {str(p.device) for p in self._params}
        if len(devs) != 1:
            raise InvalidArgumentError(f"LBFGS: all parameters must be on one device, got {sorted(devs)}")

    def add_param_group(self, param_group):
        if self.param_groups:
            raise InvalidArgumentError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # ---- flat views of the parameters / gradients
    def _flat_grad(self):
        for p in self._params:
            if p.grad is not None:
                _check_grad(p)
        xp = get_array_module(self._params[0].array)
        parts = [xp.zeros(p.array.size, dtype=p.array.dtype) if p.grad is None else p.grad.array.reshape(-1)
                 for p in self._params]
        return xp.concatenate(parts)

    def _add_step(self, t, d):
        off = 0
        for p in self._params:
            n = p.array.size
            p.array += (t * d[off:off + n]).reshape(p.array.shape).astype(p.array.dtype, copy=False)
            p._vc[0] += 1
            off += n

    def _set_params(self, saved):
        for p, a in zip(self._params, saved):
            p.array[...] = a
            p._vc[0] += 1

    def step(self, closure=None):
        """Run the L-BFGS iterations; ``closure()`` must zero the gradients, compute the loss, call
        ``backward()`` and return the loss. Returns the loss of the first evaluation."""
        if closure is None:
            raise InvalidArgumentError("LBFGS.step needs a closure that re-evaluates the model and returns the loss")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        hist = group["history_size"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        def evaluate():
            with enable_grad():
                return closure()

        orig_loss = evaluate()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        xp = get_array_module(g)
        if xp.abs(g).max() <= tol_grad:
            return orig_loss
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_g, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        with no_grad():
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1
                if state["n_iter"] == 1:
                    d = -g
                    old_dirs, old_stps, ro = [], [], []
                    h_diag = 1
                else:
                    y = g - prev_g
                    s = d * t
                    ys = y.dot(s)
                    if ys > 1e-10:
                        if len(old_dirs) == hist:
                            old_dirs.pop(0)
                            old_stps.pop(0)
                            ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        h_diag = ys / y.dot(y)
                    al = state.setdefault("al", [None] * hist)
                    q = -g
                    for i in range(len(old_dirs) - 1, -1, -1):
                        al[i] = old_stps[i].dot(q) * ro[i]
                        q -= al[i] * old_dirs[i]
                    d = r = q * h_diag
                    for i in range(len(old_dirs)):
                        b = old_dirs[i].dot(r) * ro[i]
                        r += (al[i] - b) * old_stps[i]
                prev_g = g.copy()
                prev_loss = loss
                t = min(1.0, 1.0 / xp.abs(g).sum()) * lr if state["n_iter"] == 1 else lr
                gtd = g.dot(d)
                if gtd > -tol_change:
                    break
                ls_evals = 0
                if group["line_search_fn"] == "strong_wolfe":
                    x0 = [p.array.copy() for p in self._params]

                    def phi(step):
                        self._add_step(step, d)
                        f = float(evaluate())
                        gg = self._flat_grad()
                        self._set_params(x0)
                        return f, gg

                    loss, g, t, ls_evals = _line_search_strong_wolfe(phi, t, d, loss, g, gtd,
                                                                     max_ls=max_eval - evals)
                    self._add_step(t, d)
                    opt = xp.abs(g).max() <= tol_grad
                else:
                    self._add_step(t, d)
                    opt = False
                    if n_iter != max_iter:
                        loss = float(evaluate())
                        g = self._flat_grad()
                        opt = xp.abs(g).max() <= tol_grad
                        ls_evals = 1
                evals += ls_evals
                state["func_evals"] += ls_evals
                if n_iter == max_iter or evals >= max_eval or opt:
                    break
                if xp.abs(d * t).max() <= tol_change or abs(loss - prev_loss) < tol_change:
                    break
        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag, prev_flat_grad=prev_g,
                     prev_loss=prev_loss)
        return orig_loss
