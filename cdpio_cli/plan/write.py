"""Writing plans: stable, sorted, commented YAML, and a new file only with --force to replace one."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cdpio_cli.errors import UsageError
from cdpio_cli.plan.model import SECTIONS


def _flow(value: Any) -> str:
    import yaml

    text: str = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True, sort_keys=False)
    return text.strip().removesuffix("\n...").strip()


def _key(name: str) -> str:
    return _flow(name)


def _rule_lines(rule: dict, indent: str) -> list[str]:
    out = []
    for fld in ("properties", "traits"):
        if fld in rule:
            props = rule[fld] or {}
            if not props:
                out.append(f"{indent}{fld}: {{}}")
                continue
            out.append(f"{indent}{fld}:")
            for name in sorted(props):
                out.append(f"{indent}  {_key(name)}: {_flow(props[name])}")
    if rule.get("required"):
        out.append(f"{indent}required: {_flow(sorted(rule['required']))}")
    if rule.get("description"):
        out.append(f"{indent}description: {_flow(rule['description'])}")
    return out


def dump_plan(data: dict, *, header: Iterable[str] = (), comments: dict | None = None) -> str:
    """The plan as YAML: sections in a fixed order, names sorted, one property per line."""
    comments = comments or {}
    out = [f"# {h}" if h else "#" for h in header]
    if data.get("name") is not None:
        out.append(f"name: {_flow(data['name'])}")
    if data.get("description") is not None:
        out.append(f"description: {_flow(data['description'])}")
    if "events" in data:
        events = data["events"] or {}
        out.append("events:" if events else "events: {}")
        for name in sorted(events):
            note = comments.get(("events", name))
            if note:
                out.append(f"  # {note}")
            out.append(f"  {_key(name)}:")
            out.extend(_rule_lines(events[name] or {}, "    ") or ["    properties: {}"])
    for section in SECTIONS:
        if section in data:
            note = comments.get((section,))
            if note:
                out.append(f"# {note}")
            out.append(f"{section}:")
            out.extend(_rule_lines(data[section] or {}, "  ") or [f"  {SECTIONS[section][1]}: {{}}"])
    out.append("# error | warning | allow: how lint grades what the plan does not list")
    out.append(f"unplanned_events: {data.get('unplanned_events', 'error')}")
    out.append(f"unplanned_properties: {data.get('unplanned_properties', 'warning')}")
    return "\n".join(out) + "\n"


def refuse_existing(path: str | None, *, force: bool, flag: str = "-o") -> None:
    """A UsageError when `path` exists and --force was not given (checked before any slow work)."""
    if path and Path(path).exists() and not force:
        raise UsageError(f"{flag} {path}: the file exists", hint="pass --force to overwrite it")


def write_new_file(path: str, text: str, *, force: bool, flag: str = "-o") -> None:
    """Write `text` to `path`; refuse to replace an existing file without --force."""
    refuse_existing(path, force=force, flag=flag)
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {path} is a directory", hint="name a file, e.g. tracking-plan.yaml")
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write: {exc.strerror}") from None
