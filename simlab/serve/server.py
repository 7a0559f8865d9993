"""Run the service under uvicorn: `simlab serve RUN [RUN...]`.

The runs are loaded before the server starts listening, so the first request is as fast as
the others. Loopback (127.0.0.1) by default; any other host is reachable from other machines,
which `serve` says in a warning, and an API key (`--api-key` or `SIMLAB_API_KEY`) then guards
every API call. uvicorn stops on SIGINT and SIGTERM: it finishes the requests under way and
exits; the service is this one process (no workers), so nothing is left serving.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from simlab.serve.limits import API_KEY_ENV, Limits

log = logging.getLogger("simlab")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """The warning for a host other than loopback (None on loopback)."""
    if is_loopback(host):
        return None
    guard = (
        "every API call needs the API key"
        if api_key
        else f"anyone who reaches it can use the models: set --api-key or {API_KEY_ENV} to require a key"
    )
    return f"warning: serving on {host}, reachable from other machines; {guard}"


def serve(
    paths: list[Path],
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    limits: Limits | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Load `paths` and answer on `host:port` until SIGINT or SIGTERM.

    Raises:
        RunFolderError: a folder is not a finished run of a served task.
        ConfigError: no runs, a run given twice, or a limit below 1.
    """
    import uvicorn

    from simlab.serve.app import create_app
    from simlab.serve.loading import load_runs

    limits = limits or Limits()
    warning = exposure_warning(host, api_key)
    if warning:
        echo(warning)
    runs = load_runs(paths)
    for run in runs.values():
        what = f"systems {', '.join(run.engine.systems)}" if run.service == "search" else f"/{run.service}"
        echo(f"loaded {run.name} ({run.task}, {what}) in {run.seconds:.1f} s")
    app = create_app(runs, limits, api_key)
    shown = f"[{host}]" if ":" in host else host
    echo(f"serving at http://{shown}:{port}/ (API docs at /docs); Ctrl-C to stop")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    caught: list[int] = []  # uvicorn re-raises the signal it stopped on once done: here it is only noted
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in STOP_SIGNALS}
    try:
        uvicorn.Server(config).run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    echo("stopped" + (f" on {signal.Signals(caught[0]).name}" if caught else ""))
