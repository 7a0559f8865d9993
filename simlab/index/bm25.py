r"""BM25 lexical retrieval on bm25s, saved as a transparent, versioned folder.

Scoring follows bm25s' `method` (Kamphuis et al., ECIR 2020). With the default `"lucene"`:

$$
\mathrm{score}(q, d) = \sum_{t \in q} \ln\!\Big(1 + \frac{N - df_t + 0.5}{df_t + 0.5}\Big)
    \cdot \frac{tf_{t,d}}{tf_{t,d} + k_1 \big(1 - b + b \, |d| / \mathrm{avgdl}\big)}
$$

where $N$ is the number of documents, $df_t$ the number containing $t$, $tf_{t,d}$ the count
of $t$ in $d$, $|d|$ the token count of $d$ after stop-word removal and avgdl its corpus mean.
Like modern Lucene, the $(k_1 + 1)$ numerator factor is left out (it does not change the
ranking). A term repeated in the query counts once per occurrence.

Tokenisation is bm25s': lower-cased, tokens are runs of two or more word characters
(regex `\b\w\w+\b`, so one-letter words are dropped), then stop words are removed and
tokens are stemmed (English Snowball by default, `stemmer`). The same tokeniser is applied to queries.

Saved folder (written atomically, pickle-free):

    meta.json               format name + version, parameters, n_docs, bm25s version
    doc_ids.json            document ids, in index order
    *.index.npy, *.json     bm25s' own save (CSC score matrix, vocabulary, bm25s params)
"""

from __future__ import annotations

import json
import numbers
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simlab.errors import ConfigError, DataError, RunFolderError
from simlab.fsutil import read_meta, staged_dir, write_json
from simlab.records import Corpus, Queries, Run

FORMAT_NAME = "simlab-bm25"
FORMAT_VERSION = 1
METHODS = ("atire", "bm25+", "bm25l", "lucene", "robertson")
PROGRESS_MIN_TEXTS = 10_000
"""Progress bars are shown by default only for at least this many documents or queries."""


@dataclass(frozen=True)
class BM25Params:
    """Index parameters, recorded in `meta.json`.

    Attributes:
        k1: Term-frequency saturation, >= 0.
        b: Length normalisation, in [0, 1].
        method: bm25s scoring variant, one of `METHODS`.
        stopwords: A bm25s stop-word list name (`"en"`, `"de"`, ...), an explicit list, or None.
        stemmer: A PyStemmer algorithm name (e.g. `"english"`, the default) or None for no stemming.
    """

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stopwords: str | list[str] | None = "en"
    stemmer: str | None = "english"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"BM25 method {self.method!r} is unknown; choose one of {', '.join(METHODS)}.")
        if not self.k1 >= 0:
            raise ConfigError(f"BM25 k1={self.k1!r} must be >= 0 (1.2-2.0 is usual).")
        if not 0 <= self.b <= 1:
            raise ConfigError(f"BM25 b={self.b!r} must be in [0, 1] (0.75 is usual).")


def _bm25s():
    """Import bm25s, undoing the DEBUG level it sets on its own logger at import time."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _make_stemmer(name: str | None) -> Any:
    """A PyStemmer stemmer, or None."""
    if name is None:
        return None
    try:
        import Stemmer
    except ImportError:
        raise ConfigError(
            f"stemmer={name!r} needs PyStemmer, which is not installed: run `pip install PyStemmer`, "
            "or set stemmer to None (no stemming)."
        ) from None
    try:
        return Stemmer.Stemmer(name)
    except KeyError:
        raise ConfigError(
            f"stemmer={name!r} is not a PyStemmer algorithm; choose one of {', '.join(sorted(Stemmer.algorithms()))}."
        ) from None


def _tokenize(texts: list[str], params: BM25Params, stemmer: Any, *, return_ids: bool, progress: bool):
    bm25s = _bm25s()

    try:
        return bm25s.tokenize(
            texts,
            stopwords=params.stopwords,
            stemmer=stemmer,
            return_ids=return_ids,
            show_progress=progress,
        )
    except ValueError as e:  # bm25s' only ValueError here: an unknown stop-word list name
        raise ConfigError(f"BM25 stopwords={params.stopwords!r}: {e}") from None


def _progress(show_progress: bool | None, n: int) -> bool:
    return n >= PROGRESS_MIN_TEXTS if show_progress is None else show_progress


class BM25Retriever:
    """BM25 over a `Corpus`; create with `build` or `load`, then `search`.

    Example:
        >>> corpus = Corpus(["d1", "d2"], ["cats purr softly", "dogs bark loudly"])
        >>> bm25 = BM25Retriever.build(corpus)
        >>> bm25.search(Queries(["q"], ["why do cats purr"]), k=10).ranked("q")[0][0]
        'd1'
    """

    name = "bm25"

    def __init__(self, model: Any, doc_ids: list[str], params: BM25Params) -> None:
        """Wrap a fitted `bm25s.BM25`; use `build` or `load` rather than calling this."""
        self._model = model
        self.doc_ids = list(doc_ids)
        self.params = params
        self._stemmer = _make_stemmer(params.stemmer)
        self._id_rank = None  # rank of each doc id in sorted order, for tie-breaking
        self._position: dict[str, int] | None = None  # doc id -> index position (`term_scores`)

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        stopwords: str | list[str] | None = "en",
        stemmer: str | None = "english",
        show_progress: bool | None = None,
    ) -> BM25Retriever:
        """Index the title + text (`Corpus.full_texts`) of every document.

        Args:
            corpus: The documents.
            k1: Term-frequency saturation.
            b: Length normalisation.
            method: bm25s scoring variant, one of `METHODS`.
            stopwords: bm25s stop-word list name, explicit list, or None.
            stemmer: PyStemmer algorithm name, `"english"` (Snowball, the default: the stemmed BM25
                of Anserini / BEIR; +0.023 nDCG@10 on NFCorpus dev) or None: no stemming. Without
                PyStemmer (a simlab dependency) a stemmer raises `ConfigError` rather than silently
                indexing unstemmed.
            show_progress: Progress bars; None shows them from `PROGRESS_MIN_TEXTS` documents.

        Raises:
            ConfigError: invalid parameters, or a stemmer without PyStemmer.
            DataError: the corpus is empty or has no indexable token.
        """
        bm25s = _bm25s()

        params = BM25Params(k1=k1, b=b, method=method, stopwords=stopwords, stemmer=stemmer)
        if len(corpus) == 0:
            raise DataError("BM25Retriever.build: the corpus has no documents.")
        progress = _progress(show_progress, len(corpus))
        stem = _make_stemmer(stemmer)
        tokens = _tokenize(corpus.full_texts(), params, stem, return_ids=True, progress=progress)
        if not tokens.vocab:
            raise DataError(
                "BM25Retriever.build: no document has an indexable token (two or more word "
                "characters, not a stop word); check the corpus texts and the stopwords setting."
            )
        model = bm25s.BM25(k1=k1, b=b, method=method)
        model.index(tokens, show_progress=progress)
        return cls(model, corpus.ids, params)

    def search(self, queries: Queries, k: int, *, show_progress: bool | None = None) -> Run:
        """The top `k` documents per query, as a `Run` named `"bm25"`.

        `k` is clipped to the corpus size. Documents scoring 0 (sharing no term with the
        query) are left out, so a query may get fewer than `k` results, or none. Score ties
        are broken by doc id descending (trec_eval's order, see `Run.ranked`), also at the
        cut-off, so results are deterministic.

        Raises:
            ConfigError: `k` < 1.
        """
        import numpy as np

        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ConfigError(f"BM25 search: k={k!r} must be a positive integer.")
        k = int(k)
        k = min(k, len(self.doc_ids))
        if self._id_rank is None:
            self._id_rank = np.argsort(np.argsort(np.array(self.doc_ids, dtype=str), kind="stable"))
        progress = _progress(show_progress, len(queries))
        tokens = _tokenize(queries.texts, self.params, self._stemmer, return_ids=False, progress=progress)

        from tqdm.auto import tqdm

        results: dict[str, dict[str, float]] = {}
        for qid, query_tokens in tqdm(
            zip(queries.ids, tokens), total=len(queries), desc="BM25 search", disable=not progress
        ):
            token_ids = self._model.get_tokens_ids(query_tokens)
            if not token_ids:
                results[qid] = {}
                continue
            scores = np.asarray(self._model.get_scores_from_ids(token_ids))  # (n_docs,)
            top = _top_k(scores, k, self._id_rank)
            results[qid] = {self.doc_ids[i]: float(scores[i]) for i in top}
        return Run(self.name, results)

    def term_scores(self, query: str, doc_ids: list[str]) -> dict[str, list[tuple[str, float]]]:
        """For each of `doc_ids`: the query's index terms it contains, each with its part of the BM25 score.

        Terms are the query's tokens as indexed (lower-cased, stop words removed, stemmed when the
        index stems); a term repeated in the query counts once per occurrence, as in `search`, so
        a document's parts sum to its score. Largest part first.
        """
        import numpy as np

        if self._position is None:
            self._position = {d: i for i, d in enumerate(self.doc_ids)}
        positions = [self._position[d] for d in doc_ids]
        (tokens,) = _tokenize([query], self.params, self._stemmer, return_ids=False, progress=False)
        out: dict[str, list[tuple[str, float]]] = {d: [] for d in doc_ids}
        for token, n in Counter(tokens).items():
            token_ids = self._model.get_tokens_ids([token])
            if not token_ids:
                continue
            scores = np.asarray(self._model.get_scores_from_ids(token_ids))[positions] * n  # (len(doc_ids),)
            for doc, s in zip(doc_ids, scores.tolist()):
                if s > 0:
                    out[doc].append((token, float(s)))
        return {d: sorted(ts, key=lambda t: -t[1]) for d, ts in out.items()}

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the index to `folder` atomically (see the module docstring for the layout).

        Raises:
            RunFolderError: `folder` exists and `overwrite` is False.
        """
        bm25s = _bm25s()

        folder = Path(folder)
        if folder.exists() and not overwrite:
            raise RunFolderError(f"{folder} already exists; pass overwrite=True or choose another folder.")
        with staged_dir(folder, overwrite=overwrite) as tmp:
            self._model.save(tmp, show_progress=False)
            write_json(tmp / "doc_ids.json", self.doc_ids)
            meta = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "params": asdict(self.params),
                "n_docs": len(self.doc_ids),
                "bm25s_version": bm25s.__version__,
            }
            write_json(tmp / "meta.json", meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> BM25Retriever:
        """Load an index written by `save`, checking its format, version and size.

        Raises:
            DataError: `folder` is not a simlab BM25 index or its files disagree.
            IndexMismatchError: the index was written by a newer format version.
        """
        bm25s = _bm25s()

        folder = Path(folder)
        meta = read_meta(
            folder,
            FORMAT_NAME,
            FORMAT_VERSION,
            "saved BM25 index",
            "write one with BM25Retriever.build(corpus).save(folder)",
        )
        params = BM25Params(**meta["params"])
        doc_ids = json.loads((folder / "doc_ids.json").read_text(encoding="utf-8"))
        model = bm25s.BM25.load(folder, show_progress=False)
        sizes = {"meta.json": meta["n_docs"], "doc_ids.json": len(doc_ids), "bm25s": model.scores["num_docs"]}
        if len(set(sizes.values())) != 1:
            raise DataError(f"{folder}: the index files disagree on the number of documents: {sizes}.")
        return cls(model, doc_ids, params)


def _top_k(scores, k: int, id_rank):
    """Indices of the `k` best positive scores: score descending, then doc id descending."""
    import numpy as np

    candidates = np.flatnonzero(scores > 0)
    if len(candidates) > k:
        cand_scores = scores[candidates]
        kth_best = np.partition(cand_scores, len(cand_scores) - k)[len(cand_scores) - k]
        candidates = candidates[cand_scores >= kth_best]  # keeps every doc tied at the cut-off
    order = np.lexsort((-id_rank[candidates], -scores[candidates]))[:k]
    return candidates[order]
