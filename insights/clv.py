"""Customer lifetime value models, fitted with numpy and scipy.

- BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): how often a customer
  buys while "alive", and the chance they have left. Inputs per customer: ``x`` repeat purchases
  (purchase days after the first), ``t_x`` the time of the last purchase and ``T`` the time since
  the first purchase, both counted from the first purchase.
- Gamma-Gamma (Fader, Hardie and Lee 2005, "RFM and CLV: using iso-value curves"): the value of a
  customer's orders, from the mean value ``m`` of their ``x`` repeat purchases.

The published results on the CDNOW sample are reproduced by tests (``tests/test_insights_clv.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

# A fit outside these bounds has run off to a corner of the parameter space (a uniform store, too
# little history): its predictions are not to be trusted, or shown. r and alpha may both grow large
# together (customers buying at much the same rate: only their ratio matters), so their bound is wider.
BOUNDS = (1e-6, 1e6)
RATE_BOUNDS = (1e-6, 1e8)


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool = True

    def trouble(self) -> str:
        """Why the fit must not be used, or "" if it may."""
        if not self.converged:
            return "the fit did not converge"
        if not (all(RATE_BOUNDS[0] < value < RATE_BOUNDS[1] for value in (self.r, self.alpha))
                and all(BOUNDS[0] < value < BOUNDS[1] for value in (self.a, self.b))):
            return "the fitted parameters ran out of bounds"
        return ""

    def as_dict(self) -> dict:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b, "log_likelihood": self.log_likelihood,
                "customers": self.customers}


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int
    converged: bool = True

    def trouble(self) -> str:
        if not self.converged:
            return "the fit did not converge"
        # p and v may run off together (customers whose orders always cost the same: only p*v
        # matters, and each customer's own mean is the prediction); they must stay finite.
        if not all(np.isfinite(value) and value > 0 for value in (self.p, self.q, self.v, self.p * self.v)):
            return "the fitted parameters are not finite"
        if self.q <= 1:
            return "the fit has no finite mean order value (q <= 1)"
        return ""

    def as_dict(self) -> dict:
        return {"p": self.p, "q": self.q, "v": self.v, "log_likelihood": self.log_likelihood,
                "customers": self.customers}


def _bgnbd_likelihood(x, t_x, T, weights=None):
    """The BG/NBD log-likelihood of these customers, as a function of the parameters. Each term
    depends on the parameters through x, t_x or T alone, and each takes a few hundred values (whole
    purchases, days): the special functions and logarithms are evaluated once per distinct value and
    gathered per customer. The same numbers as evaluating them per customer, in the same order, so
    the same fit, several times faster (the fit evaluates this some thousand times)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    ux, xi = np.unique(x, return_inverse=True)
    ut, ti = np.unique(t_x, return_inverse=True)
    uT, Ti = np.unique(T, return_inverse=True)
    repeat = x > 0

    def log_likelihood(params) -> float:
        r, alpha, a, b = params
        common = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
        rx = (r + ux)[xi]
        first = ((special.betaln(a, b + ux) - special.betaln(a, b)) + common)[xi] - rx * np.log(alpha + uT)[Ti]
        with np.errstate(divide="ignore", invalid="ignore"):
            # The second term is -inf where x = 0 (no repeat purchase to have been the last).
            second = np.where(repeat, (special.betaln(a + 1, b + ux - 1) - special.betaln(a, b) + common)[xi]
                              - rx * np.log(alpha + ut)[ti], -np.inf)
        each = np.logaddexp(first, second)
        return float(np.sum(each if weights is None else each * weights))

    return log_likelihood


def bgnbd_log_likelihood(params, x, t_x, T, weights=None) -> float:
    return _bgnbd_likelihood(x, t_x, T, weights)(params)


def _compress(*columns):
    """Customers with the same history share a likelihood term: fit on the distinct rows, weighted."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)


# L-BFGS-B's defaults stop early on these flat likelihoods (a = 0.7930 on CDNOW, not 0.7929).
_LBFGSB = {"ftol": 1e-13, "gtol": 1e-9, "maxiter": 5000}


def _maximise(negative, starts):
    """L-BFGS-B from a few starts (it converges in a few hundred evaluations on these
    likelihoods); Nelder-Mead then polishes if none reports success."""
    best = None
    for start in starts:
        found = optimize.minimize(negative, np.log(start), method="L-BFGS-B", options=_LBFGSB)
        if best is None or found.fun < best.fun:
            best = found
    if not best.success:
        found = optimize.minimize(negative, best.x, method="Nelder-Mead",
                                  options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20000, "maxfev": 20000})
        best = found if found.fun < best.fun else best
    return best


def fit_bgnbd(x, t_x, T) -> BgNbd:
    """Maximum likelihood on the log of the parameters (all must be positive)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    (ux, ut, uT), weights = _compress(x, t_x, T)
    log_likelihood = _bgnbd_likelihood(ux, ut, uT, weights)

    def negative(log_params):
        value = -log_likelihood(np.exp(log_params))
        return value if np.isfinite(value) else 1e300

    best = _maximise(negative, ([0.5, 5.0, 0.5, 2.0], [1.0, 1.0, 1.0, 1.0]))
    r, alpha, a, b = np.exp(best.x)
    return BgNbd(float(r), float(alpha), float(a), float(b), float(-best.fun), len(x),
                 converged=bool(best.success) and bool(np.isfinite(best.fun)) and best.fun < 1e299)


def p_alive(model: BgNbd, x, t_x, T) -> np.ndarray:
    """P(the customer has not left) given their history."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(model.a) - np.log(model.b + x - 1) + (model.r + x) * (
            np.log(model.alpha + T) - np.log(model.alpha + t_x))
    odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700)), 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases(model: BgNbd, horizon: float, x, t_x, T) -> np.ndarray:
    """E[purchases in the next ``horizon``] given the history (the BG/NBD conditional expectation)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    z = horizon / (alpha + T + horizon)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + horizon)) ** (r + x) * hyp)
    return numerator * p_alive(model, x, t_x, T)


def _gamma_gamma_likelihood(m, x):
    """The Gamma-Gamma log-likelihood of these customers, as a function of the parameters: the
    gamma functions are evaluated once per distinct number of repeat purchases, the logarithms of
    the data once (the same numbers as per customer, as in ``_bgnbd_likelihood``)."""
    m, x = np.asarray(m, dtype=float), np.asarray(x, dtype=float)
    ux, xi = np.unique(x, return_inverse=True)
    log_m, log_x, mx = np.log(m), np.log(x), m * x

    def log_likelihood(params) -> float:
        p, q, v = params
        px = (p * ux)[xi]
        head = (special.gammaln(p * ux + q) - special.gammaln(p * ux) - special.gammaln(q) + q * np.log(v))[xi]
        return float(np.sum(head + (px - 1) * log_m + px * log_x - (px + q) * np.log(v + mx)))

    return log_likelihood


def gamma_gamma_log_likelihood(params, m, x) -> float:
    return _gamma_gamma_likelihood(m, x)(params)


def fit_gamma_gamma(m, x) -> GammaGamma | None:
    """Fit on customers with at least one repeat purchase (``x`` > 0) and a positive mean value;
    None when there is none (nothing to fit: the starting point is not a result)."""
    m, x = np.asarray(m, dtype=float), np.asarray(x, dtype=float)
    keep = (x > 0) & (m > 0)
    m, x = m[keep], x[keep]
    if not len(m):
        return None

    log_likelihood = _gamma_gamma_likelihood(m, x)

    def negative(log_params):
        value = -log_likelihood(np.exp(log_params))
        return value if np.isfinite(value) else 1e300

    found = _maximise(negative, ([1.0, 1.0, 1.0], [5.0, 3.0, 10.0]))
    p, q, v = np.exp(found.x)
    return GammaGamma(float(p), float(q), float(v), float(-found.fun), len(m),
                      converged=bool(found.success) and found.fun < 1e299)


def expected_value(model: GammaGamma, m, x, fallback: float) -> np.ndarray:
    """E[value of an order]: the customer's own mean shrunk towards the population's; customers
    without repeat purchases get the population mean p*v/(q-1) (``fallback`` if q <= 1)."""
    m, x = np.asarray(m, dtype=float), np.asarray(x, dtype=float)
    population = model.p * model.v / (model.q - 1) if model.q > 1 else fallback
    with np.errstate(divide="ignore", invalid="ignore"):
        own = (model.v + m * x) * model.p / (model.p * x + model.q - 1)
    return np.where(x > 0, own, population)
