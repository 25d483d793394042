"""A campaign's variants (A/B tests): what differs between them, their split, and which ones still take
responses.

Why here and not on each response: a variant is defined once on its campaign (`Campaign.VariantsDefined`)
and responses, leads and touches name it by its short `key`, so a response naming a key the campaign does
not define is refused before it is written (a read model could not place it in any funnel).

Why a redefinition must keep every key: responses already name them; a variant no longer wanted is stopped
(`Campaign.VariantStopped`), so its funnel stays readable as of any instant. Names, copy and weights may
change (the split is a plan, not a fact about the past).

Why whole-number weights: a split is parts of a whole ("1:1", "70:30"); integers stay exact through JSON and
every database, and any rational split can be written so.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Mapping
from typing import Any, NamedTuple

from domain.base import require_text
from domain.errors import DomainError

NONE = ""  # a response or lead naming no variant
TEXT_FIELDS = ("name", "copy", "channel", "landing_page", "offer")
FIELDS = ("key", *TEXT_FIELDS, "weight")
MAX_KEY = 32  # keys are labels in tables and CSV columns ("A", "B", "对照组"), not descriptions
MIN_VARIANTS = 2  # a test compares a control with at least one other variant
# 10**6 parts: a split finer than one in a million is no plan anyone sends by, and it keeps a weight (and the
# sum of 20 of them) far inside the 64-bit integers every database, JSON encoder (orjson) and CloudEvent take.
MAX_WEIGHT = 10**6
# 10**9 per record: the largest single send there is (China's ~1.7 billion mobile subscriptions are the
# biggest audience one SMS blast reaches; a record usually covers one send or one day). A variant's sum then
# reaches a BIGINT's 9.2 * 10**18 (SQLite's SUM raises, PostgreSQL's would differ) only after 9.2 * 10**9
# records on that one variant: more than the whole log holds in practice (10**6-10**8 events).
MAX_COUNT = 10**9
_DIGITS = 12  # a longer string of digits is over both bounds; int() of 4,301+ digits would raise ValueError
# The statuses (`domain.campaign`) each step is allowed in. Exposures and a winner may come after the close:
# send reports arrive late, and a test is usually judged once it has ended.
ALLOWED: dict[str, tuple[str, ...]] = {
    "define": ("planned", "launched"),
    "expose": ("launched", "closed"),
    "stop": ("planned", "launched"),
    "declare_winner": ("launched", "closed"),
}


class VariantState(NamedTuple):
    """What `crm import`'s checks keep of a campaign's variants (`Campaign.variant_state`)."""

    keys: tuple[str, ...] = ()
    stopped: frozenset[str] = frozenset()
    winner: str = NONE


def require_status(status: str, action: str) -> None:
    if status not in ALLOWED[action]:
        allowed = " or ".join(ALLOWED[action])
        raise DomainError(f"variants can be {_DOING[action]} only while a campaign is {allowed}; this one is {status}")


_DOING = {"define": "defined", "expose": "exposed", "stop": "stopped", "declare_winner": "declared the winner"}


def require_definition(status: str, defined: Iterable[str], variants: Any) -> list[dict[str, Any]]:
    """The variants a (re)definition stores, in a campaign of `status` whose keys are `defined` so far."""
    require_status(status, "define")
    parsed = require_variants(variants)
    require_keeps(defined, parsed)
    return parsed


def require_step(status: str, state: VariantState, action: str, variant: Any) -> str:
    """The key of a variant to expose, stop or declare the winner, in a campaign of `status` and `state`: it
    is defined, not stopped, and (a winner) not the winner already."""
    require_status(status, action)
    variant = require_open(state.keys, state.stopped if action != "declare_winner" else (), require_key(variant))
    if action == "declare_winner":
        if variant in state.stopped:
            raise DomainError(f"variant {variant!r} was stopped: a stopped variant cannot be declared the winner")
        if variant == state.winner:
            raise DomainError(f"variant {variant!r} is already the declared winner")
    return variant


def require_variants(variants: Any) -> list[dict[str, Any]]:
    """The variants as an event stores them: each with every field of `FIELDS` (text stripped, "" when not
    given; the name defaults to the key), at least `MIN_VARIANTS`, keys unique (ignoring case)."""
    if not isinstance(variants, list) or not all(isinstance(v, Mapping) for v in variants):
        raise DomainError("variants is a list of objects, each with a key and a weight")
    if len(variants) < MIN_VARIANTS:
        raise DomainError(f"an A/B test compares at least {MIN_VARIANTS} variants; {len(variants)} given")
    parsed = [_variant(v) for v in variants]
    _require_unique([v["key"] for v in parsed])
    return parsed


def _variant(variant: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(variant) - set(FIELDS)
    if unknown:
        raise DomainError(f"unknown variant field(s) {', '.join(sorted(unknown))}; expected: {', '.join(FIELDS)}")
    key = require_key(variant.get("key"))
    texts = {name: _text(variant.get(name, ""), name, key) for name in TEXT_FIELDS}
    texts["name"] = texts["name"] or key
    return {"key": key, **texts, "weight": require_weight(variant.get("weight"), key)}


def require_stored_variants(variants: Any) -> list[dict[str, Any]]:
    """`crm import`'s check of a stored definition: the variants as the command stores them, whole."""
    parsed = require_variants(variants)
    if parsed != variants:
        raise DomainError("variants are stored as the command stores them: every field of "
                          f"{', '.join(FIELDS)}, text stripped, the name the key when none")
    return parsed


def require_key(key: Any) -> str:
    if not isinstance(key, str):
        raise DomainError("each variant has a key (text such as \"A\" or \"B\")")
    key = require_text(key, "variant key")
    if any(unicodedata.category(char) == "Cc" for char in key):
        # A key is a label in tables, CSV columns and report keys; a control character (\x1f, a newline)
        # only breaks those (it once split attribution's keys for the whole installation).
        raise DomainError(f"variant key {key!r} contains a control character; use letters, digits or words")
    if len(key) > MAX_KEY:
        raise DomainError(f"variant key {key!r} is longer than {MAX_KEY} characters")
    return key


def _text(value: Any, name: str, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DomainError(f"variant {key!r}: {name} must be text, not {type(value).__name__}")
    return value.strip()


def require_weight(weight: Any, key: str) -> int:
    """A split weight: a whole number of parts, greater than zero and at most `MAX_WEIGHT` (a string of digits
    from a form is read)."""
    if isinstance(weight, str) and weight.strip().isdecimal() and len(weight.strip()) <= _DIGITS:
        weight = int(weight.strip())
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise DomainError(f"variant {key!r}: weight must be a whole number greater than zero, not {weight!r}")
    if weight <= 0:
        raise DomainError(f"variant {key!r}: weight must be greater than zero, not {weight}")
    if weight > MAX_WEIGHT:
        raise DomainError(f"variant {key!r}: weight must be at most {MAX_WEIGHT:,} parts, not {weight}")
    return weight


def _require_unique(keys: list[str]) -> None:
    seen: dict[str, str] = {}
    for key in keys:
        if key.casefold() in seen:
            raise DomainError(f"variant key {key!r} is given twice (as {seen[key.casefold()]!r} and {key!r}): "
                              "keys are unique, ignoring case")
        seen[key.casefold()] = key


def require_keeps(defined: Iterable[str], variants: list[dict[str, Any]]) -> None:
    """A redefinition keeps every key defined before: responses may already name it (stop one instead)."""
    missing = [key for key in defined if key not in {v["key"] for v in variants}]
    if missing:
        raise DomainError(f"variant(s) {', '.join(missing)} are already defined and may be named by responses: "
                          "keep them (stop a variant instead of removing it)")


def require_defined(defined: Collection[str], variant: str) -> str:
    """`variant` ("" none) is one of the campaign's keys `defined`."""
    if variant != NONE and variant not in defined:
        known = ", ".join(defined) if defined else "none"
        raise DomainError(f"the campaign defines no variant {variant!r} (its variants: {known})")
    return variant


def require_open(defined: Collection[str], stopped: Collection[str], variant: str) -> str:
    """`variant` may take responses and leads: defined, and not stopped."""
    require_defined(defined, variant)
    if variant in stopped:
        raise DomainError(f"variant {variant!r} was stopped: it takes no more exposures, responses or leads")
    return variant


def require_count(count: Any) -> int:
    """How many were sent or shown: a whole number greater than zero and at most `MAX_COUNT` per record."""
    if isinstance(count, str) and count.strip().isdecimal() and len(count.strip()) <= _DIGITS:
        count = int(count.strip())
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise DomainError(f"an exposure count is a whole number greater than zero, not {count!r}")
    if count > MAX_COUNT:
        raise DomainError(f"an exposure count is at most {MAX_COUNT:,} per record (record a larger send in "
                          f"several records), not {count}")
    return count
