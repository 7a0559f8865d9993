"""The `simlab` command line: one subcommand = one library function.

Nothing heavy is imported at start-up: each command imports what it needs, so
`simlab --help` answers at once. User mistakes (`SimlabError`) are printed as one message,
without a traceback, and exit with the error's code (2 for config and data errors).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from simlab.errors import SimlabError

app = typer.Typer(
    name="simlab",
    help="Neural matching and retrieval experiments from one YAML file: train, evaluate, index, track.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Convert and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
config_app = typer.Typer(help="Show a task's config with its defaults, or check a config file.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        from simlab import __version__

        typer.echo(f"simlab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Neural matching and retrieval experiments from one YAML file: train, evaluate, index, track."""


@config_app.command("show")
def config_show(
    task: Annotated[str, typer.Argument(help="A task: retrieval, sparse, pairs, definitions, multilabel.")],
) -> None:
    """Print TASK's config: every field with its default and what it does (REQUIRED where there is no default)."""
    from simlab.config.describe import schema_yaml
    from simlab.tasks import get_task

    typer.echo(
        f"task: {task}\n"
        + "\n".join(line for line in schema_yaml(get_task(task).schema).splitlines() if not line.startswith("task:"))
    )


@config_app.command("check")
def config_check(
    config: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    set_: Annotated[list[str], typer.Option("--set", help="Override a field, as `simlab run` takes it.")] = [],  # noqa: B006
) -> None:
    """Check a config as `simlab run` would before any work: fields, values, every grid point, data and model."""
    from simlab.tasks import get_task, load_sweep

    points = load_sweep(config, set_)
    for _, cfg in points:
        get_task(cfg.task).preflight(cfg)
    task = points[0][1].task
    typer.echo(f"{config}: valid `task: {task}` config" + (f", a sweep of {len(points)} runs" if points[0][0] else ""))


def _prepare_runtime() -> None:
    """Quiet, offline-safe defaults for the heavy libraries, set before any of them is imported
    (`simlab.console.quiet`); offline mode when the hub cannot be reached."""
    from simlab.console import quiet
    from simlab.models import hub_reachable

    quiet()
    if not hub_reachable(timeout=2.0):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


CLUSTER_HELP = (
    'Run on a Ray cluster: auto, HOST:PORT or local (pip install "simlab\\[ray]"); a sweep runs its points as '
    "Ray tasks, --nproc N trains on N Ray Train workers (docs/CLUSTER.md)."
)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see examples/dense.yaml).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (a sweep: folder of run folders).")] = Path(
        "runs/run"
    ),
    set_: Annotated[
        list[str],
        typer.Option("--set", help="Override a field: --set train.epochs=2; a list sweeps: train.epochs=[1,2]."),
    ] = [],  # noqa: B006 - typer needs a literal default
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder; a sweep re-runs all.")] = False,
    nproc: Annotated[
        int, typer.Option("--nproc", min=1, help="Train on N local CPU processes (PyTorch DDP, gloo) via torchrun.")
    ] = 1,
    cluster: Annotated[str | None, typer.Option("--cluster", help=CLUSTER_HELP)] = None,
) -> None:
    """Run an experiment: data, BM25, zero-shot model, training, exact/approximate search, report.

    A list where the config expects a value is a sweep: one run per grid point under OUT,
    resumed (finished runs skipped) when run again. With --nproc N (or under `torchrun`)
    training runs on N processes; rank 0 alone writes the run folder.
    """
    from simlab import distributed
    from simlab.errors import ConfigError
    from simlab.tasks import get_task, load_sweep

    points = load_sweep(config, set_)  # every grid point validated before any work
    address = cluster or points[0][1].cluster.address
    if address:
        from simlab.cluster import require_ray

        require_ray("--cluster" if cluster else "cluster.address")  # exit 2 with the install line, before any work
    if points[0][0] and (nproc > 1 or distributed.is_distributed()):
        raise ConfigError("a sweep does not run on several processes; run each grid point with --nproc instead")
    task = get_task(points[0][1].task)
    if nproc > 1 and not task.distributed:
        raise ConfigError(f"task: {task.name} runs on one process; run it without --nproc")
    if nproc > 1 and not distributed.is_distributed() and not address:
        import subprocess

        argv = ["run", str(config), "--out", str(out), *[f"--set={s}" for s in set_]]
        argv += ["--overwrite"] if overwrite else []
        sys.exit(subprocess.call(distributed.launch_command(nproc, argv)))
    _prepare_runtime()
    from simlab.experiments.api import run_points

    summary = run_points(points, out, overwrite, address, nproc)
    if summary is None:  # named grid points: a sweep
        from simlab.experiments.sweep import render_sweep

        typer.echo(render_sweep(out))
        typer.echo(f"Sweep folder: {out} (sweep.json, one run folder per line above)")
        typer.echo(f"Compare runs: simlab compare {out}")
        return
    from simlab.experiments.report import print_tables

    if not distributed.is_main():
        return
    print_tables(summary)
    typer.echo(f"Run folder: {out} (report.md, metrics.json, perquery.tsv, history.jsonl, curves.png, model/)")
    if "search" in task.commands:
        typer.echo(f'Next: simlab search {out} "your query" -k 5')
    typer.echo(f"Compare systems: simlab compare {out}")


@app.command()
def search(
    run_dir: Annotated[Path, typer.Argument(help="A run folder made by `simlab run`.")],
    query: Annotated[str | None, typer.Argument(help="Query text (or --stdin, --file).")] = None,
    k: Annotated[int, typer.Option("-k", help="Number of documents to show.")] = 10,
    index: Annotated[str, typer.Option(help="A system the run saved: trained.flat, bm25, hybrid ...")] = "trained.flat",
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the query from standard input.")] = False,
    file: Annotated[Path | None, typer.Option("--file", help="Read the query from this text file.")] = None,
) -> None:
    """Search a run's saved system (the loading code of `simlab serve`) and print ranked documents with scores."""
    from simlab.experiments.search import read_query

    text = read_query(query, sys.stdin if stdin else None, file)
    _prepare_runtime()
    from simlab.experiments.search import search_run

    for rank, hit in enumerate(search_run(run_dir, text, k, index), start=1):
        typer.echo(f"{rank:>3}  {hit.score:8.4f}  {hit.doc_id:<12} {hit.snippet}")


@app.command()
def inspect(
    run_dir: Annotated[Path, typer.Argument(help="A model.kind: sparse run folder made by `simlab run`.")],
    query: Annotated[str, typer.Argument(help="Query text.")],
    top: Annotated[int, typer.Option("--top", "-n", help="Number of expansion tokens to show.")] = 20,
    doc: Annotated[
        str | None, typer.Option("--doc", help="A document id: show the tokens it shares with the query.")
    ] = None,
) -> None:
    """Show a sparse (SPLADE) run's query expansion: top tokens with weights, active dimensions, overlap with --doc."""
    _prepare_runtime()
    from simlab.experiments.inspect import inspect_run

    typer.echo(inspect_run(run_dir, query, top, doc).render())


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create.")] = Path("runs/demo"),
) -> None:
    """Run the bundled demonstration experiment (examples/demo, wordllama) and print the table."""
    from simlab.tasks import load_config

    examples = Path(__file__).resolve().parents[1] / "examples"
    cfg = load_config(examples / "dense.yaml", [f"data.path={examples / 'demo'}"])
    _prepare_runtime()
    from simlab.experiments.report import print_tables
    from simlab.experiments.runner import run_experiment

    summary = run_experiment(cfg, out, overwrite=True)
    print_tables(summary)
    typer.echo(f'Run folder: {out}. Try: simlab search {out} "how do I fix a flat tyre" -k 5')


@app.command()
def match(
    run_dir: Annotated[Path, typer.Argument(help="A `task: pairs` run folder made by `simlab run`.")],
    left: Annotated[Path, typer.Option("--left", help="Left table (CSV or JSONL with the run's id column).")],
    right: Annotated[Path, typer.Option("--right", help="Right table (same columns); it is the one indexed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write: left_id,right_id,score.")] = Path(
        "matches.csv"
    ),
    k: Annotated[int, typer.Option("-k", help="Candidates per left record (the blocking step).")] = 10,
    index: Annotated[str, typer.Option(help="Blocking index: hnsw (approximate) or flat (exact).")] = "hnsw",
    threshold: Annotated[
        float | None, typer.Option(help="Match threshold; default: the run's frozen val threshold (trained).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Labelled pairs CSV ltable_id,rtable_id,label: report blocking recall, P/R/F1.")
    ] = None,
    fields: Annotated[
        str | None, typer.Option(help="Comma-separated text fields; default: the run's data.fields, or all but the id.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Match two tables with a pairs run: embed, take top-k candidates, keep those at or above the threshold."""
    from simlab.fsutil import check_new_file

    check_new_file(out, overwrite, [left, right, labels])
    _prepare_runtime()
    from simlab.experiments.match import match_tables

    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    report = match_tables(
        run_dir, left, right, out, k=k, index=index, threshold=threshold, labels_path=labels, fields=names
    )
    typer.echo(report.summary())


@app.command()
def ui(
    uri: Annotated[str, typer.Option(help="MLflow tracking store (the runs' tracking.uri).")] = "sqlite:///mlflow.db",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Open the MLflow UI on the local store, on loopback only (http://127.0.0.1:PORT); Ctrl-C stops all of it."""
    from simlab.experiments.tracking import run_ui

    typer.echo(f"MLflow UI for {uri} at http://127.0.0.1:{port} (Ctrl-C to stop)")
    sys.exit(run_ui(uri, port))


LOOPBACK, API_KEY_HELP = "127.0.0.1", "Require this key on every API call."


@app.command()
def serve(
    runs: Annotated[list[Path], typer.Argument(help="Run folders: retrieval, sparse, pairs, definitions, multilabel.")],
    host: Annotated[str, typer.Option(help="Address to listen on; not loopback: others can reach it.")] = LOOPBACK,
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="SIMLAB_API_KEY", help=API_KEY_HELP)] = None,
    max_query_chars: Annotated[int, typer.Option(help="Longest query or text, in characters.")] = 2000,
    max_k: Annotated[int, typer.Option(help="Most documents per search.")] = 100,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = 65536,
    max_concurrent: Annotated[int, typer.Option(help="Most requests answered at once; more get 429.")] = 16,
) -> None:
    """Serve runs over HTTP (FastAPI): /search, /match, /classify, /runs, a page at / and the API docs at /docs."""
    from simlab.serve.limits import Limits

    limits = Limits(max_query_chars, max_k, max_body_bytes, max_concurrent)
    _prepare_runtime()
    from simlab.serve.server import serve as serve_runs

    serve_runs(runs, host, port, api_key, limits, echo=typer.echo)


@app.command("compare")
def compare_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Run folders, sweep folders holding run folders, or MLflow experiment names."),
    ],
    baseline: Annotated[
        str | None,
        typer.Option(
            help="Baseline system (bm25, cran1/trained.flat) or, in a sweep, a run by its swept values "
            "(pos_neg_ratio=1); default: the first."
        ),
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated, e.g. ndcg@10,mrr@10 or f1,pos_acc,neg_acc; default: all.")
    ] = None,
    systems: Annotated[
        str | None,
        typer.Option(help="Comma-separated systems to keep; default: all of one run, each run's trained one."),
    ] = None,
    test: Annotated[
        str,
        typer.Option(
            help="Paired test: fisher, student, bootstrap, wilcoxon, mcnemar, or auto (McNemar on 0/1 per-item "
            "outcomes, Fisher's randomization test on scores and on corpus-level F1/precision/recall)."
        ),
    ] = "auto",
    correction: Annotated[str, typer.Option(help="Multiple-comparison correction: holm, bonferroni, none.")] = "holm",
    alpha: Annotated[float, typer.Option(help="Significance level after correction.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the resampling tests.")] = 42,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the table as markdown.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the comparison as JSON.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing --markdown / --json files.")] = False,
    tracking_uri: Annotated[
        str, typer.Option(help="MLflow store of experiment names given instead of folders.")
    ] = "sqlite:///mlflow.db",
) -> None:
    """Compare systems of one or more runs: deltas vs a baseline, paired tests, W/T/L."""
    import tempfile

    from rich.console import Console

    from simlab import fsutil
    from simlab.experiments.api import compare
    from simlab.fsutil import check_new_file

    for target in (markdown, json_out):
        if target is not None:
            check_new_file(target, overwrite)

    split = lambda text: [t.strip() for t in text.split(",") if t.strip()] if text else None  # noqa: E731
    downloads = tempfile.TemporaryDirectory(prefix="simlab-compare-")
    from simlab.experiments.tracking import compare_inputs

    folders = compare_inputs(paths, tracking_uri, Path(downloads.name))  # folders, or MLflow experiments' runs
    result = compare(
        folders, split(metrics), test, correction, baseline, alpha=alpha, seed=seed, systems=split(systems)
    )
    Console(width=None if sys.stdout.isatty() else 160).print(result.to_rich())
    if markdown:
        fsutil.write_text(markdown, result.to_markdown())
    if json_out:
        fsutil.write_text(json_out, result.to_json())


@app.command("report")
def report_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="A run folder or a sweep folder (run folders + sweep.json); or several, their runs in order "
            "(e.g. a baseline run, then a sweep made against it)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file; FILE.md and FILE_files/ go beside it.")],
    baseline: Annotated[
        str | None,
        typer.Option(
            help="Several runs: the baseline run (default: the first). One run: the baseline system "
            "(default: bm25, overlap for pairs, prior for multilabel)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing report (FILE, FILE.md).")] = False,
) -> None:
    """Write a self-contained HTML report (and markdown) of runs or sweeps: runs, comparison, speed, notes, figures."""
    from simlab.experiments.html_report import build_report
    from simlab.fsutil import check_new_file

    for target in (out, out.with_suffix(".md")):
        check_new_file(target, overwrite, list(paths))

    report = build_report(paths, baseline=baseline)
    report.made_with = " ".join(
        ["simlab report", *map(str, paths), "--out", str(out), *(["--baseline", baseline] if baseline else [])]
    )
    report.save(out)
    typer.echo(f"Report: {out} (markdown: {out.with_suffix('.md')}, figures: {out.parent / (out.stem + '_files')})")


@data_app.command("convert")
def data_convert(
    kind: Annotated[
        str,
        typer.Argument(
            help="Source layout: glasgow (Cranfield, CISI, CACM, MED), deepmatcher (tableA/tableB), "
            "wic-tsv, wic (Word-in-Context) or oewn (Open English WordNet YAML: example/definition pairs), "
            "digits (scikit-learn's digits as PNG + attribute labels; no SRC), demo-topics (examples/demo texts "
            "with topic tags; SRC optional)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (BEIR, pairs or multi-label layout).")],
    src: Annotated[Path | None, typer.Argument(help="Folder with the source files (not for digits).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Convert a dataset: glasgow -> BEIR layout; deepmatcher, wic-tsv, wic, oewn -> pairs layout; digits,
    demo-topics -> multi-label layout."""
    from simlab.data.loader import convert, describe
    from simlab.fsutil import check_replaceable

    if overwrite:  # before any work: never the input, never a folder simlab did not write
        check_replaceable(out, [src] if src else [])
    for i, line in enumerate(describe(convert(kind, src, out, overwrite))):
        typer.echo(f"{out}: {line}" if i == 0 else line)


@data_app.command("filter-pca")
def data_filter_pca(
    src: Annotated[Path, typer.Argument(help="A labelled-pairs dataset folder (e.g. from `data convert wic-tsv`).")],
    label1_max: Annotated[
        float, typer.Option("--label1-max", help="Drop label-1 pairs farther apart than this (see --units).")
    ],
    label0_min: Annotated[float, typer.Option("--label0-min", help="Drop label-0 pairs closer than this.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write: the filtered dataset.")],
    plot: Annotated[
        Path | None, typer.Option(help="PNG: PCA-2D points and distances per pair with the thresholds.")
    ] = None,
    units: Annotated[
        str, typer.Option(help="percentile (of the split's pair distances, 0-100) or distance (raw).")
    ] = "percentile",
    model: Annotated[str, typer.Option(help="Model that embeds examples and definitions.")] = "wordllama",
    splits: Annotated[str, typer.Option(help="Comma-separated splits to filter; the others are copied.")] = "train",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Drop pairs by their distance in a PCA-2D projection of example and definition embeddings (per label)."""
    from simlab.fsutil import check_replaceable

    if overwrite:  # before any work: never the input, never a folder simlab did not write
        check_replaceable(out, [src])
    _prepare_runtime()
    from simlab.data.pca_filter import filter_pca

    results = filter_pca(
        src,
        out,
        label1_max,
        label0_min,
        units=units,
        model=model,
        splits=[s.strip() for s in splits.split(",") if s.strip()],
        plot=plot,
        overwrite=overwrite,
    )
    for r in results:
        c = r.counts()
        typer.echo(
            f"{r.split}: dropped {c['label1_dropped']} label-1 pairs with distance > {r.label1_max:.4g} and "
            f"{c['label0_dropped']} label-0 pairs with distance < {r.label0_min:.4g} ({units} {label1_max:g} / "
            f"{label0_min:g}); kept {c['label1_kept']} + {c['label0_kept']} of {c['pairs']}"
        )
    typer.echo(f"Filtered dataset: {out} (filter.json lists every dropped pair)" + (f"; plot: {plot}" if plot else ""))


INTERRUPTED = (
    "interrupted: the unfinished run folder was not kept (finished runs and finished sweep points were); "
    "run it again to start over, or with train.resume: true where the run left checkpoints beside --out"
)


def main() -> None:
    try:
        app()
    except SimlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo(INTERRUPTED, err=True)
        sys.exit(130)
    except OSError as exc:
        import errno

        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        typer.echo(
            f"error: no space left on the device writing {exc.filename or 'a file'}; the unfinished folder was not "
            "kept: free some space (or choose another --out) and run it again",
            err=True,
        )
        sys.exit(2)
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C into exit 130 without a word
            typer.echo(INTERRUPTED, err=True)
        raise


if __name__ == "__main__":
    main()
