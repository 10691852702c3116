"""Cumulative link mixed model (logit) with crossed random intercepts, as R's ``ordinal::clmm``.

Model: P(Y_i <= k) = F(theta_k - x_i'beta - sum_j sigma_j u_j[g_j(i)]), u ~ N(0, I), F logistic.
The likelihood integrates u out by the Laplace approximation (R clmm's default):

    L = sum_i log p_i(u_hat) - u_hat'u_hat / 2 - log det(H) / 2,   H = I + Zs' W Zs,

where u_hat maximises the integrand (inner Newton iterations), Zs is the random-effects
design scaled by the SDs and W the observed information of each rating in its linear
predictor. The outer problem (cut-points as first value + log increments, fixed effects,
log SDs) is solved by L-BFGS-B with the exact gradient of L, then polished by Newton steps
on a numerical Hessian that also gives the standard errors.

Crossed factors make H sparse but not block-diagonal. The largest factor (usually the
prompt) gives a diagonal block C; the other factors (raters, ...) a small dense block A;
B couples them. Every solve and log-determinant goes through the Schur complement
S = A - B C^-1 B' (size: the levels of the smaller factors), so the cost is linear in the
number of ratings and in the levels of the largest factor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse
from scipy.special import expit
from threadpoolctl import threadpool_limits

from glidemed.analysis.design import interaction_of, is_covariate, term_levels, treatment_design
from glidemed.analysis.formula import Formula, parse_formula
from glidemed.analysis.results import TABLE_COLUMNS, Z95, ModelResult, wald_row
from glidemed.analysis.tidy import usable_first_ratings
from glidemed.errors import AnalysisError

MAX_SMALL_LEVELS = 3000  # levels of all random factors but the largest (dense Schur block)
LOG_SD_BOUNDS = (-8.0, 5.0)  # log SD search range; the lower bound counts as SD = 0
MAX_ITER = 1000  # outer L-BFGS-B iterations
_INNER_TOL = 1e-10
_GRAD_TOL = 1e-5


# --- data preparation -------------------------------------------------------------------

@dataclass
class _Design:
    y: np.ndarray  # response category 0..K-1
    levels: list  # score values of the categories
    X: np.ndarray  # fixed-effect dummies (treatment coding, no intercept)
    names: list[str]  # their term names
    groups: list[np.ndarray]  # per random factor: level code of every rating
    group_names: list[str]
    n_levels: list[int]
    formula: str  # as fitted
    notes: list[str]
    separated: list[str]  # separation problems found in the data


def _label(aspect: str | None) -> str:
    return f"aspect {aspect!r}" if aspect is not None else "the ratings"


def _prepare(df: pd.DataFrame, formula: Formula, aspect: str | None) -> _Design:
    notes: list[str] = []
    data = df
    if aspect is not None and "aspect" in data.columns:
        data = data[data["aspect"] == aspect]
        if data.empty:
            raise AnalysisError(f"mixed model: no ratings of aspect {aspect!r}")
    # usable first ratings: quality-control repeats would weigh panels twice
    data = usable_first_ratings(data, formula.response)
    needed = list(dict.fromkeys([n for term in formula.fixed for n in term.split(":")]
                                + list(formula.random)))
    complete = data[needed].notna().all(axis=1)
    if not complete.all():
        notes.append(f"{int((~complete).sum())} rating(s) left out: missing "
                     f"{', '.join(c for c in needed if data[c].isna().any())}")
        data = data[complete]
    label = _label(aspect)
    if data.empty:
        raise AnalysisError(f"mixed model: no usable ratings for {label}")

    try:
        scores = pd.to_numeric(data[formula.response]).to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise AnalysisError(f"mixed model: response {formula.response!r} is not numeric") from None
    levels = np.unique(scores)
    if len(levels) < 2:
        raise AnalysisError(f"mixed model for {label}: all {len(scores)} scores are "
                            f"{levels[0]:g}; an ordinal model needs at least two score levels")
    y = np.searchsorted(levels, scores)
    levels = [int(v) if float(v).is_integer() else float(v) for v in levels]

    kept, _, dummies = treatment_design(data, formula.fixed, notes)
    X, names = _drop_aliased(dummies.to_numpy(float).reshape(len(y), -1), list(dummies.columns), notes)
    kept = [t for t in kept if any(n == t or n.startswith(f"{t}[T.") or interaction_of(n) == t
                                   for n in names)]

    groups, n_levels = [], []
    for factor in formula.random:
        factor_levels = term_levels(data[factor])
        if len(factor_levels) < 2:
            raise AnalysisError(
                f"mixed model for {label}: random effect (1|{factor}) has a single level "
                f"({factor_levels[0]!r}); a random intercept needs at least two levels: "
                f"drop the term or use a fixed effect")
        codes = pd.Categorical(data[factor].astype(str), categories=factor_levels).codes.astype(np.int64)
        groups.append(codes)
        n_levels.append(len(factor_levels))
    fitted = Formula(formula.response, tuple(kept), formula.random)
    separated = _separation(data, kept, y, levels)
    return _Design(y, levels, X, names, groups, list(formula.random), n_levels, str(fitted), notes,
                   separated)


def _separation(data: pd.DataFrame, terms: list[str], y: np.ndarray, levels: list) -> list[str]:
    """Levels of fixed terms whose scores all sit in the lowest or the highest score level, or
    all lie at or above (at or below) every score of the term's other levels: a cut-point
    then separates them, and no finite maximum-likelihood estimate exists."""
    found = []
    top = len(levels) - 1
    for term in (t for t in terms if ":" not in t):  # interactions: their factors' levels
        if is_covariate(data[term]):
            continue  # a numeric covariate has no levels to separate
        values = data[term].astype(str).to_numpy()
        for level in term_levels(data[term]):
            mine, others = y[values == level], y[values != level]
            if mine.min() == mine.max() and mine[0] in (0, top):
                found.append(f"level {level!r} of {term!r} has all its {len(mine)} scores at "
                             f"{levels[mine[0]]} ({'lowest' if mine[0] == 0 else 'highest'} level)")
            elif mine.min() >= others.max() or mine.max() <= others.min():
                side = "at or above" if mine.min() >= others.max() else "at or below"
                found.append(f"every score of level {level!r} of {term!r} is {side} every score "
                             f"of its other levels")
    return found


def _drop_aliased(X: np.ndarray, names: list[str], notes: list[str]) -> tuple[np.ndarray, list[str]]:
    """Drop columns that are linear combinations of the intercept and earlier columns."""
    keep: list[int] = []
    basis = np.ones((X.shape[0], 1))
    for j in range(X.shape[1]):
        trial = np.column_stack([basis, X[:, j]])
        if np.linalg.matrix_rank(trial) > basis.shape[1]:
            basis = trial
            keep.append(j)
        else:
            notes.append(f"coefficient {names[j]} not estimable (aliased with other terms): dropped")
    return X[:, keep], [names[j] for j in keep]


# --- per-rating derivatives of log p_i ------------------------------------------------

def _pieces(up: np.ndarray, lo: np.ndarray, eta: np.ndarray, third: bool) -> dict:
    """log p_i and its derivatives for p_i = F(a) - F(b), a = up - eta, b = lo - eta.

    l_a, l_b: d log p / da, db; g: d log p / d eta; w = -d2 log p / d eta2;
    g_a, g_b: dg/da, dg/db; w_a, w_b: dw/da, dw/db (only when ``third``).
    """
    a, b = up - eta, lo - eta
    Fa, Fb = expit(a), expit(b)
    # p from the nearer tail, so that it keeps its precision when a and b are both large
    p = np.where(b > 0, expit(-b) - expit(-a), Fa - Fb)
    p = np.maximum(p, 1e-300)
    fa, fb = Fa * (1 - Fa), Fb * (1 - Fb)
    d1a, d1b = fa * (1 - 2 * Fa), fb * (1 - 2 * Fb)
    N = fa - fb
    out = {"logp": np.log(p), "l_a": fa / p, "l_b": -fb / p}
    out["g"] = -N / p
    out["w"] = -(d1a - d1b) / p + (N / p) ** 2
    if third:
        d2a, d2b = fa * (1 - 6 * Fa + 6 * Fa ** 2), fb * (1 - 6 * Fb + 6 * Fb ** 2)
        p2, p3 = p * p, p * p * p
        out["g_a"] = -d1a / p + N * fa / p2
        out["g_b"] = d1b / p - N * fb / p2
        out["w_a"] = -d2a / p + (d1a - d1b) * fa / p2 + 2 * N * d1a / p2 - 2 * N * N * fa / p3
        out["w_b"] = d2b / p - (d1a - d1b) * fb / p2 - 2 * N * d1b / p2 + 2 * N * N * fb / p3
    return out


# --- the Laplace likelihood -------------------------------------------------------------

class _Laplace:
    """Laplace log-likelihood of a clmm and its gradient, for one design."""

    def __init__(self, design: _Design):
        self.d = design
        self.n = len(design.y)
        self.K = len(design.levels)
        self.p = design.X.shape[1]
        m = len(design.groups)
        # the largest factor goes on the diagonal block; the others form the dense block
        self.big = int(np.argmax(design.n_levels))
        self.small = [j for j in range(m) if j != self.big]
        self.q_big = design.n_levels[self.big]
        offsets = np.cumsum([0] + [design.n_levels[j] for j in self.small])
        self.q_small = int(offsets[-1])
        if self.q_small > MAX_SMALL_LEVELS:
            raise AnalysisError(
                f"mixed model: the random factors other than {design.group_names[self.big]!r} "
                f"have {self.q_small} levels in all (at most {MAX_SMALL_LEVELS} supported)")
        self.small_codes = [design.groups[j] + offsets[k] for k, j in enumerate(self.small)]
        self.big_codes = design.groups[self.big]
        # sparse indicator Z (n x q), columns: small factors, then the big one
        rows = np.tile(np.arange(self.n), m)
        cols = np.concatenate(self.small_codes + [self.big_codes + self.q_small])
        self.Z = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                   shape=(self.n, self.q_small + self.q_big))
        self.Zt = self.Z.T.tocsr()
        self.order = self.small + [self.big]  # factor of each block of u, in u's order
        self.sizes = [design.n_levels[j] for j in self.order]
        self.q = self.q_small + self.q_big
        self.u = np.zeros(self.q)
        self.n_theta = self.K - 1
        self.n_par = self.n_theta + self.p + m
        self.y = design.y
        self.has_up = self.y < self.K - 1
        self.has_lo = self.y > 0

    # parameters: alpha (theta_1, log increments), beta, log sd (in design.groups order)
    def split(self, par: np.ndarray):
        alpha = par[:self.n_theta]
        beta = par[self.n_theta:self.n_theta + self.p]
        log_sd = par[self.n_theta + self.p:]
        return alpha, beta, log_sd

    def thresholds(self, alpha: np.ndarray) -> np.ndarray:
        return np.cumsum(np.concatenate([alpha[:1], np.exp(alpha[1:])]))

    def theta_jacobian(self, alpha: np.ndarray) -> np.ndarray:
        """d theta_k / d alpha_m."""
        return np.tril(np.ones((self.n_theta, self.n_theta))) * np.concatenate([[1.0], np.exp(alpha[1:])])

    def _bounds(self, theta: np.ndarray):
        ext = np.concatenate([[-np.inf], theta, [np.inf]])
        return ext[self.y + 1], ext[self.y]

    def _sd_vector(self, log_sd: np.ndarray) -> np.ndarray:
        sd = np.exp(log_sd)
        return np.repeat([sd[j] for j in self.order], self.sizes)

    # the blocks of H = I + Zs' W Zs
    def _blocks(self, w: np.ndarray, sd: np.ndarray):
        qs, qb = self.q_small, self.q_big
        sd_big = sd[self.big]
        C = 1.0 + sd_big ** 2 * np.bincount(self.big_codes, weights=w, minlength=qb)
        A = np.eye(qs)
        B = np.zeros((qs, qb))
        for k, j in enumerate(self.small):
            cj = self.small_codes[k]
            B += (sd[j] * sd_big * np.bincount(cj * qb + self.big_codes, weights=w,
                                               minlength=qs * qb)).reshape(qs, qb)
            for k2, j2 in enumerate(self.small):
                A += (sd[j] * sd[j2] * np.bincount(cj * qs + self.small_codes[k2], weights=w,
                                                   minlength=qs * qs)).reshape(qs, qs)
        return A, B, C

    @staticmethod
    def _factor(A, B, C) -> np.ndarray:
        """Cholesky factor of the Schur complement S = A - B C^-1 B'."""
        S = A - (B / C) @ B.T
        if not S.size:
            return S
        try:
            return np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            pass
        # S = I + ... is positive definite in exact arithmetic; at extreme SDs rounding can
        # cost that. A symmetric, slightly regularised S keeps the fit going; if even that
        # fails, this point of the likelihood cannot be evaluated.
        S = (S + S.T) / 2
        jitter = 1e-10 * max(1.0, float(np.max(np.abs(np.diag(S)))))
        for _ in range(6):
            try:
                return np.linalg.cholesky(S + jitter * np.eye(len(S)))
            except np.linalg.LinAlgError:
                jitter *= 100
        raise _InnerFailure()

    def _solve(self, blocks, L, rhs: np.ndarray) -> np.ndarray:
        """H^-1 rhs by the Schur complement; rhs is q or q x P."""
        _, B, C = blocks
        qs = self.q_small
        r1, r2 = rhs[:qs], rhs[qs:]
        Cinv = 1.0 / C if rhs.ndim == 1 else (1.0 / C)[:, None]
        t = r1 - B @ (Cinv * r2)
        x1 = linalg.cho_solve((L, True), t) if qs else t
        x2 = Cinv * (r2 - B.T @ x1)
        return np.concatenate([x1, x2])

    def _logdet(self, C, L) -> float:
        return float(np.sum(np.log(C)) + 2 * np.sum(np.log(np.diag(L))))

    def _inner(self, theta, beta, sd_vec, sd):
        """Newton iterations for the conditional modes u (warm-started at the last ones)."""
        up, lo = self._bounds(theta)
        fixed = self.d.X @ beta

        def at(u):
            eta = fixed + self.Z @ (sd_vec * u)
            pc = _pieces(up, lo, eta, third=False)
            return pc, float(pc["logp"].sum() - 0.5 * u @ u), eta

        u = self.u.copy()
        pc, h, eta = at(u)
        if not np.isfinite(h):
            u = np.zeros(self.q)
            pc, h, eta = at(u)
        for _ in range(100):
            grad = sd_vec * (self.Zt @ pc["g"]) - u
            blocks = self._blocks(pc["w"], sd)
            L = self._factor(*blocks)
            if np.max(np.abs(grad)) < _INNER_TOL:
                break
            step = self._solve(blocks, L, grad)
            factor = 1.0
            for _ in range(50):
                pc_t, h_t, eta_t = at(u + factor * step)
                if np.isfinite(h_t) and h_t >= h - 1e-12 * abs(h):
                    break
                factor /= 2
            else:
                raise _InnerFailure()
            u, pc, h, eta = u + factor * step, pc_t, h_t, eta_t
            if np.max(np.abs(factor * step)) < 1e-12:  # at the limit of precision
                blocks = self._blocks(pc["w"], sd)
                L = self._factor(*blocks)
                break
        else:
            raise _InnerFailure()
        return u, pc, h, eta, up, lo, blocks, L

    def loglik(self, par: np.ndarray, gradient: bool = False):
        """Laplace log-likelihood (and its gradient in ``par``)."""
        alpha, beta, log_sd = self.split(par)
        theta = self.thresholds(alpha)
        sd = np.exp(log_sd)
        sd_vec = self._sd_vector(log_sd)
        u, pc, h, eta, up, lo, blocks, L = self._inner(theta, beta, sd_vec, sd)
        self.u = u
        value = h - 0.5 * self._logdet(blocks[2], L)
        if not gradient:
            return value
        pc = _pieces(up, lo, eta, third=True)
        return value, self._gradient(par, sd, sd_vec, u, pc, blocks, L)

    def _gradient(self, par, sd, sd_vec, u, pc, blocks, L) -> np.ndarray:
        """Exact gradient of the Laplace log-likelihood, u_hat's dependence included."""
        X, n = self.d.X, self.n
        alpha = par[:self.n_theta]
        J = self.theta_jacobian(alpha)
        A_up = np.zeros((n, self.n_theta))
        A_lo = np.zeros((n, self.n_theta))
        A_up[self.has_up] = J[self.y[self.has_up]]
        A_lo[self.has_lo] = J[self.y[self.has_lo] - 1]
        m = len(self.d.groups)
        # e_j: each factor's part of the linear predictor
        E_re = np.column_stack([sd[j] * u[self._block(j)][self.d.groups[j]] for j in range(m)])
        w, g = pc["w"], pc["g"]
        # d eta / d par at fixed u, and d g / d par at fixed u
        E = np.hstack([np.zeros((n, self.n_theta)), X, E_re])
        dTu = np.hstack([A_up, np.zeros((n, self.p + m))])
        dTl = np.hstack([A_lo, np.zeros((n, self.p + m))])
        dg = pc["g_a"][:, None] * dTu + pc["g_b"][:, None] * dTl - w[:, None] * E
        R = sd_vec[:, None] * (self.Zt @ dg)
        for j in range(m):
            col = self.n_theta + self.p + j
            sl = self._block(j)
            R[sl, col] += sd[j] * np.bincount(self.d.groups[j], weights=g, minlength=self.d.n_levels[j])
        D = self._solve(blocks, L, R)  # d u_hat / d par
        deta = E + self.Z @ (sd_vec[:, None] * D)
        dw = (pc["w_a"][:, None] * dTu + pc["w_b"][:, None] * dTl
              - (pc["w_a"] + pc["w_b"])[:, None] * deta)
        lev = self._leverages(blocks, L, sd)  # n x m: m_ij
        M = lev.sum(axis=1)
        grad = np.concatenate([A_up.T @ pc["l_a"] + A_lo.T @ pc["l_b"], X.T @ g, E_re.T @ g])
        grad -= 0.5 * (M @ dw)
        grad[self.n_theta + self.p:] -= (w[:, None] * lev).sum(axis=0)
        return grad

    def _block(self, j: int) -> slice:
        """Slice of u that holds factor j."""
        start = 0
        for k in self.order:
            if k == j:
                return slice(start, start + self.d.n_levels[k])
            start += self.d.n_levels[k]
        raise IndexError(j)

    def _leverages(self, blocks, L, sd) -> np.ndarray:
        """m_ij = sd_j sum_k sd_k (H^-1)[g_j(i), g_k(i)] for every rating i and factor j."""
        _, B, C = blocks
        qs = self.q_small
        m = len(self.d.groups)
        codes = {j: self.small_codes[k] for k, j in enumerate(self.small)}
        big = self.big_codes
        if qs:
            Sinv = linalg.cho_solve((L, True), np.eye(qs))
            T = Sinv @ B  # (S^-1 B); H^-1 cross block is -T / C
            diag_big = 1.0 / C + np.sum(B * T, axis=0) / C ** 2
        else:
            diag_big = 1.0 / C

        def entry(j: int, k: int) -> np.ndarray:
            if j == self.big and k == self.big:
                return diag_big[big]
            if j == self.big:
                j, k = k, j
            if k == self.big:
                return -T[codes[j], big] / C[big]
            return Sinv[codes[j], codes[k]]

        lev = np.zeros((self.n, m))
        for j in range(m):
            for k in range(m):
                lev[:, j] += sd[j] * sd[k] * entry(j, k)
        return lev


class _InnerFailure(Exception):
    pass


@dataclass
class MixedResult(ModelResult):
    """A :class:`ModelResult` that also holds the covariance of the fixed effects and
    cut-points (rows and columns named by their terms, NaN when the Hessian failed), for
    the SE of a function of several of them, e.g. the asymmetry of the cut-points."""

    covariance: pd.DataFrame | None = None


# --- fitting -----------------------------------------------------------------------------

def fit_clmm(df: pd.DataFrame, formula: str, aspect: str | None, *, strict: bool = True) -> MixedResult:
    """Fit a cumulative logit mixed model with crossed random intercepts to one aspect.

    ``formula`` is R style, e.g. ``score ~ style + detail + (1|rater) + (1|prompt_id)``.
    Rows of other aspects, quality-control repeats, excluded ratings (``exclusion`` not
    empty) and missing scores are left out; unused score levels are removed. Returns a :class:`MixedResult` (model
    'mixed') whose table holds the fixed effects (log cumulative odds ratios, Wald CIs),
    the cut-points (R's convention P(Y <= k) = F(theta_k - x'beta)) and the SD of each
    random effect (CI by a Wald interval on the log scale). Raises AnalysisError on bad
    input and, when ``strict``, when the fit does not converge (else notes it).
    """
    started = time.perf_counter()
    # the matrices are small: threaded BLAS only adds overhead (and contention)
    with threadpool_limits(limits=1, user_api="blas"):
        result = _fit(df, formula, aspect, strict)
    result.seconds = time.perf_counter() - started
    return result


def _fit(df: pd.DataFrame, formula: str, aspect: str | None, strict: bool) -> MixedResult:
    parsed = parse_formula(formula, [str(c) for c in df.columns])
    if not parsed.random:
        raise AnalysisError(f"mixed model: formula {formula!r} has no random term like (1|rater)")
    design = _prepare(df, parsed, aspect)
    label = _label(aspect)
    model = _Laplace(design)
    start = _start_values(model)
    notes = list(design.notes)
    if design.separated:
        text = (f"mixed model for {label} ({design.formula}) has no finite estimate (separation): "
                f"{'; '.join(design.separated)}; drop or merge the level, or drop the term")
        if strict:
            raise AnalysisError(text)
        notes.append(text)
    try:
        par, converged, message = _optimise(model, start)
        hess = _hessian(model, par)
        par, hess, converged, message = _polish(model, par, hess, converged, message)
        loglik = model.loglik(par)
    except _InnerFailure:
        par, converged, loglik, hess = start, False, np.nan, None
        message = "the random-effect modes did not converge"
    free = _free(model, par)
    boundary = ~free[model.n_theta + model.p:]
    cov = _covariance(hess, free) if hess is not None else None
    if cov is None and converged:
        converged, message = False, "the Hessian is not positive definite"
    if not converged:
        suggestion = _suggest_drop(design, par, model)
        text = (f"mixed model for {label} ({design.formula}) did not converge: {message}; "
                f"{suggestion}")
        if strict:
            raise AnalysisError(text)
        notes.append(text)
    converged = converged and not design.separated
    for j, name in enumerate(design.group_names):
        if boundary[j]:
            notes.append(f"SD of (1|{name}) estimated at zero (boundary); its row has no SE or CI")
        elif design.n_levels[j] < 5:
            notes.append(f"SD of (1|{name}) rests on {design.n_levels[j]} levels only: imprecise")
    table, fixed_cov = _table(model, par, cov, boundary)
    fixed_terms = table.loc[table["kind"] != "random_sd", "term"]
    return MixedResult(model="mixed", formula=design.formula, aspect=aspect or "", n=model.n,
                       loglik=float(loglik), converged=bool(converged), table=table, notes=notes,
                       covariance=pd.DataFrame(fixed_cov, index=fixed_terms, columns=fixed_terms))


def _start_values(model: _Laplace) -> np.ndarray:
    """Cut-points from the marginal score distribution, beta 0, SDs 0.5."""
    counts = np.bincount(model.y, minlength=model.K).astype(float)
    cum = np.cumsum(counts)[:-1] / counts.sum()
    theta = np.log(cum / (1 - cum))
    alpha = np.concatenate([theta[:1], np.log(np.maximum(np.diff(theta), 1e-3))])
    return np.concatenate([alpha, np.zeros(model.p), np.full(len(model.d.groups), np.log(0.5))])


def _param_bounds(model: _Laplace) -> list[tuple[float | None, float | None]]:
    """Search bounds of the parameters: only the log SDs are bounded."""
    return ([(None, None)] * (model.n_theta + model.p)
            + [LOG_SD_BOUNDS] * len(model.d.groups))


def _optimise(model: _Laplace, start: np.ndarray):
    def objective(par):
        try:
            value, grad = model.loglik(par, gradient=True)
        except _InnerFailure:
            return np.inf, np.zeros_like(par)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(par)
        return -value, -grad

    res = optimize.minimize(objective, start, jac=True, method="L-BFGS-B",
                            bounds=_param_bounds(model),
                            options={"maxiter": MAX_ITER, "ftol": 1e-13, "gtol": 1e-7, "maxcor": 20})
    return res.x, bool(res.success) or _small_gradient(model, res.x), str(res.message)


def _free(model: _Laplace, par: np.ndarray) -> np.ndarray:
    """Parameters off the boundary: all but the log SDs at their lower bound (SD = 0)."""
    free = np.ones(len(par), bool)
    free[model.n_theta + model.p:] = par[model.n_theta + model.p:] > LOG_SD_BOUNDS[0] + 1e-6
    return free


def _small_gradient(model: _Laplace, par: np.ndarray) -> bool:
    try:
        _, grad = model.loglik(par, gradient=True)
    except _InnerFailure:
        return False
    return bool(np.max(np.abs(grad[_free(model, par)])) < _GRAD_TOL)


def _hessian(model: _Laplace, par: np.ndarray) -> np.ndarray:
    """Hessian of the negative log-likelihood by central differences of the exact gradient."""
    P = len(par)
    H = np.zeros((P, P))
    for j in range(P):
        step = 1e-4 * max(1.0, abs(par[j]))
        plus, minus = par.copy(), par.copy()
        plus[j] += step
        minus[j] -= step
        H[:, j] = -(model.loglik(plus, True)[1] - model.loglik(minus, True)[1]) / (2 * step)
    return (H + H.T) / 2


def _polish(model: _Laplace, par, hess, converged, message):
    """Newton steps on the free parameters with the Hessian at hand: L-BFGS-B stops a little
    short of the optimum; close to it, these steps reach the precision of R's clmm."""
    free = _free(model, par)
    Hf = hess[np.ix_(free, free)]
    try:
        np.linalg.cholesky(Hf)
    except np.linalg.LinAlgError:
        return par, hess, converged, message
    value, grad = model.loglik(par, gradient=True)
    for _ in range(5):
        if np.max(np.abs(grad[free])) < 1e-8:
            break
        trial = par.copy()
        trial[free] += np.linalg.solve(Hf, grad[free])
        trial_value, trial_grad = model.loglik(trial, gradient=True)
        if not trial_value >= value - 1e-10:
            break
        par, value, grad = trial, trial_value, trial_grad
    if not converged and np.max(np.abs(grad[free])) < _GRAD_TOL:
        converged, message = True, "converged"
    return par, hess, converged, message


def _covariance(hess: np.ndarray, free: np.ndarray) -> np.ndarray | None:
    """Inverse Hessian over the ``free`` parameters (NaN rows for SDs on the boundary);
    None when it is not positive definite."""
    Hf = hess[np.ix_(free, free)]
    try:
        np.linalg.cholesky(Hf)
    except np.linalg.LinAlgError:
        return None
    cov = np.full_like(hess, np.nan)
    cov[np.ix_(free, free)] = np.linalg.inv(Hf)
    return cov


def _suggest_drop(design: _Design, par: np.ndarray, model: _Laplace) -> str:
    if len(design.group_names) > 1:
        sds = np.exp(par[model.n_theta + model.p:])
        weakest = design.group_names[int(np.argmin(sds))]
        return f"try dropping a term, e.g. (1|{weakest}), or fit the fixed-effect model"
    return "try dropping a term or fit the fixed-effect model"


def _table(model: _Laplace, par: np.ndarray, cov: np.ndarray | None,
           boundary: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The table, and the covariance of its effects and cut-points (in that order)."""
    alpha, beta, log_sd = model.split(par)
    theta = model.thresholds(alpha)
    k, p = model.n_theta, model.p
    if cov is None:
        cov = np.full((len(par), len(par)), np.nan)
    to_estimates = linalg.block_diag(np.eye(p), model.theta_jacobian(alpha))  # from (beta, alpha)
    order = np.r_[k:k + p, :k]
    fixed_cov = to_estimates @ cov[np.ix_(order, order)] @ to_estimates.T
    beta_se, theta_se = np.sqrt(np.diag(fixed_cov)[:p]), np.sqrt(np.diag(fixed_cov)[p:])
    log_sd_se = np.sqrt(np.diag(cov[k + p:, k + p:]))
    rows = [wald_row(name, "effect", est, se) for name, est, se in zip(model.d.names, beta, beta_se)]
    levels = model.d.levels
    for j, (est, se) in enumerate(zip(theta, theta_se)):
        rows.append({"term": f"{levels[j]}|{levels[j + 1]}", "kind": "cutpoint", "estimate": est,
                     "se": se, "ci_low": est - Z95 * se, "ci_high": est + Z95 * se})
    for j, name in enumerate(model.d.group_names):
        sd = 0.0 if boundary[j] else float(np.exp(log_sd[j]))
        se = np.nan if boundary[j] else sd * log_sd_se[j]
        rows.append({"term": f"sd({name})", "kind": "random_sd", "estimate": sd, "se": se,
                     "ci_low": np.nan if boundary[j] else np.exp(log_sd[j] - Z95 * log_sd_se[j]),
                     "ci_high": np.nan if boundary[j] else np.exp(log_sd[j] + Z95 * log_sd_se[j])})
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({c: float for c in TABLE_COLUMNS[2:]})
    return table, fixed_cov
