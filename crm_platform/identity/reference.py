"""Reference data for normalization: nicknames, legal suffixes, street words, mail providers, countries.

General tables of the kind every CRM deduplication tool ships (not tuned to our generator): extend them
here, the rules pick them up."""
from __future__ import annotations

# Nicknames that stand for more than one given name (the first is the canonical form).
AMBIGUOUS_NICKNAMES = {
    "alex": ("alexander", "alexandra", "alexandre", "alexis"), "chris": ("christopher", "christina", "christine"),
    "sam": ("samantha", "samuel"), "pat": ("patricia", "patrick"), "vicky": ("victoria", "vikram"),
    "fred": ("frederic", "frederick", "alfred"), "max": ("maximilian", "maxime", "max"),
    "jo": ("joanna", "johanna", "josephine"), "ali": ("alison", "alice", "alistair"), "nico": ("nicolas", "nicole"),
    "andi": ("andreas", "andrea"), "terry": ("terence", "theresa"), "jan": ("johannes", "janet", "jan"),
    "hans": ("johannes", "hans"), "mick": ("michael", "mick"), "ray": ("raymond", "rachel"),
}
# nickname -> the given name it usually stands for (one canonical form per nickname).
NICKNAMES = {
    "abby": "abigail", "abe": "abraham", "adi": "aditya", "al": "albert", "alex": "alexander", "ali": "alison",
    "andi": "andreas", "andy": "andrew", "annie": "anna", "art": "arthur", "barb": "barbara", "becky": "rebecca",
    "becca": "rebecca", "ben": "benjamin", "benny": "benjamin", "bert": "albert", "beth": "elizabeth",
    "betsy": "elizabeth", "betty": "elizabeth", "bill": "william", "billy": "william", "bob": "robert",
    "bobby": "robert", "brad": "bradley", "cathy": "catherine", "charlie": "charles", "chris": "christopher",
    "chuck": "charles", "cindy": "cynthia", "dan": "daniel", "danny": "daniel", "dave": "david",
    "debbie": "deborah", "deb": "deborah", "deepu": "deepika", "dick": "richard", "don": "donald",
    "doug": "douglas", "ed": "edward", "eddie": "edward", "ellie": "eleanor", "fred": "frederic",
    "freddie": "frederick", "gabe": "gabriel", "greg": "gregory", "hank": "henry", "hannes": "johannes",
    "hans": "johannes", "harry": "henry", "jack": "john", "jake": "jacob", "jamie": "james", "jan": "johannes",
    "jeff": "jeffrey", "jen": "jennifer", "jenny": "jennifer", "jerry": "gerald", "jim": "james",
    "jimmy": "james", "jo": "joanna", "joe": "joseph", "joey": "joseph", "johnny": "john", "jon": "jonathan",
    "josh": "joshua", "kate": "katherine", "kathi": "katharina", "kathy": "katherine", "katie": "katherine",
    "ken": "kenneth", "kim": "kimberly", "larry": "lawrence", "len": "leonard", "liz": "elizabeth",
    "lizzie": "elizabeth", "maggie": "margaret", "mandy": "amanda", "matt": "matthew", "max": "maximilian",
    "meg": "margaret", "micha": "michael", "mick": "michael", "mike": "michael", "mikey": "michael",
    "mitch": "mitchell", "nate": "nathan", "nick": "nicholas", "nico": "nicolas", "pat": "patricia",
    "patty": "patricia", "peggy": "margaret", "pete": "peter", "phil": "philip", "ray": "raymond",
    "rich": "richard", "rick": "richard", "rob": "robert", "robbie": "robert", "ron": "ronald", "sam": "samantha",
    "sandy": "sandra", "steve": "steven", "stu": "stuart", "sue": "susan", "susie": "susan", "ted": "edward",
    "teddy": "edward", "terry": "terence", "tim": "timothy", "tom": "thomas", "tommy": "thomas",
    "tony": "anthony", "trish": "patricia", "val": "valerie", "vicky": "victoria", "vicki": "victoria",
    "vince": "vincent", "walt": "walter", "wim": "willem", "will": "william", "zach": "zachary",
}
# Spellings of one given name across languages that CRMs treat as the same person.
NAME_EQUIVALENTS = {"stephen": "steven", "catherine": "katherine", "kathryn": "katherine",
                    "phillip": "philip", "frederick": "frederic", "alexandre": "alexander", "nicolas": "nicholas"}

# Legal-form words dropped from company names ("Acme, Inc." = "ACME Incorporated" = "acme").
LEGAL_SUFFIX_WORDS = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "llp", "lp", "ltd", "limited", "plc",
    "gmbh", "ag", "kg", "ug", "se", "sa", "sas", "sarl", "sasu", "eurl", "bv", "nv", "vof", "pty", "pvt",
    "private", "srl", "spa", "oy", "ab", "as", "aps", "kk", "lda",
})

# Street words to one spelling (the long form), by the abbreviations exports use.
STREET_WORDS = {
    "st": "street", "str": "strasse", "straße": "strasse", "ave": "avenue", "av": "avenue", "rd": "road",
    "dr": "drive", "blvd": "boulevard", "bd": "boulevard", "ln": "lane", "ct": "court", "pl": "place",
    "sq": "square", "hwy": "highway", "pkwy": "parkway", "cres": "crescent", "tce": "terrace",
}
# Unit designators cut from an address line ("Suite 300", "Apt 4").
UNIT_WORDS = ("suite", "ste", "apt", "apartment", "unit", "floor", "fl", "room")

# Mailbox providers, for typo repair (gmial.com -> gmail.com) and for free-mail versus corporate domains.
MAIL_PROVIDERS = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.ca", "yahoo.co.in", "yahoo.fr",
    "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com", "icloud.com", "me.com", "aol.com",
    "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de", "t-online.de", "orange.fr", "free.fr",
    "laposte.net", "sfr.fr", "ziggo.nl", "kpnmail.nl", "btinternet.com", "rogers.com", "bigpond.com",
    "rediffmail.com",
)
# Top-level domains mistyped often enough to repair: the typo -> the intended suffix.
TLD_TYPOS = {".con": ".com", ".cmo": ".com", ".comm": ".com", ".co.k": ".co.uk", ".couk": ".co.uk", ".d": ".de",
             ".nt": ".net", ".ogr": ".org"}
# Mailboxes where dots in the local part do not matter.
DOTLESS_PROVIDERS = frozenset({"gmail.com"})
PROVIDER_ALIASES = {"googlemail.com": "gmail.com"}

# Values people type when they have nothing to type: never evidence that two records are one person.
BLOCKED_VALUES = frozenset({
    "test@test.com", "test@example.com", "noreply@example.com", "no@email.com", "none@none.com",
    "na@na.com", "email@email.com", "unknown", "n/a", "na", "none", "null", "test", "-", "x", "tbd",
    "0000000000", "1234567890", "9999999999",
})

# Country names and codes as exports write them -> ISO 3166 alpha-2.
COUNTRY_CODES = {
    "united states": "US", "united states of america": "US", "usa": "US", "us": "US", "u.s.": "US",
    "america": "US", "united kingdom": "GB", "uk": "GB", "gb": "GB", "great britain": "GB", "england": "GB",
    "germany": "DE", "deutschland": "DE", "de": "DE", "france": "FR", "fr": "FR", "netherlands": "NL",
    "the netherlands": "NL", "holland": "NL", "nederland": "NL", "nl": "NL", "canada": "CA", "ca": "CA",
    "australia": "AU", "au": "AU", "india": "IN", "in": "IN", "ireland": "IE", "ie": "IE", "spain": "ES",
    "es": "ES", "italy": "IT", "it": "IT", "belgium": "BE", "be": "BE", "switzerland": "CH", "ch": "CH",
    "austria": "AT", "at": "AT", "sweden": "SE", "se": "SE", "new zealand": "NZ", "nz": "NZ",
}
