"""The connection to a Ray cluster, simlab's distributed engine (the optional `ray` extra).

Nothing here imports Ray at module import: the single-process path never loads it. The
commands that use a cluster (`simlab run --cluster`, a config's `cluster.address`,
`index.encode: ray`) call `connect`, which joins the cluster once per process (or starts a
local Ray when no address is given) and passes the driver's offline and quiet settings on to
every Ray worker. A missing extra is a `ConfigError` with the install line.

Where the work happens: `simlab.experiments.cluster_sweep` (grid points as Ray tasks),
`simlab.experiments.cluster_train` (Ray Train `TorchTrainer`) and `simlab.index.ray_encode`
(Ray Data corpus encoding). docs/CLUSTER.md describes a cluster's setup.
"""

from __future__ import annotations

import os
import socket
import sys
from types import ModuleType

from simlab.errors import ConfigError

INSTALL = 'pip install "simlab[ray]"'

FORWARDED_ENV = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "HF_HUB_DISABLE_PROGRESS_BARS",
    "MLFLOW_DISABLE_TELEMETRY",
    "TOKENIZERS_PARALLELISM",
    "TRANSFORMERS_VERBOSITY",
    "TQDM_DISABLE",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
)
"""Environment variables of the driver given to every Ray worker of the job (when set)."""

WORKER_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
"""Set in every Ray worker: a worker's output reaches the driver line by line, where progress bars are noise."""

QUIET = ("sentence_transformers", "transformers", "mlflow", "bm25s", "faiss", "ray.data", "ray.train")

_started_here = False


def require_ray(what: str = "--cluster") -> ModuleType:
    """The `ray` module, or a `ConfigError` naming `what` asked for it and how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"{what} runs on Ray, which is not installed; install the extra: {INSTALL} "
            "(or run without it: the single-process path needs no Ray)"
        ) from None
    return ray


def connected() -> bool:
    """Whether this process is connected to a Ray cluster (never imports Ray)."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def on_driver() -> bool:
    """Whether this process is a connected Ray driver (not a Ray worker running a task or an actor)."""
    if not connected():
        return False
    ray = sys.modules["ray"]
    return ray.get_runtime_context().worker.mode == ray.SCRIPT_MODE


def connect(address: str | None = None, what: str = "--cluster") -> ModuleType:
    """Join the Ray cluster at `address` once per process and return the `ray` module.

    Args:
        address: `auto` (the cluster this machine belongs to, or `RAY_ADDRESS`), `HOST:PORT`
            (the head's GCS address), or `local` / None (start a Ray instance on this machine,
            stopped at exit). An already connected process keeps its connection.
        what: What asked for Ray, for the error message.

    Raises:
        ConfigError: Ray is not installed, or no cluster answers at `address`.
    """
    global _started_here
    ray = require_ray(what)
    if ray.is_initialized():
        return ray
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ} | WORKER_ENV
    target = None if address in (None, "", "local") else address
    if target is not None:
        check_reachable(target, what)
    try:
        ray.init(
            address=target or "local",
            runtime_env={"env_vars": env} if env else None,
            logging_level="WARNING",
            log_to_driver=True,
            include_dashboard=False if target is None else None,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"{what}: no Ray cluster answered at {address!r} ({str(exc).splitlines()[0] if str(exc) else exc}); "
            "start one with `ray start --head` (docs/CLUSTER.md) or pass its HOST:PORT"
        ) from None
    _started_here = target is None
    _quiet_ray_data()
    return ray


PROBE_SECONDS = 5.0


def check_reachable(address: str, what: str = "--cluster") -> None:
    """A `ConfigError` unless something listens at `address` (`HOST:PORT` or `ray://HOST:PORT`; `auto` is left to
    Ray). Checked before `ray.init`, which retries an address nobody answers at for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not sep:
        return
    if not port.isdigit() or not host:
        raise ConfigError(
            f"{what}: {address!r} is not a cluster address; pass auto or the head's HOST:PORT (e.g. 10.0.0.5:6379)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        raise ConfigError(
            f"{what}: no Ray cluster answered at {address!r} ({exc.strerror or exc}); start one with "
            f"`ray start --head --port {port}` on {host} (docs/CLUSTER.md) or pass the head's HOST:PORT"
        ) from None


def _quiet_ray_data() -> None:
    """Ray Data's progress bars and per-operator logs off: simlab prints its own progress."""
    try:
        from ray.data import DataContext
    except ImportError:  # Ray core without the data extra: the encoding stage says so when it needs it
        return
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    if hasattr(ctx, "enable_operator_progress_bars"):
        ctx.enable_operator_progress_bars = False


def quiet_worker_logs() -> None:
    """In a Ray worker: simlab's progress lines (INFO), the libraries' warnings only, as the CLI sets them."""
    import logging

    logging.getLogger("simlab").setLevel(logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def disconnect() -> None:
    """Leave the cluster (and stop the Ray instance if `connect` started it here)."""
    global _started_here
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    _started_here = False


def node_id() -> str:
    """The id of the Ray node this process runs on ("" outside Ray)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return ""
    return ray.get_runtime_context().get_node_id()
