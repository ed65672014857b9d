"""The true people: who they are, where they work and live, how to reach them.

Companies are kept as small numpy arrays (so a million leads do not need a million Python objects)
and rendered to text on demand; people are drawn one chunk at a time.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import reference as ref
from .clock import DAY
from .noise import ascii_slug
from .rand import Draws, cumulative

_TITLE_CUM = cumulative(ref.JOB_TITLE_WEIGHTS)


def _fill_pattern(pattern: str, v: int) -> str:
    """Postal codes from a pattern: '#' a digit, '@' a letter, taken from the digits of `v`."""
    out = []
    for c in pattern:
        if c == "#":
            out.append(str(v % 10))
            v //= 10
        elif c == "@":
            out.append("ABCDEFGHJKLMNPRSTUVWXYZ"[v % 23])
            v //= 23
        else:
            out.append(c)
    return "".join(out)


class Companies:
    """The company pool: numeric columns, rendered to names, domains and addresses when asked."""

    def __init__(self, rng: np.random.Generator, n: int):
        self.n = n
        w = np.array(ref.COUNTRY_WEIGHTS) / sum(ref.COUNTRY_WEIGHTS)
        self.country = rng.choice(len(ref.COUNTRIES), size=n, p=w).astype(np.int8)
        self.style = rng.choice(3, size=n, p=[0.45, 0.3, 0.25]).astype(np.int8)
        self.part_a = rng.integers(0, 1 << 15, size=n, dtype=np.int32)
        self.part_b = rng.integers(0, 1 << 15, size=n, dtype=np.int32)
        self.part_c = rng.integers(0, 1 << 15, size=n, dtype=np.int32)
        self.suffix = rng.integers(0, 1 << 15, size=n, dtype=np.int32)
        # Employee counts: heavy-tailed, median about 150.
        self.employees = np.clip(np.round(np.exp(rng.normal(np.log(150), 1.4, size=n))), 2, 90000).astype(np.int32)
        self.city = rng.integers(0, 1 << 15, size=n, dtype=np.int32)
        self.street = rng.integers(0, 1 << 15, size=n, dtype=np.int32)
        self.number = rng.integers(1, 400, size=n, dtype=np.int32)
        self.postal = rng.integers(0, 1 << 40, size=n, dtype=np.int64)
        self.email_pattern = rng.choice(5, size=n, p=[0.5, 0.2, 0.1, 0.1, 0.1]).astype(np.int8)
        # Two companies may share a name; their domains must not, or different people would share e-mails.
        seen: dict[str, int] = {}
        self.domain_rank = np.zeros(n, dtype=np.int32)
        for i in range(n):
            key = self.base_name(i) + "|" + ref.COUNTRIES[self.country[i]]
            self.domain_rank[i] = seen.get(key, 0)
            seen[key] = self.domain_rank[i] + 1
        self.info = lru_cache(maxsize=4096)(self._info)

    def country_code(self, i: int) -> str:
        return ref.COUNTRIES[self.country[i]]

    def base_name(self, i: int) -> str:
        cc = ref.COUNTRIES[self.country[i]]
        a, b, c = int(self.part_a[i]), int(self.part_b[i]), int(self.part_c[i])
        style = self.style[i]
        if style == 0:
            name = f"{ref.COMPANY_ADJ[a % len(ref.COMPANY_ADJ)]} {ref.COMPANY_NOUN[b % len(ref.COMPANY_NOUN)]}"
            if c % 3 == 0:
                name += " " + ref.COMPANY_NOUN[(b + c) % len(ref.COMPANY_NOUN)]
            return name
        if style == 1:
            name = ref.COMPANY_TECH[a % len(ref.COMPANY_TECH)]
            return name if c % 2 else f"{name} {ref.COMPANY_NOUN[b % len(ref.COMPANY_NOUN)]}"
        lasts = ref.LAST_NAMES[cc]
        if cc in ref.COMPANY_LOCAL:
            words = ref.COMPANY_LOCAL[cc]
            return f"{lasts[a % len(lasts)]} {words[b % len(words)]}"
        return f"{lasts[a % len(lasts)]} & {lasts[b % len(lasts)]}"

    def _info(self, i: int) -> tuple:
        """(base name, legal suffix, domain, employees, country, city tuple, street, email pattern)."""
        cc = ref.COUNTRIES[self.country[i]]
        base = self.base_name(i)
        suffixes = ref.LEGAL_SUFFIXES[cc]
        suffix = suffixes[int(self.suffix[i]) % len(suffixes)]
        rank = int(self.domain_rank[i])
        domain = ascii_slug(base.replace("&", "and")) + (str(rank + 1) if rank else "") + "." + ref.COMPANY_TLD[cc]
        cities = ref.CITIES[cc]
        city = cities[int(self.city[i]) % len(cities)]
        streets = ref.STREET_NAMES[cc]
        street_name = streets[int(self.street[i]) % len(streets)]
        num = int(self.number[i])
        street = f"{street_name} {num}" if cc in ref.NUMBER_AFTER_STREET else f"{num} {street_name}"
        postal = _fill_pattern(city[2], int(self.postal[i]))
        return (base, suffix, domain, int(self.employees[i]), cc, city, street, postal, int(self.email_pattern[i]))


class Person:
    """One real person who becomes a lead: the truth every source record is a noisy view of."""

    __slots__ = (
        "city",
        "company",
        "company_idx",
        "country",
        "employees",
        "first",
        "idx",
        "intent",
        "ip",
        "last",
        "locale",
        "move",
        "nick",
        "person_id",
        "personal_email",
        "phone",
        "phone_area_len",
        "postal",
        "seniority",
        "state",
        "street",
        "suite",
        "t_lead",
        "title",
        "user_agent",
        "work_email",
        "zone",
    )


def _phone(d: Draws, cc: str, area: str) -> tuple[str, int]:
    """National significant number and the length of its area/mobile prefix."""
    digits = lambda n: "".join(str(d.below(10)) for _ in range(n))
    mobile = d.chance(0.4)
    if cc in ("US", "CA"):
        return area + str(d.int_between(2, 9)) + digits(6), 3
    if cc == "GB":
        return ("7" + digits(9), 4) if mobile else (area + digits(10 - len(area)), len(area))
    if cc == "DE":
        if mobile:
            return "1" + d.pick(("51", "52", "60", "70", "76")) + digits(8), 3
        return area + digits(8), len(area)
    if cc == "FR":
        return (d.pick("67") + digits(8), 1) if mobile else (area + digits(8), 1)
    if cc == "NL":
        return ("6" + digits(8), 1) if mobile else (area + digits(9 - len(area)), len(area))
    if cc == "AU":
        return ("4" + digits(8), 3) if mobile else (area + digits(8), 1)
    return (d.pick("9876") + digits(9), 5) if mobile else (area + digits(10 - len(area)), len(area))


def _address(d: Draws, cc: str, city=None) -> tuple[str, str, tuple]:
    cities = ref.CITIES[cc]
    city = city or d.pick(cities)
    name = d.pick(ref.STREET_NAMES[cc])
    num = d.int_between(1, 250)
    street = f"{name} {num}" if cc in ref.NUMBER_AFTER_STREET else f"{num} {name}"
    return street, _fill_pattern(city[2], int(d.u() * 1e12)), city


def _work_email(first: str, last: str, pattern: int, domain: str) -> str:
    f, l_ = ascii_slug(first), ascii_slug(last)
    local = (f"{f}.{l_}", f"{f[:1]}{l_}", f, f"{f}{l_[:1]}", f"{f}_{l_}")[pattern]
    return f"{local}@{domain}"


def _personal_email(d: Draws, first: str, last: str, cc: str) -> str:
    f, l_ = ascii_slug(first), ascii_slug(last)
    num = str(d.int_between(1, 9999)) if d.chance(0.7) else ""
    local = d.pick((f"{f}.{l_}", f"{f}{l_}", f"{f[:1]}{l_}", f"{f}.{l_[:1]}", f"{l_}.{f}")) + num
    return f"{local}@{d.pick(ref.PERSONAL_DOMAINS[cc])}"


def draw_person(d: Draws, idx: int, t_lead: int, companies: Companies, period_end: int) -> Person:
    p = Person()
    p.idx, p.person_id, p.t_lead = idx, f"person_{idx:07d}", t_lead
    # A few companies get many leads (account-based marketing), most get one or two.
    ci = int((d.u() ** 1.6) * companies.n)
    p.company_idx = ci
    base, suffix, domain, employees, cc, hq_city, hq_street, hq_postal, pattern = companies.info(ci)
    p.company = (base, suffix, domain)
    p.employees = employees
    p.country = cc
    first, nick = d.pick(ref.FIRST_NAMES[cc])
    p.first, p.nick, p.last = first, nick, d.pick(ref.LAST_NAMES[cc])
    title, p.seniority = d.weighted(ref.JOB_TITLES, _TITLE_CUM)
    p.title = ref.LOCAL_TITLES.get(cc, {}).get(title, title) if d.chance(0.5) else title
    if d.chance(0.7):  # at head office
        p.street, p.postal, city = hq_street, hq_postal, hq_city
    else:
        p.street, p.postal, city = _address(d, cc)
    p.city, p.state, p.zone = city[0], city[1], city[3]
    p.suite = f"Suite {d.int_between(1, 30) * 100}" if cc in ("US", "CA") and d.chance(0.25) else ""
    p.work_email = _work_email(first, p.last, pattern, domain)
    p.personal_email = _personal_email(d, first, p.last, cc)
    p.phone, p.phone_area_len = _phone(d, cc, city[4])
    p.move = None
    if d.chance(0.06):  # the person moves office during the period
        when = t_lead + int(d.between(5, 80) * DAY)
        if when < period_end:
            street, postal, new_city = _address(d, cc, city if d.chance(0.6) else None)
            p.move = (when, street, postal, new_city[0], new_city[1], new_city[3])
    p.user_agent = d.pick(ref.USER_AGENTS)
    p.ip = f"{d.pick(ref.IP_BLOCKS[cc])}.{d.below(256)}.{d.below(256)}.{d.int_between(1, 254)}"
    p.locale = ref.LOCALES[cc]
    p.intent = d.normal()
    return p


def lead_creation_times(rng: np.random.Generator, n: int, start: int, days: int) -> np.ndarray:
    """Sorted lead creation instants: fewer on weekends, mostly in business hours (UTC-ish)."""
    weekday = np.array([(((start // DAY) + k + 3) % 7) < 5 for k in range(days)])  # 1970-01-01 was a Thursday
    w = np.where(weekday, 1.0, 0.35)
    day = rng.choice(days, size=n, p=w / w.sum())
    hour = np.clip(rng.normal(15.5, 4.5, size=n), 0, 23.999)
    t = start + day.astype(np.int64) * DAY + (hour * 3600).astype(np.int64)
    t.sort()
    return t
