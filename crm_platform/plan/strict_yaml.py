"""YAML reading for plan files, without PyYAML's two silent traps.

1. Duplicate mapping keys: PyYAML keeps the last one, so a property written twice loses its first
   definition without a word. `StrictLoader` refuses them; `find_duplicate_keys` reports every one
   with its path and lines, so the loader can list them all.
2. YAML 1.1 scalars: `no`, `off`, `NO` (Norway) become booleans, `2026-01-10` a date and `010` the
   number 8. Plan files follow YAML 1.2's core schema instead: only true/false are booleans, only
   decimal numbers are numbers, dates stay strings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars that refuses duplicate mapping keys."""

    allow_duplicates = False

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not self.allow_duplicates:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise DuplicateKeyError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark,
                    )
                if isinstance(key, (str, int, float, bool)):
                    seen[key] = line
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        return int(self.construct_scalar(node).replace("_", ""), 10)


class _LastWinsLoader(StrictLoader):
    """Same scalars, duplicates tolerated (last wins): used only after the duplicates were reported,
    so the rest of the file can still be checked."""

    allow_duplicates = True


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in {_BOOL, _INT, _FLOAT, _TIMESTAMP}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
StrictLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
StrictLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)[eE][-+]?[0-9]+|[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+))$"),
    list("-+0123456789."),
)
StrictLoader.add_constructor(_INT, StrictLoader.construct_yaml_int)


@dataclass(frozen=True)
class DuplicateKey:
    path: tuple[str | int, ...]  # keys and list indexes leading to the mapping holding the key
    key: str
    first_line: int
    line: int


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    duplicates: tuple[DuplicateKey, ...]


def load_yaml(text: str) -> YamlDocument:
    """Parse one YAML document. Duplicate keys are returned (all of them), not raised; the data then
    holds the last value of each, as PyYAML would. Syntax errors raise `yaml.YAMLError`."""
    loader = _LastWinsLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, ())
        duplicates = tuple(find_duplicate_keys(node))
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return YamlDocument(data, duplicates)


def load_yaml_strict(text: str) -> Any:
    """Parse one YAML document, raising `DuplicateKeyError` on the first duplicate key."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def find_duplicate_keys(node: Node, path: tuple[str | int, ...] = ()) -> list[DuplicateKey]:
    """Every duplicate scalar key in every mapping under `node`, in document order."""
    found: list[DuplicateKey] = []
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key is not None:
                line = key_node.start_mark.line + 1
                if key in first:
                    found.append(DuplicateKey(path, key, first[key], line))
                else:
                    first[key] = line
            found.extend(find_duplicate_keys(value_node, path + ((key if key is not None else "?"),)))
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            found.extend(find_duplicate_keys(item, path + (i,)))
    return found
