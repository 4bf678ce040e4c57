"""YAML files (job files, cluster configs) read safely and within bounds.

Only plain data is built (PyYAML's safe loader: no tags that construct
objects).  Before anything is built, the file's size and the size of the
document once every alias is expanded are bounded, so that a few hundred
bytes of nested aliases (a "billion laughs") cannot exhaust memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

#: Largest file read.
MAX_BYTES = 2**20
#: Most values (scalars, lists and mappings) a document may hold with its aliases expanded.
MAX_NODES = 100_000


def read_mapping(path: str | os.PathLike, what: str, expected: str, error: type[Exception]) -> dict[str, Any]:
    """The YAML mapping in the file at ``path``.

    Parameters
    ----------
    what : what the file is, for messages ("job file").
    expected : what the mapping should hold, for messages ("a 'kind' key").
    error : the exception to raise, with a one-line message.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise error(f"{what} {str(path)!r} is {size:,} bytes; daskem reads at most {MAX_BYTES:,}")
        text = path.read_text()
    except OSError as failure:
        raise error(f"cannot read {what} {str(path)!r}: {failure.strerror or failure}") from None
    except UnicodeDecodeError:
        raise error(f"{what} {str(path)!r} is not a text file") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise error(f"{what} {str(path)!r} holds more than {MAX_NODES:,} values once its aliases are "
                        "expanded; write it out plainly")
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as failure:
        raise error(f"{what} {str(path)!r} is not valid YAML: {' '.join(str(failure).split())}") from None
    except RecursionError:
        raise error(f"{what} {str(path)!r} is nested too deeply") from None
    finally:
        loader.dispose()
    if not isinstance(document, dict):
        raise error(f"{what} {str(path)!r} must be a mapping with {expected}")
    return document


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with aliases expanded (shared nodes counted each time)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    sizes[key] = MAX_NODES + 1  # a node that contains itself is too large
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        size = 1
    sizes[key] = min(size, MAX_NODES + 1)
    return sizes[key]


def describe(error: ValidationError, skip: int = 0, kinds: str = "") -> str:
    """A pydantic validation error as one line: every problem, by its dotted key.

    ``skip`` leading parts of each location are left out; ``kinds`` lists the
    allowed values of a ``kind`` tag, for messages about it.
    """
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"][skip:] if not str(part).startswith("function-"))
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key {where!r}")
        elif item["type"] == "union_tag_invalid":
            problems.append(f"kind must be one of {kinds}, got {item.get('input', {}).get('kind')!r}")
        elif item["type"] == "union_tag_not_found":
            problems.append(f"a 'kind' key is needed, one of {kinds}")
        else:
            problems.append(f"{where or 'file'}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)
