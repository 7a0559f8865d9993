"""`simlab serve`: a run's search, matching or classification as a web service with a page.

`loading` opens run folders once (the experiments' `RunSearcher`, `PairMatcher`,
`LabelClassifier`, the same code `simlab search` uses), `limits` holds the request limits and
the ASGI guard that enforces them, `app` builds the FastAPI application, `server` runs it
under uvicorn, and `page/` is the page served at `/` (plain HTML and JavaScript, no CDN).
Nothing here is imported by `simlab --help`.
"""
