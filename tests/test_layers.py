"""The folders are the layers: every import, read from the source, points to the module's own layer or below.

Layers, lowest first (see ``daskem/__init__.py``): the top-level modules (errors, redaction, the
version), ``kernels``, ``families``, ``engine``, ``io``, ``estimators``, ``app``; the package itself
(``daskem/__init__.py``, ``__main__.py``) sits above them all.  Imports inside functions count.
"""

import ast
from pathlib import Path

import pytest

import daskem

PACKAGE = Path(daskem.__file__).parent
LAYERS = ["", "kernels", "families", "engine", "io", "estimators", "app"]
TOP = len(LAYERS)


def layer_of(module: str) -> int:
    """The layer of a dotted daskem module name (``daskem.io.inputs`` → 4); the package itself is the top."""
    parts = module.split(".")[1:]
    if not parts or parts[0] in ("__init__", "__main__"):
        return TOP
    return LAYERS.index(parts[0]) if parts[0] in LAYERS else 0


def module_name(path: Path) -> str:
    return ".".join(("daskem", *path.relative_to(PACKAGE).with_suffix("").parts))


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), wherever in the file the import is."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "daskem" or node.module.count(".") == 1 and node.module.split(".")[1] in LAYERS:
                names |= {f"{node.module}.{alias.name}" for alias in node.names}  # from daskem.io import inputs
    return names


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_folder_is_a_layer():
    folders = {path.parent.name for path in MODULES if path.parent != PACKAGE}
    assert folders == set(LAYERS) - {""}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path):
    name = module_name(path)
    own = layer_of(name)
    above = sorted(module for module in imports(path)
                   if (module == "daskem" or module.startswith("daskem.")) and layer_of(module) > own)
    assert not above, f"{name} (layer {own}) imports {above}"


def test_the_kernels_use_neither_dask_nor_files():
    for path in (PACKAGE / "kernels").glob("*.py"):
        foreign = {module.split(".")[0] for module in imports(path)} & {"dask", "distributed", "zarr", "xarray",
                                                                          "fsspec", "pathlib"}
        assert not foreign, f"{path.name} imports {foreign}"


def test_the_engine_knows_families_only_through_their_contract():
    """The EM loop, SQUAREM, the passes and the reduction import daskem.families.base, never a family,
    its kernels or its statistics: a new family needs no change to the engine."""
    for module in ("em", "passes", "acceleration"):
        ours = {name for name in imports(PACKAGE / "engine" / f"{module}.py") if name.startswith("daskem")}
        assert ours <= {"daskem.engine.acceleration", "daskem.engine.passes", "daskem.exceptions",
                        "daskem.families.base"}, module
        assert "daskem.families.base" in ours


def test_the_rule_catches_an_import_from_above(tmp_path):
    """The check itself: a kernel that imports an estimator is caught."""
    fake = tmp_path / "kernels.py"
    fake.write_text("from daskem.estimators.base import BaseMixture\n")
    assert {layer_of(module) for module in imports(fake)} == {LAYERS.index("estimators")}
    assert layer_of("daskem.kernels.estep") < layer_of("daskem.estimators.base")
