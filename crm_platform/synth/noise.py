"""Realistic noise: how the same person ends up spelled differently in each system.

Every function takes the caller's `Draws`, so the noise is part of the seeded stream.
"""
from __future__ import annotations

import unicodedata

from .rand import Draws
from .reference import CALLING_CODES, SUFFIX_VARIANTS

_KEYBOARD = {
    "a": "qs", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo",
    "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "w", "r": "et",
    "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc", "y": "tu", "z": "x",
}


def strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def ascii_slug(s: str, sep: str = "") -> str:
    """Lower-case ASCII for e-mail local parts and domains (Müller -> muller, O'Brien -> obrien)."""
    s = strip_accents(s).lower().replace("ß", "ss")
    return sep.join("".join(c for c in part if c.isalnum()) for part in s.split() if part)


def typo(d: Draws, s: str) -> str:
    """One keyboard slip: swap, drop, double or hit a neighbouring key (never the first letter)."""
    if len(s) < 4:
        return s
    i = d.int_between(1, len(s) - 2)
    kind = d.below(4)
    if kind == 0:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if kind == 1:
        return s[:i] + s[i + 1:]
    if kind == 2:
        return s[:i] + s[i] + s[i:]
    near = _KEYBOARD.get(s[i].lower())
    return s[:i] + d.pick(near) + s[i + 1:] if near else s


def name_variant(d: Draws, name: str, nick: str = "", *, p_nick: float = 0.0, p_typo: float = 0.0,
                 p_case: float = 0.0, p_strip: float = 0.0) -> str:
    if nick and d.chance(p_nick):
        name = nick
    if d.chance(p_typo):
        name = typo(d, name)
    if d.chance(p_strip):
        name = strip_accents(name)
    if d.chance(p_case):
        name = name.upper() if d.chance(0.4) else name.lower()
    return name


def email_variant(d: Draws, email: str, *, p_case: float = 0.0, p_gmail: float = 0.0, p_tag: float = 0.0) -> str:
    """Case changes, gmail dot games and +tags: all still valid addresses of the same mailbox."""
    local, domain = email.split("@", 1)
    if domain in ("gmail.com", "googlemail.com"):
        if d.chance(p_gmail):
            plain = local.replace(".", "")
            if "." in local or len(plain) < 4:
                local = plain
            else:
                i = d.int_between(1, len(plain) - 2)
                local = plain[:i] + "." + plain[i:]
        if d.chance(p_tag):
            local += "+" + d.pick(("news", "crm", "work", "leads", "2026"))
    if d.chance(p_case):
        if d.chance(0.5):
            local = ".".join(p[:1].upper() + p[1:] for p in local.split("."))
        else:
            local, domain = local.upper(), domain.upper() if d.chance(0.5) else domain
    return f"{local}@{domain}"


def _groups(digits: str, sizes) -> list[str]:
    out, i = [], 0
    for n in sizes:
        out.append(digits[i:i + n])
        i += n
    if i < len(digits):
        out[-1] += digits[i:]
    return [g for g in out if g]


# How each country groups its national significant number, by the length of the area code.
def _national_groups(country: str, nsn: str, area_len: int) -> list[str]:
    if country in ("US", "CA"):
        return [nsn[:3], nsn[3:6], nsn[6:]]
    if country == "FR":
        return [nsn[0]] + _groups(nsn[1:], (2, 2, 2, 2))
    if country == "IN":
        return [nsn[:5], nsn[5:]]
    rest = nsn[area_len:]
    sizes = (4, 4) if len(rest) == 8 else (3, 4) if len(rest) == 7 else (4, len(rest) - 4)
    return [nsn[:area_len]] + _groups(rest, sizes)


def phone_text(d: Draws, country: str, nsn: str, area_len: int, style: int | None = None) -> str:
    """One of the ways people write the same number: E.164, international, national, dashes, dots..."""
    cc = CALLING_CODES[country]
    g = _national_groups(country, nsn, area_len)
    style = d.below(8) if style is None else style
    nanp = country in ("US", "CA")
    if style == 0:
        return f"+{cc}{nsn}"
    if style == 1:
        return f"+{cc} " + " ".join(g)
    if style == 2:
        if nanp:
            return f"({g[0]}) {g[1]}-{g[2]}"
        if country == "IN":
            return "0" + " ".join(g)
        if country == "AU":
            return f"(0{g[0]}) " + " ".join(g[1:])
        return "0" + " ".join(g)
    if style == 3:
        return "-".join(g) if nanp else "0" + "-".join(g)
    if style == 4:
        return ".".join(g) if nanp else f"+{cc} (0)" + " ".join(g)
    if style == 5:
        return f"{cc}-" + "-".join(g) if nanp else f"00{cc} " + " ".join(g)
    if style == 6:
        return f"+{cc}-" + "-".join(g)
    return nsn if nanp else "0" + nsn


def company_variant(d: Draws, base: str, suffix: str, *, p_variant: float = 0.0, p_case: float = 0.0) -> str:
    s = suffix
    if d.chance(p_variant):
        s = d.pick(SUFFIX_VARIANTS.get(suffix, (suffix,)))
    name = base if not s else (base + s if s.startswith(",") else f"{base} {s}")
    if d.chance(p_case):
        name = name.upper() if d.chance(0.6) else name.lower()
    return name


_STREET_ABBREV = (("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("straße", "str."), ("Straße", "Str."),
                  ("boulevard", "bd"), ("avenue", "av."), ("Drive", "Dr"))


def street_variant(d: Draws, street: str, *, p_abbrev: float = 0.0) -> str:
    if d.chance(p_abbrev):
        for long, short in _STREET_ABBREV:
            if long in street:
                return street.replace(long, short)
            if street.endswith(" " + short):
                return street[: -len(short)] + long
    return street
