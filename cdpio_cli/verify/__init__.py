"""Delivery verification: look in Customer.io (App API) until what was sent shows up.

The only proof that an event arrived is seeing it in Customer.io
(tier `delivered`, README.md).  We read the App API (docs/contracts.md):

- person by id:    GET /v1/customers/{id}/attributes?id_type=id
- person by email: GET /v1/customers?email=E, then the same by cio_id
- events:          GET /v1/customers/{id}/activities?id_type=&type=&name=

Activities are listed and matched on the client side: `type`, then `url` for
a page, `name` for an event or screen.

The modules: app_api (the App API reader and its rate limit), target (what to
look for, and which activity is this run's), values (loose comparison of the
App API's string values), polling (poll until found or the deadline),
checks (the `delivered` check for a polled target), person (`cdpio verify`).
"""

from cdpio_cli.verify.app_api import AppApi, AppApiError, RateWindow
from cdpio_cli.verify.checks import app_error_hint, found_text, target_check
from cdpio_cli.verify.person import prepare_region, run_verify
from cdpio_cli.verify.polling import BACKOFF_CAP, BACKOFF_FACTOR, poll_once, wait_for
from cdpio_cli.verify.target import CLOCK_SLACK, RUN_ID_KEY, ExpectedActivity, Target, activity_run_id
from cdpio_cli.verify.values import parse_trait, show, values_match

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_FACTOR",
    "CLOCK_SLACK",
    "RUN_ID_KEY",
    "AppApi",
    "AppApiError",
    "ExpectedActivity",
    "RateWindow",
    "Target",
    "activity_run_id",
    "app_error_hint",
    "found_text",
    "parse_trait",
    "poll_once",
    "prepare_region",
    "run_verify",
    "show",
    "target_check",
    "values_match",
    "wait_for",
]
