r"""`simlab compare`: per-query significance tests of systems against a baseline.

Three layers, each usable alone:

1. **Loading.** `load_systems` reads the `perquery.tsv` of run folders written by `simlab run`
   (or of every run in a sweep folder) into `{system: {metric: {query_id: value}}}`.
2. **Statistics.** Pure functions over two paired per-query arrays `a` (system) and `b`
   (baseline), with $d_i = a_i - b_i$ for the $n$ queries: the tests of `TESTS` return a
   two-sided p-value for $H_0: \mathbb{E}[d] = 0$; `CORRECTIONS` adjust a family of p-values;
   `win_tie_loss` counts per-query outcomes.
3. **The table.** `compare` runs one test per (system, metric) pair on the queries both
   systems have, corrects the p-values over the whole table, and returns a `Comparison` that
   renders itself as markdown, JSON or a rich table.

Example:
    >>> import numpy as np
    >>> a, b = np.array([0.5, 0.7, 0.9, 0.6]), np.array([0.5, 0.6, 0.8, 0.7])
    >>> win_tie_loss(a, b)
    (2, 1, 1)
    >>> [round(p, 2) for p in holm([0.01, 0.04, 0.03, 0.005])]
    [0.03, 0.06, 0.06, 0.02]
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from simlab.errors import ConfigError, DataError, RunFolderError
from simlab.evaluation.significance import CORRECTIONS, COUNTS, RATIO_METRICS, RATIO_TESTS, TESTS, win_tie_loss

if TYPE_CHECKING:
    from rich.table import Table

PerQuery: TypeAlias = dict[str, dict[str, float]]
"""metric name -> query id -> value, the per-query scores of one system."""

COMPARE_FORMAT = {"format": "simlab.compare", "format_version": 1}
_PERQUERY_COLUMNS = ("system", "query_id", "metric", "value")


# --------------------------------------------------------------------------- loading


def find_runs(path: Path) -> list[Path]:
    """The run folders a path stands for: itself, or the run folders directly inside it.

    A run folder holds a `meta.json`; a sweep folder holds run folders. Hidden subfolders
    (the `.name.partial-*` folders of runs still being written) are skipped.

    Raises:
        RunFolderError: `path` is missing, a file, or neither a run nor a sweep folder.
    """
    path = Path(path)
    hint = "pass a folder written by `simlab run`, or a folder holding such folders"
    if not path.exists():
        raise RunFolderError(f"{path} does not exist; {hint}.")
    if not path.is_dir():
        raise RunFolderError(f"{path} is a file, not a run folder; {hint}.")
    if (path / "meta.json").is_file():
        return [path]
    runs = sorted(p for p in path.iterdir() if not p.name.startswith(".") and (p / "meta.json").is_file())
    if not runs:
        raise RunFolderError(f"{path} is not a run folder: no meta.json in it nor in a subfolder; {hint}.")
    return runs


def read_run(folder: Path) -> dict[str, PerQuery]:
    """The per-query scores of every system of one run folder, in the order of `perquery.tsv`.

    Raises:
        RunFolderError: `meta.json` is not a simlab run's, `perquery.tsv` is missing or
            malformed (the message names `file:line`), or a system of `metrics.json` has no
            per-query rows.
    """
    from simlab.experiments.runner import RUN_FORMAT

    folder = Path(folder)
    meta = _read_json(folder / "meta.json")
    meta = meta if isinstance(meta, dict) else {}
    if meta.get("format") != RUN_FORMAT["format"]:
        raise RunFolderError(
            f"{folder / 'meta.json'}: format is {meta.get('format')!r}, expected {RUN_FORMAT['format']!r}; "
            "this is not a folder written by `simlab run`."
        )
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or version > RUN_FORMAT["format_version"]:
        raise RunFolderError(
            f"{folder / 'meta.json'}: format_version {version!r} is newer than this simlab reads "
            f"({RUN_FORMAT['format_version']}); upgrade simlab."
        )
    systems = _read_perquery(folder / "perquery.tsv")
    listed = _read_json(folder / "metrics.json") if (folder / "metrics.json").is_file() else {}
    missing = [s for s in listed if s not in systems]
    if missing:
        raise RunFolderError(
            f"{folder}: metrics.json lists {', '.join(missing)} but perquery.tsv has no row for "
            f"{'it' if len(missing) == 1 else 'them'}; the run folder is incomplete, re-run it."
        )
    return systems


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing; the run folder is incomplete.") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path}:{e.lineno}: not valid JSON ({e.msg}).") from None


def _read_perquery(path: Path) -> dict[str, PerQuery]:
    if not path.is_file():
        raise RunFolderError(
            f"{path} is missing: compare needs the per-query scores `simlab run` writes there; "
            "re-run the experiment with this simlab version."
        )
    out: dict[str, PerQuery] = {}
    with path.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        absent = [c for c in _PERQUERY_COLUMNS if c not in header]
        if absent:
            expected = "\t".join(_PERQUERY_COLUMNS)
            raise RunFolderError(f"{path}:1: header lacks {', '.join(absent)}; expected {expected!r}.")
        cols = [header.index(c) for c in _PERQUERY_COLUMNS]
        for lineno, line in enumerate(f, start=2):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(header):
                raise RunFolderError(f"{path}:{lineno}: {len(parts)} tab-separated fields, not {len(header)}")
            system, qid, metric, raw = (parts[i] for i in cols)
            try:
                value = float(raw)
            except ValueError:
                raise RunFolderError(f"{path}:{lineno}: value {raw!r} is not a number.") from None
            scores = out.setdefault(system, {}).setdefault(metric, {})
            if qid in scores:
                raise RunFolderError(f"{path}:{lineno}: second row for {system!r}, query {qid!r}, {metric}.")
            scores[qid] = value
    if not out:
        raise RunFolderError(f"{path} has a header but no rows; the run folder is incomplete.")
    return out


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


MAIN_SYSTEMS = ("trained.flat", "trained")
"""The system that stands for a run in a sweep: the trained one (exact index for retrieval)."""


def main_system(systems: Sequence[str]) -> str:
    """The first of `MAIN_SYSTEMS` among a run's systems, else its first system."""
    return next((s for s in MAIN_SYSTEMS if s in systems), systems[0])


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
    found = f"{len(runs)} runs match it ({', '.join(runs)}); add the other swept values" if runs else "it names none"
    raise ConfigError(f"--baseline {wanted!r}: {found}; systems: {', '.join(names)}.")


def _find_key(mapping: dict[str, Any], key: str) -> str | None:
    """`key` itself if present, else the key equal to it ignoring case and spaces."""
    if key in mapping:
        return key
    folded = key.strip().lower()
    return next((k for k in mapping if k.lower() == folded), None)


def _test_kwargs(test_fn: Callable[..., float], seed: int, n_resamples: int) -> dict[str, int]:
    """The `seed` and `n_resamples` arguments `test_fn` takes (the resampling tests take both)."""
    accepts = inspect.signature(test_fn).parameters
    return {k: v for k, v in (("seed", seed), ("n_resamples", n_resamples)) if k in accepts}


def _lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    if name not in registry:
        raise ConfigError(f"Unknown {what} {name!r}; choose one of: {', '.join(sorted(registry))}.")
    return registry[name]


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class PairResult:
    """One system against the baseline on one metric, over the queries both have.

    Attributes:
        mean, baseline_mean: Means of the system and the baseline over those `n_queries`.
        delta: `mean - baseline_mean`.
        p_value, p_corrected: The test's p-value, and after the table-wide correction.
        significant: `p_corrected <= alpha`.
        wins, ties, losses: Queries where the system is above, equal to, below the baseline
            (for a corpus-level metric such as F1: items with fewer, as many, more errors).
        only_baseline, only_system: Queries left out because only one of the two has them.
        test: The test that made `p_value`: a key of `TESTS`, or `ratio:<key of RATIO_TESTS>`.
    """

    system: str
    metric: str
    mean: float
    baseline_mean: float
    delta: float
    p_value: float
    p_corrected: float
    significant: bool
    wins: int
    ties: int
    losses: int
    n_queries: int
    only_baseline: int = 0
    only_system: int = 0
    test: str = ""


@dataclass(frozen=True)
class Comparison:
    """Systems against a baseline: means, deltas, corrected p-values, W/T/L; see `compare`.

    Attributes:
        baseline: The baseline's name.
        systems: Every system, the baseline first.
        metrics: The metrics, in column order.
        baseline_means: metric -> the baseline's mean over all its queries.
        baseline_queries: metric -> the number of those queries.
        results: One `PairResult` per non-baseline system and metric, system-major.
        test, correction, alpha, seed, n_resamples: How the p-values were made.
    """

    baseline: str
    systems: list[str]
    metrics: list[str]
    baseline_means: dict[str, float]
    baseline_queries: dict[str, int]
    results: list[PairResult]
    test: str
    correction: str
    alpha: float
    seed: int
    n_resamples: int
    notes: list[str] = field(default_factory=list)

    def result(self, system: str, metric: str) -> PairResult:
        """The `PairResult` of one system and metric."""
        for r in self.results:
            if r.system == system and r.metric == metric:
                return r
        raise KeyError(f"no comparison of {system!r} on {metric!r}; systems: {', '.join(self.systems[1:])}")

    def cell(self, system: str, metric: str) -> str:
        """The table cell: `0.3596` for the baseline, `0.3596 (+0.0076)†` when significant."""
        if system == self.baseline:
            return f"{self.baseline_means[metric]:.4f}"
        r = self.result(system, metric)
        return f"{r.mean:.4f} ({r.delta:+.4f}){'†' if r.significant else ''}"

    def legend(self) -> str:
        """One sentence: the tests (with their metrics when several), the correction, alpha, queries."""
        used: dict[str, list[str]] = {}
        for r in self.results:
            metrics = used.setdefault(r.test or self.test, [])
            metrics += [] if r.metric in metrics else [r.metric]
        docs = []
        for name, metrics in (used or {self.test: []}).items():
            fn = _test_fn(name)
            doc = (inspect.getdoc(fn) or name).splitlines()[0].rstrip(".") if fn else name
            if fn and _test_kwargs(fn, self.seed, self.n_resamples):
                doc += f", {self.n_resamples:,} resamples, seed {self.seed}"
            docs.append(doc + (f" ({', '.join(metrics)})" if len(used) > 1 else ""))
        doc = "; ".join(docs)
        counts = sorted({r.n_queries for r in self.results}) or [0]
        queries = f"{counts[0]} queries per comparison"
        if len(counts) > 1:
            queries = f"{counts[0]} to {counts[-1]} queries per comparison (see the notes)"
        corr = (
            "not corrected"
            if self.correction == "none"
            else (f"{self.correction}-corrected over all {len(self.results)} comparisons of the table")
        )
        return f"† significant at α = {self.alpha:g}: {doc}; p-values {corr}; {queries}."

    def to_markdown(self) -> str:
        """A markdown table (systems × metrics, deltas vs the baseline), the legend and details."""
        esc = lambda s: s.replace("|", "\\|")  # noqa: E731
        lines = ["| system | " + " | ".join(map(esc, self.metrics)) + " |"]
        lines.append("|---|" + "---|" * len(self.metrics))
        for s in self.systems:
            label = f"{esc(s)} (baseline)" if s == self.baseline else esc(s)
            lines.append(f"| {label} | " + " | ".join(self.cell(s, m) for m in self.metrics) + " |")
        lines += ["", self.legend()]
        if self.results:
            p_adj = "p" if self.correction == "none" else f"p ({self.correction})"
            lines += [
                "",
                f"| system | metric | mean | baseline | Δ | p | {p_adj} | W/T/L | queries |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {esc(r.system)} | {esc(r.metric)} | {r.mean:.4f} | {r.baseline_mean:.4f} | "
                f"{r.delta:+.4f} | "
                f"{_fmt_p(r.p_value)} | {_fmt_p(r.p_corrected)}{'†' if r.significant else ''} | "
                f"{r.wins}/{r.ties}/{r.losses} | {r.n_queries} |"
                for r in self.results
            ]
        if self.notes:
            lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; `Comparison.from_dict` reads it back."""
        return COMPARE_FORMAT | asdict(self)

    def to_json(self) -> str:
        """`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        """The inverse of `to_dict`.

        Raises:
            DataError: `data` is not a simlab comparison.
        """
        if data.get("format") != COMPARE_FORMAT["format"]:
            raise DataError(f"format is {data.get('format')!r}, expected {COMPARE_FORMAT['format']!r}.")
        fields = {k: v for k, v in data.items() if k not in COMPARE_FORMAT}
        fields["results"] = [PairResult(**r) for r in fields.get("results", [])]
        return cls(**fields)

    def to_rich(self) -> Table:
        """A rich `Table` for the terminal: the cells of `to_markdown`, with p and W/T/L below."""
        from rich.table import Table
        from rich.text import Text

        caption = "\n".join([self.legend(), *self.notes])
        table = Table(title=f"vs {self.baseline}", caption=caption, caption_justify="left")
        p_label = "p" if self.correction == "none" else f"p({self.correction})"
        table.add_column("system")
        for m in self.metrics:
            table.add_column(m, justify="right")
        for s in self.systems:
            if s == self.baseline:
                table.add_row(Text(f"{s} (baseline)", style="bold"), *[self.cell(s, m) for m in self.metrics])
                continue
            cells = []
            for m in self.metrics:
                r = self.result(s, m)
                style = ("green" if r.delta > 0 else "red") if r.significant else ""
                text = Text(self.cell(s, m), style=style)
                text.append(f"\n{p_label}={_fmt_p(r.p_corrected)}  {r.wins}/{r.ties}/{r.losses}", style="dim")
                cells.append(text)
            table.add_row(s, *cells)
        return table


def _test_fn(name: str) -> Callable[..., float] | None:
    """The function of a `PairResult.test` name: `TESTS[name]` or `RATIO_TESTS[...]` for `ratio:...`."""
    kind, _, key = name.rpartition(":")
    return (RATIO_TESTS if kind == "ratio" else TESTS).get(key)


def _is_binary(values: Sequence[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def _fmt_p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


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
    if test != "auto":
        _lookup(TESTS, test, "test")
    correct = _lookup(CORRECTIONS, correction, "correction")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}; the usual choice is 0.05.")
    if baseline not in systems:
        raise ConfigError(f"Baseline {baseline!r} is not a system; choose one of: {', '.join(systems)}.")
    if metrics is None:
        metrics = [m for m in systems[baseline] if m not in COUNTS and all(m in s for s in systems.values())]
        if all(c in s for s in systems.values() for c in COUNTS):
            metrics.insert(0, "f1")
    if not metrics:
        raise ConfigError(f"No metric to compare; the baseline has: {', '.join(systems[baseline]) or 'none'}")
    resolved = {name: [_resolve(name, s, m) for m in metrics] for name, s in systems.items()}
    metric_names = resolved[baseline]
    base = systems[baseline]
    empty = [m for m in metric_names if not base.get(m, base.get(COUNTS[0]))]
    if empty:
        raise DataError(f"The baseline {baseline} has no query with {', '.join(empty)} scores.")
    pairs, notes = [], []
    for name, keys in resolved.items():
        for metric, key in zip(metric_names, keys if name != baseline else []):
            ratio = key not in systems[name]  # a corpus-level metric, from per-item counts
            sys_scores, base_scores = (systems[name], base) if ratio else (systems[name][key], base[metric])
            items = (lambda s: s[COUNTS[0]]) if ratio else (lambda s: s)
            common = [q for q in items(base_scores) if q in items(sys_scores)]
            if not common:
                raise DataError(f"{name} and the baseline {baseline} share no query with {metric} scores.")
            only_b, only_s = len(items(base_scores)) - len(common), len(items(sys_scores)) - len(common)
            if only_b or only_s:
                notes.append(
                    f"{name}, {metric}: {len(common)} queries compared; left out {only_b} only the baseline "
                    f"has and {only_s} only {name} has."
                )
            if ratio:
                result = _ratio_pair(sys_scores, base_scores, common, key, test, seed, n_resamples)
            else:
                result = _mean_pair(sys_scores, base_scores, common, test, seed, n_resamples)
            mean, base_mean, p, wtl, used = result
            pairs.append(
                PairResult(
                    name,
                    metric,
                    mean,
                    base_mean,
                    mean - base_mean,
                    p,
                    p,  # p_corrected and significant: set below, after the table-wide correction
                    False,
                    *wtl,
                    len(common),
                    only_b,
                    only_s,
                    used,
                )
            )
    adjusted = correct([r.p_value for r in pairs])
    results = [replace(r, p_corrected=p, significant=p <= alpha) for r, p in zip(pairs, adjusted)]

    def overall(metric: str) -> tuple[float, int]:
        if metric in base:
            return math.fsum(base[metric].values()) / len(base[metric]), len(base[metric])
        ids = list(base[COUNTS[0]])
        return float(RATIO_METRICS[metric](*[math.fsum(base[c][q] for q in ids) for c in COUNTS])), len(ids)

    return Comparison(
        baseline=baseline,
        systems=[baseline, *[s for s in systems if s != baseline]],
        metrics=list(metric_names),
        baseline_means={m: overall(m)[0] for m in metric_names},
        baseline_queries={m: overall(m)[1] for m in metric_names},
        results=results,
        test=test,
        correction=correction,
        alpha=alpha,
        seed=seed,
        n_resamples=n_resamples,
        notes=notes,
    )


def _mean_pair(sys_scores: dict, base_scores: dict, common: list[str], test: str, seed: int, n_resamples: int):
    """Means, p, W/T/L and the test used for a metric that is a mean of per-query values."""
    a, b = [sys_scores[q] for q in common], [base_scores[q] for q in common]
    if test == "auto":
        test = "mcnemar" if _is_binary(a) and _is_binary(b) else "fisher"
    fn = TESTS[test]
    try:
        p = float(fn(a, b, **_test_kwargs(fn, seed, n_resamples)))
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
