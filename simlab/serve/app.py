"""The FastAPI application of `simlab serve` (see `create_app`); its OpenAPI page is `/docs`.

| endpoint | runs | answer |
|---|---|---|
| `GET /search?q=&k=&system=&run=` | retrieval, sparse | top k documents of one system, terms, judgements |
| `POST /match` `{"left", "right", "run"}` | pairs, definitions | score, decision at the frozen val threshold |
| `POST /classify` `{"text", "run"}` | multilabel (texts) | every label's probability and frozen threshold |
| `GET /runs` | all | what is loaded: task, systems, metrics, fields, labels, limits |
| `GET /health` | | `{"status": "ok"}` |
| `GET /` | | the page (`page/index.html`) |

Errors are `{"error": "..."}`: 400 for a bad value (unknown system, k or query over a
limit, an empty or unknown field), 404 for an unknown run, 422 for a malformed request, and
the guard's 401, 413, 429 (`simlab.serve.limits`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from simlab.errors import SimlabError
from simlab.serve.limits import Guard, Limits
from simlab.serve.loading import ServedRun

PAGE = Path(__file__).resolve().parent / "page"
SERVICES = {"search": "retrieval and sparse", "match": "pairs and definitions", "classify": "multilabel"}


class ApiError(Exception):
    """A refusal with its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MatchRequest(BaseModel):
    left: str | dict[str, str | int | float] = Field(description="A record: its text, or field -> value.")
    right: str | dict[str, str | int | float] = Field(
        description="The other record (a definition for definitions runs)."
    )
    run: str | None = Field(None, description="The run to ask (default: the first pairs or definitions run).")


class ClassifyRequest(BaseModel):
    text: str = Field(description="The text to classify.")
    run: str | None = Field(None, description="The run to ask (default: the first multilabel run).")


def _pick(runs: dict[str, ServedRun], name: str | None, service: str) -> ServedRun:
    if name is not None:
        if name not in runs:
            raise ApiError(404, f"no run named {name!r}; served runs: {', '.join(runs)}")
        run = runs[name]
        if run.service != service:
            raise ApiError(
                400, f"run {name!r} is a {run.task} run: /{service} takes {SERVICES[service]} runs; use /{run.service}"
            )
        return run
    for run in runs.values():
        if run.service == service:
            return run
    raise ApiError(400, f"no {SERVICES[service]} run is served; /{service} needs one")


def _check_length(n: int, limits: Limits, what: str) -> None:
    if n > limits.max_query_chars:
        raise ApiError(400, f"{what} has {n:,} characters, over the limit of {limits.max_query_chars:,}; shorten it")


def _record_chars(record: str | dict) -> int:
    return len(record) if isinstance(record, str) else sum(len(str(v)) for v in record.values())


def _search_body(run: str, result, k: int) -> dict[str, Any]:
    """`/search`'s answer for a `SearchResult`."""
    return {
        "run": run,
        "system": result.system,
        "query": result.query,
        "query_id": result.query_id,
        "k": k,
        "seconds": result.seconds,
        "expansion": [{"token": t, "weight": w} for t, w in result.expansion],
        "hits": [
            {
                "rank": rank,
                "doc_id": h.doc_id,
                "score": h.score,
                "title": h.title,
                "text": h.text,
                "relevance": h.relevance,
                "terms": [vars(t) for t in h.terms],
            }
            for rank, h in enumerate(result.hits, start=1)
        ],
    }


def _error_handlers(app: FastAPI) -> None:
    """Every refusal as `{"error": "..."}`: ApiError with its status, SimlabError 400, a malformed request 422."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(SimlabError)
    async def _simlab_error(request: Request, exc: SimlabError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "; ".join(dict.fromkeys(parts))}, status_code=422)


def create_app(runs: dict[str, ServedRun], limits: Limits | None = None, api_key: str | None = None):
    """The application answering for the loaded `runs`, wrapped in the guard of `limits` (and `api_key`).

    Returns the ASGI app (a `Guard` around the FastAPI app, which is its `.app`).
    """
    limits = limits or Limits()
    app = FastAPI(
        title="simlab serve",
        description="Search, matching and classification with finished simlab runs.",
        version="1",
    )
    app.state.runs, app.state.limits = runs, limits

    _error_handlers(app)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "runs": len(runs)}

    @app.get("/runs")
    def list_runs() -> dict[str, Any]:
        return {"runs": [r.info() for r in runs.values()], "limits": limits.to_dict()}

    @app.get("/search")
    def search(
        q: str = Query(description="The query."),
        k: int = Query(10, description="Documents to return."),
        system: str | None = Query(None, description="A system of the run (default: its main system)."),
        run: str | None = Query(None, description="The run (default: the first retrieval or sparse run)."),
    ) -> dict[str, Any]:
        served = _pick(runs, run, "search")
        _check_length(len(q), limits, "the query")
        if not 1 <= k <= limits.max_k:
            raise ApiError(400, f"k={k}: ask for 1 to {limits.max_k} documents")
        result = served.engine.search(q, k, system or served.main_system)
        return _search_body(served.name, result, k)

    @app.post("/match")
    def match(body: MatchRequest) -> dict[str, Any]:
        served = _pick(runs, body.run, "match")
        for side in ("left", "right"):
            _check_length(_record_chars(getattr(body, side)), limits, f"the {side} record")
        score, decision = served.engine.score(body.left, body.right)
        return {
            "run": served.name,
            "task": served.task,
            "score": score,
            "threshold": served.engine.threshold,
            "match": decision,
            "scorer": served.engine.distance,
        }

    @app.post("/classify")
    def classify(body: ClassifyRequest) -> dict[str, Any]:
        served = _pick(runs, body.run, "classify")
        _check_length(len(body.text), limits, "the text")
        rows = served.engine.classify(body.text)
        return {
            "run": served.name,
            "labels": [{"label": a, "probability": p, "threshold": t, "predicted": y} for a, p, t, y in rows],
            "predicted": [a for a, _, _, y in rows if y],
        }

    app.mount("/static", StaticFiles(directory=PAGE), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    return Guard(app, limits, api_key)
