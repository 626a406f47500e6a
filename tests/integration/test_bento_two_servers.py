"""Champion and challenger served from one model store keep their metrics apart."""

from __future__ import annotations

from devenv.bento import metric_value
from fixtures.fixtures_bento import BuiltBento, StartBentoServer
from rollforward.serving import contract
from upsell.generator import records


def test_two_servers_sharing_a_store_report_only_their_own_predictions(
    soom_bento: BuiltBento, bento_servers: StartBentoServer
) -> None:
    env = {"ROLLFORWARD_MODEL": "soom-upsell", "ROLLFORWARD_VERSION": "v1"}
    champion = bento_servers(
        soom_bento.tag, soom_bento.bentoml_home, {**env, "ROLLFORWARD_VARIANT": "champion"}
    )
    challenger = bento_servers(
        soom_bento.tag, soom_bento.bentoml_home, {**env, "ROLLFORWARD_VARIANT": "challenger"}
    )
    batch = list(records("baseline", 8, seed=21))

    assert champion.post("/predict", batch[:3])[0] == 200
    assert challenger.post("/predict", batch[3:])[0] == 200
    on_champion, on_challenger = champion.metrics(), challenger.metrics()

    assert metric_value(on_champion, contract.PREDICTIONS_TOTAL, variant="champion") == 3
    assert metric_value(on_champion, contract.PREDICTIONS_TOTAL, variant="challenger") == 0
    assert metric_value(on_challenger, contract.PREDICTIONS_TOTAL, variant="challenger") == 5
    assert metric_value(on_challenger, contract.PREDICTIONS_TOTAL, variant="champion") == 0
