"""Typed views of the PyYAML objects the readers walk (PyYAML ships no type stubs).

`yaml.compose` gives a tree of nodes that keep their line; the config, plan and
workspace readers walk it to name the line of each problem.  These protocols
are the boundary: what PyYAML hands back is untyped, everything past the
helpers below is typed.
"""

from __future__ import annotations

from typing import Any, Protocol


class Mark(Protocol):
    """A position in the YAML text (`line` counts from 0)."""

    line: int


class Node(Protocol):
    """A composed node: `value` is the scalar's text, a mapping's list of
    (key node, value node) pairs, or a sequence's list of nodes."""

    tag: str
    start_mark: Mark
    value: Any  # the yaml boundary: its type depends on the node's kind (see the helpers)


class MarkedError(Protocol):
    """What a `yaml.MarkedYAMLError` says about where parsing failed."""

    problem: str | None
    problem_mark: Mark | None
    context: str | None
    context_mark: Mark | None


class Constructor(Protocol):
    """A loader used only to turn one node into its Python value."""

    def construct_object(self, node: Node, deep: bool = False) -> object: ...


def line_of(node: Node) -> int:
    """The node's line, counting from 1 as editors do."""
    return node.start_mark.line + 1


def mapping_pairs(node: Node) -> list[tuple[Node, Node]] | None:
    """A mapping node's (key, value) pairs; None for any other node."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    pairs: list[tuple[Node, Node]] = node.value
    return pairs


def sequence_items(node: Node) -> list[Node] | None:
    """A sequence node's items; None for any other node."""
    import yaml

    if not isinstance(node, yaml.SequenceNode):
        return None
    items: list[Node] = node.value
    return items


def scalar_text(node: Node) -> str | None:
    """A scalar node's text as written (before type resolution); None for any other node."""
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        return None
    text: str = node.value
    return text


def safe_constructor() -> Constructor:
    """A safe loader to construct single nodes with (PyYAML's own type resolution)."""
    import yaml

    loader: Constructor = yaml.SafeLoader("")
    return loader
