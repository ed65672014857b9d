"""Journeys rendered as canonical events (CONTRACT §5), the way each producer really sends them:
its own sources, schema versions, property placement, clock offsets and context.
"""
from __future__ import annotations

import calendar

from . import reference as ref
from .campaigns import CH, CampaignBook
from .clock import DAY, iso, offset_minutes
from .funnel import Journey, LeadRec
from .rand import Draws
from .sinks import json_encoder

_dumps_compact = json_encoder(",", ":")
_dumps_spaced = json_encoder(", ", ": ")
SPACED = {"crm-api", "partner-api"}  # these producers use json.dumps defaults


def _date(y: int, m: int, d: int) -> int:
    return calendar.timegm((y, m, d, 0, 0, 0))


# When each producer moved to the newer schema version (events before use the older one).
TOUCH_V2 = {"web-1": _date(2026, 4, 1), "esp-1": _date(2026, 4, 15), "crm-api": _date(2026, 4, 1)}  # ads-feed: never
ACTIVITY_V2 = {"dialer-1": _date(2026, 6, 15), "esp-1": _date(2026, 6, 1), "crm-api": _date(2026, 6, 1)}
_CRM_SOURCES = {
    "lead_stage_changed": ("crm", "crm", "api", "salesforce", "hubspot", "cdc"),
    "opportunity_created": ("crm", "salesforce", "salesforce", "api", "cdc"),
    "opportunity_closed": ("crm", "salesforce", "salesforce", "api", "cdc"),
    "lead_merged": ("cdc", "crm"),
}
_CLICK_PREFIX = {"paid_search": "EAIaIQobChMI", "paid_social": "li_", "display": "CjwKCAjw"}


class EventRenderer:
    def __init__(self, landing, book: CampaignBook, period):
        self.landing, self.book, self.period = landing, book, period
        self.end, self.start = period.end, period.start

    # ---- envelope ----------------------------------------------------------------------------
    def _emit(self, d: Draws, producer: str, etype: str, version: str, ts: int, source: str, lead_id, user_id,
              props: dict, context: dict | None, *, off: int = 0, zulu: bool = True, shape: str = "attributes",
              channel: int = -1, null_lead: bool = False) -> None:
        millis = d.below(1000) if producer == "ads-feed" else None
        ev = {"event_type": etype, "schema_version": version, "event_id": d.event_id(),
              "occurred_at": iso(ts, off, zulu=zulu, millis=millis), "source": source}
        if lead_id is not None or null_lead:
            ev["lead_id"] = lead_id
        if user_id is not None:
            ev["user_id"] = user_id
        ev["producer_id"] = producer
        if shape == "attributes":
            ev["attributes"] = props
        elif shape == "touch":
            ev["touch"] = props
        else:
            ev.update(props)
        if context:
            ev["context"] = context
        text = (_dumps_spaced if producer in SPACED else _dumps_compact)(ev)
        self.landing.add(producer, ts, text.encode("utf-8"), channel)

    @staticmethod
    def _lid(lead: LeadRec | None, ts: int):
        """The lead id an event carries: a merged duplicate's events go to the survivor."""
        if lead is None:
            return None
        if lead.merged_at is not None and ts >= lead.merged_at:
            return lead.merged_into.lead_id
        return lead.lead_id

    def _web_context(self, d: Draws, p, channel: str, url: str | None) -> dict:
        ctx = {"ip": p.ip, "user_agent": p.user_agent}
        refs = ref.REFERRERS.get(channel) or ()
        if refs:
            ctx["referrer"] = d.pick(refs)
        if url:
            ctx["page_url"] = url
        ctx["locale"] = p.locale
        ctx["country"] = p.country
        return ctx

    # ---- a journey ---------------------------------------------------------------------------
    def render(self, j: Journey, d: Draws) -> list[str]:
        """Emit every event of the journey that happened before the period's end; returns the lead ids landed."""
        end = self.end
        p = j.person
        landed = []
        for lead in j.leads:
            if lead.created >= end:
                continue
            landed.append(lead.lead_id)
            self._lead_created(d, j, lead)
            for ts, kind, *rest in lead.history:
                if ts >= end or (lead.merged_at is not None and ts >= lead.merged_at):
                    continue
                if kind == "stage":
                    frm, to, reason = rest[0]
                    props = {"from_stage": frm, "to_stage": to}
                    if reason:
                        props["reason"] = reason
                    src = d.pick(_CRM_SOURCES["lead_stage_changed"])
                    self._emit(d, "crm-api", "lead_stage_changed", "2026-01-1", ts, src, lead.lead_id, None, props,
                               None, off=offset_minutes("America/New_York", ts))
                else:
                    changes, src = rest
                    props = {k: (f"rep_{v}" if k == "owner_id" else v) for k, v in changes.items()}
                    props["changed_fields"] = list(changes)
                    self._emit(d, "crm-api", "lead_updated", "2026-01-1", ts, src, lead.lead_id, None, props, None,
                               off=offset_minutes("America/New_York", ts))
            if lead.merged_at is not None and lead.merged_at < end:
                ts = lead.merged_at
                props = {"merged_lead_id": lead.lead_id, "match_rule": "crm_merge",
                         "decided_by": f"rep_{lead.fields['owner_id']}"}
                self._emit(d, "crm-api", "lead_merged", "2026-01-1", ts, d.pick(_CRM_SOURCES["lead_merged"]),
                           lead.merged_into.lead_id, None, props, None, off=offset_minutes("America/New_York", ts))
        for t in j.touches:
            if t[0] < end:
                self._touch(d, p, t)
        for a in j.activities:
            if a[0] < end:
                self._activity(d, a)
        for o in j.opps:
            self._opportunity(d, o)
        for c in j.consents:
            if c[0] < end:
                self._consent(d, p, c)
        for ts, lead, name, value, by in j.labels:
            if ts < end:
                self._emit(d, "crm-api", "manual_label", "2026-01-1", ts, "manual", self._lid(lead, ts), None,
                           {"label_name": name, "label_value": value, "labelled_by": by}, None,
                           off=offset_minutes("America/New_York", ts))
        return landed

    def _lead_created(self, d: Draws, j: Journey, lead: LeadRec) -> None:
        p, f, ts = j.person, lead.fields, lead.created
        props = {}
        for k in ("email", "first_name", "last_name", "phone", "company", "street", "city", "postal_code", "state",
                  "country", "job_title", "lead_source", "stage", "owner_id", "employee_count"):
            v = f.get(k)
            if v is not None:
                props[k] = f"rep_{v}" if k == "owner_id" else v
        if lead.method == "webform":
            if d.chance(0.5):
                props["country"] = ref.COUNTRY_NAMES[p.country]
            form = next((t for t in j.touches if t[3] == "form_submit" and t[4] == lead.user_id), None)
            if form is not None and form[2] is not None:
                c = form[2]
                props.update(utm_source=c.utm_source, utm_medium=c.utm_medium, utm_campaign=c.campaign_id)
            if lead.hubspot_ref is not None:
                props["external_ids"] = {"hubspot": str(lead.hubspot_ref)}
            ctx = self._web_context(d, p, f["lead_source"], f"{ref.SITE}/demo")
            self._emit(d, "web-1", "lead_created", "2026-01-1", ts, "webform", lead.lead_id, lead.user_id, props, ctx,
                       off=offset_minutes(p.zone, ts), zulu=False)
        elif lead.method == "import":
            self._emit(d, "crm-api", "lead_created", "2026-01-1", ts, "import", lead.lead_id, None, props, None,
                       off=offset_minutes("America/New_York", ts))
        else:
            self._emit(d, "partner-api", "lead_created", "2026-01-1", ts, "api", lead.lead_id, lead.user_id, props,
                       {"country": p.country}, off=offset_minutes("Asia/Kolkata", ts))

    def _touch(self, d: Draws, p, t) -> None:
        ts, channel, camp, touch_type, user_id, lead, route = t
        lead_id = self._lid(lead, ts)
        props = {"channel": channel}
        if camp is not None:
            props["campaign_id"] = camp.campaign_id
        day = (ts - self.start) // DAY
        if camp is not None and (channel in ("paid_search", "paid_social", "display", "events", "referral")
                                 or touch_type == "email_click"):
            self.book.count_click(day, camp)
        ch = CH[channel]
        if route == "ads":
            props["source_platform"] = camp.platform if camp else "google_ads"
            props["click_id"] = _CLICK_PREFIX.get(channel, "") + d.token()
            props["creative_id"] = f"cr_{camp.idx if camp else 0:02d}{d.below(8)}"
            props["position"] = d.pick(("first", "middle", "last"))
            self._emit(d, "ads-feed", "campaign_touch", "2026-01-1", ts, "ads", lead_id, user_id, props,
                       {"country": p.country, "ip": p.ip}, shape="touch", channel=ch)
            return
        if route in ("web", "form"):
            v2 = ts >= TOUCH_V2["web-1"]
            url = ref.SITE + d.pick(ref.LANDING_PATHS)
            if camp is not None:
                props.update(utm_source=camp.utm_source, utm_medium=camp.utm_medium, utm_campaign=camp.campaign_id)
                url += f"?utm_source={camp.utm_source}&utm_medium={camp.utm_medium}&utm_campaign={camp.campaign_id}"
            if route == "form":
                url = f"{ref.SITE}/demo"
            props["landing_page"] = url
            if v2:
                props["touch_type"] = touch_type
            version = "2026-04-1" if v2 else "2026-01-1"
            shape = "top" if d.chance(0.2) else "attributes"
            self._emit(d, "web-1", "campaign_touch", version, ts, "webform" if route == "form" else "web", lead_id,
                       user_id, props, self._web_context(d, p, channel, url), off=offset_minutes(p.zone, ts),
                       zulu=False, shape=shape, channel=ch, null_lead=lead_id is None)
            return
        if route == "esp":
            v2 = ts >= TOUCH_V2["esp-1"]
            props.update(utm_source=camp.utm_source, utm_medium="email", utm_campaign=camp.campaign_id)
            if v2:
                props["touch_type"] = touch_type
            ctx = {"user_agent": d.pick(ref.EMAIL_CLIENT_AGENTS)}
            if touch_type == "email_click":
                path = d.pick(ref.LANDING_PATHS)
                props["landing_page"] = f"{ref.SITE}{path}?utm_source={camp.utm_source}&utm_medium=email"
                ctx["ip"] = p.ip
            self._emit(d, "esp-1", "campaign_touch", "2026-04-1" if v2 else "2026-01-1", ts, "email_platform", lead_id,
                       None, props, ctx, channel=ch)
            return
        # route == "crm": offline touches recorded by the marketing hub (trade shows, partner referrals)
        v2 = ts >= TOUCH_V2["crm-api"]
        if v2:
            props["touch_type"] = touch_type
        if camp is not None:
            props["source_platform"] = camp.platform
        self._emit(d, "crm-api", "campaign_touch", "2026-04-1" if v2 else "2026-01-1", ts, "hubspot", lead_id, None,
                   props, None, off=offset_minutes("America/New_York", ts), channel=ch)

    def _activity(self, d: Draws, a) -> None:
        ts, lead, typ, direction, outcome, dur, owner, rep_zone, route = a
        producer = {"dialer": "dialer-1", "esp": "esp-1", "crm": "crm-api"}[route]
        v2 = ts >= ACTIVITY_V2[producer]
        props = {"activity_type": typ, "direction": direction}
        if v2:
            props["outcome"] = outcome or "completed"
            if dur is not None:
                props["duration_seconds"] = dur
            props["owner_id"] = f"rep_{owner}"
        else:
            if outcome is not None:
                props["outcome"] = outcome
            if dur is not None:
                props["duration_sec"] = dur
            props["rep_id"] = f"rep_{owner}"
        version = "2026-06-1" if v2 else "2026-01-1"
        if route == "dialer":
            self._emit(d, producer, "activity_logged", version, ts, "dialer", self._lid(lead, ts), None, props, None,
                       off=offset_minutes(rep_zone, ts))
        elif route == "esp":
            self._emit(d, producer, "activity_logged", version, ts, "email_platform", self._lid(lead, ts), None,
                       props, None)
        else:
            self._emit(d, producer, "activity_logged", version, ts, d.pick(("salesforce", "hubspot", "api")),
                       self._lid(lead, ts), None, props, None, off=offset_minutes("America/New_York", ts))

    def _opportunity(self, d: Draws, o) -> None:
        if o.created >= self.end:
            return
        lead_id = self._lid(o.lead, o.created)
        props = {"opportunity_id": f"opp_{o.opp_id}", "amount": o.amount, "currency": "USD",
                 "expected_close_date": iso(o.expected_close), "owner_id": f"rep_{o.owner}"}
        src = d.pick(_CRM_SOURCES["opportunity_created"])
        self._emit(d, "crm-api", "opportunity_created", "2026-01-1", o.created, src, lead_id, None, props, None,
                   off=offset_minutes("America/New_York", o.created))
        if o.closed_at < self.end:
            props = {"opportunity_id": f"opp_{o.opp_id}", "outcome": "won" if o.won else "lost"}
            if o.won:
                props["closed_amount"] = o.closed_amount
                props["currency"] = "USD"
            else:
                props["loss_reason"] = o.loss_reason
            src = d.pick(_CRM_SOURCES["opportunity_closed"])
            lead_id = self._lid(o.lead, o.closed_at)
            self._emit(d, "crm-api", "opportunity_closed", "2026-01-1", o.closed_at, src, lead_id, None, props, None,
                       off=offset_minutes("America/New_York", o.closed_at))

    def _consent(self, d: Draws, p, c) -> None:
        ts, purpose, granted, method, user_id, lead, route = c
        props = {"purpose": purpose, "granted": granted, "method": method, "policy_version": "2025-11"}
        lead_id = self._lid(lead, ts)
        if route == "cmp":
            ctx = None
            if user_id:  # a banner choice comes from a browser
                ctx = {"ip": p.ip, "user_agent": p.user_agent, "locale": p.locale, "country": p.country}
            self._emit(d, "cmp-1", "consent_changed", "2026-01-1", ts, "consent_platform", lead_id, user_id, props, ctx,
                       off=offset_minutes(p.zone, ts), zulu=False)
        elif route == "form":
            self._emit(d, "web-1", "consent_changed", "2026-01-1", ts, "webform", lead_id, user_id, props,
                       self._web_context(d, p, "direct", f"{ref.SITE}/demo"), off=offset_minutes(p.zone, ts),
                       zulu=False)
        elif route == "partner":
            self._emit(d, "partner-api", "consent_changed", "2026-01-1", ts, "api", lead_id, None, props,
                       {"country": p.country}, off=offset_minutes("Asia/Kolkata", ts))
        else:
            self._emit(d, "crm-api", "consent_changed", "2026-01-1", ts, "crm", lead_id, None, props, None,
                       off=offset_minutes("America/New_York", ts))

    def render_anonymous(self, d: Draws, touches: list, country: str, ip: str, ua: str, zone: str, locale: str) -> None:
        class _P:  # the few person fields touch rendering needs
            pass
        p = _P()
        p.country, p.ip, p.user_agent, p.zone, p.locale = country, ip, ua, zone, locale
        for t in touches:
            if t[0] < self.end:
                self._touch(d, p, t)
        if touches and d.chance(0.4):
            ts = max(touches[0][0] - 3, self.start)
            self._consent(d, p, (ts, "analytics", d.chance(0.7), "banner", touches[0][4], None, "cmp"))
