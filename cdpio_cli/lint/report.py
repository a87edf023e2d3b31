"""Lint findings, the result of a pass, and how they become `results.Check`s;
the config's `lint:` section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdpio_cli import results
from cdpio_cli.errors import FailureKind
from cdpio_cli.lint.rules import INPUT_RULE, SPEC_PREFIX
from cdpio_cli.messages import Severity


@dataclass(slots=True)
class Finding:
    rule: str
    severity: str
    message: str
    file: str | None = None
    line: int | None = None
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def location(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""


@dataclass
class LintResult:
    findings: list[Finding]
    messages: int = 0  # records read, valid or not
    invalid: int = 0  # records that could not be parsed
    by_severity: dict[str, int] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)  # over max_per_rule
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.by_severity.get(Severity.ERROR, 0)

    @property
    def warnings(self) -> int:
        return self.by_severity.get(Severity.WARNING, 0)

    @property
    def infos(self) -> int:
        return self.by_severity.get(Severity.INFO, 0)

    def summary(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "invalid": self.invalid,
            "findings": {s: self.by_severity.get(s, 0) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)},
            "by_rule": dict(sorted(self.by_rule.items())),
            "not_listed": dict(self.suppressed),
        }


# --------------------------------------------------------------------------
# Findings -> results.Check
# --------------------------------------------------------------------------


def findings_to_checks(result: LintResult) -> list[results.Check]:
    """error -> failed (an unreadable record: failure "usage", exit 2), warning ->
    warning, info -> info; severity in details."""
    checks: list[results.Check] = []
    for f in result.findings:
        if f.severity == Severity.ERROR:
            status = results.Status.FAILED
        elif f.severity == Severity.WARNING:
            status = results.Status.WARNING
        else:
            status = results.Status.INFO  # shown and counted as info, never as ok
        message = f.message
        tier = results.Tier.SPEC if f.rule.startswith((SPEC_PREFIX, "input/")) else results.Tier.LINT
        failure = FailureKind.USAGE if f.rule == INPUT_RULE else FailureKind.CHECK
        checks.append(
            results.Check(
                id=f.rule,
                route="lint",
                tier=tier,
                status=status,
                message=message,
                file=f.file,
                line=f.line,
                failure=failure,
                hint=f.hint,
                details={"severity": f.severity, **f.details},
            )
        )
    return checks


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------


def load_lint_settings(explicit_config: str | None) -> tuple[list[str], dict[str, str], str | None]:
    """(disable, severity overrides, config path) from the config's `lint:`
    section; empty when there is no config file."""
    from cdpio_cli import config as config_mod

    path = config_mod.find_config_path(explicit_config)
    if path is None:
        return [], {}, None
    # Lint reads only `lint:`: the secrets the file asks for need not be set.
    loaded = config_mod.load_config(path, uses=("lint",))
    section = loaded.config.lint
    return list(section.disable), dict(section.severity), str(path)
