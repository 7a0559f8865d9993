r"""Paired significance tests and multiple-comparison corrections: pure functions.

Every test takes two paired per-query arrays `a` (system) and `b` (baseline), with
$d_i = a_i - b_i$ over the $n$ queries, and returns a two-sided p-value for
$H_0: \mathbb{E}[d] = 0$. `TESTS` and `CORRECTIONS` are the registries `simlab compare`
chooses from by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_CHUNK = 2_000_000  # resampling draws at most this many numbers at once (16 MB of float64)


def _differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-D and paired (same length); got shapes {a.shape} and {b.shape}.")
    if a.size == 0:
        raise ValueError("a and b are empty; a paired test needs at least one query.")
    return a - b


def _chunks(n_resamples: int, n: int) -> list[int]:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}.")
    step = max(1, _CHUNK // n)
    return [min(step, n_resamples - i) for i in range(0, n_resamples, step)]


def paired_randomization_test(a, b, n_resamples: int = 10_000, seed: int = 42) -> float:
    r"""Fisher's randomization (permutation) test of the mean difference, two-sided.

    Under $H_0$ the labels "system" and "baseline" are exchangeable within each query, so
    each difference $d_i = a_i - b_i$ is equally likely to have either sign. With
    $T(s) = |\frac{1}{n}\sum_i s_i d_i|$ and $B$ sign vectors $s^{(j)}$ drawn uniformly from
    $\{-1, +1\}^n$:

    $$p = \frac{1 + \#\{j : T(s^{(j)}) \ge T(\mathbf{1})\}}{B + 1}$$

    which estimates the exact $p = 2^{-n} \#\{s \in \{\pm 1\}^n : T(s) \ge T(\mathbf{1})\}$
    (Smucker et al., CIKM 2007); the $+1$ counts the observed assignment and keeps $p > 0$.
    Identical inputs give $p = 1$.

    Args:
        a: Per-query scores of the system, shape `[n]`.
        b: Per-query scores of the baseline on the same queries, shape `[n]`.
        n_resamples: $B$, the number of random sign vectors.
        seed: Seed of the numpy generator; the same seed gives the same p.

    Returns:
        The p-value.
    """
    import numpy as np

    d = _differences(a, b)
    observed = abs(d.sum())
    tol = 1e-9 * np.abs(d).sum()  # float noise: sign vectors giving T(1) in exact arithmetic count
    rng = np.random.default_rng(seed)
    hits = 0
    for size in _chunks(n_resamples, d.size):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, d.size))  # (size, n)
        hits += int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))  # (size,)
    return (1 + hits) / (1 + n_resamples)


def paired_bootstrap_test(a, b, n_resamples: int = 10_000, seed: int = 42) -> float:
    r"""Paired bootstrap test of the mean difference, two-sided, resampled under the null.

    With $d_i = a_i - b_i$, $\bar d$ its mean, and the differences shifted to mean zero,
    $d^0_i = d_i - \bar d$ (so that $H_0$ holds), draw $B$ resamples of $n$ queries with
    replacement, with means $\bar d^{0*}_j$:

    $$p = \frac{1 + \#\{j : |\bar d^{0*}_j| \ge |\bar d|\}}{B + 1}$$

    (Efron & Tibshirani 1993, sec. 16.4; Sakai, SIGIR 2006). Identical inputs give $p = 1$.

    Args:
        a: Per-query scores of the system, shape `[n]`.
        b: Per-query scores of the baseline on the same queries, shape `[n]`.
        n_resamples: $B$, the number of bootstrap resamples.
        seed: Seed of the numpy generator.

    Returns:
        The p-value.
    """
    import numpy as np

    d = _differences(a, b)
    observed = abs(d.mean())
    shifted = d - d.mean()
    tol = 1e-9 * np.abs(d).mean()
    rng = np.random.default_rng(seed)
    hits = 0
    for size in _chunks(n_resamples, d.size):
        idx = rng.integers(0, d.size, size=(size, d.size))  # (size, n)
        hits += int(np.count_nonzero(np.abs(shifted[idx].mean(axis=1)) >= observed - tol))
    return (1 + hits) / (1 + n_resamples)


def paired_t_test(a, b) -> float:
    r"""Paired Student's t-test, two-sided (`scipy.stats.ttest_rel`).

    $$t = \frac{\bar d}{s_d / \sqrt{n}}, \qquad p = 2\,P(T_{n-1} \ge |t|)$$

    with $d_i = a_i - b_i$, $s_d$ their sample standard deviation and $T_{n-1}$ Student's
    t distribution with $n - 1$ degrees of freedom. Where $t$ is undefined (all $d_i = 0$,
    or $n < 2$) there is no evidence against $H_0$ and $p = 1$.

    Args:
        a: Per-query scores of the system, shape `[n]`.
        b: Per-query scores of the baseline on the same queries, shape `[n]`.

    Returns:
        The p-value.
    """
    import warnings

    from scipy import stats

    d = _differences(a, b)
    if d.size < 2 or not d.any():
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant d: scipy warns, t = ±inf, p = 0
        p = float(stats.ttest_rel(a, b).pvalue)
    return 1.0 if math.isnan(p) else p


def wilcoxon_test(a, b) -> float:
    r"""Wilcoxon signed-rank test, two-sided (`scipy.stats.wilcoxon`).

    Queries with $d_i = 0$ are dropped; the others are ranked by $|d_i|$ (ties share the
    mean rank) and

    $$W^+ = \sum_{i : d_i > 0} \mathrm{rank}(|d_i|)$$

    is compared with its null distribution (exact for small $n$, normal approximation
    otherwise), as scipy decides. All differences zero gives $p = 1$.

    Args:
        a: Per-query scores of the system, shape `[n]`.
        b: Per-query scores of the baseline on the same queries, shape `[n]`.

    Returns:
        The p-value.
    """
    import warnings

    from scipy import stats

    d = _differences(a, b)
    if not d.any():
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "exact p not possible with ties/zeros"
        p = float(stats.wilcoxon(d).pvalue)
    return 1.0 if math.isnan(p) else p


def mcnemar_test(a, b) -> float:
    r"""McNemar's exact test on paired 0/1 outcomes (per-item correctness), two-sided.

    Only the discordant items carry information: with $n_{10} = \#\{i : a_i = 1, b_i = 0\}$
    and $n_{01} = \#\{i : a_i = 0, b_i = 1\}$, under $H_0$ each discordant item is equally
    likely to go either way, so $n_{10} \sim \mathrm{Binomial}(n_{10} + n_{01}, 1/2)$ and

    $$p = \min\Big(1,\ 2 \sum_{k \le \min(n_{10}, n_{01})} \binom{n_{10}+n_{01}}{k} 2^{-(n_{10}+n_{01})}\Big)$$

    (McNemar 1947; the exact binomial form, `scipy.stats.binomtest`, recommended for
    classifiers by Dietterich 1998). No discordant item gives $p = 1$.

    Args:
        a: Per-item outcomes of the system, 0 or 1, shape `[n]`.
        b: Per-item outcomes of the baseline on the same items.

    Returns:
        The p-value.

    Raises:
        ValueError: a value is not 0 or 1.
    """
    import numpy as np
    from scipy import stats

    d = _differences(a, b)  # checks shapes
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        raise ValueError("McNemar's test needs 0/1 outcomes per item (e.g. `correct`); use fisher for scores.")
    n10, n01 = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d < 0))
    if n10 + n01 == 0:
        return 1.0
    return float(stats.binomtest(n10, n10 + n01, 0.5).pvalue)


TESTS: dict[str, Callable[..., float]] = {
    "fisher": paired_randomization_test,
    "student": paired_t_test,
    "bootstrap": paired_bootstrap_test,
    "wilcoxon": wilcoxon_test,
    "mcnemar": mcnemar_test,
}
"""Paired two-sided tests by name: `(a, b[, n_resamples, seed]) -> p`."""


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


RATIO_METRICS: dict[str, Callable[..., np.ndarray]] = {
    "f1": lambda tp, fp, fn: _ratio(2 * tp, 2 * tp + fp + fn),
    "precision": lambda tp, fp, fn: _ratio(tp, tp + fp),
    "recall": lambda tp, fp, fn: _ratio(tp, tp + fn),
}
r"""Corpus-level metrics from summed per-item counts, by name: `(TP, FP, FN) -> value`.

$F_1 = 2TP / (2TP + FP + FN)$, precision $= TP / (TP + FP)$, recall $= TP / (TP + FN)$
(0 when the denominator is 0, as scikit-learn's `zero_division=0`). They are not means of
per-item values, so they are tested by resampling items and recomputing the metric
(`ratio_randomization_test`, `ratio_bootstrap_test`). With per-label counts summed per
item, the same formulas give micro-averaged multi-label metrics."""
RATIO_METRICS |= {f"micro_{k}": v for k, v in list(RATIO_METRICS.items())}
COUNTS = ("tp", "fp", "fn")
"""The per-item counts a ratio metric is computed from, in `RATIO_METRICS`' argument order."""


def _counts(a, b) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] != len(COUNTS):
        raise ValueError(f"a and b must be paired count arrays of shape (3, n) (TP, FP, FN); got {a.shape}, {b.shape}.")
    if a.shape[1] == 0:
        raise ValueError("a and b are empty; a paired test needs at least one item.")
    return a, b


def ratio_randomization_test(a, b, metric: Callable[..., np.ndarray], n_resamples: int = 10_000, seed: int = 42):
    r"""Approximate randomization test of a corpus-level metric's difference, two-sided.

    `a` and `b` are the per-item counts (TP, FP, FN; shape `(3, n)`) of the system and the
    baseline. Under $H_0$ the two systems' outputs are exchangeable per item, so each item's
    counts are swapped between them with probability 1/2 and the metric recomputed; with
    $\Delta = |m(a) - m(b)|$ and $\Delta_j$ that of the $j$-th of $B$ shuffles,

    $$p = rac{1 + \#\{j : \Delta_j \ge \Delta\}}{B + 1}$$

    (Noreen 1989; Yeh, COLING 2000, the usual test for F1 differences). It is Fisher's
    randomization test of `paired_randomization_test` with the mean replaced by the metric.

    Args:
        a, b: Per-item TP, FP, FN counts, shape `(3, n)`.
        metric: A `RATIO_METRICS` function.
        n_resamples: $B$.
        seed: Seed of the numpy generator.

    Returns:
        The p-value.
    """
    import numpy as np

    a, b = _counts(a, b)
    observed = abs(float(metric(*a.sum(axis=1)) - metric(*b.sum(axis=1))))
    rng = np.random.default_rng(seed)
    hits = 0
    for size in _chunks(n_resamples, a.shape[1]):
        swap = rng.integers(0, 2, size=(size, a.shape[1])).astype(np.float64)  # 1: item's outputs swapped
        sa = a.sum(axis=1) + swap @ (b - a).T  # (size, 3): the shuffled system's summed counts
        sb = b.sum(axis=1) + swap @ (a - b).T
        delta = np.abs(metric(*sa.T) - metric(*sb.T))
        hits += int(np.count_nonzero(delta >= observed - 1e-12))
    return (1 + hits) / (1 + n_resamples)


def ratio_bootstrap_test(a, b, metric: Callable[..., np.ndarray], n_resamples: int = 10_000, seed: int = 42):
    r"""Paired bootstrap test of a corpus-level metric's difference, two-sided.

    Items are resampled with replacement, the same items for both systems; with
    $\delta = m(a) - m(b)$ and $\delta^*_j$ its value on the $j$-th of $B$ resamples, the
    bootstrap distribution is shifted to the null (Efron & Tibshirani 1993, sec. 16.4):

    $$p = rac{1 + \#\{j : |\delta^*_j - \delta| \ge |\delta|\}}{B + 1}$$

    Args:
        a, b: Per-item TP, FP, FN counts, shape `(3, n)`.
        metric: A `RATIO_METRICS` function.
        n_resamples: $B$.
        seed: Seed of the numpy generator.

    Returns:
        The p-value.
    """
    import numpy as np

    a, b = _counts(a, b)
    n = a.shape[1]
    observed = float(metric(*a.sum(axis=1)) - metric(*b.sum(axis=1)))
    rng = np.random.default_rng(seed)
    hits = 0
    for size in _chunks(n_resamples, n):
        weights = np.stack([np.bincount(row, minlength=n) for row in rng.integers(0, n, size=(size, n))])
        delta = metric(*(weights @ a.T).T) - metric(*(weights @ b.T).T)  # weights: (size, n) item multiplicities
        hits += int(np.count_nonzero(np.abs(delta - observed) >= abs(observed) - 1e-12))
    return (1 + hits) / (1 + n_resamples)


RATIO_TESTS: dict[str, Callable[..., float]] = {"fisher": ratio_randomization_test, "bootstrap": ratio_bootstrap_test}
"""The tests of `TESTS` that have a corpus-level-metric form, by the same names."""


def holm(pvalues: Sequence[float]) -> list[float]:
    r"""Holm-Bonferroni step-down adjusted p-values, in the input order.

    With $p_{(1)} \le \dots \le p_{(m)}$ the sorted p-values,

    $$\tilde p_{(i)} = \min\Big(1, \max_{j \le i} (m - j + 1)\, p_{(j)}\Big)$$

    which is monotone in $i$; rejecting where $\tilde p \le \alpha$ controls the
    family-wise error rate at $\alpha$ (Holm 1979).

    Example:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03, 0.005])]
        [0.03, 0.06, 0.06, 0.02]
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def bonferroni(pvalues: Sequence[float]) -> list[float]:
    r"""Bonferroni adjusted p-values: $\tilde p_i = \min(1, m\,p_i)$ for $m$ p-values.

    Example:
        >>> bonferroni([0.01, 0.5])
        [0.02, 1.0]
    """
    return [min(1.0, len(pvalues) * p) for p in pvalues]


def no_correction(pvalues: Sequence[float]) -> list[float]:
    r"""The p-values unchanged: $\tilde p_i = p_i$ (each comparison at level $\alpha$ on its own)."""
    return [float(p) for p in pvalues]


CORRECTIONS: dict[str, Callable[[Sequence[float]], list[float]]] = {
    "holm": holm,
    "bonferroni": bonferroni,
    "none": no_correction,
}
"""Multiple-comparison corrections by name: `(pvalues) -> adjusted pvalues`."""


def win_tie_loss(a, b, eps: float = 1e-9) -> tuple[int, int, int]:
    r"""Count queries where `a` beats, ties or loses to `b`.

    $W = \#\{i : a_i - b_i > \epsilon\}$, $L = \#\{i : a_i - b_i < -\epsilon\}$,
    $T = n - W - L$.

    Example:
        >>> win_tie_loss([0.5, 0.7, 0.2], [0.5, 0.6, 0.3])
        (1, 1, 1)
    """
    import numpy as np

    d = _differences(a, b)
    wins, losses = int(np.count_nonzero(d > eps)), int(np.count_nonzero(d < -eps))
    return wins, d.size - wins - losses, losses
