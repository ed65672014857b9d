"""Each normalization rule on the spellings real records have."""
import pytest

from crm_platform.identity import normalize as norm


@pytest.mark.parametrize("raw, expected", [
    ("Jane.Doe@Example.com", "jane.doe@example.com"),  # case; dots matter outside gmail
    ("  jane@example.com ", "jane@example.com"),
    ("Jane.Doe+news@gmail.com", "janedoe@gmail.com"),  # gmail dots and +tags
    ("jane.doe@googlemail.com", "janedoe@gmail.com"),
    ("j.smith+crm@acme.co.uk", "j.smith@acme.co.uk"),  # +tags everywhere
    ("bob@gmial.com", "bob@gmail.com"),  # provider one keystroke away
    ("bob@outlok.com", "bob@outlook.com"),
    ("bob@hotmial.com", "bob@hotmail.com"),
    ("x@acme.con", "x@acme.com"),  # mistyped top-level domain
    ("x@acme.co.k", "x@acme.co.uk"),
    ("kai@web.d", "kai@web.de"),
    ("test@test.com", None),  # placeholders never link
    ("unknown", None),
    ("n/a", None),
    ("not an address", None),
    ("a@b@c.com", None),
    ("", None),
    (None, None),
])
def test_email(raw, expected):
    assert norm.email(raw) == expected


def test_email_keeps_a_corporate_domain_near_a_provider_apart_only_when_ambiguous():
    assert norm.email("ann@gmx.de") == "ann@gmx.de"  # a provider itself is never "repaired"
    assert norm.email("ann@acme.com") == "ann@acme.com"


@pytest.mark.parametrize("raw, region, expected", [
    ("(617) 432-4954", "US", "+16174324954"),
    ("617.432.4954", "US", "+16174324954"),
    ("+1-617-432-4954", None, "+16174324954"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("+44 (0)20 7946 0958", None, "+442079460958"),
    ("0049 30 12345678", "DE", "+493012345678"),
    ("030 12345678", "DE", "+493012345678"),
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("6174324954", None, None),  # a national number without a country is not a number
    ("0000000000", "US", None),  # placeholders
    ("1234567890", "US", None),
    ("12", "US", None),
    (None, "US", None),
])
def test_phone_to_e164(raw, region, expected):
    assert norm.phone(raw, region) == expected


@pytest.mark.parametrize("raw, expected", [
    ("JOSÉ", "jose"), ("O'Neill", "oneill"), ("  Anne-Marie ", "anne marie"), ("Müller", "muller"),
    ("Strauß", "strauss"), ("n/a", None), ("", None),
])
def test_name(raw, expected):
    assert norm.name(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("Bill", "william"), ("BOB", "robert"), ("Liz", "elizabeth"), ("Stephen", "steven"), ("Jürgen", "jurgen"),
    ("Kate Anne", "katherine"),
])
def test_given_name_undoes_nicknames_and_variants(raw, expected):
    assert norm.given_name(raw) == expected


def test_ambiguous_nicknames_keep_every_reading():
    assert {"victoria", "vikram"} <= norm.given_names("Vicky")
    assert {"richard", "rick", "dick", "rich"} <= norm.name_forms("richard")


@pytest.mark.parametrize("raw, expected", [
    ("Smith & Jones, Inc.", "smith and jones"), ("SMITH AND JONES INCORPORATED", "smith and jones"),
    ("Schmidt Software G.m.b.H.", "schmidt software"), ("Schmidt Software GmbH", "schmidt software"),
    ("Patel & Clark Pty. Ltd.", "patel and clark"), ("Menon & Reddy Pvt Ltd", "menon and reddy"),
    ("Apex Peak Corp.", "apex peak"), ("Acme, L.L.C.", "acme"), ("Ltd", "ltd"), ("unknown", None),
])
def test_company_drops_legal_forms(raw, expected):
    assert norm.company(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("60 5th Avenue\nSuite 300", "60 5th avenue"), ("60 5th Ave, Suite 300", "60 5th avenue"),
    ("224 5th Ave", "224 5th avenue"), ("Hauptstraße 12", "haupt strasse 12"), ("Hauptstr. 12", "haupt strasse 12"),
    ("12 Rue de la Paix", "12 rue de la paix"), ("10 Downing St", "10 downing street"),
])
def test_street(raw, expected):
    assert norm.street(raw) == expected


def test_postal_code_city_country():
    assert norm.postal_code("sw1a 1aa") == "SW1A1AA"
    assert norm.city("Montréal") == "montreal"
    assert [norm.country_code(x) for x in ("United States", "USA", "us", "Deutschland", "Atlantis", None)] == [
        "US", "US", "US", "DE", None, None]
