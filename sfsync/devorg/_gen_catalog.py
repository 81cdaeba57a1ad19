"""The fixed and the small parts of a synthetic org: reference data, users, setup objects.

Everything here fits in memory whatever the number of opportunities (at most a few
thousand users); the opportunity stream lives in :mod:`._gen_opportunity`.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sfsync.devorg._gen_base import DAY, KEY_PREFIXES, Formatter, IdFactory

Record = dict[str, Any]


@dataclass(frozen=True)
class Stage:
    name: str
    sort_order: int
    is_closed: bool
    is_won: bool
    probability: float
    forecast_category: str  # the API value (OpportunityHistory.ForecastCategory)
    forecast_category_name: str  # the label (Opportunity.ForecastCategoryName)


# The rules' thresholds (docs/rules.md) use Qualify and Prove; indexes 0..4 are open, 5..7 closed.
STAGES = (
    Stage("Create", 1, False, False, 5.0, "Pipeline", "Pipeline"),
    Stage("Qualify", 2, False, False, 10.0, "Pipeline", "Pipeline"),
    Stage("Develop", 3, False, False, 25.0, "Pipeline", "Pipeline"),
    Stage("Prove", 4, False, False, 50.0, "BestCase", "Best Case"),
    Stage("Negotiate", 5, False, False, 75.0, "Forecast", "Commit"),
    Stage("Closed Won", 6, True, True, 100.0, "Closed", "Closed"),
    Stage("Closed Lost", 7, True, False, 0.0, "Omitted", "Omitted"),
    Stage("Closed Abandoned", 8, True, False, 0.0, "Omitted", "Omitted"),
)
CREATE, QUALIFY, DEVELOP, PROVE, NEGOTIATE, WON, LOST, ABANDONED = range(8)

# (DeveloperName, Name, is a sales record type in docs/rules.md's sense)
RECORD_TYPES = (
    ("Direct_Standard", "Direct Standard", True),
    ("Indirect_Standard", "Indirect Standard", True),
    ("Direct_Field_Services", "Direct Field Services", True),
    ("Indirect_Field_Services", "Indirect Field Services", True),
    ("Renewal", "Renewal", False),
    ("Internal", "Internal", False),
)
RECORD_TYPE_WEIGHTS = (40, 20, 15, 10, 10, 5)


@dataclass(frozen=True)
class Currency:
    iso_code: str
    rate: float  # units per 1 USD (CurrencyType.ConversionRate)
    decimal_places: int


CURRENCIES = (
    Currency("USD", 1.0, 2),
    Currency("EUR", 0.92, 2),
    Currency("GBP", 0.79, 2),
    Currency("JPY", 151.3, 0),
    Currency("CHF", 0.88, 2),
)
USD = CURRENCIES[0]
# Which currencies a region's deals are in (the rest is USD).
REGION_CURRENCIES = {
    "AMER": ((USD,), (1,)),
    "EMEA": ((USD, CURRENCIES[1], CURRENCIES[2], CURRENCIES[4]), (25, 45, 20, 10)),
    "APAC": ((USD, CURRENCIES[3]), (60, 40)),
}
REGIONS = ("AMER", "EMEA", "APAC")
REGION_TIME_ZONES = {
    "AMER": "America/New_York",
    "EMEA": "Europe/Berlin",
    "APAC": "Asia/Tokyo",
}


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    code: str
    family: str
    list_price_usd: int
    is_active: bool


_PRODUCT_LINES = {
    "Instrument": (
        [
            "Spectra X1 Mass Spectrometer",
            "Spectra X2 Mass Spectrometer",
            "Helix HPLC System",
            "Helix UHPLC System",
            "Aurora Flow Cytometer",
            "Aurora Cell Sorter",
            "Nova Sequencer",
            "Nova Sequencer Mini",
            "Vista Imaging Platform",
            "Orion Liquid Handler",
        ],
        (60_000, 180_000),
    ),
    "Consumable": (
        [
            "HPLC Column C18",
            "HPLC Column C8",
            "Reagent Kit A",
            "Reagent Kit B",
            "Calibration Standard Set",
            "Pipette Tips (case)",
            "Flow Cells (pack)",
            "Sequencing Cartridge",
            "Sample Vials (case)",
            "Buffer Concentrate",
            "Antibody Panel 12-color",
            "Cleaning Solution",
        ],
        (80, 2_500),
    ),
    "Service": (
        [
            "Installation",
            "On-site Training (day)",
            "Preventive Maintenance Plan",
            "Extended Warranty 3y",
            "Method Development (day)",
            "Relocation Service",
            "Qualification IQ/OQ",
            "Remote Support Plan",
            "Field Service Visit",
            "Application Consulting (day)",
        ],
        (900, 25_000),
    ),
    "Software": (
        [
            "LabFlow LIMS Seat",
            "LabFlow LIMS Server",
            "Spectra Analysis Suite",
            "Nova Cloud Analytics",
            "Vista Image Analysis",
            "Compliance Pack 21 CFR 11",
            "Data Lake Connector",
            "Instrument Control License",
        ],
        (1_500, 60_000),
    ),
}

_FIRST_NAMES = (
    "Ann",
    "Ben",
    "Chloe",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Liam",
    "Mei",
    "Noah",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Amelie",
    "Bjorn",
    "Carmen",
    "Dmitri",
    "Emma",
    "Felix",
    "Giulia",
    "Hannah",
    "Ivan",
    "Julia",
    "Kenji",
    "Lucia",
    "Mateo",
    "Nadia",
    "José",
    "Zoë",
    "Søren",
    "Anaïs",
    "Łukasz",
    "Chiara",
    "Priya",
    "Sean",
    "Aoife",
    "Tomás",
)
_LAST_NAMES = (
    "Lee",
    "Smith",
    "Garcia",
    "Müller",
    "Rossi",
    "Tanaka",
    "Kowalski",
    "Dubois",
    "Jensen",
    "Silva",
    "Nguyen",
    "Khan",
    "O'Brien",
    "Schmidt",
    "Novak",
    "Larsen",
    "Fischer",
    "Moreau",
    "Ivanova",
    "Sato",
    "Kim",
    "Patel",
    "Brown",
    "Wilson",
    "Martin",
    "Bernard",
    "Costa",
    "Eriksson",
    "Virtanen",
    "Horvat",
    "Papadopoulos",
    "Yilmaz",
    "Cohen",
    "Murphy",
    "Walsh",
    "Nakamura",
    "Chen",
    "Singh",
    "Lopez",
    "Hernández",
    "Weber",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Dupont",
    "Leroy",
    "Bianchi",
    "Romano",
    "Suzuki",
    "Watanabe",
)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def system_fields(
    fmt: Formatter, created: int, created_by: str, modified: int, modified_by: str
) -> Record:
    return {
        "IsDeleted": False,
        "CreatedDate": fmt.stamp(created),
        "CreatedById": created_by,
        "LastModifiedDate": fmt.stamp(modified),
        "LastModifiedById": modified_by,
        "SystemModstamp": fmt.stamp(modified),
    }


@dataclass
class UserInfo:
    id: str
    region: str
    is_active: bool
    manager: UserInfo | None = None


@dataclass
class Catalog:
    """The setup objects of the org, and the lookups the opportunity stream needs."""

    integration_user_id: str
    admin_id: str
    records: dict[str, list[Record]] = field(default_factory=dict)
    active_reps: list[UserInfo] = field(default_factory=list)
    inactive_reps: list[UserInfo] = field(default_factory=list)
    active_reps_by_region: dict[str, list[UserInfo]] = field(default_factory=dict)
    record_type_ids: list[str] = field(default_factory=list)
    record_type_names: list[str] = field(default_factory=list)
    products_by_family: dict[str, list[Product]] = field(default_factory=dict)


def rep_count(opportunities: int) -> int:
    """About one rep per 40 opportunities, at least 10 and at most 5,000."""
    return max(10, min(5_000, opportunities // 40))


def build_catalog(
    rng: random.Random,
    fmt: Formatter,
    *,
    opportunities: int,
    setup_start: int,
    horizon: int,
    fiscal_year_start_month: int,
    multi_currency: bool,
) -> Catalog:
    """Organization, users, record types, stages, currencies and products.

    ``setup_start`` is when the org was set up (every setup record is created in
    the following month); ``horizon`` is the latest timestamp allowed anywhere.
    """

    def created_at() -> int:
        return setup_start + rng.randrange(30 * DAY)

    user_ids = IdFactory(KEY_PREFIXES["User"])
    admin_id = user_ids.new()
    integration_id = user_ids.new()
    catalog = Catalog(integration_user_id=integration_id, admin_id=admin_id)
    records = catalog.records

    org_created = setup_start
    records["Organization"] = [
        {
            "Id": IdFactory(KEY_PREFIXES["Organization"]).new(),
            "Name": "Acme Instruments (sfsync dev org)",
            "FiscalYearStartMonth": fiscal_year_start_month,
            "UsesStartDateAsFiscalYearName": True,
            "TimeZoneSidKey": "America/New_York",
            "DefaultLocaleSidKey": "en_US",
            "LanguageLocaleKey": "en_US",
            "IsSandbox": False,
            "OrganizationType": "Enterprise Edition",
            "InstanceName": "NA224",
            **system_fields(fmt, org_created, admin_id, org_created, admin_id),
        }
    ]

    users: list[Record] = []
    used_usernames: set[str] = set()

    def add_user(
        user_id: str,
        first: str,
        last: str,
        *,
        region: str,
        active: bool,
        manager: UserInfo | None,
        username: str | None = None,
    ) -> UserInfo:
        base = username or f"{_ascii(first)}.{_ascii(last)}"
        candidate, n = base, 1
        while candidate in used_usernames:
            n += 1
            candidate = f"{base}{n}"
        used_usernames.add(candidate)
        login = f"{candidate}@acme-instruments.example"
        created = org_created if user_id == admin_id else created_at()
        # Deactivation is the user's last modification.
        modified = created + rng.randrange(DAY, max(2 * DAY, horizon - created))
        if active:
            modified = created + rng.randrange(DAY, 120 * DAY)
        users.append(
            {
                "Id": user_id,
                "Username": login,
                "Email": login,
                "FirstName": first,
                "LastName": last,
                "Name": f"{first} {last}",
                "IsActive": active,
                "ManagerId": manager.id if manager else None,
                "UserType": "Standard",
                "TimeZoneSidKey": REGION_TIME_ZONES.get(region, "GMT"),
                **system_fields(fmt, created, admin_id, min(modified, horizon), admin_id),
            }
        )
        return UserInfo(user_id, region, active, manager)

    def person() -> tuple[str, str]:
        return rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)

    add_user(admin_id, "Org", "Admin", region="", active=True, manager=None, username="admin")
    add_user(
        integration_id,
        "sfsync",
        "Integration",
        region="",
        active=True,
        manager=None,
        username="sfsync.integration",
    )
    heads = {
        r: add_user(user_ids.new(), *person(), region=r, active=True, manager=None) for r in REGIONS
    }

    reps = rep_count(opportunities)
    manager_count = max(2, -(-reps // 8))
    managers: list[UserInfo] = []
    for m in range(manager_count):
        # Every region has a manager; beyond that, AMER is the biggest sales force.
        region = REGIONS[m] if m < len(REGIONS) else rng.choices(REGIONS, (50, 30, 20))[0]
        # Manager 0 is always inactive so that an inactive rep under an inactive
        # manager exists in every org (the write-back's fallback-owner path).
        active = m != 0 and rng.random() >= 0.12
        managers.append(
            add_user(user_ids.new(), *person(), region=region, active=active, manager=heads[region])
        )
    for r in range(reps):
        # Reps 0 and 1 are inactive, under the inactive manager 0 and an active one.
        if r < 2:
            manager = (
                managers[0] if r == 0 else next((m for m in managers if m.is_active), managers[1])
            )
            active = False
        else:
            manager = rng.choice(managers)
            active = rng.random() >= 0.08
        info = add_user(
            user_ids.new(), *person(), region=manager.region, active=active, manager=manager
        )
        (catalog.active_reps if active else catalog.inactive_reps).append(info)
    records["User"] = users
    for region in REGIONS:
        catalog.active_reps_by_region[region] = [
            u for u in catalog.active_reps if u.region == region
        ] or catalog.active_reps

    record_type_ids = IdFactory(KEY_PREFIXES["RecordType"])
    records["RecordType"] = []
    for developer_name, name, _sales in RECORD_TYPES:
        created = created_at()
        rt_id = record_type_ids.new()
        catalog.record_type_ids.append(rt_id)
        catalog.record_type_names.append(developer_name)
        records["RecordType"].append(
            {
                "Id": rt_id,
                "Name": name,
                "DeveloperName": developer_name,
                "SobjectType": "Opportunity",
                "IsActive": True,
                "NamespacePrefix": None,
                "Description": None,
                **system_fields(fmt, created, admin_id, created, admin_id),
            }
        )

    stage_ids = IdFactory(KEY_PREFIXES["OpportunityStage"])
    records["OpportunityStage"] = []
    for stage in STAGES:
        created = created_at()
        records["OpportunityStage"].append(
            {
                "Id": stage_ids.new(),
                "MasterLabel": stage.name,
                "ApiName": stage.name,
                "SortOrder": stage.sort_order,
                "IsActive": True,
                "IsClosed": stage.is_closed,
                "IsWon": stage.is_won,
                "DefaultProbability": stage.probability,
                "ForecastCategory": stage.forecast_category,
                "ForecastCategoryName": stage.forecast_category_name,
                **system_fields(fmt, created, admin_id, created, admin_id),
            }
        )

    currency_ids = IdFactory(KEY_PREFIXES["CurrencyType"])
    records["CurrencyType"] = []
    if multi_currency:
        for currency in CURRENCIES:
            created = created_at()
            records["CurrencyType"].append(
                {
                    "Id": currency_ids.new(),
                    "IsoCode": currency.iso_code,
                    "ConversionRate": currency.rate,
                    "DecimalPlaces": currency.decimal_places,
                    "IsActive": True,
                    "IsCorporate": currency is USD,
                    **system_fields(fmt, created, admin_id, created, admin_id),
                }
            )

    product_ids = IdFactory(KEY_PREFIXES["Product2"])
    records["Product2"] = []
    for family, (names, (low, high)) in _PRODUCT_LINES.items():
        catalog.products_by_family[family] = []
        for n, name in enumerate(names):
            created = created_at()
            # One retired product per family: old deals still reference it.
            product = Product(
                id=product_ids.new(),
                name=name,
                code=f"{family[:3].upper()}-{100 + n * 7}",
                family=family,
                list_price_usd=int(round(rng.uniform(low, high), -1 if high < 5_000 else -2)),
                is_active=n != len(names) - 1,
            )
            catalog.products_by_family[family].append(product)
            record: Record = {
                "Id": product.id,
                "Name": product.name,
                "ProductCode": product.code,
                "Family": product.family,
                "IsActive": product.is_active,
                "Description": None,
            }
            if multi_currency:
                record["CurrencyIsoCode"] = USD.iso_code
            records["Product2"].append(
                {**record, **system_fields(fmt, created, admin_id, created, admin_id)}
            )
    return catalog
