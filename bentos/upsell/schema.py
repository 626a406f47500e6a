"""The Soom record: its fields, their categories and the model's labels.

One definition serves the generator, the feature pipeline and the service's input checks,
so they cannot disagree about what a field is called or which categories are known.
"""

from __future__ import annotations

from typing import Final

from rollforward.serving.inputs import (
    BooleanField,
    CategoricalField,
    CategorySetField,
    NumericField,
    RecordSchema,
)

MODEL_NAME: Final = "soom-upsell"
# Predicted labels, stable across versions: the operator compares their distribution.
POSITIVE_LABEL: Final = "upgrade"
NEGATIVE_LABEL: Final = "stay"
LABELS: Final = (NEGATIVE_LABEL, POSITIVE_LABEL)

# The free plan cuts meetings at 45 minutes; hitting that limit is the classic upgrade cue.
FREE_PLAN_LIMIT_MINUTES: Final = 45
# Usage features describe a user's first days after sign-up.
USAGE_WINDOW_DAYS: Final = 14

REGION_OF_COUNTRY: Final = {
    "US": "NA",
    "CA": "NA",
    "GB": "EMEA",
    "DE": "EMEA",
    "FR": "EMEA",
    "NL": "EMEA",
    "IN": "APAC",
    "JP": "APAC",
    "AU": "APAC",
    "SG": "APAC",
    "BR": "LATAM",
    "MX": "LATAM",
    "AR": "LATAM",
}
COUNTRIES: Final = tuple(REGION_OF_COUNTRY)
REGIONS: Final = ("NA", "EMEA", "APAC", "LATAM")
COMPANY_SIZES: Final = ("1", "2-10", "11-50", "51-200", "201+")
SIGNUP_CHANNELS: Final = ("organic", "ads", "referral", "partner")
# Event types known at training time; the product team may add more (a "festival").
EVENT_TYPES: Final = ("meeting", "conference", "webinar", "meetup")

# Which service each field comes from (documentation, and the README's table).
BILLING_FIELDS: Final = ("had_paid_plan", "card_on_file")
USERS_FIELDS: Final = ("country", "region", "company_size", "signup_channel")
PRODUCT_FIELDS: Final = ("days_active", "meetings", "minutes", "limit_hits", "event_types")

NUMERIC_FIELDS: Final = ("days_active", "meetings", "minutes", "limit_hits")
BOOLEAN_FIELDS: Final = BILLING_FIELDS
CATEGORICAL_FIELDS: Final = USERS_FIELDS
EVENT_TYPES_FIELD: Final = "event_types"
# Fields a client sends that the model ignores on purpose.
PASSTHROUGH_FIELDS: Final = frozenset({"user_id", "signup_at"})

RECORD_SCHEMA: Final = RecordSchema(
    fields=(
        BooleanField("had_paid_plan"),
        BooleanField("card_on_file"),
        CategoricalField("country", COUNTRIES),
        CategoricalField("region", REGIONS),
        CategoricalField("company_size", COMPANY_SIZES),
        CategoricalField("signup_channel", SIGNUP_CHANNELS),
        NumericField("days_active", 0, USAGE_WINDOW_DAYS),
        NumericField("meetings", 0, 10_000),
        NumericField("minutes", 0, 1_000_000),
        NumericField("limit_hits", 0, 10_000),
        CategorySetField(EVENT_TYPES_FIELD, EVENT_TYPES),
    ),
    passthrough=PASSTHROUGH_FIELDS,
)
