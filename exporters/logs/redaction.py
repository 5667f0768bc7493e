"""PII redaction and field-level drop / hash for log events.

Detects e-mail addresses, phone numbers and payment card numbers (Luhn
checked, so order ids rarely match) in every string of an event, and IP
addresses when asked. Runs on the caller's thread: a cheap pre-check skips
strings with no ``@`` and no run of digits.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelmon.exporters.logs.fields import hashable_field_error

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by spaces or dashes.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# An optional +country code, then 9-15 digits in groups (e.g. +1 415-555-0100,
# (030) 1234 5678, 06 12 34 56 78). Fewer than 9 digits is not a phone number.
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,5}(?!\w)")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
# Candidates only; ipaddress validates (so times like 10:00:00 are kept).
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# Cheap tests that a string may hold what a rule looks for; most log text fails
# them all and costs one search.
_MAY_HAVE_EMAIL = "@"
_MAY_HAVE_NUMBER = r"\d(?:[ ().+-]{0,2}\d){8}"  # 9+ digits: phones and cards
_MAY_HAVE_IP = r"\d\.\d|:"
# Event parts that modelmon fills and that never hold user data.
_SKIP_TOP = frozenset({"@timestamp", "ecs", "service", "host", "trace", "process", "log"})


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = ord(ch) - 48
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_card(match: str) -> bool:
    return luhn_ok(_NON_DIGIT.sub("", match))


def _is_phone(match: str) -> bool:
    # Dates (2024-05-01) and versions have fewer digits than any phone number.
    return 9 <= len(_NON_DIGIT.sub("", match)) <= 15


def _is_ipv6(match: str) -> bool:
    try:
        ipaddress.IPv6Address(match)
    except ValueError:
        return False
    return True


_NON_DIGIT = re.compile(r"\D")
# The shortest text a rule can match: "a@b.cd" (numbers need 9 digits), and
# "::" (an IPv6 address) when IP addresses are redacted.
_MIN_MATCH = 6
_MIN_MATCH_IP = 2
_CLEAN_MAX_CHARS = 64
_CLEAN_MAX_ENTRIES = 4096
_ASCII_DIGITS = b"0123456789"


class Redactor:
    """A log processor: ``Redactor(...)(event)`` returns the redacted event."""

    def __init__(
        self,
        *,
        emails: bool = True,
        phones: bool = True,
        card_numbers: bool = True,
        ip_addresses: bool = False,
        drop_fields: Sequence[str] = (),
        hash_fields: Sequence[str] = (),
        hash_salt: str = "",
    ) -> None:
        self._rules: list[tuple[re.Pattern[str], str, Callable[[str], bool] | None]] = []
        if card_numbers:  # before phones: a card number also looks like a phone number
            self._rules.append((CARD, "[REDACTED:card]", _is_card))
        if emails:
            self._rules.append((EMAIL, "[REDACTED:email]", None))
        if ip_addresses:
            self._rules.append((IPV4, "[REDACTED:ip]", None))
            self._rules.append((IPV6, "[REDACTED:ip]", _is_ipv6))
        if phones:
            self._rules.append((PHONE, "[REDACTED:phone]", _is_phone))
        # What re.sub takes: the marker, or a function keeping a match its check refuses.
        self._subs: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
            (pattern, replacement if check is None else _checked(replacement, check))
            for pattern, replacement, check in self._rules
        ]
        hints = [re.escape(_MAY_HAVE_EMAIL)] if emails else []
        if phones or card_numbers:
            hints.append(_MAY_HAVE_NUMBER)
        if ip_addresses:
            hints.append(_MAY_HAVE_IP)
        self._precheck = re.compile("|".join(hints) or "(?!)")
        # The same test, faster (see _may_match): the regex alone costs ~1 us on
        # a short log message, most of it trying the digit pattern at every position.
        self._min_len = _MIN_MATCH_IP if ip_addresses else _MIN_MATCH
        # Short strings already found clean (logger, file and dataset names,
        # event actions, model names): a dict lookup instead of a scan.
        self._clean: dict[str, None] = {}
        self._check_email = emails
        self._check_number = phones or card_numbers
        self._ip_hint = re.compile(_MAY_HAVE_IP) if ip_addresses else None
        self._number_hint = re.compile(_MAY_HAVE_NUMBER)
        self._drop = [tuple(f.split(".")) for f in drop_fields]
        for name in hash_fields:  # a hash is a string: only where a string fits
            refused = hashable_field_error(name)
            if refused:
                raise ValueError(f"logs.redact.hash_fields: {refused}")
        self._hash = [tuple(f.split(".")) for f in hash_fields]
        self._salt = hash_salt.encode()

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Redactor:
        known = {"emails", "phones", "card_numbers", "ip_addresses", "drop_fields",
                 "hash_fields", "hash_salt", "enabled"}
        unknown = set(section) - known
        if unknown:
            raise ValueError(
                f"logs.redact: unknown key(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(known))}"
            )
        return cls(**{k: v for k, v in section.items() if k != "enabled"})

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        for path in self._drop:
            parent = _owned_parent(event, path)
            if parent is not None:
                parent.pop(path[-1], None)
        for path in self._hash:
            parent = _owned_parent(event, path)
            if parent is not None:
                raw = str(parent[path[-1]]).encode()
                parent[path[-1]] = "sha256:" + hashlib.sha256(self._salt + raw).hexdigest()[:32]
        if self._rules:
            clean, scrub = self._clean, self._scrub
            for key, value in event.items():
                if key in _SKIP_TOP:
                    continue
                if type(value) is str:
                    if key == "message":  # new text each time: scan, do not remember
                        new = self.redact_message(value)
                        if new is not value:
                            event[key] = new
                        continue
                    if value in clean:
                        continue
                new = scrub(value)
                if new is not value:
                    event[key] = new  # an existing key: the iteration stays valid
        return event

    def redact_message(self, text: str) -> str:
        """The event's ``message`` redacted (``text`` itself when there is nothing to hide)."""
        if not self._rules or len(text) < self._min_len or not self._may_match(text):
            return text
        return self.redact_text(text)

    def _scrub(self, value: Any) -> Any:
        kind = type(value)
        if kind is str or isinstance(value, str):
            if value in self._clean:  # seen before and nothing to redact
                return value
            if len(value) < self._min_len or not self._may_match(value):
                if len(value) <= _CLEAN_MAX_CHARS:
                    clean = self._clean
                    if len(clean) >= _CLEAN_MAX_ENTRIES:
                        clean.clear()
                    clean[value] = None
                return value
            return self.redact_text(value)
        if kind is dict or isinstance(value, dict):
            out = None  # copied on the first change only
            clean = self._clean
            for k, v in value.items():
                if type(v) is str and v in clean:
                    continue
                new = self._scrub(v)
                if new is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = new
            return value if out is None else out
        if isinstance(value, list | tuple):
            items = [self._scrub(v) for v in value]
            return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        return value

    def _may_match(self, text: str) -> bool:
        """Exactly ``self._precheck.search(text)``, cheaper: an ASCII string with
        fewer than 9 digits cannot hold the number hint (9+ digits), and counting
        digits is one C call on its bytes."""
        if self._check_email and "@" in text:
            return True
        if self._ip_hint is not None and self._ip_hint.search(text):
            return True
        if not self._check_number:
            return False
        if text.isascii():  # else \d also matches non-ASCII digits: use the regex
            raw = text.encode()
            if len(raw) - len(raw.translate(None, _ASCII_DIGITS)) < 9:
                return False
        return self._number_hint.search(text) is not None

    def redact_text(self, text: str) -> str:
        for pattern, replacement in self._subs:
            text = pattern.sub(replacement, text)
        return text


def _checked(replacement: str, check: Callable[[str], bool]) -> Callable[[re.Match[str]], str]:
    def substitute(match: re.Match[str]) -> str:
        found = match.group()
        return replacement if check(found) else found

    return substitute


def _owned_parent(event: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The dict holding ``path``'s last key, when the key is there, made the event's
    own on the way down: nested dicts may be shared with every other event (the
    shipper's base fields, ``host`` and ``service``), and changing one in place
    changed them all."""
    node: Any = event
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            return None
        node[part] = child = dict(child)
        node = child
    return node if path[-1] in node else None
