"""`simlab.experiments.compare`: the paired tests, the corrections, loading run folders, the table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from simlab.errors import ConfigError, DataError, RunFolderError
from simlab.evaluation.significance import (
    CORRECTIONS,
    RATIO_METRICS,
    TESTS,
    bonferroni,
    holm,
    paired_bootstrap_test,
    paired_randomization_test,
    paired_t_test,
    ratio_bootstrap_test,
    ratio_randomization_test,
    wilcoxon_test,
    win_tie_loss,
)
from simlab.experiments.compare import (
    compare,
    keep_main_systems,
    load_systems,
    resolve_baseline,
)
from simlab.experiments.comparison import Comparison

# --------------------------------------------------------------------------- fixtures


def write_run(folder: Path, scores: dict[str, dict[str, dict[str, float]]], **meta) -> Path:
    """A hand-written run folder: meta.json, metrics.json, perquery.tsv, config.yaml."""
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"format": "simlab.run", "format_version": 1, **meta}))
    means = {s: {m: sum(v.values()) / len(v) for m, v in ms.items()} for s, ms in scores.items()}
    (folder / "metrics.json").write_text(json.dumps(means))
    (folder / "config.yaml").write_text("name: test\n")
    rows = [f"{s}\t{q}\t{m}\t{v:.6f}\n" for s, ms in scores.items() for m, qs in ms.items() for q, v in qs.items()]
    (folder / "perquery.tsv").write_text("system\tquery_id\tmetric\tvalue\n" + "".join(rows))
    return folder


def scores(values: list[float], prefix: str = "q") -> dict[str, float]:
    return {f"{prefix}{i}": float(v) for i, v in enumerate(values)}


RUN_A = {
    "bm25": {"ndcg@10": scores([0.2, 0.5, 0.0, 1.0]), "recall@100": scores([0.5, 1.0, 0.0, 1.0])},
    "dense": {"ndcg@10": scores([0.4, 0.5, 0.3, 0.9]), "recall@100": scores([1.0, 1.0, 0.5, 1.0])},
}
RUN_B = {
    "bm25": {"ndcg@10": scores([0.2, 0.5, 0.0, 1.0]), "recall@100": scores([0.5, 1.0, 0.0, 1.0])},
    "dense": {"ndcg@10": scores([0.6, 0.7, 0.2, 1.0]), "recall@100": scores([1.0, 1.0, 1.0, 1.0])},
}


@pytest.fixture
def runs(tmp_path) -> tuple[Path, Path]:
    return write_run(tmp_path / "sweep" / "lr1", RUN_A), write_run(tmp_path / "sweep" / "lr2", RUN_B)


def paired(n: int, shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Baseline scores in [0, 1] and a system that is `shift` better on average, with noise."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(0, 1, n)
    return np.clip(b + shift + rng.normal(0, 0.1, n), 0, 1), b


# --------------------------------------------------------------------------- the tests


def exact_randomization_p(a: np.ndarray, b: np.ndarray) -> float:
    """Fisher's exact p: the share of all 2^n sign vectors with |mean(s*d)| >= |mean(d)|."""
    d = a - b
    n = d.size
    signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0  # (2^n, n)
    return float(np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_randomization_test_matches_exact_enumeration(seed):
    a, b = paired(10, 0.06, seed=seed)
    exact = exact_randomization_p(a, b)
    assert 0.01 < exact < 0.9  # a case where the p-value is not trivially 0 or 1
    assert paired_randomization_test(a, b, n_resamples=20_000, seed=seed) == pytest.approx(exact, abs=0.02)


def test_randomization_test_is_seeded_and_symmetric():
    a, b = paired(30, 0.03)
    p = paired_randomization_test(a, b, seed=7)
    assert p == paired_randomization_test(a, b, seed=7)
    assert p == paired_randomization_test(b, a, seed=7)  # two-sided: |mean| is sign-free
    assert 0 < p <= 1


def test_t_test_equals_scipy():
    a, b = paired(25, 0.02)
    assert paired_t_test(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)


def test_wilcoxon_equals_scipy():
    a, b = paired(25, 0.02)
    assert wilcoxon_test(a, b) == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)


def test_bootstrap_close_to_t_test_on_many_queries():
    # For large n the null-shifted bootstrap of the mean approximates the t-test.
    a, b = paired(300, 0.004, seed=3)
    p_t = paired_t_test(a, b)
    assert 0.01 < p_t < 0.5
    assert paired_bootstrap_test(a, b, n_resamples=20_000) == pytest.approx(p_t, abs=0.01)


SCORE_TESTS = sorted(set(TESTS) - {"mcnemar"})  # McNemar takes 0/1 outcomes: tested below


@pytest.mark.parametrize("name", SCORE_TESTS)
def test_identical_systems_give_p_one(name):
    a, _ = paired(12, 0.0)
    assert TESTS[name](a, a.copy()) == pytest.approx(1.0)


@pytest.mark.parametrize("name", SCORE_TESTS)
def test_clearly_better_system_is_significant(name):
    a, b = paired(50, 0.2)
    assert TESTS[name](a, b) < 0.001


def test_tests_reject_unpaired_arrays():
    with pytest.raises(ValueError, match="same length"):
        paired_randomization_test([0.1, 0.2], [0.1])


def test_win_tie_loss():
    assert win_tie_loss([0.5, 0.7, 0.2, 0.3], [0.5, 0.6, 0.3, 0.3 + 1e-12]) == (1, 2, 1)
    assert win_tie_loss([1.0, 1.0], [0.0, 0.5], eps=0.6) == (1, 1, 0)


# --------------------------------------------------------------------------- corrections


def test_holm_on_known_pvalues():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> max(0.06, 0.04)=0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_is_monotone_and_capped():
    p = [0.2, 0.6, 0.01, 0.9, 0.3]
    adj = holm(p)
    order = np.argsort(p)
    assert all(np.diff(np.array(adj)[order]) >= 0)
    assert max(adj) == 1.0
    assert all(x >= y for x, y in zip(adj, p))
    assert holm([]) == []


def test_bonferroni_and_registry():
    assert bonferroni([0.01, 0.2, 0.5]) == pytest.approx([0.03, 0.6, 1.0])
    assert set(CORRECTIONS) == {"holm", "bonferroni", "none"}
    assert CORRECTIONS["none"]([0.2, 0.01]) == [0.2, 0.01]


def test_unknown_test_or_correction_lists_choices():
    systems = {"a": {"m": scores([0.1, 0.2])}, "b": {"m": scores([0.1, 0.3])}}
    with pytest.raises(ConfigError, match="'tukey'.*bootstrap, fisher, mcnemar, student, wilcoxon"):
        compare(systems, "a", ["m"], test="tukey")
    with pytest.raises(ConfigError, match="bonferroni, holm, none"):
        compare(systems, "a", ["m"], correction="bh")


# --------------------------------------------------------------------------- compare


def table(n: int = 40) -> dict:
    better, base = paired(n, 0.15, seed=1)
    same = base.copy()
    worse = np.clip(base - 0.01 * (np.arange(n) % 2), 0, 1)  # slightly below on half the queries
    return {
        "bm25": {"ndcg@10": scores(base), "recall@100": scores(base / 2)},
        "better": {"ndcg@10": scores(better), "recall@100": scores(better / 2)},
        "same": {"ndcg@10": scores(same), "recall@100": scores(same / 2)},
        "worse": {"ndcg@10": scores(worse), "recall@100": scores(base / 2)},
    }


def test_compare_identical_system():
    systems = table()
    comp = compare(systems, "bm25", ["ndcg@10", "recall@100"])
    for m in ("ndcg@10", "recall@100"):
        r = comp.result("same", m)
        assert r.delta == 0 and r.mean == r.baseline_mean
        assert r.p_value == 1.0 and r.p_corrected == 1.0 and not r.significant
        assert (r.wins, r.ties, r.losses) == (0, 40, 0)
        assert r.n_queries == 40


def test_compare_clearly_better_system_is_significant():
    comp = compare(table(), "bm25", ["ndcg@10", "recall@100"], test="student")
    r = comp.result("better", "ndcg@10")
    assert r.significant and r.delta > 0.1 and r.wins > 30
    assert r.mean == pytest.approx(np.mean(list(table()["better"]["ndcg@10"].values())))


def test_compare_corrects_over_the_whole_table():
    comp = compare(table(), "bm25", ["ndcg@10", "recall@100"], test="student", correction="holm")
    assert len(comp.results) == 6  # 3 systems x 2 metrics
    assert [r.p_corrected for r in comp.results] == pytest.approx(holm([r.p_value for r in comp.results]))
    none = compare(table(), "bm25", ["ndcg@10", "recall@100"], test="student", correction="none")
    assert [r.p_corrected for r in none.results] == [r.p_value for r in none.results]
    assert all(r.significant == (r.p_corrected <= 0.05) for r in comp.results)


def test_compare_pairs_on_common_queries_and_reports_dropped():
    base = scores([0.1, 0.2, 0.3, 0.4, 0.5])
    system = {q: v + 0.1 for q, v in base.items() if q != "q4"} | {"extra": 1.0}
    comp = compare({"b": {"m": base}, "s": {"m": system}}, "b", ["m"])
    r = comp.result("s", "m")
    assert r.n_queries == 4 and r.only_baseline == 1 and r.only_system == 1
    assert r.baseline_mean == pytest.approx(0.25) and r.delta == pytest.approx(0.1)
    assert comp.baseline_means["m"] == pytest.approx(0.3)  # the baseline row: all its queries
    assert "4 queries compared; left out 1 only the baseline has and 1 only s has" in comp.to_markdown()


def test_compare_errors():
    systems = table(10)
    with pytest.raises(ConfigError, match="Baseline 'bm24' is not a system.*bm25, better, same, worse"):
        compare(systems, "bm24", ["ndcg@10"])
    with pytest.raises(ConfigError, match="'better' has no 'map' scores; available metrics: ndcg@10, recall"):
        compare({"bm25": systems["bm25"] | {"map": {}}, "better": systems["better"]}, "bm25", ["map"])
    with pytest.raises(ConfigError, match="alpha"):
        compare(systems, "bm25", ["ndcg@10"], alpha=5)
    with pytest.raises(DataError, match="share no query"):
        compare({"a": {"m": {"q1": 0.1}}, "b": {"m": {"q2": 0.2}}}, "a", ["m"])


def test_compare_metrics_default_and_case():
    comp = compare(table(10), "bm25", None)
    assert comp.metrics == ["ndcg@10", "recall@100"]
    assert compare(table(10), "bm25", ["NDCG@10"]).metrics == ["ndcg@10"]


def test_compare_does_not_modify_inputs():
    systems = table(10)
    before = json.dumps(systems)
    compare(systems, "bm25", ["ndcg@10"])
    assert json.dumps(systems) == before


# --------------------------------------------------------------------------- renderers


def test_markdown_has_every_system_metric_and_delta():
    comp = compare(table(), "bm25", ["ndcg@10", "recall@100"], test="student")
    md = comp.to_markdown()
    for s in ("bm25 (baseline)", "better", "same", "worse"):
        assert f"| {s} |" in md
    assert "| system | ndcg@10 | recall@100 |" in md
    for r in comp.results:
        assert f"{r.mean:.4f} ({r.delta:+.4f})" in md
    better = comp.result("better", "ndcg@10")
    assert f"{better.mean:.4f} ({better.delta:+.4f})†" in md
    assert f"{comp.result('same', 'ndcg@10').mean:.4f} (+0.0000) |" in md  # not significant: no marker
    assert f"| {comp.baseline_means['ndcg@10']:.4f} |" in md  # baseline: plain value
    assert "α = 0.05" in md and "Student" in md and "holm-corrected over all 6 comparisons" in md
    assert "40 queries per comparison" in md
    assert "W/T/L" in md and "| 0/40/0 |" in md


def test_json_round_trip():
    comp = compare(table(), "bm25", ["ndcg@10", "recall@100"], seed=3, n_resamples=500)
    data = json.loads(comp.to_json())
    assert data["format"] == "simlab.compare" and data["test"] == "auto" and data["seed"] == 3
    assert data == comp.to_dict()
    assert Comparison.from_dict(data) == comp
    with pytest.raises(DataError, match="simlab.compare"):
        Comparison.from_dict({"format": "simlab.run"})


def test_rich_table_renders():
    from rich.console import Console
    from rich.table import Table

    comp = compare(table(), "bm25", ["ndcg@10", "recall@100"], n_resamples=500)
    t = comp.to_rich()
    assert isinstance(t, Table)
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(t)
    text = console.export_text()
    for s in comp.systems:
        assert s in text
    assert "ndcg@10" in text and "†" in text and "0/40/0" in text


# --------------------------------------------------------------------------- loading


def test_load_two_run_folders(runs):
    a, b = runs
    systems = load_systems([a, b])
    assert list(systems) == ["lr1/bm25", "lr1/dense", "lr2/bm25", "lr2/dense"]
    assert systems["lr2/dense"]["ndcg@10"] == scores([0.6, 0.7, 0.2, 1.0])
    assert set(systems["lr1/bm25"]) == {"ndcg@10", "recall@100"}


def test_load_single_folder_keeps_plain_names(runs):
    systems = load_systems([runs[0]])
    assert list(systems) == ["bm25", "dense"]
    assert load_systems([runs[0]], systems=["lr1/dense"]) == {"dense": systems["dense"]}


def test_load_sweep_folder_expands(runs, tmp_path):
    (tmp_path / "sweep" / "notes").mkdir()  # not a run: ignored
    write_run(tmp_path / "sweep" / ".lr3.partial-x", RUN_A)  # a run being written: ignored
    systems = load_systems([tmp_path / "sweep"])
    assert list(systems) == ["lr1/bm25", "lr1/dense", "lr2/bm25", "lr2/dense"]


def test_load_select_systems_and_metrics(runs):
    systems = load_systems(list(runs), systems=["dense", "lr1/bm25"], metrics=["NDCG@10"])
    assert list(systems) == ["lr1/dense", "lr2/dense", "lr1/bm25"]
    assert all(list(s) == ["ndcg@10"] for s in systems.values())


def test_load_same_folder_names_get_parents(tmp_path):
    a = write_run(tmp_path / "x" / "run", RUN_A)
    b = write_run(tmp_path / "y" / "run", RUN_B)
    assert list(load_systems([a, b])) == ["x/run/bm25", "x/run/dense", "y/run/bm25", "y/run/dense"]


def test_load_then_compare(runs):
    systems = load_systems(list(runs))
    comp = compare(systems, "lr1/bm25", ["ndcg@10"], n_resamples=1000)
    assert comp.result("lr2/bm25", "ndcg@10").delta == 0
    assert comp.result("lr2/dense", "ndcg@10").delta == pytest.approx(0.2)


def test_load_errors(runs, tmp_path):
    a, b = runs
    with pytest.raises(RunFolderError, match="nope does not exist"):
        load_systems([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="empty is not a run folder: no meta.json"):
        load_systems([tmp_path / "empty"])
    with pytest.raises(RunFolderError, match="is a file"):
        load_systems([a / "metrics.json"])
    with pytest.raises(
        RunFolderError,
        match="System 'colbert' is not in any of .*lr1.*available: lr1/bm25, lr1/dense, lr2/bm25, lr2/dense",
    ):
        load_systems([a, b], systems=["colbert"])
    with pytest.raises(RunFolderError, match="System 'colbert' is not in .*lr1; available: bm25, dense"):
        load_systems([a], systems=["colbert"])
    with pytest.raises(
        RunFolderError,
        match=r"lr1: system 'bm25' has no per-query 'map' scores; "
        r"available metrics: ndcg@10, recall@100",
    ):
        load_systems([a], metrics=["map"])
    with pytest.raises(RunFolderError, match="No run folder"):
        load_systems([])
    with pytest.raises(RunFolderError, match="same run folder is given twice"):
        load_systems([a, tmp_path / "sweep"])  # lr1 alone and again inside its sweep folder


def test_load_malformed_run_folders(tmp_path):
    bad = write_run(tmp_path / "bad", RUN_A)
    (bad / "meta.json").write_text(json.dumps({"format": "simlab.index"}))
    with pytest.raises(RunFolderError, match="meta.json: format is 'simlab.index', expected 'simlab.run'"):
        load_systems([bad])
    (bad / "meta.json").write_text(json.dumps({"format": "simlab.run", "format_version": 99}))
    with pytest.raises(RunFolderError, match="format_version 99 is newer"):
        load_systems([bad])
    (bad / "meta.json").write_text(json.dumps({"format": "simlab.run", "format_version": 1}))
    with (bad / "perquery.tsv").open("a") as f:
        f.write("dense\tq9\tndcg@10\thigh\n")
    with pytest.raises(RunFolderError, match=r"perquery.tsv:18: value 'high' is not a number"):
        load_systems([bad])
    (bad / "perquery.tsv").write_text("system\tquery\tmetric\tvalue\n")
    with pytest.raises(RunFolderError, match="perquery.tsv:1: header lacks query_id"):
        load_systems([bad])
    (bad / "perquery.tsv").unlink()
    with pytest.raises(RunFolderError, match="perquery.tsv is missing"):
        load_systems([bad])
    partial = write_run(tmp_path / "partial", RUN_A)
    (partial / "metrics.json").write_text(json.dumps({"bm25": {}, "dense": {}, "hybrid": {}}))
    with pytest.raises(RunFolderError, match="metrics.json lists hybrid but perquery.tsv has no row"):
        load_systems([partial])


# --------------------------------------------------------------------------- reference: ranx


@pytest.mark.slow
def test_fisher_matches_ranx_compare():
    """Our randomization test and ranx's (`compare(..., stat_test="fisher")`) on the same per-query scores."""
    from ranx import Qrels, Run, evaluate
    from ranx import compare as ranx_compare

    rng = np.random.default_rng(0)
    n_q, n_docs = 30, 20
    judged = {f"q{i}": {f"d{j}": 1 for j in rng.choice(n_docs, 3, replace=False)} for i in range(n_q)}
    runs = [
        Run(
            {
                q: {f"d{j}": float((f"d{j}" in rel) + noise * rng.normal()) for j in range(n_docs)}
                for q, rel in judged.items()
            },
            name=name,
        )
        for name, noise in (("base", 1.0), ("better", 0.6))
    ]
    qrels = Qrels(judged)
    report = ranx_compare(qrels, runs, ["ndcg@10"], stat_test="fisher", n_permutations=20_000, random_seed=42)
    p_ranx = report.comparisons["base", "better"]["ndcg@10"]["p_value"]
    # both runs are listed in the same query order, so the pairing holds whatever that order is
    per_query = {
        run.name: {"ndcg@10": dict(zip(run.keys(), evaluate(qrels, run, "ndcg@10", return_mean=False)))} for run in runs
    }
    print(f"p ranx {p_ranx:.4f}")
    ours = compare(per_query, "base", ["ndcg@10"], n_resamples=20_000).result("better", "ndcg@10")
    print(f"p simlab {ours.p_value:.4f}")
    assert 0.005 < p_ranx < 0.9
    assert ours.p_value == pytest.approx(p_ranx, abs=0.02)
    assert ours.mean == pytest.approx(report.results["better"]["ndcg@10"])


# --------------------------------------------------------------------------- classification: McNemar, F1


def test_mcnemar_exact_binomial_by_hand():
    # 8 items only the system gets right, 2 only the baseline, 5 both, 3 neither
    a = [1] * 8 + [0] * 2 + [1] * 5 + [0] * 3
    b = [0] * 8 + [1] * 2 + [1] * 5 + [0] * 3
    expected = 2 * sum(math.comb(10, k) for k in range(3)) / 2**10  # 2 P(X <= 2), X ~ Bin(10, 1/2)
    assert TESTS["mcnemar"](a, b) == pytest.approx(expected)
    assert TESTS["mcnemar"](a, a) == 1.0
    with pytest.raises(ValueError, match="0/1 outcomes"):
        TESTS["mcnemar"]([0.2, 1.0], [1.0, 0.0])


def counts_of(labels: np.ndarray, preds: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-item tp/fp/fn rows as a pair run writes them."""
    return {
        "tp": scores((labels & preds).astype(float)),
        "fp": scores((~labels & preds).astype(float)),
        "fn": scores((labels & ~preds).astype(float)),
        "correct": scores((labels == preds).astype(float)),
    }


def test_ratio_randomization_matches_exact_enumeration():
    from itertools import product

    rng = np.random.default_rng(0)
    y = rng.random(10) < 0.5
    a = np.stack([y & (rng.random(10) < 0.9), ~y & (rng.random(10) < 0.2), y & (rng.random(10) < 0.1)])
    pa = np.stack([y & (rng.random(10) < 0.5), ~y & (rng.random(10) < 0.5), y & (rng.random(10) < 0.5)])
    a, b = a.astype(float), pa.astype(float)
    f1 = RATIO_METRICS["f1"]
    observed = abs(f1(*a.sum(1)) - f1(*b.sum(1)))
    hits = 0
    for swap in product([0, 1], repeat=10):
        s = np.array(swap, dtype=bool)
        sa, sb = np.where(s, b, a), np.where(s, a, b)
        hits += abs(f1(*sa.sum(1)) - f1(*sb.sum(1))) >= observed - 1e-12
    exact = hits / 2**10
    assert ratio_randomization_test(a, b, f1, n_resamples=40_000, seed=1) == pytest.approx(exact, abs=0.01)
    assert ratio_randomization_test(a, a, f1) == 1.0 and ratio_bootstrap_test(a, a, f1) == 1.0


def test_compare_f1_from_per_item_counts_against_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    labels = rng.random(400) < 0.3
    good = np.where(rng.random(400) < 0.9, labels, ~labels)
    weak = np.where(rng.random(400) < 0.6, labels, ~labels)
    systems = {"weak": counts_of(labels, weak), "good": counts_of(labels, good)}
    comp = compare(systems, "weak", ["f1", "correct"], n_resamples=2000)
    r = comp.result("good", "f1")
    assert r.mean == pytest.approx(f1_score(labels, good)) and r.baseline_mean == pytest.approx(f1_score(labels, weak))
    assert comp.baseline_means["f1"] == pytest.approx(f1_score(labels, weak))
    assert r.test == "ratio:fisher" and r.significant
    assert comp.result("good", "correct").test == "mcnemar"  # auto: 0/1 outcomes per item
    errors = lambda p: (labels != p).astype(int)  # noqa: E731
    assert (r.wins, r.losses) == (int((errors(good) < errors(weak)).sum()), int((errors(good) > errors(weak)).sum()))
    assert "McNemar" in comp.legend() and "randomization" in comp.legend()
    assert compare(systems, "weak", ["f1"], test="bootstrap", n_resamples=500).result("good", "f1").test == (
        "ratio:bootstrap"
    )
    with pytest.raises(ConfigError, match="corpus-level.*bootstrap or fisher"):
        compare(systems, "weak", ["f1"], test="student")
    assert compare(systems, "weak", n_resamples=200).metrics[0] == "f1"  # default metrics lead with F1


def pair_items(labels: np.ndarray, preds: np.ndarray) -> dict[str, dict[str, float]]:
    """A pair system's per-item rows, as `evaluation.pairs.per_item_rows` writes them."""
    rows = counts_of(labels, preds)
    rows["pos_acc"] = {q: v for q, v, y in zip(rows["correct"], rows["correct"].values(), labels) if y}
    rows["neg_acc"] = {q: v for q, v, y in zip(rows["correct"], rows["correct"].values(), labels) if not y}
    return rows


def test_resolve_baseline_by_swept_values():
    names = ["a=1,b=0.3/overlap", "a=1,b=0.3/trained", "a=2,b=0.3/trained", "a=1,b=0.7/trained"]
    assert resolve_baseline(names, "a=2") == "a=2,b=0.3/trained"
    assert resolve_baseline(names, "a=1.0,b=0.30") == "a=1,b=0.3/trained"  # numbers compare as numbers
    assert resolve_baseline(names, "a=1,b=0.3/overlap") == "a=1,b=0.3/overlap"
    with pytest.raises(ConfigError, match="2 runs match it.*a=1,b=0.3, a=1,b=0.7"):
        resolve_baseline(names, "a=1")
    with pytest.raises(ConfigError, match="is not a system, a run, or the swept values of one; choose one of: a=1"):
        resolve_baseline(names, "a=9")
    assert list(keep_main_systems({n: {} for n in names})) == names[1:]


def test_cli_compare_pairs_sweep_on_f1_pos_neg_acc(tmp_path):
    from typer.testing import CliRunner

    from simlab.cli import app

    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.3
    for ratio, flip in ((1, 0.35), (2, 0.1)):
        preds = np.where(rng.random(300) < flip, ~labels, labels)
        items = pair_items(labels, preds)
        write_run(tmp_path / "ratio" / f"pos_neg_ratio={ratio}", {"overlap": items, "trained": items}, task="pairs")
    md = tmp_path / "cmp.md"
    args = ["compare", str(tmp_path / "ratio"), "--baseline", "pos_neg_ratio=1", "--metrics", "f1,pos_acc,neg_acc"]
    result = CliRunner().invoke(app, [*args, "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    table = md.read_text()
    assert "overlap" not in table and "pos_neg_ratio=1/trained (baseline)" in table
    assert "| pos_neg_ratio=2/trained | f1 |" in table and "| pos_neg_ratio=2/trained | neg_acc |" in table
    assert "McNemar" in table and "randomization" in table
