"""The bento store's pure parts: SigV4 (AWS's published vectors), keys, the gate's store
check, variant readiness, the deletion rule, the pod pieces, and the gateway's cache (with
an in-memory store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fixtures.decision_inputs import T0, deployment, result
from rollforward.api import (
    ConditionType,
    HistoryEntry,
    JobPhase,
    ModelDeploymentStatus,
    Reason,
    RetrainingStatus,
    RolloutStatus,
    VariantStatus,
)
from rollforward.api.spec import BentoStoreSpec
from rollforward.bentostore.decisions import bentos_to_delete, gate_refusal, referenced_tags
from rollforward.bentostore.gateway import StoreGateway
from rollforward.bentostore.location import store_for
from rollforward.bentostore.pod import FETCH_CONTAINER, job_with_store
from rollforward.bentostore.view import StoreView, store_facts, with_variant_reasons
from rollforward.builders import variant_deployment
from rollforward.conditions import find_condition
from rollforward.retraining import gate
from rollforward.serving.objectstore.client import Answer, Presence, StoreError
from rollforward.serving.objectstore.layout import bento_key, tag_of_key
from rollforward.serving.objectstore.sigv4 import EMPTY_SHA256, Credentials, sign
from rollforward.settings import OperatorSettings
from rollforward.summary import Facts, ServingFacts, summarize
from rollforward.variants import served_variants

STORE = BentoStoreSpec(
    endpoint="http://s3.local:9000", bucket="bentos", credentials_secret="bento-store"
)
SERVING = ServingFacts(
    ready=True,
    reason=Reason.RECONCILED,
    message="all variants and the router are available",
    up_to_date=True,
    blocked=False,
    writing=False,
)
PRESENT = Answer(Presence.PRESENT)
MISSING = Answer(Presence.MISSING, "HTTP 404")


# --- SigV4 -------------------------------------------------------------------------------------


def test_sigv4_matches_the_aws_test_suite_get_vanilla() -> None:
    # aws-sig-v4-test-suite/get-vanilla: the documented credentials, time and signature.
    signed = sign(
        "GET",
        "/",
        {},
        {"Host": "example.amazonaws.com"},
        EMPTY_SHA256,
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        "us-east-1",
        datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
        service="service",
    )
    assert signed.signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    assert signed.headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_sigv4_matches_the_s3_documentation_get_object_example() -> None:
    # S3 API reference, "Example: GET Object" (sig-v4-header-based-auth).
    signed = sign(
        "GET",
        "/test.txt",
        {},
        {
            "Host": "examplebucket.s3.amazonaws.com",
            "Range": "bytes=0-9",
            "x-amz-content-sha256": EMPTY_SHA256,
        },
        EMPTY_SHA256,
        Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "us-east-1",
        datetime(2013, 5, 24, 0, 0, tzinfo=UTC),
    )
    assert signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


# --- keys and location -------------------------------------------------------------------------


def test_a_tag_and_its_key_round_trip_and_foreign_keys_are_not_bentos() -> None:
    assert bento_key("bentos/", "upsell:v2") == "bentos/upsell/v2.bento"
    assert tag_of_key("bentos", "bentos/upsell/v2.bento") == "upsell:v2"
    assert tag_of_key("", bento_key("", "upsell:v2")) == "upsell:v2"
    assert tag_of_key("bentos", "bentos/upsell/v2.tar") is None
    assert tag_of_key("bentos", "other/upsell/v2.bento") is None
    assert tag_of_key("bentos", "bentos/upsell/x/v2.bento") is None


def test_the_spec_store_replaces_the_operator_wide_one() -> None:
    wide = OperatorSettings(bento_store_endpoint="http://wide:9000", bento_store_bucket="wide")
    assert store_for(deployment(), OperatorSettings()) is None
    found = store_for(deployment(), wide)
    assert found is not None and found.bucket == "wide"

    def own(spec: dict[str, Any]) -> None:
        spec["bentoStore"] = {"endpoint": "http://own:9000", "bucket": "own-bucket"}

    found = store_for(deployment(mutate=own), wide)
    assert found is not None and found.endpoint == "http://own:9000"


# --- the gate ----------------------------------------------------------------------------------


def test_the_gate_refuses_a_candidate_whose_bento_is_not_stored() -> None:
    md = deployment()
    assert gate(md, result(), None) == []
    assert gate(md, result(), {"upsell:v2": PRESENT}) == []
    reasons = gate(md, result(), {"upsell:v2": MISSING})
    assert len(reasons) == 1 and "BentoNotFound" in reasons[0]
    forbidden = gate(md, result(), {"upsell:v2": Answer(Presence.FORBIDDEN, "HTTP 403")})
    assert "BentoStoreForbidden" in forbidden[0]
    assert gate_refusal("upsell:v2", {}) is not None  # configured but never checked: refused


# --- variant readiness -------------------------------------------------------------------------


def test_a_variant_without_its_bento_is_not_ready_and_names_why() -> None:
    md = deployment()
    status = ModelDeploymentStatus(
        variants=[
            VariantStatus(name="champion", role="champion", version="upsell:v1"),
            VariantStatus(name="challenger", role="challenger", version="upsell:v1-gbm"),
        ]
    )
    view = StoreView(STORE, {"upsell:v1": PRESENT, "upsell:v1-gbm": MISSING})
    serving = store_facts(SERVING, status, view)
    new = summarize(md, with_variant_reasons(status, view), Facts(serving=serving), T0)
    by_name = {v.name: v for v in new.variants}
    assert by_name["champion"].reason is None
    assert by_name["challenger"].reason == "BentoNotFound"
    ready = find_condition(new.conditions, ConditionType.READY)
    assert ready is not None and ready.status == "False" and ready.reason == "BentoNotFound"
    assert "challenger" in ready.message


def test_once_the_bento_is_stored_the_reason_goes_away() -> None:
    status = ModelDeploymentStatus(
        variants=[VariantStatus(name="champion", role="champion", version="upsell:v1", reason="X")]
    )
    view = StoreView(STORE, {"upsell:v1": PRESENT})
    assert with_variant_reasons(status, view).variants[0].reason is None
    assert store_facts(SERVING, status, view) == SERVING


# --- deletion ----------------------------------------------------------------------------------


def _entry(version: str, outcome: Any, minutes: int) -> HistoryEntry:
    return HistoryEntry(
        version=version,
        trigger="onDrift",
        outcome=outcome,
        started_at=T0 + timedelta(minutes=minutes),
    )


def test_failed_candidates_and_old_champions_are_deleted_never_a_referenced_one() -> None:
    history = [
        _entry("upsell:c1", "Superseded", 1),
        _entry("upsell:c2", "Superseded", 2),
        _entry("upsell:c3", "Superseded", 3),
        _entry("upsell:c4", "Promoted", 4),
        _entry("upsell:bad", "Rejected", 5),
        _entry("upsell:canary", "Canary", 6),
    ]
    status = ModelDeploymentStatus(
        champion="upsell:c4",
        champion_source="upsell:v1",
        history=history,
        failed_versions=["upsell:bad", "upsell:v1-gbm"],
        rollout=RolloutStatus(
            candidate_version="upsell:canary",
            trigger_id="t",
            started_at=T0,
            step_started_at=T0,
            spec_hash="h",
        ),
    )
    md = deployment(status=status)  # revisionHistoryLimit 2
    stored = {
        "upsell:v1",
        "upsell:v1-gbm",
        "upsell:c1",
        "upsell:c2",
        "upsell:c3",
        "upsell:c4",
        "upsell:bad",
        "upsell:canary",
        "upsell:by-hand",
    }
    deleted = bentos_to_delete(md, status, stored)
    # c2 and c3 are the two newest former champions; c1 is beyond the limit.
    assert deleted == ["upsell:bad", "upsell:c1"]
    referenced = referenced_tags(md, status)
    assert {"upsell:c4", "upsell:canary", "upsell:v1", "upsell:v1-gbm"} <= referenced
    assert not referenced & set(deleted)


def test_a_running_or_accepted_candidate_is_referenced_and_a_rejected_one_is_not() -> None:
    def retraining(phase: JobPhase) -> ModelDeploymentStatus:
        return ModelDeploymentStatus(
            failed_versions=["upsell:v2"],
            retraining=RetrainingStatus(
                trigger_id="t",
                trigger="manual",
                job_name="j",
                phase=phase,
                started_at=T0,
                candidate_version="upsell:v2",
            ),
        )

    succeeded = retraining(JobPhase.SUCCEEDED)
    assert bentos_to_delete(deployment(status=succeeded), succeeded, {"upsell:v2"}) == []
    rejected = retraining(JobPhase.REJECTED)
    assert bentos_to_delete(deployment(status=rejected), rejected, {"upsell:v2"}) == ["upsell:v2"]


def test_every_served_bento_is_referenced_whatever_the_history_says() -> None:
    status = ModelDeploymentStatus(failed_versions=["upsell:v1", "upsell:v1-gbm"])
    md = deployment(status=status)
    served = {v.bento for v in served_variants(md.spec, status) if v.bento}
    assert served == {"upsell:v1", "upsell:v1-gbm"}
    assert bentos_to_delete(md, status, served) == []


# --- pod pieces --------------------------------------------------------------------------------


def test_a_bento_pod_fetches_its_bento_into_an_emptydir_home_when_there_is_a_store() -> None:
    md = deployment()
    settings = OperatorSettings(bento_store_endpoint="http://s3:9000", bento_store_secret="keys")
    variant = served_variants(md.spec, md.status)[0]
    pod = variant_deployment(md, variant, settings)["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["name"] == FETCH_CONTAINER
    assert init["args"] == ["pull", "upsell:v1"]
    env = {e["name"]: e for e in init["env"]}
    assert env["ROLLFORWARD_BENTO_STORE_ENDPOINT"]["value"] == "http://s3:9000"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "keys"
    home = env["BENTOML_HOME"]["value"]
    (serving,) = pod["containers"]
    assert [e for e in serving["env"] if e["name"] == "BENTOML_HOME"] == [
        {"name": "BENTOML_HOME", "value": home}
    ]
    assert serving["command"] == ["bentoml", "serve", "upsell:v1"]
    tmp = {"name": "tmp", "emptyDir": {}}
    assert pod["volumes"] == [tmp, {"name": "bentoml-home", "emptyDir": {}}]

    without = variant_deployment(md, variant, OperatorSettings())["spec"]["template"]["spec"]
    assert "initContainers" not in without and without["volumes"] == [tmp]


def test_a_retraining_job_gets_the_store_location_and_keys() -> None:
    job = {"spec": {"template": {"spec": {"containers": [{"name": "retrain", "env": []}]}}}}
    (container,) = job_with_store(job, STORE)["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert "ROLLFORWARD_BENTO_STORE_BUCKET" in names and "AWS_ACCESS_KEY_ID" in names


# --- the gateway, over an in-memory store ------------------------------------------------------


class FakeStore:
    """An in-memory ObjectStore that counts requests and checks the credentials."""

    def __init__(self, objects: set[str], secret: str) -> None:
        self.objects = objects
        self.secret = secret
        self.requests = 0
        self.credentials: Credentials | None = None

    def _check(self) -> None:
        self.requests += 1
        if self.credentials is None or self.credentials.secret_key != self.secret:
            raise StoreError(Presence.FORBIDDEN, "HTTP 403 SignatureDoesNotMatch")

    def head(self, key: str) -> Answer:
        try:
            self._check()
        except StoreError as error:
            return Answer(error.presence, error.detail)
        return Answer(Presence.PRESENT if key in self.objects else Presence.MISSING)

    def list(self, prefix: str) -> list[str]:
        self._check()
        return sorted(k for k in self.objects if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self._check()
        self.objects.discard(key)

    def put(self, key: str, source: Path) -> None:
        self._check()
        self.objects.add(key)

    def get(self, key: str, target: Path) -> None:
        self._check()


def _gateway(
    fake: FakeStore, secrets: dict[str, dict[str, str]], clock: list[float]
) -> StoreGateway:
    def factory(spec: BentoStoreSpec, credentials: Credentials | None) -> FakeStore:
        fake.credentials = credentials
        return fake

    return StoreGateway(
        lambda ns, name: secrets.get(f"{ns}/{name}"), 60, factory, clock=lambda: clock[0]
    )


def test_the_gateway_asks_the_store_once_per_interval() -> None:
    fake = FakeStore({"bentos/upsell/v1.bento"}, "right")
    keys = {"default/bento-store": {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "right"}}
    clock = [0.0]
    gateway = _gateway(fake, keys, clock)
    first = gateway.probe(STORE, "default", ["upsell:v1", "upsell:v2"])
    assert first == {"upsell:v1": PRESENT, "upsell:v2": Answer(Presence.MISSING)}
    gateway.probe(STORE, "default", ["upsell:v1", "upsell:v2"])
    assert fake.requests == 2
    clock[0] = 61
    gateway.probe(STORE, "default", ["upsell:v1"])
    assert fake.requests == 3


def test_wrong_or_missing_credentials_read_as_forbidden() -> None:
    fake = FakeStore({"bentos/upsell/v1.bento"}, "right")
    wrong = {"default/bento-store": {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "wrong"}}
    answer = _gateway(fake, wrong, [0.0]).probe(STORE, "default", ["upsell:v1"])["upsell:v1"]
    assert answer.presence is Presence.FORBIDDEN
    absent = _gateway(fake, {}, [0.0]).probe(STORE, "default", ["upsell:v1"])["upsell:v1"]
    assert absent.presence is Presence.FORBIDDEN and "bento-store" in absent.detail


def test_the_gateway_lists_stored_tags_and_forgets_a_deleted_one() -> None:
    objects = {"bentos/upsell/v1.bento", "bentos/upsell/bad.bento", "bentos/upsell/notes.txt"}
    fake = FakeStore(objects, "right")
    keys = {"default/bento-store": {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "right"}}
    gateway = _gateway(fake, keys, [0.0])
    assert gateway.stored_tags(STORE, "default", ["upsell"]) == {"upsell:v1", "upsell:bad"}
    gateway.delete(STORE, "default", "upsell:bad")
    assert "bentos/upsell/bad.bento" not in fake.objects
    assert gateway.stored_tags(STORE, "default", ["upsell"]) == {"upsell:v1"}
