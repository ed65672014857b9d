"""The B2B funnel, person by person: records in each system, touches, sales activities, stages,
opportunities, and a conversion drawn from a known probability.

Causal story (what the truth files record): channel exposure is drawn independently of intent, and
adds its log-odds effect; latent intent drives engagement (connected calls, replies, inbound
activity, meetings held), which is observable in events before the conversion and also adds to the
log-odds, with seniority and company size. The person's probability is stored; the outcome is drawn
from it. Everything that happens after the period's end is simulated but never written.
"""
from __future__ import annotations

import math

from . import reference as ref
from .campaigns import (
    CHANNELS,
    EFFECTS,
    EXPOSURE,
    EXTRA_TOUCHES,
    SESSION_CHANNELS,
    SESSION_WEIGHTS,
    WEB_CHANNELS,
    CampaignBook,
    sigmoid,
)
from .clock import DAY, HOUR, MINUTE, business_time
from .noise import (
    company_variant,
    email_variant,
    name_variant,
    phone_text,
    street_variant,
    strip_accents,
)
from .people import Person
from .rand import Draws, cumulative, salesforce_id

# Intercept and engagement coefficients of the true conversion model (log-odds); see module docstring.
B0 = -4.45
COEF = {"meetings_held": 0.6, "replied": 0.5, "inbound": 0.4, "seniority": 0.2, "log10_employees": 0.35}
NOISE_SD = 0.4
MAX_MEETINGS, MAX_INBOUND = 3, 2

METHODS = ("webform", "import", "api")
_METHOD_CUM = cumulative((0.6, 0.2, 0.2))
_SESSION_CUM = cumulative(SESSION_WEIGHTS)
_PAID = ("paid_search", "paid_social", "display")


class Ids:
    """Id counters of every system, carried from chunk to chunk in processing order."""

    def __init__(self, salt: int):
        self.cdc_lead = 10000
        self.cdc_opp = 5000
        self.hubspot = 3_000_000 + salt % 1000
        self.sf_lead = 0
        self.sf_opp = 0
        self.salt = salt

    def next_cdc_lead(self) -> int:
        self.cdc_lead += 1
        return self.cdc_lead

    def next_cdc_opp(self) -> int:
        self.cdc_opp += 1
        return self.cdc_opp

    def next_hubspot(self, d: Draws) -> int:
        self.hubspot += 1 + (d.below(3) if d.chance(0.3) else 0)  # deleted contacts leave gaps
        return self.hubspot

    def next_sf(self, prefix: str) -> str:
        if prefix == "00Q":
            self.sf_lead += 1
            return salesforce_id("00Q", self.sf_lead, self.salt)
        self.sf_opp += 1
        return salesforce_id("006", self.sf_opp, self.salt)


class LeadRec:
    """A lead row in the operational CRM; `lead_id` (lead_<row id>) is what events carry."""

    __slots__ = (
        "cdc_id",
        "created",
        "deleted_at",
        "fields",
        "history",
        "hubspot_ref",
        "lead_id",
        "merged_at",
        "merged_into",
        "method",
        "primary",
        "user_id",
    )

    def __init__(self, cdc_id, created, method, user_id, fields, primary):
        self.cdc_id, self.lead_id, self.created = cdc_id, f"lead_{cdc_id}", created
        self.method, self.user_id, self.fields, self.primary = method, user_id, fields, primary
        self.history: list[tuple] = []  # (ts, "update", {field: value}) or (ts, "stage", (from, to, reason))
        self.merged_into = None
        self.merged_at = self.deleted_at = None
        self.hubspot_ref = None


class Opp:
    __slots__ = (
        "amount",
        "closed_amount",
        "closed_at",
        "created",
        "expected_close",
        "lead",
        "loss_reason",
        "name",
        "opp_id",
        "owner",
        "stages",
        "won",
    )


class SourceRec:
    """A HubSpot contact or Salesforce lead: export fields plus dated edits and merge state."""

    __slots__ = ("created", "fields", "history", "merged_at", "merged_into", "rec_id")

    def __init__(self, rec_id, created, fields):
        self.rec_id, self.created, self.fields = rec_id, created, fields
        self.history: list[tuple] = []  # (ts, {field: value})
        self.merged_into = None
        self.merged_at = None


class Journey:
    __slots__ = (
        "activities",
        "consents",
        "converted_at",
        "cookie",
        "exposed",
        "hubspot",
        "inbound",
        "labels",
        "leads",
        "meetings_held",
        "method",
        "opps",
        "p",
        "p_without",
        "person",
        "replied",
        "revenue",
        "salesforce",
        "sf_opps",
        "stages",
        "touches",
        "will_convert",
        "won_opp",
    )


def _rep(d: Draws, country: str) -> tuple[int, str]:
    lo, hi = ref.REP_REGION[country]
    return ref.REPS[d.int_between(lo, hi - 1)]


def _lead_fields(d: Draws, p: Person, method: str, email: str, owner: int, lead_source: str) -> dict:
    """What the operational CRM received: forms leave fields empty, badge scanners shout in capitals."""
    base, suffix, _ = p.company
    shout = method == "import" and d.chance(0.15)
    casing = 0.04 if method == "webform" else 0.02
    f = {
        "email": email_variant(d, email, p_case=0.06, p_gmail=0.05, p_tag=0.03),
        "first_name": name_variant(d, p.first, p.nick, p_nick=0.12, p_typo=0.01, p_case=casing),
        "last_name": name_variant(d, p.last, p_typo=0.01, p_case=casing),
        "phone": None, "company": company_variant(d, base, suffix, p_variant=0.35, p_case=0.05),
        "street": None, "city": None, "postal_code": None, "state": None, "country": p.country,
        "job_title": p.title if d.chance(0.8) else None, "lead_source": lead_source, "stage": "new",
        "owner_id": owner, "employee_count": None,
    }
    if shout:
        for k in ("first_name", "last_name", "company"):
            f[k] = f[k].upper()
    if d.chance({"webform": 0.5, "import": 0.8, "api": 0.6}[method]):
        f["phone"] = phone_text(d, p.country, p.phone, p.phone_area_len)
    if d.chance({"webform": 0.15, "import": 0.7, "api": 0.3}[method]):
        f["street"] = street_variant(d, p.street, p_abbrev=0.3)
        f["city"], f["postal_code"], f["state"] = p.city, p.postal, p.state
    elif d.chance(0.3):
        f["city"] = p.city
    if method == "import" and d.chance(0.5):
        f["employee_count"] = p.employees
    return f


def _email_typo(email: str) -> str:
    local, domain = email.split("@", 1)
    for a, b in (("gmail", "gmial"), ("outlook", "outlok"), (".com", ".con"), (".de", ".d"), (".co.uk", ".co.k")):
        if a in domain:
            return f"{local}@{domain.replace(a, b, 1)}"
    return f"{local}@{domain[:1]}{domain}"


class Simulator:
    def __init__(self, period, book: CampaignBook, ids: Ids):
        self.period, self.book, self.ids = period, book, ids
        self.start, self.end = period.start, period.end

    # ---- helpers -------------------------------------------------------------------------------
    def _day(self, ts: int) -> int:
        return (ts - self.start) // DAY

    def _touch(self, j: Journey, d: Draws, ts: int, channel: str, route: str, *, user_id=None, lead_id=None,
               touch_type=None):
        camp = self.book.pick(d, channel, self._day(ts))
        if touch_type is None:
            touch_type = "email_click" if channel == "email" and d.chance(0.4) else (
                "email_open" if channel == "email" else "click" if route == "ads" or channel in _PAID else "visit")
        j.touches.append((ts, channel, camp, touch_type, user_id, lead_id, route))

    # ---- the person ------------------------------------------------------------------------------
    def simulate(self, p: Person, d: Draws) -> Journey:
        j = Journey()
        j.person = p
        t0 = p.t_lead
        j.touches, j.activities, j.opps, j.consents, j.labels = [], [], [], [], []
        j.hubspot, j.salesforce, j.sf_opps, j.leads = [], [], [], []
        method = d.weighted(METHODS, _METHOD_CUM)
        j.method = method
        has_cookie = method == "webform" or (method == "api" and d.chance(0.4))
        j.cookie = "user_" + d.short_token(12) if has_cookie else None

        # Exposure: which channels reached this person before any conversion.
        exposed = set()
        session = None
        if method == "webform":
            session = d.weighted(SESSION_CHANNELS, _SESSION_CUM)
            exposed.add(session)
        elif method == "import":
            exposed.add("events")
        else:
            exposed.add("referral")
        for ch in CHANNELS:
            if d.chance(EXPOSURE[ch]):
                exposed.add(ch)
        j.exposed = [c for c in CHANNELS if c in exposed]
        lead_source = session or ("events" if method == "import" else "referral")

        # Engagement, driven by latent intent.
        z = p.intent
        contacted = d.chance(0.9)
        n_calls = 2 + d.poisson(3.0) if contacted else 0
        connected = [d.chance(sigmoid(-0.8 + 0.7 * z)) for _ in range(n_calls)]
        n_emails = 3 + d.poisson(2.5) if contacted else 0
        bounced = n_emails > 0 and d.chance(0.03)
        replies = d.poisson(math.exp(-1.1 + 0.8 * z)) if n_emails and not bounced else 0
        inbound = d.poisson(math.exp(-1.7 + 0.9 * z))
        engaged = any(connected) or replies > 0 or inbound > 0
        n_meet = d.poisson(math.exp(-0.3 + 0.8 * z)) if engaged else 0
        held = [d.chance(0.82) for _ in range(n_meet)]
        n_held = sum(held)
        demo = n_held > 0 and d.chance(0.55)
        j.meetings_held, j.replied, j.inbound = n_held, int(replies > 0), inbound

        # The true conversion probability and the drawn outcome.
        base = (B0 + COEF["meetings_held"] * min(n_held, MAX_MEETINGS) + COEF["replied"] * (replies > 0)
                + COEF["inbound"] * min(inbound, MAX_INBOUND) + COEF["seniority"] * p.seniority
                + COEF["log10_employees"] * (math.log10(p.employees) - 2) + d.normal(0.0, NOISE_SD))
        eta = base + sum(EFFECTS[c] for c in j.exposed)
        j.p = sigmoid(eta)
        j.p_without = {c: sigmoid(eta - EFFECTS[c]) for c in j.exposed}
        j.will_convert = d.chance(j.p)

        # Timeline.
        owner, rep_zone = _rep(d, p.country)
        contacted_at = business_time(t0 + 30 * MINUTE + int(d.exp(20 * HOUR)), rep_zone) if contacted else None
        duration = lambda: int((14 + d.exp(11) + d.exp(11)) * DAY)
        opp_outcome = None
        qualified = False
        disq_at = None
        if j.will_convert:
            t_end = t0 + min(duration(), 75 * DAY)
            opp_outcome, qualified = "won", True
        elif (n_held and d.chance(0.6)) or (engaged and d.chance(0.12)):
            qualified = True
            if d.chance(0.55):
                t_end = t0 + min(duration(), 80 * DAY)
                opp_outcome = "lost"
            else:
                t_end = t0 + 50 * DAY
        elif contacted and not engaged and d.chance(0.55):
            disq_at = t0 + int(d.between(7, 40) * DAY)
            t_end = disq_at
        else:
            t_end = t0 + 50 * DAY
        if contacted_at is not None and contacted_at >= t_end - HOUR:
            contacted_at = t0 + HOUR

        primary_email = p.work_email if (method != "webform" or d.chance(0.7)) else p.personal_email
        fields = _lead_fields(d, p, method, primary_email, owner, lead_source)
        typo_fix = None
        if d.chance(0.02):  # typed wrong in the form, fixed later by the rep
            typo_fix = fields["email"]
            fields["email"] = _email_typo(fields["email"])
        lead = LeadRec(self.ids.next_cdc_lead(), t0, method, j.cookie, fields, True)
        j.leads.append(lead)

        # Sales activities inside [contacted_at, t_end).
        acts = []
        engaged_times = []
        if contacted_at is not None:
            span = max(t_end - contacted_at, 2 * DAY)
            for k, ok in enumerate(connected):
                ts = contacted_at if k == 0 else contacted_at + int(d.u() * 0.7 * span)
                if ok:
                    acts.append((ts, "call", "outbound", "connected", int(d.lognormal(math.log(420), 0.6)), "dialer"))
                    engaged_times.append(ts)
                else:
                    vm = d.chance(0.5)
                    acts.append((ts, "call", "outbound", "voicemail" if vm else "no_answer", 35 if vm else 0, "dialer"))
            first_mail = contacted_at + int(d.between(5, 60) * MINUTE)
            for k in range(n_emails):
                ts = first_mail if k == 0 else first_mail + int(d.u() * 0.7 * span)
                acts.append((ts, "email", "outbound", "bounced" if bounced and k == 0 else "sent", None, "esp"))
                if bounced:
                    break
            for _ in range(replies):
                ts = first_mail + HOUR + int(d.u() * max(t_end - first_mail - 2 * HOUR, HOUR))
                acts.append((ts, "email", "inbound", "replied", None, "crm"))
                engaged_times.append(ts)
        for _ in range(inbound):
            ts = t0 + HOUR + int(d.u() * max(t_end - t0 - 2 * HOUR, HOUR))
            if d.chance(0.5):
                acts.append((ts, "call", "inbound", "connected", int(d.lognormal(math.log(300), 0.5)), "dialer"))
            else:
                acts.append((ts, "email", "inbound", "completed", None, "crm"))
            engaged_times.append(ts)
        engaged_at = min(engaged_times) if engaged_times else None
        first_held = None
        if n_meet and engaged_at is not None:
            lo = engaged_at + DAY
            hi = max(t_end - 6 * HOUR, lo + HOUR)
            times = sorted(lo + int(d.u() * (hi - lo)) for _ in range(n_meet))
            for ts, ok in zip(times, held):
                length = (1800 if d.chance(0.6) else 3600) if ok else 0
                acts.append((ts, "meeting", "outbound", "held" if ok else "no_show", length, "dialer"))
                if ok and first_held is None:
                    first_held = ts
            if demo and first_held is not None:
                ts = first_held + int(d.u() * max(t_end - first_held - 2 * HOUR, HOUR))
                acts.append((ts, "demo", "outbound", "held", int(d.between(1800, 4200)), "crm"))
        if d.chance(0.25) and contacted_at is not None:
            ts = contacted_at + int(d.u() * max(t_end - contacted_at - HOUR, HOUR))
            acts.append((ts, "note", "outbound", None, None, "crm"))
        for ts, typ, direction, outcome, dur, route in acts:
            if direction == "outbound":  # reps work office hours; inbound mail and calls come any time
                ts = business_time(ts, rep_zone)
            ts = max(min(ts, t_end - MINUTE), t0 + MINUTE)
            j.activities.append((ts, lead, typ, direction, outcome, dur, owner, rep_zone, route))

        # Stages on the primary record.
        stages = [(t0, "new")]
        if contacted_at is not None:
            stages.append((contacted_at + 5 * MINUTE, "contacted"))
        if engaged_at is not None or qualified:
            at = engaged_at if engaged_at is not None else stages[-1][0] + int(0.2 * (t_end - stages[-1][0]))
            stages.append((max(at + 10 * MINUTE, stages[-1][0] + HOUR), "engaged"))
        if qualified:
            if first_held:
                at = first_held + int(d.between(1, 3) * DAY)
            else:
                at = stages[-1][0] + int(0.3 * (t_end - stages[-1][0]))
            stages.append((max(at, stages[-1][0] + HOUR), "qualified"))
        opp = None
        if opp_outcome:
            at = stages[-1][0] + int(d.between(1, 5) * DAY)
            at = min(at, t_end - 3 * DAY) if t_end - 3 * DAY > stages[-1][0] + HOUR else stages[-1][0] + HOUR
            stages.append((at, "opportunity"))
            opp = self._opportunity(d, p, lead, at, t_end, opp_outcome, owner)
            j.opps.append(opp)
            if opp_outcome == "won":
                stages.append((opp.closed_at + 10 * MINUTE, "customer"))
            elif d.chance(0.6):
                stages.append((opp.closed_at + int(d.between(1, 48) * HOUR), "disqualified"))
        if disq_at is not None:
            stages.append((max(disq_at, stages[-1][0] + HOUR), "disqualified"))
        j.stages = stages
        prev = "new"
        for ts, st in stages[1:]:
            reason = None
            if st == "disqualified":
                reason = "Opportunity lost" if opp_outcome == "lost" else d.pick(ref.DISQUALIFY_REASONS)
            lead.history.append((ts, "stage", (prev, st, reason)))
            prev = st
        won = opp is not None and opp.won
        j.won_opp = opp if won else None
        j.converted_at = opp.closed_at if won and opp.closed_at < self.end else None
        j.revenue = opp.closed_amount if j.converted_at is not None else 0.0

        # Touches: every exposed channel at least once, all before the close.
        touch_end = t_end if opp_outcome else t0 + 60 * DAY
        self._touches(j, d, p, lead, session, touch_end)

        # Updates to the lead record.
        self._updates(j, d, p, lead, contacted_at, stages, typo_fix)

        # Consent and labels.
        self._consents(j, d, p, lead, session)
        if d.chance(0.03):
            value = "good" if (won or z > 0.8) else d.pick(("poor", "spam", "wrong_contact"))
            j.labels.append((t0 + int(d.between(1, 20) * DAY), lead, "lead_quality", value, f"rep_{owner}"))

        # A second lead record for the same person, sometimes merged by the CRM.
        if d.chance(0.06):
            self._duplicate(j, d, p, lead, owner, rep_zone, touch_end)

        self._hubspot(j, d, p, lead, session)
        self._salesforce(j, d, p, lead, contacted_at, owner)
        return j

    def _opportunity(self, d, p, lead, created, t_end, outcome, owner) -> Opp:
        o = Opp()
        o.opp_id, o.lead, o.created, o.owner = self.ids.next_cdc_opp(), lead, created, owner
        base = math.log(9000) + 0.45 * math.log10(p.employees)
        o.amount = float(round(d.lognormal(base, 0.5), -2)) or 500.0
        o.closed_at = max(t_end, created + 2 * DAY)
        o.expected_close = created + int(d.between(20, 60) * DAY)
        o.won = outcome == "won"
        o.closed_amount = float(round(o.amount * d.between(0.85, 1.05), 2)) if o.won else 0.0
        o.loss_reason = None if o.won else d.pick(ref.LOSS_REASONS)
        span = o.closed_at - created
        o.stages = [(created, "prospecting"), (created + int(0.35 * span), "proposal"),
                    (created + int(0.7 * span), "negotiation"), (o.closed_at, "closed_won" if o.won else "closed_lost")]
        o.name = f"{p.company[0]} - {d.pick(('New Business', 'Platform', 'Annual Plan', 'Pilot'))}"
        return o

    def _touches(self, j, d, p, lead, session, touch_end):
        t0, start = p.t_lead, self.start
        cookie = j.cookie

        def pre_time(max_days=14.0):
            ts = t0 - int(min(d.exp(4 * DAY), max_days * DAY)) - MINUTE
            return ts if ts > start else start + int(d.u() * max(t0 - start, 1))

        def post_time():
            return t0 + HOUR + int(d.u() * max(touch_end - t0 - 2 * HOUR, HOUR))

        for ch in j.exposed:
            n = 1 + d.poisson(EXTRA_TOUCHES[ch])
            for k in range(n):
                if ch == session and k == 0:
                    ts = t0 - int(d.between(2, 25) * MINUTE)
                    self._touch(j, d, max(ts, start), ch, "web", user_id=cookie)
                    self._touch(j, d, t0 - 5, ch, "form", user_id=cookie, touch_type="form_submit")
                elif ch == "events" and j.method == "import" and k == 0:
                    show = self.book.pick(d, "events", self._day(t0))
                    ts = start + show.event_day * DAY + int(d.between(9, 18) * HOUR)
                    if not (start <= ts < t0):
                        ts = t0 - int(d.between(1, 30) * HOUR)
                    j.touches.append((max(ts, start), "events", show, "visit", None, lead, "crm"))
                elif ch == "referral" and j.method == "api" and k == 0:
                    ts = t0 - int(d.between(0.1, 2) * DAY)
                    if cookie:
                        self._touch(j, d, max(ts, start), ch, "web", user_id=cookie)
                    else:
                        self._touch(j, d, max(ts, start), ch, "crm", lead_id=lead)
                elif ch == "email":
                    self._touch(j, d, post_time(), ch, "esp", lead_id=lead)
                elif ch == "events":
                    self._touch(j, d, post_time(), ch, "crm", lead_id=lead, touch_type="visit")
                else:
                    route = "ads" if ch in _PAID and d.chance(0.5) else "web"
                    if cookie and d.chance(0.5):
                        self._touch(j, d, pre_time(), ch, route, user_id=cookie)
                    else:
                        uid = cookie if cookie and d.chance(0.6) else None
                        self._touch(j, d, post_time(), ch, route, user_id=uid, lead_id=lead)

    def _updates(self, j, d, p, lead, contacted_at, stages, typo_fix):
        t0, f = p.t_lead, lead.fields
        ups = []
        if typo_fix:
            ups.append((t0 + int(d.between(1, 10) * DAY), {"email": typo_fix}, "crm"))
        if d.chance(0.35):  # enrichment vendor fills in firmographics
            ch = {"employee_count": p.employees}
            if f["job_title"] is None:
                ch["job_title"] = p.title
            ups.append((t0 + int(d.between(1, 72) * HOUR), ch, "api"))
        if f["phone"] is None and contacted_at is not None and d.chance(0.4):
            at = contacted_at + int(d.between(0, 5) * DAY)
            ups.append((at, {"phone": phone_text(d, p.country, p.phone, p.phone_area_len)}, "crm"))
        if d.chance(0.08):
            other, _ = _rep(d, p.country)
            ups.append((t0 + int(d.between(2, 40) * DAY), {"owner_id": other}, "crm"))
        if p.move is not None:
            when, street, postal, city, state, _ = p.move
            ups.append((when, {"street": street, "city": city, "postal_code": postal, "state": state}, "import"))
        if d.chance(0.04):
            ups.append((t0 + int(d.between(10, 80) * DAY), {"job_title": d.pick(ref.JOB_TITLES)[0]}, "hubspot"))
        qual = [ts for ts, st in stages if st == "qualified"]
        if qual and d.chance(0.6):
            value = float(round(d.lognormal(math.log(12000), 0.6), -2))
            ups.append((qual[0] + HOUR, {"estimated_value": value}, "salesforce"))
        for ts, ch, src in ups:
            lead.history.append((ts, "update", ch, src))
        lead.history.sort(key=lambda h: h[0])

    def _consents(self, j, d, p, lead, session):
        t0 = p.t_lead
        eu = p.country in ("GB", "DE", "FR", "NL")
        if j.cookie and d.chance(0.9 if eu else 0.45):  # cookie banner on the first visit
            first = min((t[0] for t in j.touches if t[4] == j.cookie), default=t0 - HOUR)
            j.consents.append((max(first - 3, self.start), "analytics", d.chance(0.8), "banner", j.cookie, None, "cmp"))
        marketing = True
        if j.method == "webform":
            marketing = d.chance(0.85)
            j.consents.append((t0 + 1, "marketing", marketing, "form", j.cookie, lead, "form"))
        elif j.method == "import":
            j.consents.append((t0 + 60, "marketing", True, "import", None, lead, "crm"))
        else:
            j.consents.append((t0 + 2, "contract", True, "form", None, lead, "partner"))
        if marketing and "email" in j.exposed and d.chance(0.04):
            j.consents.append((t0 + int(d.between(5, 60) * DAY), "marketing", False, "email_link", None, lead, "cmp"))

    def _duplicate(self, j, d, p, lead, owner, zone, touch_end):
        t_dup = p.t_lead + int(d.between(2, 40) * DAY)
        web = [c for c in j.exposed if c in WEB_CHANNELS]
        method = d.weighted(METHODS, _METHOD_CUM)
        if method == "webform" and not web:
            method = "import"
        cookie = "user_" + d.short_token(12) if method == "webform" else None
        other = p.personal_email if lead.fields["email"].lower() == p.work_email else p.work_email
        email = other if d.chance(0.6) else email_variant(d, lead.fields["email"], p_case=0.5, p_gmail=0.5, p_tag=0.3)
        src = d.pick(web) if method == "webform" else ("events" if method == "import" else "referral")
        fields = _lead_fields(d, p, method, email, owner, src)
        fields["first_name"] = name_variant(d, fields["first_name"], p.nick, p_nick=0.3, p_typo=0.1)
        dup = LeadRec(self.ids.next_cdc_lead(), t_dup, method, cookie, fields, False)
        j.leads.append(dup)
        merged_at = t_dup + int(d.between(1, 20) * DAY) if d.chance(0.5) else None
        if merged_at is not None:
            dup.merged_into, dup.merged_at, dup.deleted_at = lead, merged_at, merged_at + int(d.between(1, 30))
        if cookie:  # the person came back on another device and filled in a form again
            for _ in range(d.int_between(0, 2)):
                ts = t_dup - int(d.between(0.1, 5) * DAY)
                self._touch(j, d, max(ts, self.start), d.pick(web), "web", user_id=cookie)
            self._touch(j, d, t_dup - 20 * MINUTE, src, "web", user_id=cookie)
            self._touch(j, d, t_dup - 5, src, "form", user_id=cookie, touch_type="form_submit")
        live_until = merged_at if merged_at is not None else touch_end
        # Some later e-mails and web visits are recorded against the duplicate.
        for i, t in enumerate(j.touches):
            if t[5] is lead and t_dup < t[0] < live_until and t[6] in ("esp", "web") and d.chance(0.4):
                j.touches[i] = t[:5] + (dup,) + t[6:]
        if d.chance(0.5):
            ts = t_dup + int(d.between(1, 48) * HOUR)
            if merged_at is None or ts < merged_at:
                dup.history.append((ts, "stage", ("new", "contacted", None)))
                call = business_time(ts + HOUR, zone)
                if merged_at is None or call < merged_at:
                    j.activities.append((call, dup, "call", "outbound", "voicemail", 35, owner, zone, "dialer"))

    def _hubspot(self, j, d, p, lead, session):
        present = (j.method == "webform" or (j.method == "import" and d.chance(0.9))
                   or (j.method == "api" and d.chance(0.5)))
        if not present:
            return
        t0 = p.t_lead
        created = t0 - int(d.between(1, 30)) if j.method == "webform" else t0 + int(d.between(60, 2 * HOUR))
        rec = self._hs_rec(d, p, created, lead.fields["email"], session or lead.fields["lead_source"], j.method)
        j.hubspot.append(rec)
        if j.method == "webform" and d.chance(0.4):
            lead.hubspot_ref = rec.rec_id
        lifecycle = {"new": "Lead", "contacted": "Lead", "engaged": "Marketing Qualified Lead",
                     "qualified": "Sales Qualified Lead", "opportunity": "Opportunity", "customer": "Customer",
                     "disqualified": "Other"}
        last = "Lead"
        for ts, st in j.stages[1:]:
            if lifecycle[st] != last:
                rec.history.append((ts + int(d.between(60, 3 * HOUR)), {"Lifecycle Stage": lifecycle[st]}))
                last = lifecycle[st]
        if p.move is not None and d.chance(0.8):
            when, street, postal, city, state, _ = p.move
            moved = {"Street Address": street, "City": city, "Postal Code": postal, "State/Region": state}
            rec.history.append((when + int(d.between(1, 10) * DAY), moved))
        for ts, kind, *rest in lead.history:
            if kind == "update" and "job_title" in rest[0]:
                rec.history.append((ts + HOUR, {"Job Title": rest[0]["job_title"]}))
            if kind == "update" and "phone" in rest[0] and not rec.fields["Phone Number"]:
                rec.history.append((ts + HOUR, {"Phone Number": rest[0]["phone"]}))
        rec.history.sort(key=lambda h: h[0])
        # A second contact for the same person (HubSpot dedupes by e-mail, so a different address).
        dup_lead = j.leads[1] if len(j.leads) > 1 else None
        if (dup_lead is not None and dup_lead.method != "api" and d.chance(0.7)) or d.chance(0.03):
            when = dup_lead.created + 30 if dup_lead is not None else t0 + int(d.between(1, 60) * DAY)
            other = p.personal_email if rec.fields["Email"].lower() == p.work_email else p.work_email
            dup = self._hs_rec(d, p, when, other, lead.fields["lead_source"], "import")
            j.hubspot.append(dup)
            if d.chance(0.6):
                dup.merged_into, dup.merged_at = rec, when + int(d.between(1, 30) * DAY)

    def _hs_rec(self, d, p, created, email, source, method) -> SourceRec:
        base, suffix, _ = p.company
        street = street_variant(d, p.street, p_abbrev=0.3)
        if p.suite:
            street = street + ("\n" if d.chance(0.6) else ", ") + p.suite
        origin = {"organic_search": "Organic Search", "paid_search": "Paid Search", "paid_social": "Paid Social",
                  "organic_social": "Organic Social", "email": "Email Marketing", "display": "Other Campaigns",
                  "referral": "Referrals", "direct": "Direct Traffic", "events": "Offline Sources"}[source]
        has_addr = d.chance(0.55)
        f = {
            "First Name": name_variant(d, p.first, p.nick, p_nick=0.15, p_typo=0.02, p_case=0.03),
            "Last Name": name_variant(d, p.last, p_typo=0.02, p_case=0.03),
            "Email": email_variant(d, email, p_case=0.08, p_gmail=0.05, p_tag=0.03),
            "Phone Number": phone_text(d, p.country, p.phone, p.phone_area_len) if d.chance(0.6) else "",
            "Company Name": company_variant(d, base, suffix, p_variant=0.4, p_case=0.05) if d.chance(0.95) else "",
            "Street Address": street if has_addr else "",
            "City": p.city if has_addr or d.chance(0.4) else "",
            "Postal Code": p.postal if has_addr else "",
            "State/Region": p.state if has_addr else "",
            "Country/Region": ref.COUNTRY_NAMES[p.country] if d.chance(0.8) else (p.country if d.chance(0.5) else ""),
            "Lifecycle Stage": "Lead",
            "Original Source": origin if method != "import" else "Offline Sources",
            "Job Title": p.title if d.chance(0.75) else "",
            "Number of Employees": str(p.employees) if d.chance(0.5) else "",
        }
        return SourceRec(self.ids.next_hubspot(d), created, f)

    def _salesforce(self, j, d, p, lead, contacted_at, owner):
        if contacted_at is None or not d.chance(0.85):
            return
        created = contacted_at + int(d.between(60, 3 * HOUR))
        rec = self._sf_rec(d, p, created, lead.fields["email"], lead.fields["lead_source"])
        j.salesforce.append(rec)
        status = {"new": "Open - Not Contacted", "contacted": "Working - Contacted", "engaged": "Working - Contacted",
                  "qualified": "Working - Contacted", "opportunity": "Closed - Converted",
                  "customer": "Closed - Converted", "disqualified": "Closed - Not Converted"}
        for ts, st in j.stages:  # the status when Salesforce got the lead
            if ts <= created:
                rec.fields["Lead Status"] = status[st]
        last = rec.fields["Lead Status"]
        for ts, st in j.stages:
            if ts > created and status[st] != last:
                rec.history.append((ts + int(d.between(60, 2 * HOUR)), {"Lead Status": status[st]}))
                last = status[st]
        for o in j.opps:
            so = SourceRec(self.ids.next_sf("006"), o.created + int(d.between(60, HOUR)), {})
            so.fields = {"Opportunity Name": o.name, "Account Name": company_variant(d, *p.company[:2], p_variant=0.5),
                         "Lead": rec, "Amount": o.amount, "Lead Source": rec.fields["Lead Source"],
                         "Expected Close": o.expected_close, "Stages": o.stages, "Closed At": o.closed_at}
            j.sf_opps.append(so)
        if d.chance(0.04):  # a rep keys the same person in again from a business card
            when = created + int(d.between(1, 30) * DAY)
            email = p.work_email if d.chance(0.7) else p.personal_email
            dup = self._sf_rec(d, p, when, email, lead.fields["lead_source"])
            dup.fields["First Name"] = name_variant(d, p.first, p.nick, p_nick=0.4, p_typo=0.15)
            j.salesforce.append(dup)
            if d.chance(0.5):
                dup.merged_into, dup.merged_at = rec, when + int(d.between(1, 20) * DAY)

    def _sf_rec(self, d, p, created, email, source) -> SourceRec:
        base, suffix, _ = p.company
        legacy = d.chance(0.5)  # an older integration drops accents
        fix = strip_accents if legacy else (lambda s: s)
        lead_source = {"organic_search": "Web", "direct": "Web", "paid_search": "Advertisement",
                       "display": "Advertisement", "paid_social": "Advertisement", "organic_social": "Social Media",
                       "email": "Email", "referral": "Partner Referral", "events": "Trade Show"}[source]
        has_addr = d.chance(0.6)
        f = {
            "First Name": fix(name_variant(d, p.first, p.nick, p_nick=0.2, p_typo=0.04, p_case=0.02)),
            "Last Name": fix(name_variant(d, p.last, p_typo=0.04, p_case=0.02)),
            "Email": email_variant(d, email, p_case=0.1, p_gmail=0.05) if d.chance(0.95) else "",
            "Phone": phone_text(d, p.country, p.phone, p.phone_area_len) if d.chance(0.75) else "",
            "Company": fix(company_variant(d, base, suffix, p_variant=0.6, p_case=0.08)),
            "Street": fix(street_variant(d, p.street, p_abbrev=0.5)) if has_addr else "",
            "City": fix(p.city) if has_addr or d.chance(0.5) else "",
            "Zip/Postal Code": p.postal if has_addr else "",
            "State/Province": fix(p.state) if has_addr else "",
            "Country": p.country if d.chance(0.5) else ref.COUNTRY_NAMES[p.country],
            "Lead Source": lead_source,
            "Lead Status": "Open - Not Contacted",
        }
        return SourceRec(self.ids.next_sf("00Q"), created, f)


def anonymous_visits(d: Draws, book: CampaignBook, start: int, end: int) -> list[tuple]:
    """A visitor who never becomes a lead: a few touches under a cookie id only."""
    cookie = "user_" + d.short_token(12)
    ts = start + int(d.u() * (end - start))
    out = []
    for _ in range(1 + d.poisson(1.0)):
        ch = d.weighted(SESSION_CHANNELS, _SESSION_CUM)
        if ch == "email":
            ch = "direct"
        route = "ads" if ch in _PAID and d.chance(0.5) else "web"
        camp = book.pick(d, ch, (ts - start) // DAY)
        out.append((ts, ch, camp, "click" if route == "ads" or ch in _PAID else "visit", cookie, None, route))
        ts = min(ts + int(d.exp(3 * DAY)), end - 1)
    return out
