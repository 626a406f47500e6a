"""Feedback authentication on real `bentoml serve` processes of the Soom bento.

Given bentos started as the operator starts them (ROLLFORWARD_FEEDBACK_SECRET from the
ModelDeployment's one key), then: without a key /feedback answers 503 and says why;
an id issued by one server verifies on another server of another version sharing the key;
and forged ids (signed with a guessed key, or with the label swapped) are rejected, counted
as anomalies, and never change the outcome counts.
"""

from __future__ import annotations

from devenv.bento import BentoServer, metric_value
from fixtures.fixtures_bento import SOOM_SERVER_ENV, BuiltBento, StartBentoServer
from rollforward.serving import contract
from rollforward.serving.prediction_ids import PredictionIdCodec
from upsell.generator import records

KEY = SOOM_SERVER_ENV[contract.ENV_FEEDBACK_SECRET]


def outcomes(server: BentoServer) -> float:
    return metric_value(server.metrics(), contract.OUTCOMES_TOTAL)


def forged_anomalies(server: BentoServer) -> float:
    return metric_value(
        server.metrics(),
        contract.INPUT_ANOMALIES_TOTAL,
        field="predictionId",
        kind="unknown_prediction_id",
    )


def test_without_a_key_feedback_answers_503_and_predictions_still_serve(
    soom_bento: BuiltBento, bento_servers: StartBentoServer
) -> None:
    env = {k: v for k, v in SOOM_SERVER_ENV.items() if k != contract.ENV_FEEDBACK_SECRET}
    server = bento_servers(soom_bento.tag, soom_bento.bentoml_home, env=env)
    status, prediction = server.post("/predict", next(records("baseline", 1, seed=3)))
    assert status == 200 and prediction["label"] in ("stay", "upgrade")
    status, answer = server.post("/feedback", {"predictionId": "a.stay.b", "label": "stay"})
    assert status == 503
    assert contract.ENV_FEEDBACK_SECRET in answer["error"]
    assert outcomes(server) == 0


def test_ids_cross_versions_and_forgeries_never_count(
    soom_bento: BuiltBento, bento_servers: StartBentoServer
) -> None:
    champion = bento_servers(soom_bento.tag, soom_bento.bentoml_home, env=SOOM_SERVER_ENV)
    candidate_env = {
        **SOOM_SERVER_ENV,
        "ROLLFORWARD_VERSION": "v2",
        "ROLLFORWARD_VARIANT": "candidate",
    }
    candidate = bento_servers(soom_bento.tag, soom_bento.bentoml_home, env=candidate_env)
    _, predictions = champion.post("/predict", list(records("baseline", 3, seed=4)))
    label = predictions[0]["label"]

    status, answer = candidate.post(
        "/feedback", {"predictionId": predictions[0]["predictionId"], "label": label}
    )
    assert status == 200 and answer == {"accepted": 1, "rejected": []}
    counted = outcomes(candidate)
    assert counted == 1

    guessed = PredictionIdCodec("soom-upsell", ["stay", "upgrade"]).issue(
        "upgrade", "champion", "v1", 0
    )
    original = predictions[1]["predictionId"]
    other = "upgrade" if predictions[1]["label"] == "stay" else "stay"
    swapped = original.replace(f".{predictions[1]['label']}.", f".{other}.")
    before = forged_anomalies(candidate)
    status, answer = candidate.post(
        "/feedback",
        [{"predictionId": guessed, "label": "upgrade"}, {"predictionId": swapped, "label": other}],
    )
    assert status == 200 and answer["accepted"] == 0 and len(answer["rejected"]) == 2
    assert forged_anomalies(candidate) - before == 2
    assert outcomes(candidate) == counted
