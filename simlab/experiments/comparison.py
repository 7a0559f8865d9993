"""The result table of `simlab compare`: `PairResult` per (system, metric), `Comparison` for all.

`simlab.experiments.compare.compare` makes a `Comparison`; it renders itself as markdown
(`to_markdown`), JSON (`to_json`, read back by `Comparison.from_dict`) or a rich table
(`to_rich`), each with a legend naming the tests, the correction and alpha.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from simlab.errors import DataError
from simlab.evaluation.significance import RATIO_TESTS, TESTS

if TYPE_CHECKING:
    from rich.table import Table

COMPARE_FORMAT = {"format": "simlab.compare", "format_version": 1}


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
            if fn and resampling_kwargs(fn, self.seed, self.n_resamples):
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
            else (
                f"{self.correction}-corrected over all {len(self.results)} comparisons of the table "
                "(one family: simlab compare and simlab report correct the same p-values)"
            )
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

    def to_frame(self):
        """A pandas DataFrame, one row per (system, metric) against the baseline (the `PairResult` fields)."""
        import pandas as pd

        columns = list(PairResult.__dataclass_fields__)
        return pd.DataFrame([asdict(r) for r in self.results], columns=columns)

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


def resampling_kwargs(test_fn: Callable[..., float], seed: int, n_resamples: int) -> dict[str, int]:
    """The `seed` and `n_resamples` arguments `test_fn` takes (the resampling tests take both)."""
    accepts = inspect.signature(test_fn).parameters
    return {k: v for k, v in (("seed", seed), ("n_resamples", n_resamples)) if k in accepts}


def _fmt_p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"
