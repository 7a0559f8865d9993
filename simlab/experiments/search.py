"""`simlab search` and `simlab serve`'s `/search`: a retrieval or sparse run's systems, loaded once.

`RunSearcher(run_dir)` opens a finished run folder and loads, once, every system it can
answer a new query with: BM25 (`indexes/bm25`), each saved dense or sparse index
(`indexes/<prefix>.<kind>`, queries encoded by the run's trained model for `trained.*` or by
the configured model for `zeroshot.*`, as the run evaluated them) and the hybrid
(`indexes/hybrid.json`: the systems it fuses, RRF's k, the depth each was cut at). Then
`search(query, k, system)` ranks the run's collection and returns a `SearchResult`: every hit
with its text, the terms it matched (BM25 terms with their share of the score; SPLADE tokens
the query and document share, with both weights) and its judged relevance when the query is
one of the collection's and its qrels judge the document.

`search_run` is one query through a `RunSearcher` of one system (the CLI command).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from simlab.errors import ConfigError, DataError, RunFolderError
from simlab.experiments.search_systems import Term, load_encoder, load_system

__all__ = ["Hit", "RunSearcher", "SearchResult", "Term", "search_run"]

SNIPPET_CHARS = 100
"""Characters of a document shown by `simlab search` (`Hit.snippet`)."""


@dataclass(frozen=True)
class Hit:
    """One ranked document. `relevance` is its qrels grade for a known query (None: not judged)."""

    doc_id: str
    score: float
    snippet: str
    title: str = ""
    text: str = ""
    terms: tuple[Term, ...] = ()
    relevance: int | None = None


@dataclass(frozen=True)
class SearchResult:
    """The ranking of one query by one system.

    Attributes:
        system: The system that ranked (`bm25`, `trained.flat`, `hybrid` ...).
        query: The query text.
        query_id: The collection's query with this text (whitespace and case aside; of several, the
            first one judged), whose qrels judge the hits; None for a new query.
        hits: Best first.
        expansion: Sparse systems: the query's top tokens with their weights (as `simlab inspect`).
        seconds: Wall time of the search, query encoding included.
    """

    system: str
    query: str
    query_id: str | None
    hits: list[Hit]
    expansion: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def check_query(query: str, k: int) -> None:
    """Refuse an empty query or a `k` below 1 (`DataError`, `ConfigError`)."""
    if not isinstance(query, str) or not query.strip():
        raise DataError('the query is empty; give the text to search for (simlab search RUN "text")')
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"-k {k}: the number of documents to show must be at least 1")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


class RunSearcher:
    """A finished retrieval or sparse run's systems, loaded once (see the module docstring).

    Args:
        run_dir: The run folder.
        systems: The systems to load (None: every one the folder holds).
        command: The command checked against the run's task (`search`; its model and indexes are
            checked against the checksums the run wrote).

    Raises:
        RunFolderError: not a finished retrieval/sparse run, a named system is not in it, or
            its model or an index is damaged.
    """

    def __init__(self, run_dir: str | Path, systems: list[str] | None = None, command: str = "search") -> None:
        from simlab.data.loader import load_collection
        from simlab.tasks.skeleton import run_task

        self.path = Path(run_dir)
        run_task(self.path, command)
        self.config = run_config(self.path)
        meta = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
        available = saved_systems(self.path)
        names = list(available) if systems is None else list(systems)
        for name in names:
            if name not in available:
                found = sorted(available)
                raise RunFolderError(
                    f"{self.path / 'indexes' / name}: no such index "
                    f"(found: {', '.join(found) or 'none; the run did not train a model'})"
                    + ("; pass --index with one of them" if found else "")
                )
        if not names:
            raise RunFolderError(f"{self.path}: no saved index; re-run the experiment to save its indexes")
        self.collection = load_collection(Path(meta["data"]))
        self._models: dict[str, object] = {}
        self._loaded: dict[str, object] = {}
        self._hybrids: dict[str, dict] = {}
        for name in names:  # a hybrid's parts first, so they are loaded once
            for part in available[name].get("systems", []) if name == "hybrid" else []:
                self._load(part, available)
            self._load(name, available)
        self.systems = names
        corpus = self.collection.corpus
        self._docs = {d: (t, x) for d, t, x in zip(corpus.ids, corpus.titles, corpus.texts)}
        self._judged: dict[str, dict[str, int]] = {}
        for qrels in self.collection.qrels.values():
            for qid, docs in qrels.judgements.items():
                self._judged.setdefault(qid, {}).update(docs)
        self._query_ids: dict[str, str] = {}  # text -> its first judged query (else its first query)
        for qid, text in zip(self.collection.queries.ids, self.collection.queries.texts):
            known = self._query_ids.get(_norm(text))
            if known is None or (known not in self._judged and qid in self._judged):
                self._query_ids[_norm(text)] = qid

    def _load(self, name: str, available: dict[str, dict]) -> None:
        if name in self._loaded or name in self._hybrids:
            return
        if name == "hybrid":
            self._hybrids[name] = available[name]
            return
        self._loaded[name] = load_system(self, name, available[name])

    def model(self, prefix: str, sparse: bool):
        """The query encoder of `prefix` (`trained`: the run's model; `zeroshot`: the configured one), loaded once."""
        if prefix not in self._models:
            self._models[prefix] = load_encoder(self, prefix, sparse)
        return self._models[prefix]

    def test_queries(self, n: int = 50) -> list[str]:
        """Up to `n` texts of the run's test queries (the ones its qrels judge)."""
        split = str((self.config.get("data") or {}).get("test_split", "test"))
        qrels = self.collection.qrels.get(split)
        if qrels is None:
            return []
        keep = set(qrels.query_ids())
        return [t for i, t in zip(self.collection.queries.ids, self.collection.queries.texts) if i in keep][:n]

    def search(self, query: str, k: int = 10, system: str | None = None) -> SearchResult:
        """The top `k` documents of the collection for `query` by `system` (default: the first loaded).

        Raises:
            DataError: the query is empty.
            ConfigError: `k` < 1, or `system` is not loaded (the message lists those that are).
        """
        check_query(query, k)
        system = system or self.systems[0]
        if system not in self.systems:
            raise ConfigError(
                f"system {system!r} is not served for {self.path}; choose one of {', '.join(self.systems)}"
            )
        t0 = time.perf_counter()
        if system in self._hybrids:
            ranked, terms, expansion = self._hybrid(query, k, self._hybrids[system])
        else:
            ranked, terms, expansion = self._loaded[system].rank(query, k)
        qid = self._query_ids.get(_norm(query))
        judged = self._judged.get(qid, {}) if qid is not None else {}
        hits = [self._hit(d, s, terms.get(d, ()), judged.get(d) if qid is not None else None) for d, s in ranked]
        return SearchResult(system, query, qid, hits, expansion, time.perf_counter() - t0)

    def _hybrid(self, query: str, k: int, recipe: dict):
        """RRF of the recipe's systems, each cut at the depth the run fused them at (or `k` if deeper)."""
        from simlab.index.fusion import get_fusion
        from simlab.records import Run

        depth = max(k, int(recipe.get("depth", k)))
        runs, expansion = [], []
        for part in recipe["systems"]:
            ranked, _, part_expansion = self._loaded[part].rank(query, depth, with_terms=False)
            runs.append(Run(part, {"q": dict(ranked)}))
            expansion = expansion or part_expansion
        fused = get_fusion(recipe.get("fusion", "rrf"))(runs, k=recipe.get("k", 60), name="hybrid", top=k).ranked("q")
        terms: dict = {}
        for part in recipe["systems"]:  # the matched terms of the fused top k only
            for doc, ts in self._loaded[part].terms(query, [d for d, _ in fused]).items():
                terms.setdefault(doc, ts)
        return fused, terms, expansion

    def _hit(self, doc_id: str, score: float, terms, relevance: int | None) -> Hit:
        title, text = self._docs.get(doc_id, ("", ""))
        full = f"{title} {text}".strip() if title else text
        snippet = full[:SNIPPET_CHARS] + "…" if len(full) > SNIPPET_CHARS else full
        return Hit(doc_id, float(score), snippet, title, text, tuple(terms), relevance)


def saved_systems(run_dir: Path) -> dict[str, dict]:
    """System name -> its saved index's meta.json (the hybrid: its recipe) for every index under `run_dir/indexes`."""
    index_dir = run_dir / "indexes"
    found: dict[str, dict] = {}
    if not index_dir.is_dir():
        return found
    for sub in sorted(p for p in index_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found[sub.name] = index_meta(sub)
    recipe = index_dir / "hybrid.json"
    if recipe.is_file():
        hybrid = index_meta(index_dir, "hybrid.json")
        if all(part in found for part in hybrid.get("systems", [])):
            found["hybrid"] = hybrid
    return found


def index_meta(index_dir: Path, name: str = "meta.json") -> dict:
    """The index's meta.json ({} when absent: the index loader says what is missing)."""
    path = index_dir / name
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            f"{path}:{getattr(e, 'lineno', 1)}: invalid JSON ({getattr(e, 'msg', e)}); the index folder is damaged, "
            "rebuild it (re-run the experiment)."
        ) from None
    return meta if isinstance(meta, dict) else {}


def run_config(run_dir: Path) -> dict:
    """The run's config.yaml as a dict."""
    import yaml

    path = run_dir / "config.yaml"
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise RunFolderError(f"{path}: missing or not valid YAML; the run folder is damaged, re-run it") from None
    return cfg if isinstance(cfg, dict) else {}


def search_run(run_dir: Path, query: str, k: int = 10, index_name: str = "trained.flat") -> list[Hit]:
    """Top-`k` documents for `query` from the run's saved system `index_name` (`simlab search`)."""
    check_query(query, k)
    return RunSearcher(run_dir, [index_name]).search(query, k, index_name).hits


def read_query(query: str | None, stdin=None, file: Path | None = None) -> str:
    """The query of `simlab search`: the argument, standard input (`stdin`), or a text file; exactly one.

    Raises:
        ConfigError: none or several of them given.
        DataError: the file cannot be read as UTF-8 text.
    """
    given = [name for name, v in (("QUERY", query), ("--stdin", stdin), ("--file", file)) if v is not None]
    if len(given) != 1:
        raise ConfigError(
            f"give the query one way: as QUERY, with --stdin or with --file (got {' and '.join(given) or 'none'})"
        )
    if stdin is not None:
        return stdin.read()
    if file is not None:
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"--file {file}: cannot be read as UTF-8 text ({e.__class__.__name__})") from None
    return query
