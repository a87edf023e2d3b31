"""What diagnosis reasons with: facts, the evidence that holds them, causes, and the rule registry.

A fact is something one run saw, under a stable id; a cause is a rule's
verdict over the facts, naming the fact it rests on, with a fix.  Rules are
registered with `@rule` in their module's list; verdict.RULES puts the
lists together, and their order breaks ties between causes of equal strength.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli.results import Check

# How strongly the facts point at a cause.
DIRECT = 3  # a fact shows it (a service said so)
LIKELY = 2  # the facts fit it and rule out the usual alternatives
POSSIBLE = 1  # not ruled out, but nothing points at it
SERVICE = DIRECT + 2  # a service failure of the very check asked about: it explains the check alone


@dataclass
class Fact:
    id: str
    text: str  # plain words: what the run saw
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, **({"data": self.data} if self.data else {})}


@dataclass
class Cause:
    id: str
    fact: str  # the id of the fact it rests on
    words: str  # the cause in plain words
    because: str  # that fact's text
    fix: str
    strength: int
    config: dict[str, str] = field(default_factory=dict)  # a cdpio.yaml change that fixes it

    @property
    def text(self) -> str:
        return f"{self.words} ({self.because})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "fact": self.fact,
            "text": self.text,
            "fix": self.fix,
            "strength": self.strength,
        }
        if self.config:
            out["config"] = self.config
        return out


class Evidence:
    """Everything one run learned, by fact id (the first sighting of a fact wins)."""

    def __init__(self) -> None:
        self.facts: dict[str, Fact] = {}

    def add(self, fact_id: str, text: str, **data: Any) -> Fact:
        # A service failure is a fact about one check: keep one per check.
        key = f"{fact_id}#{data['check']}" if fact_id.startswith("service.") and "check" in data else fact_id
        if key not in self.facts:
            self.facts[key] = Fact(fact_id, text, data)
        return self.facts[key]

    def has(self, *ids: str) -> bool:
        return any(i in self.facts for i in ids)

    def get(self, fact_id: str) -> Fact | None:
        return self.facts.get(fact_id)

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.facts.values()]


# A rule: (evidence, the route asked about, the failed check or None) -> its cause, or None when ruled out.
Rule = Callable[[Evidence, str, Check | None], Cause | None]


def registry(rules: list[Rule]) -> Callable[[Rule], Rule]:
    """The `@rule` decorator of a rules module: it appends each rule to that module's `rules`."""

    def rule(fn: Rule) -> Rule:
        rules.append(fn)
        return fn

    return rule


def make_cause(cause_id: str, fact: Fact, text: str, fix: str, strength: int, **config: str) -> Cause:
    """A cause resting on `fact`; `config` keys spell dots as `__` (`segment__region`)."""
    return Cause(
        cause_id, fact.id, text, fact.text, fix, strength, {k.replace("__", "."): v for k, v in config.items()}
    )
