r"""`simlab compare`: per-query significance tests of systems against a baseline.

Three layers, each usable alone:

1. **Loading.** `load_systems` reads the `perquery.tsv` of run folders written by `simlab run`
   (or of every run in a sweep folder; see `simlab.experiments.runs_io`) into
   `{system: {metric: {query_id: value}}}`.
2. **Statistics.** Pure functions over two paired per-query arrays `a` (system) and `b`
   (baseline), with $d_i = a_i - b_i$ for the $n$ queries: the tests of `TESTS` return a
   two-sided p-value for $H_0: \mathbb{E}[d] = 0$; `CORRECTIONS` adjust a family of p-values;
   `win_tie_loss` counts per-query outcomes (all in `simlab.evaluation.significance`).
3. **The table.** `compare` runs one test per (system, metric) pair on the queries both
   systems have, corrects the p-values over the whole table, and returns a
   `simlab.experiments.comparison.Comparison` that renders itself as markdown, JSON or a
   rich table.

Example:
    >>> import numpy as np
    >>> a, b = np.array([0.5, 0.7, 0.9, 0.6]), np.array([0.5, 0.6, 0.8, 0.7])
    >>> win_tie_loss(a, b)
    (2, 1, 1)
    >>> [round(p, 2) for p in holm([0.01, 0.04, 0.03, 0.005])]
    [0.03, 0.06, 0.06, 0.02]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from simlab.errors import ConfigError, DataError, RunFolderError
from simlab.evaluation.significance import CORRECTIONS, COUNTS, RATIO_METRICS, RATIO_TESTS, TESTS, win_tie_loss
from simlab.experiments.comparison import Comparison, PairResult, resampling_kwargs
from simlab.experiments.runs_io import PerQuery, find_runs, read_run

# --------------------------------------------------------------------------- loading


def _labels(folders: list[Path]) -> list[str]:
    """The shortest trailing path parts that tell the folders apart: `a/run`, `b/run`, else names."""
    parts = [f.resolve().parts for f in folders]
    for k in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-k:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    raise RunFolderError(f"The same run folder is given twice: {', '.join(map(str, folders))}.")


def load_systems(
    paths: Sequence[Path], systems: Sequence[str] | None = None, metrics: Sequence[str] | None = None
) -> dict[str, PerQuery]:
    """Load the per-query scores of run folders, keyed by system.

    Each path is a run folder or a sweep folder (its run subfolders are used, see
    `find_runs`). With one run folder in all, systems keep their own names (`bm25`); with
    several they are named `<folder name>/<system>` (`lr1e-5/trained.flat`), with parent
    folders added when two runs share a name.

    Args:
        paths: Run or sweep folders.
        systems: Keep only these, in this order. A name matches a system by its own name
            (`bm25`: in every run) or by its full name (`lr1e-5/bm25`). None keeps all.
        metrics: If given, every kept system must have per-query scores for these metrics
            (case-insensitive); only they are kept.

    Returns:
        system name -> metric -> query id -> value.

    Raises:
        RunFolderError: a path is not a run folder (see `find_runs`, `read_run`), or a
            requested system or metric is absent; the message lists the available ones.
    """
    if not paths:
        raise RunFolderError("No run folder given; pass at least one folder written by `simlab run`.")
    folders = [run for p in paths for run in find_runs(Path(p))]
    labels = _labels(folders)
    single = len(folders) == 1
    loaded: list[tuple[str, str, Path, PerQuery]] = [
        (label, system, folder, scores)
        for folder, label in zip(folders, labels)
        for system, scores in read_run(folder).items()
    ]

    def name(label: str, system: str) -> str:
        return system if single else f"{label}/{system}"

    if systems is None:
        chosen = loaded
    else:
        chosen, seen = [], set()
        for wanted in systems:
            hits = [e for e in loaded if wanted in (e[1], f"{e[0]}/{e[1]}")]
            if not hits:
                where = str(folders[0]) if single else f"any of {', '.join(map(str, folders))}"
                raise RunFolderError(
                    f"System {wanted!r} is not in {where}; available: {', '.join(name(e[0], e[1]) for e in loaded)}."
                )
            chosen += [e for e in hits if id(e) not in seen]
            seen.update(id(e) for e in hits)

    out: dict[str, PerQuery] = {}
    for label, system, folder, scores in chosen:
        if metrics is not None:
            keep = {}
            for m in metrics:
                key = _find_key(scores, m)
                if key is None and _find_key(RATIO_METRICS, m) and all(c in scores for c in COUNTS):
                    keep |= {c: scores[c] for c in COUNTS}  # a corpus-level metric: compare computes it
                    continue
                if key is None:
                    raise RunFolderError(
                        f"{folder}: system {system!r} has no per-query {m!r} scores; "
                        f"available metrics: {', '.join(scores)}."
                    )
                keep[key] = scores[key]
            scores = keep
        out[name(label, system)] = scores
    return out


def main_system(systems: Sequence[str]) -> str:
    """The system that stands for a run: the first of the tasks' `main_systems` among `systems` (the trained
    one, with exact search for retrieval), else its first system."""
    from simlab.tasks import TASKS

    preferred = [s for task in TASKS.values() for s in task.main_systems]
    return next((s for s in preferred if s in systems), systems[0])


def keep_main_systems(loaded: dict[str, PerQuery]) -> dict[str, PerQuery]:
    """Of systems named `<run>/<system>` (several runs), keep each run's `main_system`."""
    by_run: dict[str, list[str]] = {}
    for name in loaded:
        run, _, system = name.rpartition("/")
        by_run.setdefault(run, []).append(system)
    keep = {f"{run}/{main_system(systems)}" if run else main_system(systems) for run, systems in by_run.items()}
    return {name: scores for name, scores in loaded.items() if name in keep}


def resolve_baseline(names: Sequence[str], wanted: str) -> str:
    """The system `wanted` stands for: a system name, or a sweep run given by its swept values.

    `pos_neg_ratio=1` (or `a=1,b=0.3`) picks the run of a sweep whose name holds these
    `key=value` parts (numbers compared as numbers: `1` matches `1.0`), and of it the system
    kept for it (`<run>/trained`, or its only system).

    Raises:
        ConfigError: no system or several runs match; the message lists the systems.
    """
    if wanted in names:
        return wanted
    by_run = [n for n in names if n.rpartition("/")[0].rsplit("/", 1)[-1] == wanted]  # a run given by its name
    if by_run:
        run = by_run[0].rpartition("/")[0]
        return f"{run}/{main_system([n.rpartition('/')[2] for n in by_run if n.rpartition('/')[0] == run])}"

    def parts(text: str) -> dict[str, str]:
        return dict(p.split("=", 1) for p in text.split(",") if "=" in p)

    def same(x: str, y: str) -> bool:
        try:
            return float(x) == float(y)
        except ValueError:
            return x == y

    want = parts(wanted)
    hits = [
        n
        for n in names
        if want and all(k in (got := parts(n.rpartition("/")[0] or n)) and same(got[k], v) for k, v in want.items())
    ]
    runs = sorted({n.rpartition("/")[0] for n in hits})
    if len(runs) == 1:
        return f"{runs[0]}/{main_system([n.rpartition('/')[2] for n in hits])}" if runs[0] else hits[0]
    if runs:
        raise ConfigError(
            f"--baseline {wanted!r}: {len(runs)} runs match it ({', '.join(runs)}); add the other swept values; "
            f"systems: {', '.join(names)}."
        )
    raise ConfigError(
        f"--baseline {wanted!r} is not a system, a run, or the swept values of one; choose one of: {', '.join(names)}."
    )


def compare_runs(
    paths: Sequence[Path],
    metrics: Sequence[str] | None = None,
    test: str = "auto",
    correction: str = "holm",
    baseline: str | None = None,
    alpha: float = 0.05,
    seed: int = 42,
    systems: Sequence[str] | None = None,
) -> Comparison:
    """The comparison of run folders that `simlab compare`, `simlab.compare` and `simlab report` all make.

    One run: its systems, against its task's reference system (bm25, overlap, prior) by default. Several
    runs (or a sweep): each run's main system, against the first run's. The metrics default to every
    quality metric the systems share (see `compare`), so the family of p-values that the correction
    adjusts is the same in every output, and so are the numbers.

    Args:
        paths: Run or sweep folders.
        metrics, test, correction, alpha, seed: As `compare`.
        baseline: A system (`bm25`, `run1/trained.flat`), a run of several by its name, or a sweep run by
            its swept values (`pos_neg_ratio=1`); default: see above.
        systems: The systems to keep (default: all of one run, each run's main system of several).

    Raises:
        RunFolderError, ConfigError, DataError: as `load_systems`, `resolve_baseline` and `compare`.
    """
    loaded = load_systems(paths, systems=list(systems) if systems else None, metrics=list(metrics) if metrics else None)
    several = all("/" in name for name in loaded)
    if systems is None and several:  # several runs: one system each
        loaded = keep_main_systems(loaded)
    if baseline:
        base = resolve_baseline(list(loaded), baseline)
    else:
        base = next(iter(loaded)) if several else _reference_system(paths, loaded)
    kwargs: dict[str, Any] = {"test": test, "correction": correction, "alpha": alpha, "seed": seed}
    return compare(loaded, baseline=base, metrics=list(metrics) if metrics else None, **kwargs)


def _reference_system(paths: Sequence[Path], loaded: dict[str, PerQuery]) -> str:
    """One run's default baseline: its task's reference system when it has it, else its first system."""
    from simlab.tasks.skeleton import run_task

    reference = run_task(find_runs(Path(paths[0]))[0]).reference_system
    return reference if reference in loaded else next(iter(loaded))


def _find_key(mapping: dict[str, Any], key: str) -> str | None:
    """`key` itself if present, else the key equal to it ignoring case and spaces."""
    if key in mapping:
        return key
    folded = key.strip().lower()
    return next((k for k in mapping if k.lower() == folded), None)


def _lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    if name not in registry:
        raise ConfigError(f"Unknown {what} {name!r}; choose one of: {', '.join(sorted(registry))}.")
    return registry[name]


def _is_binary(values: Sequence[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def compare(
    systems: dict[str, PerQuery],
    baseline: str,
    metrics: Sequence[str] | None = None,
    test: str = "auto",
    correction: str = "holm",
    alpha: float = 0.05,
    seed: int = 42,
    n_resamples: int = 10_000,
) -> Comparison:
    """Test every system against the baseline on every metric.

    For each non-baseline system and metric, the two systems are paired on the queries both
    have scores for (a note says how many were left out when the sets differ); the means,
    the delta, the test's p-value and W/T/L are computed over those queries. The p-values of
    all (system, metric) pairs of the table are then corrected together, and a pair is
    significant when its corrected p-value is <= `alpha`. The inputs are not modified.

    A metric of `RATIO_METRICS` (F1, precision, recall) that a system has no per-item scores
    for is computed from its per-item TP/FP/FN counts (`tp`, `fp`, `fn` rows, as pair and
    multi-label runs write them) and tested by resampling items (`RATIO_TESTS`).

    With `test="auto"`: McNemar's exact test where both systems' per-item values are 0/1
    (per-item correctness of a classifier), Fisher's randomization test otherwise (per-query
    retrieval scores, and corpus-level metrics).

    Args:
        systems: system -> metric -> query id -> value (see `load_systems`).
        baseline: The system the others are compared with.
        metrics: Metric names (case-insensitive); None: every metric all systems have, in
            the baseline's order.
        test: A key of `TESTS`, or "auto" (see above).
        correction: A key of `CORRECTIONS`.
        alpha: The significance level, in (0, 1).
        seed: Seed of the resampling tests (the same for every pair, as ranx does).
        n_resamples: Resamples of the resampling tests.

    Returns:
        A `Comparison`.

    Raises:
        ConfigError: an unknown test, correction, baseline or metric, or a bad alpha.
        DataError: a system shares no query with the baseline on a metric.
    """
    correct = _check_options(systems, baseline, test, correction, alpha)
    resolved = _metric_keys(systems, baseline, metrics)
    metric_names, base = resolved[baseline], systems[baseline]
    pairs, notes = [], []
    for name, keys in resolved.items():
        for metric, key in zip(metric_names, keys if name != baseline else []):
            pair, note = _pair_result(name, systems[name], metric, key, baseline, base, test, seed, n_resamples)
            pairs.append(pair)
            notes += [note] if note else []
    adjusted = correct([r.p_value for r in pairs])
    results = [replace(r, p_corrected=p, significant=p <= alpha) for r, p in zip(pairs, adjusted)]
    overall = {m: _baseline_overall(base, m) for m in metric_names}
    return Comparison(
        baseline=baseline,
        systems=[baseline, *[s for s in systems if s != baseline]],
        metrics=list(metric_names),
        baseline_means={m: overall[m][0] for m in metric_names},
        baseline_queries={m: overall[m][1] for m in metric_names},
        results=results,
        test=test,
        correction=correction,
        alpha=alpha,
        seed=seed,
        n_resamples=n_resamples,
        notes=notes,
    )


def _check_options(systems: dict[str, PerQuery], baseline: str, test: str, correction: str, alpha: float) -> Callable:
    """The correction function; `ConfigError` for an unknown test, correction or baseline, or a bad alpha."""
    if test != "auto":
        _lookup(TESTS, test, "test")
    correct = _lookup(CORRECTIONS, correction, "correction")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}; the usual choice is 0.05.")
    if baseline not in systems:
        raise ConfigError(f"Baseline {baseline!r} is not a system; choose one of: {', '.join(systems)}.")
    return correct


RAW_SCORES = ("score",)
"""Per-item columns that are raw model outputs, not quality: left out of the default metrics."""


def _metric_keys(systems: dict[str, PerQuery], baseline: str, metrics: Sequence[str] | None) -> dict[str, list[str]]:
    """system -> the key of each compared metric in its scores (a `RATIO_METRICS` key: from counts).

    The baseline's keys are the metric names of the table. None for `metrics`: every metric all
    systems have, in the baseline's order (and F1 first when all have per-item counts).

    Raises:
        ConfigError: no metric, or a system lacks one.
        DataError: the baseline has no query with scores for a metric.
    """
    if metrics is None:  # raw scores (a pair's similarity) are no measure of quality: compared only when asked
        shared = [m for m in systems[baseline] if all(m in s for s in systems.values())]
        metrics = [m for m in shared if m not in COUNTS and m not in RAW_SCORES]
        if all(c in s for s in systems.values() for c in COUNTS):
            metrics.insert(0, "f1")
    if not metrics:
        raise ConfigError(f"No metric to compare; the baseline has: {', '.join(systems[baseline]) or 'none'}")
    resolved = {name: [_resolve(name, s, m) for m in metrics] for name, s in systems.items()}
    base = systems[baseline]
    empty = [m for m in resolved[baseline] if not base.get(m, base.get(COUNTS[0]))]
    if empty:
        raise DataError(f"The baseline {baseline} has no query with {', '.join(empty)} scores.")
    return resolved


def _pair_result(
    name: str,
    scores: PerQuery,
    metric: str,
    key: str,
    baseline: str,
    base: PerQuery,
    test: str,
    seed: int,
    n_resamples: int,
) -> tuple[PairResult, str]:
    """One system against the baseline on one metric (p-value not yet corrected), and a note
    (`""` when none) saying how many queries were left out when their query sets differ.

    Raises:
        DataError: the two share no query with scores for the metric.
    """
    ratio = key not in scores  # a corpus-level metric, from per-item counts
    sys_scores, base_scores = (scores, base) if ratio else (scores[key], base[metric])
    items = (lambda s: s[COUNTS[0]]) if ratio else (lambda s: s)
    common = [q for q in items(base_scores) if q in items(sys_scores)]
    if not common:
        raise DataError(f"{name} and the baseline {baseline} share no query with {metric} scores.")
    only_b, only_s = len(items(base_scores)) - len(common), len(items(sys_scores)) - len(common)
    note = ""
    if only_b or only_s:
        note = (
            f"{name}, {metric}: {len(common)} queries compared; left out {only_b} only the baseline "
            f"has and {only_s} only {name} has."
        )
    if ratio:
        result = _ratio_pair(sys_scores, base_scores, common, key, test, seed, n_resamples)
    else:
        result = _mean_pair(sys_scores, base_scores, common, test, seed, n_resamples)
    mean, base_mean, p, wtl, used = result
    # p_corrected and significant: set by `compare`, after the table-wide correction
    pair = PairResult(
        name, metric, mean, base_mean, mean - base_mean, p, p, False, *wtl, len(common), only_b, only_s, used
    )
    return pair, note


def _baseline_overall(base: PerQuery, metric: str) -> tuple[float, int]:
    """The baseline's value of `metric` over all its queries, and their number."""
    if metric in base:
        return math.fsum(base[metric].values()) / len(base[metric]), len(base[metric])
    ids = list(base[COUNTS[0]])
    return float(RATIO_METRICS[metric](*[math.fsum(base[c][q] for q in ids) for c in COUNTS])), len(ids)


def _mean_pair(sys_scores: dict, base_scores: dict, common: list[str], test: str, seed: int, n_resamples: int):
    """Means, p, W/T/L and the test used for a metric that is a mean of per-query values."""
    a, b = [sys_scores[q] for q in common], [base_scores[q] for q in common]
    if test == "auto":
        test = "mcnemar" if _is_binary(a) and _is_binary(b) else "fisher"
    fn = TESTS[test]
    try:
        p = float(fn(a, b, **resampling_kwargs(fn, seed, n_resamples)))
    except ValueError as e:
        raise ConfigError(f"--test {test}: {e}") from None
    return math.fsum(a) / len(a), math.fsum(b) / len(b), p, win_tie_loss(a, b), test


def _ratio_pair(sys: PerQuery, base: PerQuery, common: list[str], metric: str, test: str, seed: int, n: int):
    """Metric values, p, W/T/L (on per-item errors FP + FN) and the test for a corpus-level metric."""
    import numpy as np

    name = "fisher" if test == "auto" else test
    if name not in RATIO_TESTS:
        raise ConfigError(
            f"{metric} is a corpus-level metric (from per-item TP/FP/FN), not a mean of per-item values; "
            f"test it with {' or '.join(sorted(RATIO_TESTS))}, not {test}."
        )
    a = np.array([[sys[c][q] for q in common] for c in COUNTS])  # (3, n)
    b = np.array([[base[c][q] for q in common] for c in COUNTS])
    fn = RATIO_METRICS[metric]
    p = float(RATIO_TESTS[name](a, b, fn, n_resamples=n, seed=seed))
    wtl = win_tie_loss(-(a[1] + a[2]), -(b[1] + b[2]))
    return float(fn(*a.sum(axis=1))), float(fn(*b.sum(axis=1))), p, wtl, f"ratio:{name}"


def _resolve(system: str, scores: PerQuery, metric: str) -> str:
    key = _find_key(scores, metric)
    if key is None and all(c in scores for c in COUNTS):
        key = _find_key(RATIO_METRICS, metric)
    if key is None:
        raise ConfigError(
            f"System {system!r} has no {metric!r} scores; available metrics: {', '.join(scores) or 'none'}."
        )
    return key
