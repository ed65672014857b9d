"""The seeded generator behind `crm-platform generate`: synthetic landing files and their ground truth.

    generate.py         generate_dataset(): chunks of people in lead-creation order, then the manifest
    clock.py            the fixed period (ends 2026-06-30T00:00:00Z), DST rules, producer time formats
    rand.py             seeded streams per (seed, purpose, chunk), buffered draws, event and Salesforce ids
    reference.py        names, places, companies, titles, devices
    people.py           the true people and their companies
    noise.py            how one person is spelled in each system (typos, nicknames, e-mail, phone, suffixes)
    campaigns.py        channels, campaigns, planted channel effects, the spend export
    funnel.py           one person's journey: records, touches, activities, stages, opportunity, outcome
    events.py           journeys as canonical events, the way each producer sends them
    landing_events.py   weekly event files: late arrivals, shuffling, invalid records, re-sends, file quirks
    corrupt.py          invalid records of each kind
    cdc.py              Debezium change events of the operational CRM database
    exports.py          HubSpot and Salesforce periodic exports
    truth.py            truth/: identity, leads, channel effects, invalid records, manifest
    sinks.py            gzip without time, name or platform; appends on a writer thread; hashing
"""
from .generate import generate_dataset

__all__ = ["generate_dataset"]
