"""The Soom service's fault-injection switch: off unless the model asks, exact share when on."""

from __future__ import annotations

from upsell.service import FAULT_RATIO_METADATA, InjectedFaults, fault_ratio


def test_a_model_without_the_key_never_fails() -> None:
    faults = InjectedFaults(fault_ratio({"threshold": 0.5}))
    assert not any(faults.next_fails() for _ in range(1000))


def test_the_failing_share_is_exact_and_spread_evenly() -> None:
    faults = InjectedFaults(fault_ratio({FAULT_RATIO_METADATA: 0.25}))
    outcomes = [faults.next_fails() for _ in range(400)]
    assert sum(outcomes) == 100
    assert all(sum(outcomes[i : i + 4]) == 1 for i in range(0, 400, 4))


def test_only_a_number_in_range_switches_it_on() -> None:
    assert fault_ratio({FAULT_RATIO_METADATA: "0.5"}) == 0.0
    assert fault_ratio({FAULT_RATIO_METADATA: True}) == 0.0
    assert InjectedFaults(7.0).ratio == 1.0
    assert InjectedFaults(-1.0).ratio == 0.0
