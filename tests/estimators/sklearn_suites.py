"""Running a scikit-learn test module against a daskem estimator: what both such suites share.

The module is read from the installed scikit-learn, its import of the estimator swapped for daskem's,
and executed into the calling test module's namespace, so that pytest collects its tests as ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn


def run_into(namespace: dict[str, Any], module: str, name: str, expected_failures: dict[str, str],
             out_of_scope: tuple[str, ...] = ()) -> None:
    """Execute ``sklearn/mixture/tests/<module>.py`` into ``namespace`` with ``from sklearn.mixture import <name>``
    replaced by daskem's; drop the tests ``out_of_scope`` and mark ``expected_failures`` (name → reason) as
    strict xfails.  scikit-learn's conftest fixtures the tests use are given by :func:`fixtures`."""
    source = Path(sklearn.__file__).parent / "mixture" / "tests" / f"{module}.py"
    theirs = f"from sklearn.mixture import {name}\n"
    code = source.read_text()
    assert theirs in code, f"{source} no longer imports {name} as this test expects"
    exec(compile(code.replace(theirs, f"from daskem import {name}\n"), str(source), "exec"), namespace)  # noqa: S102
    for test in out_of_scope:
        del namespace[test]
    for test, reason in expected_failures.items():
        namespace[test] = pytest.mark.xfail(reason=reason, strict=True)(namespace[test])
    namespace.update(fixtures())


def fixtures() -> dict[str, Any]:
    """scikit-learn's conftest fixtures that its mixture tests take: its default seed, and float64."""

    @pytest.fixture
    def global_random_seed() -> int:
        return 42

    @pytest.fixture
    def global_dtype() -> type:
        return np.float64

    return {"global_random_seed": global_random_seed, "global_dtype": global_dtype}
