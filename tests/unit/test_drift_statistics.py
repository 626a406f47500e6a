"""The drift statistics: scipy agreement, zero cells, inconclusive inputs, segments."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from rollforward.api import DriftStatistic, DriftVerdict
from rollforward.drift.statistics import (
    BaselineCounts,
    BaselineProportions,
    DriftCriteria,
    DriftReport,
    PValueMethod,
    chi2_isf,
    chi2_sf,
    evaluate_drift,
    evaluate_segments,
    holm_adjusted,
    jensen_shannon_divergence,
    population_stability_index,
    regularized_upper_gamma,
)

LOOSE = DriftCriteria(min_samples=1, min_baseline_samples=1)


def _criteria(statistic: DriftStatistic, **overrides: float) -> DriftCriteria:
    return DriftCriteria(statistic=statistic, min_samples=1, min_baseline_samples=1, **overrides)


def _counts(values: list[int]) -> dict[str, float]:
    return {f"l{i}": float(v) for i, v in enumerate(values)}


def _proportions(values: list[float]) -> BaselineProportions:
    return BaselineProportions(proportions={f"l{i}": v for i, v in enumerate(values)})


class TestChiSquareDistribution:
    @pytest.mark.parametrize("df", [*range(1, 31), 40, 50, 75, 99, 100, 150, 199, 200])
    def test_survival_function_matches_scipy(self, df: int) -> None:
        points = [1e-8, 1e-3, 0.1, 0.5, 1, 2, 3.84, 5, 10, 30, 100, 300, 700, 1400]
        points += [df * f for f in (0.1, 0.5, 0.9, 1.0, 1.1, 1.5, 2, 3, 5, 10)]
        for x in points:
            expected = stats.chi2.sf(x, df)
            got = chi2_sf(x, df)
            if expected > 1e-290:
                assert got == pytest.approx(expected, rel=1e-10), (x, df)
            else:
                assert got < 1e-280, (x, df)

    def test_huge_statistics_underflow_to_zero_without_nan(self) -> None:
        for df in (1, 2, 9, 200):
            for x in (1e4, 1e6, 1e12, math.inf):
                value = chi2_sf(x, df)
                assert value == 0.0 or (0 < value < 1e-300)

    def test_non_positive_statistic_has_p_value_one(self) -> None:
        assert chi2_sf(0.0, 3) == 1.0
        assert chi2_sf(-1e-12, 3) == 1.0

    @pytest.mark.parametrize("a", [0.05, 0.5, 1.5, 7.3, 42.0, 99.5])
    def test_regularized_upper_gamma_matches_scipy(self, a: float) -> None:
        for x in (1e-6, 0.01, 0.3 * a, a, a + 1, 2 * a + 3, 10 * a + 10):
            assert regularized_upper_gamma(a, x) == pytest.approx(
                special.gammaincc(a, x), rel=1e-10, abs=1e-300
            )

    @pytest.mark.parametrize("df", [1, 2, 5, 9, 30, 200])
    @pytest.mark.parametrize("q", [0.5, 0.05, 0.01, 1e-6])
    def test_critical_value_matches_scipy(self, df: int, q: float) -> None:
        assert chi2_isf(q, df) == pytest.approx(stats.chi2.isf(q, df), rel=1e-9)

    @given(
        st.integers(min_value=1, max_value=200),
        st.floats(min_value=0, max_value=5000),
        st.floats(min_value=0, max_value=50),
    )
    def test_survival_function_is_a_decreasing_probability(
        self, df: int, x: float, step: float
    ) -> None:
        low, high = chi2_sf(x, df), chi2_sf(x + step, df)
        assert 0.0 <= high <= low <= 1.0


class TestPearsonAgainstScipy:
    @pytest.mark.parametrize("seed", range(8))
    def test_goodness_of_fit_matches_scipy_chisquare(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        labels = int(rng.integers(3, 12))
        baseline = rng.dirichlet(np.full(labels, 5.0)) * 0.9 + 0.1 / labels
        n = int(rng.integers(2_000, 50_000))
        drifted = rng.dirichlet(np.full(labels, 50.0)) * 0.2 + baseline * 0.8
        observed = rng.multinomial(n, drifted)
        reference = stats.chisquare(observed, baseline * n)

        segment = evaluate_drift(_counts(list(observed)), _proportions(list(baseline)), LOOSE)
        result = segment.segments[0]

        assert result.pooled_labels == []
        assert result.p_value_method is PValueMethod.ASYMPTOTIC
        assert result.score == pytest.approx(reference.statistic, rel=1e-9)
        assert result.p_value == pytest.approx(reference.pvalue, rel=1e-8, abs=1e-300)
        assert result.degrees_of_freedom == labels - 1

    @pytest.mark.parametrize("seed", range(8))
    def test_homogeneity_matches_scipy_chi2_contingency(self, seed: int) -> None:
        rng = np.random.default_rng(100 + seed)
        labels = int(rng.integers(3, 12))
        p = rng.dirichlet(np.full(labels, 5.0)) * 0.9 + 0.1 / labels
        q = rng.dirichlet(np.full(labels, 50.0)) * 0.1 + p * 0.9
        current = rng.multinomial(int(rng.integers(2_000, 20_000)), p)
        reference = rng.multinomial(int(rng.integers(2_000, 20_000)), q)
        expected = stats.chi2_contingency(np.array([current, reference]), correction=False)

        report = evaluate_drift(
            _counts(list(current)), BaselineCounts(counts=_counts(list(reference))), LOOSE
        )
        result = report.segments[0]

        assert result.p_value_method is PValueMethod.ASYMPTOTIC
        assert result.score == pytest.approx(expected.statistic, rel=1e-9)
        assert result.p_value == pytest.approx(expected.pvalue, rel=1e-8, abs=1e-300)
        assert result.m == int(reference.sum())

    @pytest.mark.parametrize(("n", "x", "p"), [(20, 2, 0.3), (100, 41, 0.3), (1000, 330, 0.3)])
    def test_two_cell_goodness_of_fit_p_value_is_the_exact_binomial_tail(
        self, n: int, x: int, p: float
    ) -> None:
        distance = abs(x - n * p)
        exact = stats.binom.cdf(math.floor(n * p - distance + 1e-9), n, p) + stats.binom.sf(
            math.ceil(n * p + distance - 1e-9) - 1, n, p
        )

        report = evaluate_drift({"pos": x, "neg": n - x}, _pos_neg(p), LOOSE)
        result = report.segments[0]

        assert result.p_value_method is PValueMethod.EXACT
        assert result.p_value == pytest.approx(exact, rel=1e-9)
        assert result.score == pytest.approx(stats.chisquare([x, n - x], [n * p, n * (1 - p)])[0])

    @pytest.mark.parametrize(("x", "n", "y", "m"), [(12, 40, 20, 45), (300, 1000, 350, 1200)])
    def test_two_by_two_p_value_is_the_exact_hypergeometric_tail(
        self, x: int, n: int, y: int, m: int
    ) -> None:
        column = x + y
        law = stats.hypergeom(n + m, column, n)
        mean = n * column / (n + m)
        distance = abs(x - mean)
        exact = law.cdf(math.floor(mean - distance + 1e-9)) + law.sf(
            math.ceil(mean + distance - 1e-9) - 1
        )

        report = evaluate_drift(
            {"pos": x, "neg": n - x}, BaselineCounts(counts={"pos": y, "neg": m - y}), LOOSE
        )
        result = report.segments[0]

        assert result.p_value_method is PValueMethod.EXACT
        assert result.p_value == pytest.approx(exact, rel=1e-9)
        table = np.array([[x, n - x], [y, m - y]])
        assert result.score == pytest.approx(
            stats.chi2_contingency(table, correction=False).statistic
        )

    def test_small_multi_cell_p_value_is_the_exact_multinomial_tail(self) -> None:
        baseline = [0.2, 0.3, 0.5]
        observed = [9, 8, 13]
        n = sum(observed)

        def statistic(row: tuple[int, ...]) -> float:
            return sum((o - n * p) ** 2 / (n * p) for o, p in zip(row, baseline, strict=True))

        cut = statistic(tuple(observed)) * (1 - 1e-9)
        exact = sum(
            stats.multinomial.pmf([a, b, n - a - b], n, baseline)
            for a, b in itertools.product(range(n + 1), repeat=2)
            if a + b <= n and statistic((a, b, n - a - b)) >= cut
        )

        result = evaluate_drift(_counts(observed), _proportions(baseline), LOOSE).segments[0]

        assert result.p_value_method is PValueMethod.EXACT
        assert result.p_value == pytest.approx(exact, rel=1e-9)
        assert result.score == pytest.approx(stats.chisquare(observed, np.multiply(baseline, n))[0])

    def test_small_two_sample_p_value_is_the_exact_conditional_tail(self) -> None:
        current, reference = [4, 9, 7], [10, 6, 12]
        columns = [c + r for c, r in zip(current, reference, strict=True)]
        n, m = sum(current), sum(reference)

        def statistic(row: tuple[int, ...]) -> float:
            table = np.array([row, [t - x for t, x in zip(columns, row, strict=True)]])
            return float(stats.chi2_contingency(table, correction=False).statistic)

        def probability(row: tuple[int, ...]) -> float:
            ways = math.prod(math.comb(t, x) for t, x in zip(columns, row, strict=True))
            return ways / math.comb(n + m, n)

        rows = [
            (a, b, n - a - b)
            for a in range(columns[0] + 1)
            for b in range(columns[1] + 1)
            if 0 <= n - a - b <= columns[2]
        ]
        cut = statistic(tuple(current)) * (1 - 1e-9)
        exact = sum(probability(row) for row in rows if statistic(row) >= cut)

        report = evaluate_drift(_counts(current), BaselineCounts(counts=_counts(reference)), LOOSE)
        result = report.segments[0]

        assert result.p_value_method is PValueMethod.EXACT
        assert result.p_value == pytest.approx(exact, rel=1e-9)


def _pos_neg(positive: float) -> BaselineProportions:
    return BaselineProportions(proportions={"pos": positive, "neg": 1 - positive})


class TestDivergences:
    @pytest.mark.parametrize("seed", range(6))
    def test_psi_is_the_symmetric_relative_entropy(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        p, q = rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(7))
        expected = float(np.sum(special.rel_entr(p, q) + special.rel_entr(q, p)))
        assert population_stability_index(list(p), list(q)) == pytest.approx(expected)

    @pytest.mark.parametrize("seed", range(6))
    def test_js_matches_scipy_in_nats(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
        expected = float(jensenshannon(p, q)) ** 2
        assert jensen_shannon_divergence(list(p), list(q)) == pytest.approx(expected)

    def test_divergences_refuse_zero_cells(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            population_stability_index([0.0, 1.0], [0.5, 0.5])

    @pytest.mark.parametrize("baseline_kind", ["training", "reference"])
    @pytest.mark.parametrize("statistic", [DriftStatistic.PSI, DriftStatistic.JENSEN_SHANNON])
    def test_no_drift_mean_matches_the_reported_expectation(
        self, baseline_kind: str, statistic: DriftStatistic
    ) -> None:
        """The noise floor rests on E[PSI] = (B-1)(1/n + 1/m) (JS: an eighth): check it."""
        rng = np.random.default_rng(7)
        p = np.array([0.25, 0.18, 0.14, 0.11, 0.09, 0.07, 0.06, 0.04, 0.03, 0.03])
        n = m = 2_000
        scores, expectations = [], []
        for _ in range(400):
            current = _counts(list(rng.multinomial(n, p)))
            baseline = (
                _proportions(list(p))
                if baseline_kind == "training"
                else BaselineCounts(counts=_counts(list(rng.multinomial(m, p))))
            )
            result = evaluate_drift(current, baseline, _criteria(statistic)).segments[0]
            assert result.score is not None and result.expected_no_drift is not None
            scores.append(result.score)
            expectations.append(result.expected_no_drift)
        # 400 draws of a scaled X2(9): the mean's standard error is sqrt(2/9/400) = 2.4%.
        assert np.mean(scores) == pytest.approx(expectations[0], rel=0.1)
        scale = 1 / n + (1 / m if baseline_kind == "reference" else 0)
        per_unit = 1.0 if statistic is DriftStatistic.PSI else 1 / 8
        assert expectations[0] == pytest.approx(9 * scale * per_unit)


class TestDecisions:
    def test_chi_square_fires_below_alpha_and_reports_everything(self) -> None:
        report = evaluate_drift({"pos": 400, "neg": 600}, _pos_neg(0.3), DriftCriteria())
        result = report.segments[0]

        assert report.verdict is DriftVerdict.DRIFT
        assert result.p_value is not None and result.p_value < 1e-6
        assert result.threshold == pytest.approx(stats.chi2.isf(0.05, 1))
        assert result.expected_no_drift == 1.0
        assert (result.n, result.m) == (1000, None)
        shares = {s.label: (round(s.baseline, 9), s.current) for s in result.labels}
        assert shares == {"neg": (0.7, 0.6), "pos": (0.3, 0.4)}
        assert "chi-square" in report.reason and "< alpha" in report.reason

    def test_chi_square_does_not_fire_on_a_matching_window(self) -> None:
        report = evaluate_drift({"pos": 301, "neg": 699}, _pos_neg(0.3), DriftCriteria())
        assert report.verdict is DriftVerdict.NO_DRIFT
        assert ">= alpha" in report.reason

    def test_psi_above_threshold_but_within_noise_floor_does_not_fire(self) -> None:
        # 10 labels, n = m = 100: the no-drift PSI expectation is 9 * 0.02 = 0.18.
        current = _counts([14, 9, 11, 10, 8, 12, 9, 6, 12, 9])
        reference = BaselineCounts(counts=_counts([10, 10, 10, 10, 10, 10, 10, 10, 10, 10]))
        criteria = _criteria(DriftStatistic.PSI)

        result = evaluate_drift(current, reference, criteria).segments[0]

        assert result.score is not None and result.score > 0.0
        assert result.expected_no_drift == pytest.approx(0.18)
        assert result.noise_floor == pytest.approx(0.72)
        assert result.verdict is DriftVerdict.NO_DRIFT

    def test_psi_fires_above_threshold_floor_and_significance(self) -> None:
        current = _counts([400, 300, 300])
        reference = BaselineCounts(counts=_counts([600, 200, 200]))

        result = evaluate_drift(current, reference, _criteria(DriftStatistic.PSI)).segments[0]

        assert result.verdict is DriftVerdict.DRIFT
        assert result.score is not None and result.noise_floor is not None
        assert result.score > max(0.1, result.noise_floor)
        assert "noise floor" in result.reason

    def test_psi_below_threshold_does_not_fire_even_when_significant(self) -> None:
        # A tiny shift at a huge n is significant but not large: PSI's threshold decides.
        current = {"pos": 31_000.0, "neg": 69_000.0}
        result = evaluate_drift(current, _pos_neg(0.3), DriftCriteria(statistic="psi"))
        chi = evaluate_drift(current, _pos_neg(0.3), DriftCriteria(min_effect=0))
        assert result.verdict is DriftVerdict.NO_DRIFT
        assert "not above the threshold" in result.reason
        assert chi.verdict is DriftVerdict.DRIFT

    def test_default_thresholds(self) -> None:
        assert DriftCriteria(statistic="psi").score_threshold() == 0.1
        assert DriftCriteria(statistic="jensenShannon").score_threshold() == 0.0125
        assert DriftCriteria(statistic="psi", threshold=0.25).score_threshold() == 0.25
        assert DriftCriteria().score_threshold() is None


class TestInconclusive:
    @pytest.mark.parametrize(
        ("current", "baseline", "criteria", "reason"),
        [
            ({}, _pos_neg(0.3), DriftCriteria(), "no predictions"),
            ({"pos": 30.0, "neg": 69.0}, _pos_neg(0.3), DriftCriteria(), "fewer than the minimum"),
            ({"pos": math.nan, "neg": 700.0}, _pos_neg(0.3), DriftCriteria(), "not a finite"),
            ({"pos": -3.0, "neg": 700.0}, _pos_neg(0.3), DriftCriteria(), "not a finite"),
            ({"pos": math.inf, "neg": 700.0}, _pos_neg(0.3), DriftCriteria(), "not a finite"),
            (
                {"pos": 300.0, "neg": 700.0},
                BaselineCounts(counts={"pos": 30, "neg": 70}),
                DriftCriteria(),
                "baseline window",
            ),
            (
                {"pos": 300.0, "neg": 700.0},
                BaselineProportions(proportions={}),
                DriftCriteria(),
                "no label with a positive proportion",
            ),
            (
                {"pos": 300.0, "neg": 700.0},
                BaselineProportions(proportions={"pos": math.nan, "neg": 0.7}),
                DriftCriteria(),
                "baseline proportion",
            ),
            ({"pos": 1000.0}, BaselineProportions(proportions={"pos": 1.0}), LOOSE, "one label"),
            # Expected counts 19.8 and 0.2: pooling leaves a single cell, nothing to test.
            (
                {"a": 19.0, "b": 1.0},
                BaselineProportions(proportions={"a": 0.99, "b": 0.01}),
                LOOSE,
                "too few predictions for a valid chi-square",
            ),
        ],
    )
    def test_bad_or_scarce_data_is_inconclusive(
        self,
        current: dict[str, float],
        baseline: BaselineProportions | BaselineCounts,
        criteria: DriftCriteria,
        reason: str,
    ) -> None:
        report = evaluate_drift(current, baseline, criteria)
        assert report.verdict is DriftVerdict.INCONCLUSIVE
        assert reason in report.reason
        assert report.segments[0].p_value is None
        assert report.tested_segments == 0

    def test_inconclusive_still_shows_the_data(self) -> None:
        report = evaluate_drift({"pos": 3.0, "neg": 7.0}, _pos_neg(0.3), DriftCriteria())
        result = report.segments[0]
        assert result.n == 10
        assert {s.label for s in result.labels} == {"pos", "neg"}


class TestZeroCellsAndRounding:
    @pytest.mark.parametrize("statistic", list(DriftStatistic))
    def test_label_missing_from_the_training_baseline_gives_finite_results(
        self, statistic: DriftStatistic
    ) -> None:
        baseline = BaselineProportions(proportions={"a": 0.5, "b": 0.3, "c": 0.2})
        report = evaluate_drift(
            {"a": 500, "b": 300, "c": 199, "new": 1}, baseline, _criteria(statistic)
        )
        result = report.segments[0]
        assert result.score is not None and math.isfinite(result.score)
        assert result.p_value is not None and 0 <= result.p_value <= 1
        assert report.verdict is DriftVerdict.NO_DRIFT
        assert all(math.isfinite(number) for number in _numbers(report.model_dump()))

    @pytest.mark.parametrize("statistic", list(DriftStatistic))
    def test_a_large_mass_of_a_new_label_is_drift(self, statistic: DriftStatistic) -> None:
        baseline = BaselineProportions(proportions={"a": 0.5, "b": 0.3, "c": 0.2})
        report = evaluate_drift(
            {"a": 400, "b": 250, "c": 150, "new": 200}, baseline, _criteria(statistic)
        )
        assert report.verdict is DriftVerdict.DRIFT

    @pytest.mark.parametrize("statistic", list(DriftStatistic))
    def test_labels_missing_on_one_side_of_two_windows(self, statistic: DriftStatistic) -> None:
        current = {"a": 500.0, "b": 480.0, "c": 20.0}
        reference = BaselineCounts(counts={"a": 520.0, "b": 480.0, "d": 3.0})
        result = evaluate_drift(current, reference, _criteria(statistic)).segments[0]
        assert result.score is not None and math.isfinite(result.score)
        assert {s.label for s in result.labels} == {"a", "b", "c", "d"}
        assert all(math.isfinite(number) for number in _numbers(result.model_dump()))

    def test_labels_zero_on_both_sides_are_ignored(self) -> None:
        with_zero = evaluate_drift(
            {"a": 300.0, "b": 700.0, "z": 0.0},
            BaselineProportions(proportions={"a": 0.3, "b": 0.7, "z": 0.0}),
            DriftCriteria(),
        )
        without = evaluate_drift({"a": 300.0, "b": 700.0}, _ab(0.3), DriftCriteria())
        assert with_zero.segments[0].degrees_of_freedom == without.segments[0].degrees_of_freedom
        assert with_zero.segments[0].p_value == without.segments[0].p_value

    def test_extrapolated_counts_are_rounded_to_whole_predictions(self) -> None:
        result = evaluate_drift({"a": 299.5, "b": 700.4}, _ab(0.3), DriftCriteria()).segments[0]
        assert (result.n, [s.current_count for s in result.labels]) == (1000, [300, 700])

    def test_baseline_proportions_are_renormalised(self) -> None:
        skewed = BaselineProportions(proportions={"a": 0.6, "b": 1.4})
        assert evaluate_drift({"a": 300.0, "b": 700.0}, skewed, DriftCriteria()).segments[
            0
        ].p_value == pytest.approx(1.0)

    def test_rare_labels_are_pooled_for_chi_square(self) -> None:
        baseline = BaselineProportions(
            proportions={"a": 0.6, "b": 0.37, "c": 0.01, "d": 0.01, "e": 0.01}
        )
        result = evaluate_drift(
            {"a": 120, "b": 74, "c": 2, "d": 3, "e": 1}, baseline, DriftCriteria()
        ).segments[0]
        # Expected counts 2, 2 and 2: pooled together they reach 5, so three cells remain.
        assert result.pooled_labels == ["c", "d", "e"]
        assert result.degrees_of_freedom == 2


def _ab(a: float) -> BaselineProportions:
    return BaselineProportions(proportions={"a": a, "b": 1 - a})


class TestSegments:
    def test_holm_adjustment(self) -> None:
        assert holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
        assert holm_adjusted([]) == []
        assert holm_adjusted([0.7, 0.9]) == pytest.approx([1.0, 1.0])

    def test_a_segment_significant_alone_is_not_after_correction(self) -> None:
        # Alone, 335/1000 positives against 30% has p ~ 0.017; Holm over three makes it 0.05.
        current = {
            "eu": {"pos": 335.0, "neg": 665.0},
            "us": {"pos": 300.0, "neg": 700.0},
            "apac": {"pos": 302.0, "neg": 698.0},
        }
        # minEffect 0: this is about the correction, not the size of the shift.
        alone = evaluate_drift(current["eu"], _pos_neg(0.3), DriftCriteria(min_effect=0))
        report = evaluate_segments(current, _pos_neg(0.3), DriftCriteria(min_effect=0))

        assert alone.verdict is DriftVerdict.DRIFT
        assert report.verdict is DriftVerdict.NO_DRIFT
        eu = next(s for s in report.segments if s.segment == "eu")
        assert eu.p_value == alone.segments[0].p_value
        assert eu.adjusted_p_value is not None and eu.adjusted_p_value >= 0.05
        assert "Holm" in eu.reason
        assert report.tested_segments == 3

    def test_a_strongly_drifted_segment_makes_the_report_drift(self) -> None:
        current = {
            "eu": {"pos": 450.0, "neg": 550.0},
            "us": {"pos": 300.0, "neg": 700.0},
        }
        report = evaluate_segments(current, _pos_neg(0.3), DriftCriteria())
        verdicts = {s.segment: s.verdict for s in report.segments}
        assert verdicts == {"eu": DriftVerdict.DRIFT, "us": DriftVerdict.NO_DRIFT}
        assert report.verdict is DriftVerdict.DRIFT
        assert "'eu'" in report.reason

    def test_small_segments_are_inconclusive_and_left_out_of_the_family(self) -> None:
        current = {
            "eu": {"pos": 335.0, "neg": 665.0},
            "tiny": {"pos": 5.0, "neg": 5.0},
        }
        report = evaluate_segments(current, _pos_neg(0.3), DriftCriteria(min_effect=0))
        eu = next(s for s in report.segments if s.segment == "eu")
        tiny = next(s for s in report.segments if s.segment == "tiny")
        assert tiny.verdict is DriftVerdict.INCONCLUSIVE
        assert report.tested_segments == 1
        assert eu.adjusted_p_value == eu.p_value
        assert report.verdict is DriftVerdict.DRIFT
        assert "not tested: 'tiny'" in report.reason

    def test_per_segment_baselines_and_missing_ones(self) -> None:
        current = {"eu": {"pos": 300.0, "neg": 700.0}, "us": {"pos": 300.0, "neg": 700.0}}
        baselines = {
            "eu": BaselineCounts(counts={"pos": 310, "neg": 690}),
            "apac": BaselineCounts(counts={"pos": 310, "neg": 690}),
        }
        report = evaluate_segments(current, baselines, DriftCriteria())
        verdicts = {s.segment: s.verdict for s in report.segments}
        assert verdicts == {
            "apac": DriftVerdict.INCONCLUSIVE,
            "eu": DriftVerdict.NO_DRIFT,
            "us": DriftVerdict.INCONCLUSIVE,
        }
        assert report.verdict is DriftVerdict.NO_DRIFT
        us = next(s for s in report.segments if s.segment == "us")
        assert us.reason == "no baseline for this segment"

    def test_no_testable_segment_is_inconclusive(self) -> None:
        current = {"eu": {"pos": 3.0, "neg": 7.0}, "us": {"pos": 2.0, "neg": 1.0}}
        report = evaluate_segments(current, _pos_neg(0.3), DriftCriteria())
        assert report.verdict is DriftVerdict.INCONCLUSIVE
        assert report.reason.startswith("no segment could be tested")

    def test_no_series_at_all_is_one_inconclusive_segment(self) -> None:
        report = evaluate_segments({}, _pos_neg(0.3), DriftCriteria())
        assert [s.segment for s in report.segments] == [""]
        assert report.verdict is DriftVerdict.INCONCLUSIVE


class TestSerialisation:
    def test_report_round_trips_through_camel_case_json(self) -> None:
        report = evaluate_segments(
            {"eu": {"pos": 400.0, "neg": 600.0}, "us": {"pos": 1.0}},
            _pos_neg(0.3),
            DriftCriteria(statistic="psi"),
        )
        document = json.loads(report.model_dump_json(by_alias=True))
        assert {"testedSegments", "segments"} <= document.keys()
        assert {"pValue", "adjustedPValue", "expectedNoDrift", "noiseFloor", "pooledLabels"} <= (
            document["segments"][0].keys()
        )
        assert DriftReport.model_validate(document) == report

    def test_criteria_accept_camel_case_and_python_names(self) -> None:
        camel = DriftCriteria.model_validate({"noiseFloorMultiplier": 3, "minSamples": 50})
        snake = DriftCriteria(noise_floor_multiplier=3, min_samples=50)
        assert camel == snake


def _numbers(value: object) -> list[float]:
    """Every number in a dumped model, so NaN or infinity cannot hide in a nested field."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [float(value)]
    return []


_COUNT = st.one_of(
    st.floats(min_value=0, max_value=5_000),
    st.integers(min_value=0, max_value=5_000).map(float),
    st.sampled_from([math.nan, math.inf, -1.0, 0.0]),
)
_LABELS = st.sampled_from(["a", "b", "c", "d", "e"])


@given(
    current=st.dictionaries(_LABELS, _COUNT, max_size=5),
    reference=st.dictionaries(_LABELS, _COUNT, max_size=5),
    known=st.booleans(),
    statistic=st.sampled_from(list(DriftStatistic)),
)
def test_any_input_gives_a_verdict_and_a_json_safe_report(
    current: dict[str, float],
    reference: dict[str, float],
    known: bool,
    statistic: DriftStatistic,
) -> None:
    baseline: BaselineProportions | BaselineCounts = (
        BaselineProportions(proportions=reference) if known else BaselineCounts(counts=reference)
    )
    report = evaluate_drift(current, baseline, _criteria(statistic, min_expected_count=5.0))
    assert all(math.isfinite(number) for number in _numbers(report.model_dump()))
    document = json.loads(report.model_dump_json(by_alias=True))
    result = report.segments[0]
    if report.verdict is DriftVerdict.INCONCLUSIVE:
        assert result.p_value is None and result.score is None
    else:
        assert result.p_value is not None and 0.0 <= result.p_value <= 1.0
        assert result.score is not None and math.isfinite(result.score) and result.score >= 0
        assert result.n > 0
    assert document["segments"][0]["verdict"] == report.verdict.value
