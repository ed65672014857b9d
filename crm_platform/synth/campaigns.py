"""Channels, campaigns, the planted channel effects, and the daily spend export.

The effects are log-odds added to a lead's conversion probability when the lead was touched by the
channel before converting. Some are clearly strong, some near zero, so attribution and scoring
rankings can be tested against them.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from .clock import DAY, date_text

CHANNELS = ("paid_search", "organic_search", "paid_social", "organic_social", "email", "display",
            "referral", "events", "direct")
CH = {c: i for i, c in enumerate(CHANNELS)}

# Log-odds per channel touched before conversion (the truth attribution is checked against).
EFFECTS = {
    "events": 1.7, "referral": 1.35, "email": 0.8, "paid_search": 0.5, "organic_search": 0.3,
    "direct": 0.15, "organic_social": 0.05, "paid_social": 0.0, "display": -0.05,
}
# Chance that a lead was exposed to the channel at all (independent of intent, so the effects are causal),
# and the extra touches beyond the first (Poisson mean).
EXPOSURE = {
    "paid_search": 0.28, "organic_search": 0.28, "paid_social": 0.3, "organic_social": 0.1, "email": 0.6,
    "display": 0.3, "referral": 0.07, "events": 0.1, "direct": 0.25,
}
EXTRA_TOUCHES = {
    "paid_search": 1.6, "organic_search": 1.5, "paid_social": 1.3, "organic_social": 0.5, "email": 8.0,
    "display": 2.0, "referral": 0.4, "events": 0.1, "direct": 1.6,
}
# The channel of the web session in which a web form was filled in.
SESSION_CHANNELS = ("organic_search", "paid_search", "direct", "paid_social", "referral", "email", "display",
                    "organic_social")
SESSION_WEIGHTS = (0.27, 0.25, 0.12, 0.12, 0.06, 0.05, 0.05, 0.08)
# Channels a browser can arrive from (anonymous touches before the lead exists).
WEB_CHANNELS = ("paid_search", "organic_search", "paid_social", "organic_social", "display", "referral", "direct")


SPEND_COLUMNS = ["date", "channel", "campaign_id", "campaign_name", "spend", "currency", "impressions", "clicks"]


@dataclass(frozen=True)
class Campaign:
    idx: int
    campaign_id: str
    channel: str
    name: str
    platform: str
    utm_source: str
    utm_medium: str
    weight: float
    cpc: float = 0.0  # cost per click
    ctr: float = 0.0  # clicks per impression
    event_day: int = -1  # events: day index of the show
    city: str = ""


def build_campaigns(days: int) -> list[Campaign]:
    # (id, channel, name, platform, utm_source, utm_medium, weight, cost per click, click-through rate)
    rows = [
        ("cmp_ps_brand", "paid_search", "Search - Brand", "google_ads", "google", "cpc", 3, 2.1, 0.09),
        ("cmp_ps_generic", "paid_search", "Search - Generic CRM", "google_ads", "google", "cpc", 3, 7.8, 0.035),
        ("cmp_ps_competitor", "paid_search", "Search - Competitor Conquest", "google_ads", "google", "cpc",
         1.5, 11.5, 0.025),
        ("cmp_ps_bing", "paid_search", "Bing - Brand + Generic", "microsoft_ads", "bing", "cpc", 1, 4.2, 0.04),
        ("cmp_so_li_abm", "paid_social", "LinkedIn - ABM Enterprise", "linkedin", "linkedin", "paid_social",
         2, 9.5, 0.006),
        ("cmp_so_li_leadgen", "paid_social", "LinkedIn - Lead Gen Forms", "linkedin", "linkedin", "paid_social",
         2, 7.2, 0.008),
        ("cmp_so_meta_rt", "paid_social", "Meta - Retargeting", "meta", "facebook", "paid_social", 1.5, 1.6, 0.011),
        ("cmp_di_gdn", "display", "GDN - Prospecting", "google_ads", "google", "display", 2, 0.9, 0.004),
        ("cmp_di_retarget", "display", "Programmatic - Retargeting", "the_trade_desk", "ttd", "display",
         2, 1.3, 0.006),
        ("cmp_di_reviews", "display", "Review Sites - Sponsored Listing", "capterra", "capterra", "display",
         1, 3.5, 0.012),
        ("cmp_em_newsletter", "email", "Monthly Newsletter", "esp", "newsletter", "email", 2, 0, 0.02),
        ("cmp_em_nurture", "email", "Nurture - Trial to Demo", "esp", "nurture", "email", 3, 0, 0.04),
        ("cmp_em_webinar", "email", "Webinar Invitations", "esp", "webinar", "email", 1.5, 0, 0.03),
        ("cmp_em_launch", "email", "Q2 Product Launch", "esp", "launch", "email", 1, 0, 0.05),
        ("cmp_rf_partners", "referral", "Partner Program", "partner_portal", "partner", "referral", 3, 0, 0),
        ("cmp_rf_g2", "referral", "G2 Reviews", "g2", "g2", "referral", 1.5, 0, 0),
        ("cmp_rf_customers", "referral", "Customer Referral Program", "referral_app", "customer", "referral",
         1, 0, 0),
    ]
    out = [Campaign(i, *row) for i, row in enumerate(rows)]
    shows = (("RevOps Summit", "Berlin"), ("SaaS Growth Expo", "Austin"), ("CRM Connect", "London"),
             ("B2B Marketing Days", "Paris"), ("Pipeline Live", "Toronto"), ("Sales Tech Forum", "Sydney"),
             ("Data Driven Sales", "Bengaluru"), ("Customer Roadshow", "Amsterdam"))
    n = len(shows)
    for k, (show, city) in enumerate(shows):
        day = int((k + 0.5) * days / n)
        slug = "".join(w[0] for w in show.split()).lower()
        out.append(Campaign(len(out), f"cmp_ev_{slug}_{city.lower()[:3]}_{k + 1:02d}", "events",
                            f"{show} {city}", "event_app", "event", "offline", 1.0, event_day=day, city=city))
    return out


class CampaignBook:
    """The campaigns by channel, with per-(day, campaign) counts of observed clicks for the spend export."""

    def __init__(self, days: int):
        self.days = days
        self.campaigns = build_campaigns(days)
        self.by_channel: dict[str, list[Campaign]] = {c: [] for c in CHANNELS}
        for c in self.campaigns:
            self.by_channel[c.channel].append(c)
        self.cum = {ch: _cum([c.weight for c in cs]) for ch, cs in self.by_channel.items() if cs}
        self.clicks = np.zeros((days, len(self.campaigns)), dtype=np.int64)
        self.spend_by_channel: dict[str, float] = {}

    def pick(self, d, channel: str, day: int):
        """A campaign of the channel running on `day` (None for organic channels); shows by date."""
        cs = self.by_channel[channel]
        if not cs:
            return None
        if channel == "events":
            past = [c for c in cs if c.event_day <= day]
            return past[-1] if past else cs[0]
        return d.weighted(cs, self.cum[channel])

    def count_click(self, day: int, campaign) -> None:
        if campaign is not None and 0 <= day < self.days:
            self.clicks[day, campaign.idx] += 1

    def write_spend(self, rng: np.random.Generator, start: int, out_dir, write_file) -> list:
        """Monthly CSVs of daily spend per paid campaign; clicks include the ones we never saw."""
        by_month: dict[str, list[list]] = {}
        for day in range(self.days):
            ts = start + day * DAY
            date = date_text(ts)
            for c in self.campaigns:
                seen = int(self.clicks[day, c.idx])
                noise = float(rng.lognormal(0.0, 0.15))
                if c.channel in ("paid_search", "paid_social", "display"):
                    clicks = seen + int(rng.poisson(1.5 * seen + 4 * c.weight))
                    impressions = int(clicks / c.ctr * float(rng.lognormal(0.0, 0.2))) + clicks
                    spend = clicks * c.cpc * noise
                elif c.channel == "email":
                    clicks = seen + int(rng.poisson(0.5 * seen + 1))
                    impressions = int(clicks / c.ctr * noise) + clicks  # e-mails delivered
                    spend = impressions * 0.0012
                elif c.channel == "referral":
                    clicks = seen + int(rng.poisson(0.3 * seen + 1))
                    impressions = 0
                    listing_fee = 450.0 if c.campaign_id == "cmp_rf_g2" and date.endswith("-01") else 0.0
                    spend = clicks * 6.0 * noise + listing_fee
                elif c.channel == "events":
                    offset = day - c.event_day
                    if offset < -14 or offset > 1:
                        continue
                    clicks = seen
                    impressions = int(1800 * noise) if offset == 0 else 0  # attendees
                    spend = (18000.0 + 12000.0 * noise) if offset == 0 else 150.0 * noise  # booth vs. promotion
                else:
                    continue
                if clicks == 0 and impressions == 0:
                    continue  # nothing ran that day
                self.spend_by_channel[c.channel] = self.spend_by_channel.get(c.channel, 0.0) + round(spend, 2)
                by_month.setdefault(date[:7], []).append(
                    [date, c.channel, c.campaign_id, c.name, f"{spend:.2f}", "USD", str(impressions), str(clicks)])
        files = []
        for month in sorted(by_month):
            rows = sorted(by_month[month], key=lambda r: (r[0], r[1], r[2]))
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(SPEND_COLUMNS)
            w.writerows(rows)
            files.append(write_file(f"{out_dir}/spend-{month}.csv", buf.getvalue().encode("utf-8"), len(rows)))
        return files


def _cum(ws):
    out, acc = [], 0.0
    for w in ws:
        acc += w
        out.append(acc)
    return out


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
