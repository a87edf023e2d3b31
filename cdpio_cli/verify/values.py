"""Comparing values: the App API returns every attribute value as a string,
so expected values are compared loosely (`true` matches "true", 5 matches "5.0")."""

from __future__ import annotations

import json
import math
from typing import Any


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def values_match(expected: Any, actual: Any) -> bool:
    """Does the App API's (string) `actual` hold the `expected` value?

    `expected` may be a real value from a message (True, 5, {"a": 1}) or a
    string from `--trait k=v`, which is read JSON-ish ("true", "5", "Pro").
    """
    if actual is None:
        return False
    if isinstance(expected, str) and isinstance(actual, str) and expected == actual:
        return True
    if isinstance(expected, str):
        expected = _loads(expected)
    if isinstance(actual, str):
        actual = _loads(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return str(expected).lower() == str(actual).lower()
    e_num, a_num = _as_number(expected), _as_number(actual)
    if e_num is not None and a_num is not None:
        return e_num == a_num
    return bool(expected == actual)


def parse_trait(text: str) -> tuple[str, str]:
    """`plan_type=Pro` -> ("plan_type", "Pro"); ValueError without `=` or a key."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--trait {text!r} must look like key=value")
    return key.strip(), value


def show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:59] + "…"
