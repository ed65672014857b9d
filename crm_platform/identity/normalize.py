"""One spelling per value: what makes two records comparable.

Each function maps a raw value (clear, from the vault or a source record) to its normal form, or to
None when nothing usable is left (empty, blocked, unparsable). They are pure; callers apply them once
per distinct value (`records.map_distinct`). Only the name functions the pairwise checks call again
and again keep a small memo (names come from a small vocabulary)."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from crm_platform.identity.reference import (
    AMBIGUOUS_NICKNAMES,
    BLOCKED_VALUES,
    COUNTRY_CODES,
    DOTLESS_PROVIDERS,
    LEGAL_SUFFIX_WORDS,
    MAIL_PROVIDERS,
    NAME_EQUIVALENTS,
    NICKNAMES,
    PROVIDER_ALIASES,
    STREET_WORDS,
    TLD_TYPOS,
    UNIT_WORDS,
)

_CACHE = 1 << 16
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_NON_NAME = re.compile(r"[^a-z\- ']+")
_UNIT = re.compile(r"(?:,|\s)\s*(?:" + "|".join(UNIT_WORDS) + r")\.?\s*#?\s*[0-9a-z\-]+\s*$")
_PROVIDER_SET = frozenset(MAIL_PROVIDERS)


def fold(s: str) -> str:
    """Lower case without accents (Müller -> muller, Straße -> strasse)."""
    s = unicodedata.normalize("NFKD", s.strip().casefold().replace("ß", "ss"))
    return "".join(c for c in s if not unicodedata.combining(c))


def blocked(value: str | None) -> bool:
    return value is None or fold(value) in BLOCKED_VALUES


def _one_edit(a: str, b: str) -> bool:
    """True when a and b differ by one insertion, deletion, substitution or adjacent swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


@lru_cache(maxsize=4096)
def email_domain(domain: str) -> str:
    """Repair obvious typos: a mistyped top-level domain, and a provider one keystroke away."""
    for typo, fix in TLD_TYPOS.items():
        if domain.endswith(typo) and not any(domain.endswith(fix) for fix in TLD_TYPOS.values() if fix != typo):
            candidate = domain[: -len(typo)] + fix
            if typo != ".d" or candidate.split(".")[-2] in {p.split(".")[0] for p in MAIL_PROVIDERS}:
                domain = candidate
                break
    if domain not in _PROVIDER_SET:
        near = [p for p in MAIL_PROVIDERS if _one_edit(domain, p)]
        if len(near) == 1:
            domain = near[0]
    return PROVIDER_ALIASES.get(domain, domain)


def email(value: str | None) -> str | None:
    """jane.doe+news@GoogleMail.com -> janedoe@gmail.com; None when not an address or blocked."""
    if not value or blocked(value):
        return None
    s = value.strip().lower()
    if s.count("@") != 1:
        return None
    local, domain = s.split("@")
    domain = email_domain(domain.strip(". "))
    local = local.split("+", 1)[0]
    if domain in DOTLESS_PROVIDERS:
        local = local.replace(".", "")
    if not local or "." not in domain:
        return None
    out = f"{local}@{domain}"
    return None if out in BLOCKED_VALUES else out


def country_code(value: str | None) -> str | None:
    """'United States', 'USA', 'us' -> 'US'; None when unknown."""
    if not value:
        return None
    return COUNTRY_CODES.get(fold(value))


@lru_cache(maxsize=1 << 18)  # parsing is the costly part; records and contacts repeat numbers
def phone(value: str | None, region: str | None = None) -> str | None:
    """E.164 (+14155550123), parsed in the record's country when the number has no country code."""
    if not value or blocked(value):
        return None
    digits = re.sub(r"\D", "", value)
    if len(digits) < 7 or len(set(digits)) == 1:
        return None
    try:
        n = phonenumbers.parse(value, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=_CACHE)
def name(value: str | None) -> str | None:
    """Folded, punctuation-free name ("O'Neill" -> "oneill", "JOSÉ" -> "jose")."""
    if not value or blocked(value):
        return None
    s = _NON_NAME.sub(" ", fold(value)).replace("'", "").replace("-", " ")
    s = " ".join(s.split())
    return s or None


@lru_cache(maxsize=_CACHE)
def given_name(value: str | None) -> str | None:
    """The given name behind a nickname or a variant spelling (Bill -> william, Stephen -> steven)."""
    s = name(value)
    if s is None:
        return None
    first = s.split()[0]
    first = NICKNAMES.get(first, first)
    return NAME_EQUIVALENTS.get(first, first)


@lru_cache(maxsize=_CACHE)
def given_names(value: str | None) -> frozenset[str]:
    """Every given name the first name may stand for (Vicky -> victoria or vikram)."""
    s = name(value)
    if s is None:
        return frozenset()
    first = s.split()[0]
    names = {NAME_EQUIVALENTS.get(n, n) for n in AMBIGUOUS_NICKNAMES.get(first, ())}
    return frozenset(names | {given_name(value), first})


def _nicknames_of() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for nick, full in NICKNAMES.items():
        out.setdefault(full, set()).add(nick)
    for nick, fulls in AMBIGUOUS_NICKNAMES.items():
        for full in fulls:
            out.setdefault(full, set()).add(nick)
    return {k: frozenset(v) for k, v in out.items()}


_NICKNAMES_OF = _nicknames_of()


@lru_cache(maxsize=_CACHE)
def name_forms(first: str) -> frozenset[str]:
    """A normalized first name, the given names it may stand for and their nicknames: the forms
    under which one person's first name appears (Rick, Richard, Dick, Rich)."""
    given = given_names(first)
    return frozenset({first} | given | {n for g in given for n in _NICKNAMES_OF.get(g, ())})


def company(value: str | None) -> str | None:
    """'Smith & Jones, Inc.' -> 'smith and jones'; legal forms, punctuation and case removed."""
    if not value or blocked(value):
        return None
    s = fold(value).replace("&", " and ").replace(".", "")
    words = _NON_ALNUM.sub(" ", s).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIX_WORDS:
        words.pop()
    if len(words) > 1 and words[-1] == "pty":
        words.pop()
    return " ".join(words) or None


def street(value: str | None) -> str | None:
    """First address line, unit removed, street words spelled out ('60 5th Ave, Suite 300' -> '60 5th avenue')."""
    if not value or blocked(value):
        return None
    line = fold(value).splitlines()[0]
    line = _UNIT.sub("", line)
    words = []
    for w in _NON_ALNUM.sub(" ", line.replace("straße", "strasse")).split():
        if w.endswith("strasse") and w != "strasse":  # Hauptstrasse -> haupt strasse
            words += [w[: -len("strasse")], "strasse"]
        elif w.endswith("str") and len(w) > 3 and w not in STREET_WORDS:
            words += [w[:-3], "strasse"]
        else:
            words.append(STREET_WORDS.get(w, w))
    return " ".join(words) or None


def postal_code(value: str | None) -> str | None:
    if not value or blocked(value):
        return None
    return _NON_ALNUM.sub("", fold(value)).upper() or None


def city(value: str | None) -> str | None:
    if not value or blocked(value):
        return None
    return " ".join(_NON_ALNUM.sub(" ", fold(value)).split()) or None
