"""What a setting is: its name, type, domain, default and help, declared once.

Each setting of an estimator is one :class:`Setting`, declared where it belongs:
the settings every estimator shares in :mod:`daskem.estimators.settings`, a
family's own (``covariance_type``, ``min_rate``, …) in its module under
:mod:`daskem.families`.  Everything else is built from the declarations: the
estimators' signatures (:func:`settings_init`, which scikit-learn reads), the
checks of ``fit`` and of the families, the command line's options, the job
files' schema and ``select``'s keywords.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daskem.exceptions import InputError


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a whole number of Python's or NumPy's, not a bool (True is an int in Python)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (Python's or NumPy's), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Setting:
    """One setting of the estimators.

    Attributes
    ----------
    name : its name, as the estimators, ``select`` and job files spell it
        (the command line's option is ``--name-with-dashes``).
    default : its default.
    help : one line for the command line and job files.
    type : ``int``, ``float``, ``str`` or ``bool`` — what the command line
        and job files take; None for a value they do not take (arrays, …).
    choices : the values it may take, where they are few.
    ge, gt, le, lt : the bounds of a number (≥, >, ≤, <).
    optional : whether None is allowed too (meaning "choose for me").
    in_runs : whether the command line, job files and ``select`` take it
        (``warm_start`` and ``verbose`` belong to an estimator in hand).
    run_default : the default of the command line and job files where it is
        not ``default`` (``random_state``: 0, so that a written-down run repeats).
    domain : the domain in words, for values the fields above do not describe;
        ``accepts`` then says which values are in it.
    """

    name: str
    default: Any
    help: str
    type: type | None = None
    choices: tuple[Any, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    optional: bool = False
    in_runs: bool = True
    run_default: Any = None
    domain: str | None = None
    accepts: Callable[[Any], bool] | None = None

    @property
    def default_in_runs(self) -> Any:
        """The default of the command line and job files."""
        return self.default if self.run_default is None else self.run_default

    def describe(self) -> str:
        """The domain in words: "an integer >= 1", "one of ('full', 'tied')", "a finite number > 0 and < 0.5"."""
        if self.domain is not None:
            return self.domain
        if self.choices is not None:
            text = f"one of {self.choices}"
        elif self.type is bool:
            text = "True or False"
        else:
            noun = "an integer" if self.type is int else "a finite number"
            bounds = [(sign, bound) for sign, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le),
                                                         ("<", self.lt)) if bound is not None]
            text = " and ".join([f"{noun} {sign} {bound:g}" if i == 0 else f"{sign} {bound:g}"
                                 for i, (sign, bound) in enumerate(bounds)]) or noun
        return f"None or {text}" if self.optional else text

    def valid(self, value: Any) -> bool:
        """Whether ``value`` lies in the setting's domain."""
        if value is None:
            return self.optional
        if self.accepts is not None:
            return self.accepts(value)
        if self.choices is not None:
            return any(isinstance(value, type(choice)) and value == choice for choice in self.choices)
        if self.type is bool:
            return isinstance(value, (bool, np.bool_))
        if self.type is int and not is_integer(value) or self.type is float and not is_number(value):
            return False
        if self.type is float and not math.isfinite(value):
            return False
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def check(self, value: Any) -> None:
        """Raise an :class:`~daskem.exceptions.InputError` naming the setting and its domain unless
        ``value`` lies in it."""
        if self.valid(value):
            return
        if self.choices is not None:
            raise InputError(f"{self.name}={value!r} is not supported; choose one of {self.choices}")
        raise InputError(f"{self.name} must be {self.describe()}, got {value!r}")


def signature(settings: Sequence[Setting], positional: int) -> inspect.Signature:
    """The signature of a method taking ``settings`` with their defaults after ``self``: the first
    ``positional`` by position too, the rest by name only."""
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for i, setting in enumerate(settings):
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if i < positional else inspect.Parameter.KEYWORD_ONLY
        parameters.append(inspect.Parameter(setting.name, kind, default=setting.default))
    return inspect.Signature(parameters)


def bind(settings: Sequence[Setting], positional: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The value of each setting in a call with ``args`` and ``kwargs`` (see :func:`signature`), by name;
    a ``TypeError`` for a call Python would refuse."""
    bound = signature(settings, positional).bind(None, *args, **kwargs)
    bound.apply_defaults()
    return {name: value for name, value in list(bound.arguments.items())[1:]}


def settings_init(settings: Sequence[Setting], positional: int = 1) -> Callable[..., None]:
    """An ``__init__`` taking ``settings`` (see :func:`signature`) that keeps each value, unchanged and
    unchecked, as the attribute of its name.

    That is scikit-learn's rule for estimators (``fit`` checks the values);
    the function's signature is the settings' with their defaults, so that
    ``get_params``, ``clone`` and ``help`` read them.
    """

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        vars(self).update(bind(settings, positional, *args, **kwargs))

    __init__.__signature__ = signature(settings, positional)  # type: ignore[attr-defined]
    return __init__
