"""Layer 5: where the work runs — cluster config files, validated, then connected.

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

import importlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import dask
import yaml
from pydantic import BaseModel, ConfigDict, Field, FilePath, PositiveInt, ValidationError, model_validator

from daskem.exceptions import DaskemError

logger = logging.getLogger("daskem")


class ClusterConfigError(DaskemError, ValueError):
    """A cluster config file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLS(_Strict):
    """Mutual TLS: one CA, and the certificate and key this process presents."""

    ca_file: FilePath
    cert_file: FilePath
    key_file: FilePath | None = None

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
    memory_limit: str | int = "auto"
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
        return self


class Adapt(_Strict):
    minimum: int = Field(0, ge=0)
    maximum: PositiveInt


class _JobQueue(_Strict):
    cores: PositiveInt
    memory: str
    processes: PositiveInt = 1
    queue: str | None = None
    account: str | None = None
    walltime: str = "01:00:00"
    job_extra_directives: list[str] = []
    local_directory: str | None = None
    jobs: PositiveInt = 1
    adapt: Adapt | None = None

    def cluster_options(self) -> dict[str, Any]:
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
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ClusterConfigError(f"cannot read cluster config {str(path)!r}: {error.strerror or error}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ClusterConfigError(f"cluster config {str(path)!r} is not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(document, dict):
        raise ClusterConfigError(f"cluster config {str(path)!r} must be a mapping with a 'kind' key")
    try:
        return _File(config=document).config
    except ValidationError as error:
        raise ClusterConfigError(f"cluster config {str(path)!r}: {_describe(error)}") from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"][2:])  # skip "config" and the kind tag
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key {where!r}")
        elif item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            kinds = ", ".join(repr(k) for k in KINDS)
            problems.append(f"kind must be one of {kinds}, got {item.get('input', {}).get('kind')!r}"
                            if item["type"] == "union_tag_invalid" else f"a 'kind' key is needed, one of {kinds}")
        else:
            problems.append(f"{where or 'file'}: {item['msg']}")
    return "; ".join(problems)


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
    """
    if isinstance(config, LocalThreads):
        with dask.config.set(scheduler="threads", num_workers=config.num_workers):
            yield None
        return
    from distributed import Client, LocalCluster

    if isinstance(config, ExistingScheduler):
        security = config.tls.security() if config.tls else None
        if config.scheduler_file is not None:
            target = {"scheduler_file": str(config.scheduler_file)}
        else:
            target = {"address": config.address or dask.config.get("scheduler-address", None)}
            if target["address"] is None:
                raise ClusterConfigError(
                    "the existing-scheduler config gives no address: set address or scheduler_file, "
                    "or the environment variable DASK_SCHEDULER_ADDRESS"
                )
        with Client(**target, timeout=config.timeout, security=security) as client:
            yield _announce(client)
        return
    if isinstance(config, LocalProcesses):
        options = config.model_dump(exclude={"kind", "tls"})
        if config.tls:
            options |= {"protocol": "tls://", "host": "127.0.0.1", "security": config.tls.security(cluster=True)}
        with LocalCluster(**options) as cluster, Client(cluster, security=options.get("security")) as client:
            yield _announce(client)
        return
    cluster = _start_remote(config)
    try:
        with Client(cluster) as client:
            yield _announce(client)
    finally:
        cluster.close()


def _start_remote(config: Slurm | PBS | Kubernetes | Gateway) -> Any:
    cls = _allowed_class(config.kind)
    if isinstance(config, (Slurm, PBS)):
        cluster = cls(**config.cluster_options())
        size = {"jobs": config.jobs}
    elif isinstance(config, Kubernetes):
        cluster = cls(name=config.name, image=config.image, namespace=config.namespace,
                      n_workers=config.n_workers, resources=config.resources, env=config.env)
        size = {"n": config.n_workers}
    else:
        gateway = cls(address=config.address, proxy_address=config.proxy_address, auth=config.auth)
        options = gateway.cluster_options()
        for key, value in config.cluster_options.items():
            setattr(options, key, value)
        cluster = gateway.new_cluster(options)
        size = {"n": config.n_workers}
    if config.adapt:
        cluster.adapt(minimum=config.adapt.minimum, maximum=config.adapt.maximum)
    else:
        cluster.scale(**size)
    return cluster


def _announce(client: Any) -> Any:
    logger.info("running on %s; dashboard: %s", client.scheduler.address, client.dashboard_link)
    return client
