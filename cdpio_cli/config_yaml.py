"""Reading cdpio.yaml: the YAML node walk that keeps every value's line,
`${VAR}` interpolation, and the one-line error text for each problem found
(used by config.load_config)."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdpio_cli.config_schema import Error, KeyPath, section_at
from cdpio_cli.errors import ConfigError
from cdpio_cli.yaml_nodes import (
    Constructor,
    MarkedError,
    Node,
    line_of,
    mapping_pairs,
    safe_constructor,
    sequence_items,
)

MAX_NODES = 100_000  # a real config has a few dozen; more means an alias bomb
MAX_DEPTH = 50

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(eq=False, repr=False)
class Problem:
    """One thing wrong in a config file, with the line to fix."""

    message: str
    line: int | None = None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message, "hint": self.hint}


@dataclass(eq=False, repr=False)
class UnsetVar:
    """A required `${VAR}` that is unset (or empty) where the config reads it."""

    name: str
    line: int
    empty: bool = False

    def problem(self) -> Problem:
        if self.empty:
            # CI systems turn a missing secret into an empty string: a required
            # value that is empty must fail loudly, not skip every check.
            return Problem(
                f"environment variable {self.name} is empty",
                self.line,
                f"set {self.name} (is the CI secret defined?), or write ${{{self.name}:-}} to make it optional",
            )
        return Problem(
            f"environment variable {self.name} is not set",
            self.line,
            f"export {self.name}=..., or write ${{{self.name}:-}} to make it optional",
        )


def interpolate(
    text: str, *, file: str, line: int, env: Mapping[str, str] | None = None
) -> tuple[str, list[str], list[UnsetVar]]:
    """Replace `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`.

    Returns (value, variables read, required variables that are unset or
    empty).  The caller decides whether an unset one matters: falling back
    silently would send real-looking traffic with an empty key, but a command
    that never reads the value need not care.
    """
    values: Mapping[str, str] = os.environ if env is None else env
    used: list[str] = []
    unset: list[UnsetVar] = []

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name: str = m.group(1)
        default: str | None = m.group(2)
        used.append(name)
        value = values.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            unset.append(UnsetVar(name, line))
            return ""
        if default is None and not value.strip():
            unset.append(UnsetVar(name, line, empty=True))
            return ""
        return value

    if "${" in _VAR.sub("", text.replace("$$", "")):
        raise ConfigError(
            f"unterminated or malformed ${{...}} in {text[:60]!r}",
            hint="write ${NAME} or ${NAME:-default}; $$ is a literal $",
            file=file,
            line=line,
        )
    return _VAR.sub(repl, text), used, unset


class NodeBuilder:
    """Turns a composed YAML node tree into plain data, keeping line numbers."""

    def __init__(self, file: str, env: Mapping[str, str] | None = None):
        self.file = file
        self.env = env
        self.nodes = 0
        self.lines: dict[KeyPath, int] = {}
        self.env_vars: dict[KeyPath, str] = {}
        self.unset: dict[KeyPath, list[UnsetVar]] = {}  # key path -> required vars not set
        self.problems: list[Problem] = []  # everything else wrong, reported together
        self.unreadable: list[KeyPath] = []  # key paths of scalars that could not be read (already a problem)
        self._loader: Constructor | None = None

    def build(self, node: Node, path: KeyPath = (), depth: int = 0) -> object:
        """The node's plain value: a dict, a list, or a scalar (None where it could not be read)."""
        self.nodes += 1
        line = line_of(node)
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise ConfigError(
                "the YAML is too large or too deeply nested for a config (an alias bomb?)", file=self.file, line=line
            )
        self.lines[path] = line
        pairs = mapping_pairs(node)
        if pairs is not None:
            return self._mapping(pairs, path, depth)
        items = sequence_items(node)
        if items is not None:
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(items)]
        # Scalar: PyYAML resolves its type (int, bool, null...); strings are interpolated.
        value = self._scalar(node, path)
        if isinstance(value, str) and "$" in value:
            try:
                value, used, unset = interpolate(value, file=self.file, line=line, env=self.env)
            except ConfigError as exc:
                self.problems.append(Problem(exc.message, line, exc.hint))
                return None
            if used:
                self.env_vars[path] = used[0]
            if unset:
                self.unset[path] = unset
        return value

    def _mapping(self, pairs: list[tuple[Node, Node]], path: KeyPath, depth: int) -> dict[object, object]:
        out: dict[object, object] = {}
        for key_node, value_node in pairs:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(
                    "YAML merge keys (<<) are not supported in cdpio.yaml", file=self.file, line=line_of(key_node)
                )
            key = self.build(key_node, path + ("<key>",), depth + 1)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise ConfigError("a mapping key must be a plain word", file=self.file, line=line_of(key_node))
            if key in out:
                self.problems.append(Problem(f"key {key!r} appears twice", line_of(key_node), "keep one of them"))
                continue
            out[key] = self.build(value_node, path + (str(key),), depth + 1)
            self.lines[path + (str(key),)] = line_of(key_node)
        return out

    def _scalar(self, node: Node, path: KeyPath = ()) -> object:
        import yaml

        loader = self._loader or safe_constructor()
        self._loader = loader
        try:
            return loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.problems.append(Problem(f"invalid value: {exc.problem}", line_of(node)))
            self.unreadable.append(path)
            return None
        except ValueError:
            # Python refuses to convert an integer of more than
            # sys.int_info.str_digits_check_threshold (default 4,300) digits.
            self.problems.append(
                Problem(
                    f"a number of {len(str(node.value)):,} characters is too long to read",
                    line_of(node),
                    "quote it to make it a string, or use a shorter number",
                )
            )
            self.unreadable.append(path)
            return None


class ConfigProblems(ConfigError):
    """A ConfigError that keeps each problem apart (`.problems`, for the --json error document)."""

    problems: list[Problem]


def config_error(file: str, problems: list[Problem]) -> ConfigError:
    """One ConfigError carrying every problem, in file order.

    One problem reads `file:line: message (hint)`; several read
    `file: N problems: line 3: ...; line 7: ...` on one line, so a CI log and a
    GitHub annotation still show all of them.  `.problems` keeps them apart
    for the `--json` error document.
    """
    problems = sorted(problems, key=lambda p: p.line or 0)
    if len(problems) == 1:
        only = problems[0]
        error = ConfigProblems(only.message, file=file, line=only.line, hint=only.hint)
    else:
        parts = [
            (f"line {p.line}: " if p.line else "") + p.message + (f" ({p.hint})" if p.hint else "") for p in problems
        ]
        error = ConfigProblems(f"{len(problems)} problems: " + "; ".join(parts), file=file)
    error.problems = problems
    return error


def yaml_syntax_error(exc: MarkedError, text: str, file: str) -> ConfigError:
    """The line where the parser found the problem, plus where the broken
    construct started when that differs (an unclosed quote ends at the end of
    the file, but the quote to close is on the line it started)."""
    problem_mark, context_mark = exc.problem_mark, exc.context_mark
    problem = (exc.problem or "invalid YAML").strip()
    line = problem_mark.line + 1 if problem_mark else None
    context = (exc.context or "").strip()
    if context_mark and line and context_mark.line + 1 != line:
        if "end of stream" in problem:
            line = context_mark.line + 1  # ran off the end: the construct's start is the line to fix
        else:
            context = f"{context} started on line {context_mark.line + 1}"
    message = f"invalid YAML: {context}: {problem}" if context else f"invalid YAML: {problem}"
    lines = text.splitlines()
    suspects = [lines[m.line] for m in (problem_mark, context_mark) if m and m.line < len(lines)]
    if any("${" in s for s in suspects):
        # `{` is YAML flow syntax and `: ` starts a mapping: an unquoted
        # ${VAR:-default} breaks inside {...} or [...] and when the default has ": ".
        hint = 'quote values that contain ${...}, e.g. timeout: "${VERIFY_TIMEOUT:-90s}"'
    else:
        hint = "check the indentation and quoting on that line"
    return ConfigError(message, file=file, line=line, hint=hint)


def schema_problems(
    errors: list[Error], root: type, lines: dict[KeyPath, int], env_vars: dict[KeyPath, str]
) -> list[Problem]:
    out = []
    for err in errors:
        line = None
        for n in range(len(err.loc), -1, -1):  # nearest known line
            line = lines.get(err.loc[:n])
            if line:
                break
        var = env_vars.get(err.loc)
        if var is not None and isinstance(err.value, str):
            # A value from the environment may be a secret: name the variable, not the value.
            err = dataclasses.replace(err, value=_FromEnv(var))
        out.append(_one_schema_problem(root, line, err))
    return out


class _FromEnv(str):
    """Stands for a value read from an environment variable in error text."""

    def __new__(cls, var: str) -> _FromEnv:
        return super().__new__(cls, var)


def _yaml_kind(value: Any) -> str:
    """How a YAML user would name a value's type."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, _FromEnv):
        return f"the value of {value}"
    if isinstance(value, str):
        return f"the text {value[:30]!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _one_schema_problem(root: type, line: int | None, err: Error) -> Problem:
    loc = err.loc
    dotted = ".".join(str(p) for p in loc)
    if err.kind == "unknown":
        parent = section_at(root, loc[:-1])
        known = [f.name for f in dataclasses.fields(parent)] if parent else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = (
            f"did you mean {'.'.join([*map(str, loc[:-1]), close[0]])!r}?"
            if close
            else (f"known keys here: {', '.join(known)}" if known else None)
        )
        return Problem(f"unknown key {dotted!r}", line, hint)
    if err.kind == "type":
        msg = f"must be {err.expected} (got {_yaml_kind(err.value)})"
    else:
        msg = err.text
    return Problem(f"{dotted}: {msg}", line, "see docs/configuration.md")
