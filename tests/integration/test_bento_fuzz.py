"""Property: a real `bentoml serve` of the Soom bento never answers well-formed JSON with a 5xx."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devenv.bento import BentoServer, metric_value
from rollforward.serving import contract
from upsell.generator import records
from upsell.schema import RECORD_SCHEMA

FIELDS = [spec.name for spec in RECORD_SCHEMA.fields]
BASE_RECORD = next(records("baseline", 1, seed=5))

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "7", " 12.5 ", "1e309", "-0", "NaN", "Infinity", "festival", "US"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# Records that look almost right: real field names with odd values, some fields dropped,
# some extra keys added.
odd_records = st.builds(
    lambda drop, changes, extra: {
        **{k: v for k, v in BASE_RECORD.items() if k not in drop},
        **changes,
        **extra,
    },
    st.sets(st.sampled_from(FIELDS)),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
    st.dictionaries(st.text(max_size=12), json_values, max_size=3),
)
payloads = (
    odd_records
    | st.lists(odd_records, max_size=4)
    | st.builds(lambda rs: {"records": rs}, st.lists(odd_records, max_size=3))
    | st.builds(lambda items: {"feedback": items}, st.lists(json_values, max_size=3))
    | json_values
)


@settings(
    max_examples=520,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=payloads, endpoint=st.sampled_from(["/predict", "/predict", "/feedback"]))
def test_well_formed_json_never_gets_a_5xx(
    soom_server: BentoServer, payload: Any, endpoint: str
) -> None:
    status, answer = soom_server.post(endpoint, json.dumps(payload).encode())

    assert status < 500, (payload, answer)
    if endpoint == "/predict" and status == 200:
        predictions = answer if isinstance(answer, list) else [answer]
        assert all(p["label"] in ("stay", "upgrade") for p in predictions)


def test_the_server_recorded_no_5xx(soom_server: BentoServer) -> None:
    """BentoML's own counter agrees with the responses seen by the property test."""
    samples = soom_server.metrics()

    errors = sum(
        value
        for (name, labels), value in samples.items()
        if name == contract.BENTOML_REQUESTS_TOTAL
        and dict(labels)["http_response_code"].startswith("5")
    )
    served = metric_value(samples, contract.BENTOML_REQUESTS_TOTAL, endpoint="/predict")
    assert errors == 0
    assert served >= 300
