"""Static vocabularies: names (with nicknames and accents), places, company parts, job titles, devices.

Kept as tuples in a fixed order: indices into them are what the simulation draws.
"""
from __future__ import annotations

# country -> share of leads
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "CA", "AU", "IN")
COUNTRY_WEIGHTS = (0.38, 0.12, 0.12, 0.08, 0.06, 0.09, 0.07, 0.08)
COUNTRY_NAMES = {
    "US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France",
    "NL": "Netherlands", "CA": "Canada", "AU": "Australia", "IN": "India",
}
CALLING_CODES = {"US": "1", "CA": "1", "GB": "44", "DE": "49", "FR": "33", "NL": "31", "AU": "61", "IN": "91"}
LOCALES = {"US": "en-US", "GB": "en-GB", "DE": "de-DE", "FR": "fr-FR", "NL": "nl-NL", "CA": "en-CA", "AU": "en-AU",
           "IN": "en-IN"}

# (city, state/region, postal-code pattern, zone, area code or trunk prefix); postal "#" digit, "@" letter
CITIES = {
    "US": (
        ("New York", "NY", "100##", "America/New_York", "212"),
        ("Boston", "MA", "021##", "America/New_York", "617"),
        ("Atlanta", "GA", "303##", "America/New_York", "404"),
        ("Chicago", "IL", "606##", "America/Chicago", "312"),
        ("Austin", "TX", "787##", "America/Chicago", "512"),
        ("Denver", "CO", "802##", "America/Denver", "303"),
        ("San Francisco", "CA", "941##", "America/Los_Angeles", "415"),
        ("Seattle", "WA", "981##", "America/Los_Angeles", "206"),
        ("Los Angeles", "CA", "900##", "America/Los_Angeles", "213"),
    ),
    "GB": (
        ("London", "England", "EC#@ #@@", "Europe/London", "20"),
        ("Manchester", "England", "M# #@@", "Europe/London", "161"),
        ("Edinburgh", "Scotland", "EH# #@@", "Europe/London", "131"),
        ("Bristol", "England", "BS# #@@", "Europe/London", "117"),
    ),
    "DE": (
        ("Berlin", "Berlin", "10###", "Europe/Berlin", "30"),
        ("München", "Bayern", "80###", "Europe/Berlin", "89"),
        ("Hamburg", "Hamburg", "20###", "Europe/Berlin", "40"),
        ("Köln", "Nordrhein-Westfalen", "50###", "Europe/Berlin", "221"),
        ("Frankfurt am Main", "Hessen", "60###", "Europe/Berlin", "69"),
    ),
    "FR": (
        ("Paris", "Île-de-France", "750##", "Europe/Paris", "1"),
        ("Lyon", "Auvergne-Rhône-Alpes", "6900#", "Europe/Paris", "4"),
        ("Toulouse", "Occitanie", "310##", "Europe/Paris", "5"),
        ("Nantes", "Pays de la Loire", "440##", "Europe/Paris", "2"),
    ),
    "NL": (
        ("Amsterdam", "Noord-Holland", "10## @@", "Europe/Amsterdam", "20"),
        ("Rotterdam", "Zuid-Holland", "30## @@", "Europe/Amsterdam", "10"),
        ("Utrecht", "Utrecht", "35## @@", "Europe/Amsterdam", "30"),
    ),
    "CA": (
        ("Toronto", "ON", "M5@ #@#", "America/Toronto", "416"),
        ("Montréal", "QC", "H2@ #@#", "America/Toronto", "514"),
        ("Vancouver", "BC", "V6@ #@#", "America/Vancouver", "604"),
    ),
    "AU": (
        ("Sydney", "NSW", "20##", "Australia/Sydney", "2"),
        ("Melbourne", "VIC", "30##", "Australia/Melbourne", "3"),
        ("Brisbane", "QLD", "40##", "Australia/Brisbane", "7"),
    ),
    "IN": (
        ("Bengaluru", "Karnataka", "5600##", "Asia/Kolkata", "80"),
        ("Mumbai", "Maharashtra", "4000##", "Asia/Kolkata", "22"),
        ("New Delhi", "Delhi", "1100##", "Asia/Kolkata", "11"),
        ("Pune", "Maharashtra", "4110##", "Asia/Kolkata", "20"),
    ),
}

STREET_NAMES = {
    "US": ("Main St", "Market Street", "Oak Avenue", "Broadway", "Pine St", "Congress Ave", "Mission Street",
           "Lake Shore Dr", "5th Avenue", "Elm Street"),
    "GB": ("High Street", "King's Road", "Victoria Street", "Station Road", "Church Lane", "Queen Street"),
    "DE": ("Hauptstraße", "Friedrichstraße", "Schloßallee", "Bahnhofstraße", "Königsallee", "Mühlenweg"),
    "FR": ("rue de la Paix", "avenue des Champs-Élysées", "boulevard Saint-Germain", "rue de Rivoli", "quai Voltaire",
           "rue Lafayette"),
    "NL": ("Keizersgracht", "Herengracht", "Coolsingel", "Damrak", "Oudegracht", "Stationsplein"),
    "CA": ("King Street West", "Rue Sainte-Catherine", "Granville Street", "Bay Street", "Yonge Street"),
    "AU": ("George Street", "Collins Street", "Queen Street", "Pitt Street", "Bourke Street"),
    "IN": ("MG Road", "Brigade Road", "Linking Road", "Connaught Place", "FC Road", "Residency Road"),
}
# Countries that write the house number after the street name.
NUMBER_AFTER_STREET = {"DE", "NL"}

# first names: (name, nickname or "") per country group; accents are part of the names.
_ENGLISH_FIRST = (
    ("Robert", "Bob"), ("William", "Bill"), ("Katherine", "Kate"), ("Elizabeth", "Liz"), ("Michael", "Mike"),
    ("James", "Jim"), ("Jennifer", "Jen"), ("Richard", "Rick"), ("Thomas", "Tom"), ("Christopher", "Chris"),
    ("Margaret", "Maggie"), ("Daniel", "Dan"), ("Joseph", "Joe"), ("Alexander", "Alex"), ("Anthony", "Tony"),
    ("Patricia", "Pat"), ("Steven", "Steve"), ("Matthew", "Matt"), ("Nicholas", "Nick"), ("Benjamin", "Ben"),
    ("Samantha", "Sam"), ("Victoria", "Vicky"), ("Jonathan", "Jon"), ("Andrew", "Andy"), ("Edward", "Ed"),
    ("Susan", "Sue"), ("Rebecca", "Becky"), ("Deborah", "Debbie"), ("Emily", ""), ("Olivia", ""),
    ("Sarah", ""), ("Laura", ""), ("Rachel", ""), ("Ryan", ""), ("Kevin", ""), ("Megan", ""),
    ("Chloë", ""), ("Zoë", ""), ("José", ""), ("María", ""), ("Siân", ""), ("Renée", ""),
)
_GERMAN_FIRST = (
    ("Jürgen", ""), ("Günter", ""), ("Stefan", ""), ("Lukas", ""), ("Katharina", "Kathi"), ("Matthias", ""),
    ("Sören", ""), ("Jörg", ""), ("Johannes", "Hannes"), ("Maximilian", "Max"), ("Anna", ""), ("Lena", ""),
    ("Björn", ""), ("Käthe", ""), ("Michael", "Micha"), ("Sabine", ""), ("Andreas", "Andi"), ("Julia", ""),
)
_FRENCH_FIRST = (
    ("François", ""), ("Hélène", ""), ("Jérôme", ""), ("Amélie", ""), ("Céline", ""), ("René", ""),
    ("Zoé", ""), ("Chloé", ""), ("Noël", ""), ("Benoît", ""), ("Alexandre", "Alex"), ("Camille", ""),
    ("Élodie", ""), ("Thomas", "Tom"), ("Margaux", ""), ("Frédéric", "Fred"), ("Nicolas", "Nico"),
)
_DUTCH_FIRST = (
    ("Sjoerd", ""), ("Maarten", ""), ("Daan", ""), ("Lotte", ""), ("Joëlle", ""), ("Femke", ""),
    ("Willem", "Wim"), ("Johannes", "Hans"), ("Anouk", ""), ("Sanne", ""), ("Thijs", ""), ("Eline", ""),
)
_INDIAN_FIRST = (
    ("Priya", ""), ("Rahul", ""), ("Ananya", ""), ("Vikram", "Vicky"), ("Arjun", ""), ("Sneha", ""),
    ("Aditya", "Adi"), ("Kavya", ""), ("Rohan", ""), ("Deepika", "Deepu"), ("Sai", ""), ("Lakshmi", ""),
)
FIRST_NAMES = {
    "US": _ENGLISH_FIRST, "GB": _ENGLISH_FIRST, "CA": _ENGLISH_FIRST + _FRENCH_FIRST[:8], "AU": _ENGLISH_FIRST,
    "DE": _GERMAN_FIRST, "FR": _FRENCH_FIRST, "NL": _DUTCH_FIRST, "IN": _INDIAN_FIRST,
}
_ENGLISH_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
    "O'Brien", "O'Neill", "McDonald", "Smith-Jones", "García", "Muñoz", "Nguyen", "Kim", "Chen", "Patel",
)
LAST_NAMES = {
    "US": _ENGLISH_LAST, "GB": _ENGLISH_LAST, "AU": _ENGLISH_LAST,
    "CA": _ENGLISH_LAST + ("Tremblay", "Gagnon", "Côté", "Bélanger"),
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schröder", "Weiß", "Groß",
           "Köhler", "Hoffmann", "Schäfer"),
    "FR": ("Martin", "Bernard", "Dubois", "Lefèvre", "Girard", "Bérenger", "Moreau", "Laurent", "Fontaine", "Rousseau",
           "Béranger", "Lemaître"),
    "NL": ("de Vries", "van den Berg", "Jansen", "Bakker", "Visser", "Smit", "de Jong", "van Dijk", "Mulder",
           "de Boer"),
    "IN": ("Sharma", "Patel", "Iyer", "Reddy", "Gupta", "Nair", "Singh", "Kumar", "Menon", "Chatterjee", "Rao"),
}

PERSONAL_DOMAINS = {
    "US": ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"),
    "GB": ("gmail.com", "btinternet.com", "outlook.com", "yahoo.co.uk"),
    "DE": ("gmail.com", "gmx.de", "web.de", "t-online.de"),
    "FR": ("gmail.com", "orange.fr", "free.fr", "laposte.net"),
    "NL": ("gmail.com", "ziggo.nl", "hotmail.com", "kpnmail.nl"),
    "CA": ("gmail.com", "outlook.com", "rogers.com", "yahoo.ca"),
    "AU": ("gmail.com", "bigpond.com", "outlook.com"),
    "IN": ("gmail.com", "yahoo.co.in", "rediffmail.com", "outlook.com"),
}
COMPANY_TLD = {"US": "com", "GB": "co.uk", "DE": "de", "FR": "fr", "NL": "nl", "CA": "ca", "AU": "com.au", "IN": "in"}

# Canonical legal suffix per country, with the spellings people and systems actually use.
LEGAL_SUFFIXES = {
    "US": ("Inc", "LLC", "Corp"), "CA": ("Inc.", "Ltd"), "GB": ("Ltd", "PLC"), "DE": ("GmbH", "AG"),
    "FR": ("SARL", "SAS"), "NL": ("BV", "NV"), "AU": ("Pty Ltd",), "IN": ("Pvt Ltd",),
}
SUFFIX_VARIANTS = {
    "Inc": ("Inc", "Inc.", ", Inc.", "Incorporated", ""),
    "Inc.": ("Inc.", "Inc", ", Inc.", ""),
    "LLC": ("LLC", "L.L.C.", ", LLC", "Llc", ""),
    "Corp": ("Corp", "Corp.", "Corporation", ""),
    "Ltd": ("Ltd", "Ltd.", "Limited", "LTD", ""),
    "PLC": ("PLC", "plc", "Plc", ""),
    "GmbH": ("GmbH", "Gmbh", "GMBH", "G.m.b.H.", ""),
    "AG": ("AG", ""),
    "SARL": ("SARL", "S.A.R.L.", "Sarl", ""),
    "SAS": ("SAS", "S.A.S.", ""),
    "BV": ("BV", "B.V.", "bv", ""),
    "NV": ("NV", "N.V.", ""),
    "Pty Ltd": ("Pty Ltd", "Pty. Ltd.", "PTY LTD", "Pty Limited", ""),
    "Pvt Ltd": ("Pvt Ltd", "Private Limited", "Pvt. Ltd.", ""),
}
COMPANY_ADJ = ("Blue", "Northern", "Bright", "Silver", "Summit", "Red", "Green", "Apex", "Pioneer", "Atlas",
               "Harbor", "Evergreen", "Granite", "Crystal", "Golden", "Swift", "Clear", "Prime", "Vertex", "Nova")
COMPANY_NOUN = ("Harbor", "Peak", "Ridge", "Field", "Stone", "River", "Bridge", "Forge", "Works", "Labs",
                "Systems", "Logistics", "Analytics", "Dynamics", "Networks", "Partners", "Solutions", "Health",
                "Foods", "Energy", "Capital", "Software", "Media", "Robotics", "Retail", "Freight")
COMPANY_TECH = ("Datawise", "Cloudreach", "Finlytic", "Streamly", "Brightpath", "Quantix", "Nimbus", "Ledgerly",
                "Orbitra", "Mediq", "Shipwell", "Verdant", "Synapse", "Kinetic", "Lumen", "Paperplane")
COMPANY_LOCAL = {  # family-name firms: "<Last name> <word>"
    "DE": ("Logistik", "Maschinenbau", "Beratung", "Technik", "Software"),
    "FR": ("Conseil", "Industrie", "Distribution", "Services"),
    "NL": ("Techniek", "Installatie", "Logistiek", "Groep"),
}

# (title, seniority 0 individual contributor .. 4 C-level)
JOB_TITLES = (
    ("Marketing Analyst", 0), ("Sales Development Representative", 0), ("Software Engineer", 0),
    ("Operations Specialist", 0), ("Account Executive", 0), ("Data Analyst", 0), ("RevOps Analyst", 0),
    ("Marketing Manager", 1), ("Sales Manager", 1), ("Engineering Manager", 1), ("Product Manager", 1),
    ("Operations Manager", 1), ("Director of Sales", 2), ("Director, Marketing Operations", 2),
    ("Head of Operations", 2), ("Head of Revenue Operations", 2), ("VP Marketing", 3), ("VP of Sales", 3),
    ("Vice President, Engineering", 3), ("CEO", 4), ("CTO", 4), ("Chief Revenue Officer", 4), ("Founder & CEO", 4),
    ("COO", 4),
)
JOB_TITLE_WEIGHTS = (8, 6, 5, 5, 5, 4, 3, 7, 6, 4, 4, 4, 4, 3, 3, 2, 2, 2, 1.5, 1.2, 1, 1, 1, 0.8)
LOCAL_TITLES = {  # the same seniority as spelled in some local CRMs
    "DE": {"CEO": "Geschäftsführer", "Head of Operations": "Leiter Betrieb", "Sales Manager": "Vertriebsleiter"},
    "FR": {"CEO": "Directeur Général", "Director of Sales": "Directeur Commercial",
           "Marketing Manager": "Responsable Marketing"},
}

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
)
EMAIL_CLIENT_AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Microsoft Outlook 16.0", "GoogleImageProxy",
                       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mail")
# first octets of public IPv4 blocks by country (synthetic addresses inside them)
IP_BLOCKS = {"US": (23, 50, 64, 98, 104, 172), "CA": (24, 70, 142), "GB": (2, 31, 81, 86), "DE": (37, 46, 79, 91),
             "FR": (5, 62, 78, 90), "NL": (31, 77, 145), "AU": (1, 49, 101, 120), "IN": (49, 106, 117, 182)}

SITE = "https://www.northwind-crm.example"
LANDING_PATHS = ("/", "/pricing", "/product/pipeline", "/demo", "/blog/lead-scoring-guide", "/blog/revops-metrics",
                 "/customers", "/integrations/salesforce", "/webinars/attribution-101")
REFERRERS = {
    "organic_search": ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/",
                       "https://www.ecosia.org/"),
    "paid_search": ("https://www.google.com/", "https://www.bing.com/"),
    "paid_social": ("https://www.linkedin.com/", "https://l.facebook.com/"),
    "organic_social": ("https://www.linkedin.com/", "https://t.co/", "https://www.reddit.com/"),
    "display": ("https://googleads.g.doubleclick.net/", "https://www.capterra.com/"),
    "referral": ("https://www.g2.com/", "https://partners.example.net/", "https://www.producthunt.com/"),
    "email": (),
    "direct": (),
    "events": (),
}

# Sales reps: (owner id, zone the dialer logs in)
REPS = tuple(
    [(11 + i, "America/New_York") for i in range(5)] + [(16 + i, "America/Los_Angeles") for i in range(5)]
    + [(21 + i, "Europe/London") for i in range(3)] + [(24 + i, "Europe/Berlin") for i in range(3)]
    + [(27 + i, "Asia/Kolkata") for i in range(3)]
)
REP_REGION = {"US": (0, 10), "CA": (0, 10), "GB": (10, 13), "DE": (13, 16), "FR": (13, 16), "NL": (13, 16),
              "AU": (16, 19), "IN": (16, 19)}

LOSS_REASONS = ("No budget", "Chose competitor", "No decision", "Timing", "Missing feature", "Price")
DISQUALIFY_REASONS = ("No response", "Bad fit", "Student or job seeker", "Competitor", "No budget", "Duplicate")
