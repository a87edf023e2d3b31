"""Lint Segment-spec messages: spec, naming, identity, Customer.io limits, trait drift.

One pass over the records.  Per-message rules run as each message arrives;
data-set rules (naming consistency, identity fragmentation, type drift) keep
small aggregates in dicts -- names, ids, keys and first locations, never
whole messages -- and report when the pass ends.

Every rule has a stable id (`naming/event-title-case`), a default severity
(error, warning, info, or off = not run unless enabled) and a hint.  The
`spec/*` rules come straight from `messages.spec_problems`; the destination
drops (`customerio/page-without-url`, device events...) and Customer.io's
limits (`customerio/event-name-too-long`..., one table in cdpio_cli/limits.py)
come from `mapping.map_message`, so lint, explain and the sandbox agree.

Findings become `results.Check`s (see `findings_to_checks`): error -> failed,
warning -> warning, info -> info (an informational note is not a failure and
not a skipped check); the severity is always in `details["severity"]`.

Modules: `rules` (the rule table, severity selection), `naming` (name and key
helpers), `verdict` (`message_verdict`, a message's own findings, free of
data-set state, with a proven shortcut for clean messages), `engine` (the
streaming `Linter`), `report` (findings, the result, checks,
the config's `lint:` section), `parallel` (past `PARALLEL_AFTER`
records, a forked worker keeps the data set while this process computes the
verdicts; same result).
docs/lint.md.
"""

from __future__ import annotations

from cdpio_cli.lint.engine import (
    MAX_TRACKED_IDS,
    MAX_TRACKED_NAMES,
    Linter,
    lint_messages,
    lint_records,
)
from cdpio_cli.lint.naming import dynamic_value, suggest_title_case, title_case_problem
from cdpio_cli.lint.report import Finding, LintResult, findings_to_checks, load_lint_settings
from cdpio_cli.lint.rules import (
    INPUT_RULE,
    OFF,
    RULES,
    SEVERITIES,
    SPEC_PREFIX,
    Rule,
    Severities,
    rules_table,
)

__all__ = [
    "INPUT_RULE",
    "MAX_TRACKED_IDS",
    "MAX_TRACKED_NAMES",
    "OFF",
    "RULES",
    "SEVERITIES",
    "SPEC_PREFIX",
    "Finding",
    "LintResult",
    "Linter",
    "Rule",
    "Severities",
    "dynamic_value",
    "findings_to_checks",
    "lint_messages",
    "lint_records",
    "load_lint_settings",
    "rules_table",
    "suggest_title_case",
    "title_case_problem",
]
