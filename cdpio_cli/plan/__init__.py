"""Tracking plans: a contract for event data, checked offline (docs/tracking-plans.md).

A plan says which track events exist and, per event (and for identify, page,
screen and group), which properties or traits they carry.  Each property rule
is a JSON Schema, so schemas from Segment Protocols or a JSON Schema file carry
over.  The package, by module:

- model: the Plan and its per-kind ObjectRules;
- load: loads a plan file, with every error naming the file and line (exit 2);
- check: checks messages against it for `cdpio lint --plan` (rules `plan/*`,
  graded by the same `lint.disable` / `lint.severity` settings as every other
  rule), explain and send-test;
- infer: infers a plan from observed messages (`cdpio plan infer`);
- write: writes a plan as stable, commented YAML;
- diff: diffs two plans (`cdpio plan diff`);
- protocols: converts a Segment Protocols tracking plan fetched through the
  Segment Public API (`cdpio plan pull`);
- attributes: whether a segment condition's string can equal a planned trait
  as Customer.io stores it (`cdpio audit --plan`).
"""

from cdpio_cli.plan.attributes import AttributeFit, attribute_fit
from cdpio_cli.plan.check import PLAN_RULES, UNPLANNED_EVENT, UNPLANNED_PROPERTY, PlanChecker, send_test_checks
from cdpio_cli.plan.diff import Change, diff_plans, diff_report
from cdpio_cli.plan.infer import Inferrer
from cdpio_cli.plan.load import load_plan, parse_plan, plan_path_from_config, resolve_plan_path
from cdpio_cli.plan.model import SECTIONS, ObjectRule, Plan
from cdpio_cli.plan.protocols import fetch_segment_plan, plan_from_segment_rules, pulled_plan
from cdpio_cli.plan.write import dump_plan, refuse_existing, write_new_file

__all__ = [
    "PLAN_RULES",
    "SECTIONS",
    "UNPLANNED_EVENT",
    "UNPLANNED_PROPERTY",
    "AttributeFit",
    "Change",
    "Inferrer",
    "ObjectRule",
    "Plan",
    "PlanChecker",
    "attribute_fit",
    "diff_plans",
    "diff_report",
    "dump_plan",
    "fetch_segment_plan",
    "load_plan",
    "parse_plan",
    "plan_from_segment_rules",
    "plan_path_from_config",
    "pulled_plan",
    "refuse_existing",
    "resolve_plan_path",
    "send_test_checks",
    "write_new_file",
]
