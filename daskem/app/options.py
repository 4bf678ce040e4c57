"""Settings as the command line and job files take them: click options and pydantic fields, built from
their declarations (:class:`daskem.settings.Setting`).

Every setting that an estimator takes from a run (``in_runs``) reaches both,
with its type, domain, default and help; one that only some families take
says which in its help (``--min-rate``: Poisson mixtures only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import click
from pydantic import Field

from daskem.estimators.registry import ESTIMATORS, RUN_SETTINGS, families_taking
from daskem.families.registry import display_name
from daskem.settings import Setting

#: Settings each command declares itself rather than with the others: the numbers of components and
#: covariance types (a list in ``select``), and the dimensions of an N-D array (the job file's data).
OWN_OPTIONS = ("n_components", "covariance_type", "sample_dim", "feature_dim")
#: The settings that ``fit`` and ``select`` take with the others, in the order of ``--help``.
EM_SETTINGS = [setting for name, setting in RUN_SETTINGS.items() if name not in OWN_OPTIONS]


def help_text(setting: Setting) -> str:
    """The setting's help, saying which families take it (or which do not, where fewer) unless all do."""
    families = families_taking(setting.name)
    others = [family for family in ESTIMATORS if family not in families]
    if not others:
        return setting.help
    if len(others) < len(families):
        return f"{setting.help} Not for {' or '.join(map(display_name, others))} mixtures."
    return f"{setting.help} {' and '.join(map(display_name, families))} mixtures only."



def option(setting: Setting, *aliases: str, **overrides: Any) -> Callable[[Callable[..., Any]], Any]:
    """A click option for ``setting``: ``--name-with-dashes`` (and ``aliases``), its type and domain, its
    default on the command line (``run_default``) and help; ``overrides`` go to ``click.option``."""
    low = setting.ge if setting.ge is not None else setting.gt
    high = setting.le if setting.le is not None else setting.lt
    bounds = dict(min=low, max=high, min_open=setting.gt is not None, max_open=setting.lt is not None)
    default = setting.default_in_runs
    kwargs: dict[str, Any] = dict(default=default, show_default=default is not None, help=help_text(setting))
    if setting.choices is not None:
        kwargs["type"] = click.Choice(list(setting.choices))
    elif setting.type is bool:
        kwargs.update(is_flag=True, show_default=False)
    elif setting.type in (int, float):
        ranged = click.IntRange if setting.type is int else click.FloatRange
        kwargs["type"] = ranged(**bounds) if low is not None or high is not None else setting.type
    else:
        kwargs["type"] = str
    return click.option(f"--{setting.name.replace('_', '-')}", *aliases, setting.name, **(kwargs | overrides))


def em_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every setting in :data:`EM_SETTINGS` (``fit`` and ``select`` share them)."""
    for setting in reversed(EM_SETTINGS):
        command = option(setting, *(("--seed",) if setting.name == "random_state" else ()))(command)
    return command


def field(setting: Setting) -> tuple[Any, Any]:
    """A pydantic field for ``setting``: (annotation, ``Field`` with its domain, default and description)."""
    if setting.choices is not None:
        annotation: Any = Literal[setting.choices]  # type: ignore[valid-type]
    else:
        annotation = setting.type
    if setting.optional:
        annotation = annotation | None
    bounds = {name: getattr(setting, name) for name in ("ge", "gt", "le", "lt") if getattr(setting, name) is not None}
    if setting.type is float:
        bounds["allow_inf_nan"] = False
    return annotation, Field(setting.default_in_runs, description=help_text(setting), **bounds)


def em_fields() -> dict[str, tuple[Any, Any]]:
    """The pydantic fields of every setting in :data:`EM_SETTINGS`, by name (a job's fit and select)."""
    return {setting.name: field(setting) for setting in EM_SETTINGS}
