"""Where the work runs — cluster config files, validated, then connected.

A config file is YAML with a ``kind`` and the settings of that kind::

    kind: local-processes
    n_workers: 4
    memory_limit: 4GiB

Kinds (an allow-list: a config names one of these, never a class or module):

=====================  ==============================================  =============
kind                   runs on                                         extra
=====================  ==============================================  =============
local-threads          Dask's threaded scheduler (the default)         —
local-processes        ``distributed.LocalCluster``                    —
existing-scheduler     a running scheduler (address or scheduler file) —
slurm, pbs             ``dask_jobqueue.SLURMCluster`` / ``PBSCluster``  ``hpc``
kubernetes             ``dask_kubernetes.operator.KubeCluster``        ``kubernetes``
gateway                a ``dask_gateway.Gateway`` cluster              ``gateway``
=====================  ==============================================  =============

:func:`load_config` validates a file (unknown keys and wrong types are
errors that name the key); :func:`connect` starts or joins the cluster and
yields a ``distributed.Client`` (None for local threads) until the block ends.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import dask
from dask.utils import parse_bytes
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    PositiveInt,
    ValidationError,
    model_validator,
)

from daskem.exceptions import DaskemError
from daskem.io.yaml_files import describe, read_mapping

logger = logging.getLogger("daskem")


class ClusterConfigError(DaskemError, ValueError):
    """A cluster config file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _memory_size(value: str | int | float) -> str | int | float:
    """A memory limit as distributed reads it: "auto", bytes, a fraction of the machine, or "4GiB"."""
    if isinstance(value, str) and value != "auto":
        parse_bytes(value)  # ValueError: "Could not interpret 'lots' as a byte unit"
    elif isinstance(value, float) and not 0 < value <= 1:
        raise ValueError(f"a fraction of the machine's memory must be in (0, 1], got {value}")
    elif isinstance(value, int) and value <= 0:
        raise ValueError(f"must be a positive number of bytes, got {value}")
    return value


MemorySize = Annotated[str | int | float, AfterValidator(_memory_size)]


def _address(value: str) -> str:
    """A scheduler address whose scheme (tcp://, tls://, …) distributed knows."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend

    get_backend(parse_address(value, strict=False)[0])  # ValueError: "unknown address scheme …"
    return value


class TLS(_Strict):
    """Mutual TLS: one CA, and the certificate and key this process presents.

    The files are loaded when the config is read, so a file that is not a PEM
    certificate (or key) is named then, not when the cluster starts.
    """

    ca_file: FilePath
    cert_file: FilePath
    key_file: FilePath | None = None

    @model_validator(mode="after")
    def _certificates(self) -> TLS:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        for what, load in (
            (f"ca_file {str(self.ca_file)!r}", lambda: context.load_verify_locations(cafile=str(self.ca_file))),
            (f"cert_file {str(self.cert_file)!r} (with its key)",
             lambda: context.load_cert_chain(str(self.cert_file), self.key_file and str(self.key_file))),
        ):
            try:
                load()
            except (ssl.SSLError, OSError) as error:
                raise ValueError(f"{what} is not a PEM certificate that can be used ({error.strerror or error})")
        return self

    def security(self, *, cluster: bool = False) -> Any:
        """A ``distributed.security.Security`` that requires encryption.

        With ``cluster=True`` the same certificate also serves the scheduler
        and the workers of a cluster this process starts.
        """
        from distributed.security import Security

        cert, key = str(self.cert_file), str(self.key_file) if self.key_file else None
        roles = ("client", "scheduler", "worker") if cluster else ("client",)
        files = {f"tls_{role}_cert": cert for role in roles} | {f"tls_{role}_key": key for role in roles}
        return Security(tls_ca_file=str(self.ca_file), require_encryption=True, **files)


class LocalThreads(_Strict):
    kind: Literal["local-threads"]
    num_workers: PositiveInt | None = None


class LocalProcesses(_Strict):
    kind: Literal["local-processes"]
    n_workers: PositiveInt | None = None
    threads_per_worker: PositiveInt = 1
    memory_limit: MemorySize = "auto"
    dashboard_address: str | None = ":8787"
    tls: TLS | None = None


class ExistingScheduler(_Strict):
    kind: Literal["existing-scheduler"]
    address: str | None = None
    scheduler_file: FilePath | None = None
    timeout: str = "30s"
    tls: TLS | None = None

    @model_validator(mode="after")
    def _one_address(self) -> ExistingScheduler:
        if self.address is not None and self.scheduler_file is not None:
            raise ValueError("give at most one of address and scheduler_file")
        if self.address is not None:
            _address(self.address)
        if self.scheduler_file is not None:
            try:
                document = json.loads(self.scheduler_file.read_text())
            except (OSError, UnicodeDecodeError, ValueError) as error:
                raise ValueError(f"scheduler_file {str(self.scheduler_file)!r} is not a scheduler file "
                                 f"(JSON from dask scheduler --scheduler-file): {error}") from None
            if not isinstance(document, dict) or not isinstance(document.get("address"), str):
                raise ValueError(f"scheduler_file {str(self.scheduler_file)!r} holds no scheduler address")
            _address(document["address"])
        return self


class Adapt(_Strict):
    minimum: int = Field(0, ge=0)
    maximum: PositiveInt


class JobQueueAdapt(_Strict):
    """Adaptive scaling of a job-queue cluster, in jobs (each job runs ``processes`` workers)."""

    minimum_jobs: int = Field(0, ge=0)
    maximum_jobs: PositiveInt


class _JobQueue(_Strict):
    """dask-jobqueue's settings of one job; a setting left out comes from the site's ``jobqueue.yaml``."""

    cores: PositiveInt | None = None
    memory: Annotated[str, AfterValidator(_memory_size)] | None = None
    processes: PositiveInt | None = None
    queue: str | None = None
    account: str | None = None
    walltime: str | None = None
    job_extra_directives: list[str] | None = None
    job_script_prologue: list[str] | None = None
    interface: str | None = None
    worker_extra_args: list[str] | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    jobs: PositiveInt = 1
    adapt: JobQueueAdapt | None = None

    def cluster_options(self) -> dict[str, Any]:
        """The keyword arguments of the dask-jobqueue cluster: only what the config sets."""
        return self.model_dump(exclude={"kind", "jobs", "adapt"}, exclude_none=True)


class Slurm(_JobQueue):
    kind: Literal["slurm"]


class PBS(_JobQueue):
    kind: Literal["pbs"]
    resource_spec: str | None = None


class Kubernetes(_Strict):
    kind: Literal["kubernetes"]
    name: str = "daskem"
    image: str
    namespace: str | None = None
    n_workers: PositiveInt = 2
    resources: dict[str, dict[str, str]] | None = None
    env: dict[str, str] = {}
    adapt: Adapt | None = None


class Gateway(_Strict):
    kind: Literal["gateway"]
    address: str
    proxy_address: str | None = None
    auth: Literal["basic", "kerberos", "jupyterhub"] | None = None
    cluster_options: dict[str, str | int | float | bool] = {}
    n_workers: PositiveInt = 2
    adapt: Adapt | None = None


_KINDS = (LocalThreads, LocalProcesses, ExistingScheduler, Slurm, PBS, Kubernetes, Gateway)
ClusterConfig = Annotated[
    LocalThreads | LocalProcesses | ExistingScheduler | Slurm | PBS | Kubernetes | Gateway,
    Field(discriminator="kind"),
]
#: The kinds a config may name.
KINDS = tuple(model.model_fields["kind"].annotation.__args__[0] for model in _KINDS)

#: The only classes a config can start: kind → (module, class, extra that installs it).
ALLOWED = {
    "slurm": ("dask_jobqueue", "SLURMCluster", "hpc"),
    "pbs": ("dask_jobqueue", "PBSCluster", "hpc"),
    "kubernetes": ("dask_kubernetes.operator", "KubeCluster", "kubernetes"),
    "gateway": ("dask_gateway", "Gateway", "gateway"),
}


class _File(_Strict):
    config: ClusterConfig


def load_config(path: str | os.PathLike) -> ClusterConfig:
    """Read and validate a cluster config file.

    Raises
    ------
    ClusterConfigError
        With one line naming the file and what is wrong in it.
    """
    document = read_mapping(path, "cluster config", "a 'kind' key", ClusterConfigError)
    try:
        return _File(config=document).config
    except ValidationError as error:
        kinds = ", ".join(repr(k) for k in KINDS)
        raise ClusterConfigError(
            f"cluster config {str(Path(path))!r}: {describe(error, skip=2, kinds=kinds)}"  # skip "config", the kind
        ) from None


def _allowed_class(kind: str) -> Any:
    module_name, class_name, extra = ALLOWED[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ClusterConfigError(
            f"the {kind!r} cluster needs the package {module_name.split('.')[0].replace('_', '-')}: "
            f"install it with pip install 'daskem[{extra}]'"
        ) from None
    return getattr(module, class_name)


@contextmanager
def running_on(path: str | os.PathLike | None) -> Iterator[Any]:
    """Run the block on the cluster of the config file at ``path`` (local threads if None)."""
    if path is None:
        yield None
        return
    with connect(load_config(path)) as client:
        yield client


@contextmanager
def connect(config: ClusterConfig) -> Iterator[Any]:
    """Start or join the cluster of ``config``; yield its client (None for local threads).

    Everything started here is closed when the block ends.

    Raises
    ------
    ClusterConfigError
        If the cluster cannot be started or reached (one line saying why).
    """
    if isinstance(config, LocalThreads):
        with dask.config.set(scheduler="threads", num_workers=config.num_workers):
            yield None
        return
    with contextlib.ExitStack() as stack:
        try:
            client = _open(config, stack)
        except (OSError, ValueError, RuntimeError) as error:  # TimeoutError and ssl.SSLError are OSErrors
            message = " ".join(str(error).split()) or type(error).__name__
            raise ClusterConfigError(f"cannot {_what(config)}: {message}") from None
        yield _announce(client)


def _scheduler_address(config: ExistingScheduler) -> str | None:
    """The config's address, else DASK_SCHEDULER_ADDRESS as set now (or in Dask's config)."""
    return config.address or os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get("scheduler-address", None)


def _what(config: ClusterConfig) -> str:
    if isinstance(config, ExistingScheduler):
        where = config.scheduler_file or _scheduler_address(config)
        return f"connect to the scheduler at {str(where)!r} (is it running, and reachable from here?)"
    return f"start the {config.kind!r} cluster"


def _open(config: ClusterConfig, stack: contextlib.ExitStack) -> Any:
    """Start or join the cluster; its client and cluster close with ``stack``."""
    from distributed import Client, LocalCluster

    if isinstance(config, ExistingScheduler):
        security = config.tls.security() if config.tls else None
        if config.scheduler_file is not None:
            target = {"scheduler_file": str(config.scheduler_file)}
        else:
            target = {"address": _scheduler_address(config)}
            if target["address"] is None:
                raise ClusterConfigError(
                    "the existing-scheduler config gives no address: set address or scheduler_file, "
                    "or the environment variable DASK_SCHEDULER_ADDRESS"
                )
            _address(target["address"])
        return stack.enter_context(Client(**target, timeout=config.timeout, security=security))
    if isinstance(config, LocalProcesses):
        options = config.model_dump(exclude={"kind", "tls"})
        if config.tls:
            options |= {"protocol": "tls://", "host": "127.0.0.1", "security": config.tls.security(cluster=True)}
        cluster = stack.enter_context(LocalCluster(**options))
        return stack.enter_context(Client(cluster, security=options.get("security")))
    cluster = _start_remote(config)
    stack.callback(cluster.close)
    return stack.enter_context(Client(cluster))


def _start_remote(config: Slurm | PBS | Kubernetes | Gateway) -> Any:
    cls = _allowed_class(config.kind)
    if isinstance(config, (Slurm, PBS)):
        cluster = cls(**config.cluster_options())
        if config.adapt:
            cluster.adapt(minimum_jobs=config.adapt.minimum_jobs, maximum_jobs=config.adapt.maximum_jobs)
        else:
            cluster.scale(jobs=config.jobs)
        return cluster
    if isinstance(config, Kubernetes):
        cluster = cls(name=config.name, image=config.image, namespace=config.namespace,
                      n_workers=config.n_workers, resources=config.resources, env=config.env)
    else:
        gateway = cls(address=config.address, proxy_address=config.proxy_address, auth=config.auth)
        options = gateway.cluster_options()
        for key, value in config.cluster_options.items():
            setattr(options, key, value)
        cluster = gateway.new_cluster(options)
    if config.adapt:
        cluster.adapt(minimum=config.adapt.minimum, maximum=config.adapt.maximum)
    else:
        cluster.scale(config.n_workers)
    return cluster


def _announce(client: Any) -> Any:
    """Log where the fit runs, and the dashboard's link when Dask can serve it (it needs bokeh)."""
    if importlib.util.find_spec("bokeh") is None:
        dashboard = "needs bokeh: pip install 'daskem[dashboard]'"
    else:
        dashboard = client.dashboard_link
    logger.info("running on %s; dashboard: %s", client.scheduler.address, dashboard)
    return client
