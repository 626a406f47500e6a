"""The nginx router's config renderer: validation, bucket order, every branch of the text."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devenv.nginx_split_clients import assigned_variant, bucket_bounds, murmur_hash2
from rollforward.routers.nginx_config import (
    DEFAULT_SERVED_BY_HEADER,
    FALLBACK_ATTEMPTS,
    UPSTREAM_ATTEMPTS,
    NginxRouterConfig,
    RoutedVariant,
    SplitBucket,
    config_checksum,
    header_variable,
    render_nginx_config,
    split_buckets,
)
from rollforward.serving.contract import VARIANT_HEADER

KEYS = [f"user-{i:04d}" for i in range(2000)]


def variant(name: str, weight: int, upstream: str | None = None) -> RoutedVariant:
    return RoutedVariant(name=name, weight=weight, upstream=upstream or f"{name}.models.svc:3000")


def make_config(**overrides: Any) -> NginxRouterConfig:
    fields: dict[str, Any] = {
        "listen_port": 8080,
        "sticky_header": "X-User-Id",
        "pin_header": "X-Rollforward-Pin",
        "champion": "champion",
        "variants": (variant("champion", 90), variant("challenger", 10)),
    }
    fields.update(overrides)
    return NginxRouterConfig(**fields)


def split_block(text: str) -> list[tuple[str, str]]:
    """The (percent, variant) lines of the rendered split_clients block, in order."""
    match = re.search(r"split_clients \S+ \$rf_split_variant \{\n(.*?)\n\s*\}", text, re.DOTALL)
    assert match is not None, text
    return [_pair(line) for line in match[1].splitlines()]


def _pair(line: str) -> tuple[str, str]:
    percent, name = line.strip().rstrip(";").split()
    return percent, name


def upstream_blocks(text: str) -> dict[str, list[str]]:
    """Each rendered upstream's server lines, comments left out."""
    blocks = re.findall(r"upstream (\S+) \{\n(.*?)\n\s*\}", text, re.DOTALL)
    return {
        name: [s.strip() for s in body.splitlines() if not s.strip().startswith("#")]
        for name, body in blocks
    }


def map_block(text: str, source: str) -> list[str]:
    match = re.search(rf"map \{source} \S+ \{{\n(.*?)\n\s*\}}", text, re.DOTALL)
    assert match is not None, text
    return [line.strip() for line in match[1].splitlines()]


class TestHeaderNames:
    @pytest.mark.parametrize(
        "bad", ["X_User_Id", "X-User Id", "X-User;Id", "X-User{", "X-User\nId", "X-Üser", "$x"]
    )
    @pytest.mark.parametrize("field", ["sticky_header", "pin_header", "served_by_header"])
    def test_anything_but_letters_digits_and_hyphens_is_refused(self, field: str, bad: str) -> None:
        with pytest.raises(ValueError, match="letters, digits and '-'"):
            make_config(**{field: bad})

    def test_empty_header_is_refused(self) -> None:
        with pytest.raises(ValueError):
            make_config(sticky_header="")

    def test_headers_must_differ_ignoring_case(self) -> None:
        with pytest.raises(ValueError, match="must differ"):
            make_config(sticky_header="X-Key", pin_header="x-key")

    @pytest.mark.parametrize(
        ("header", "variable"),
        [("X-User-Id", "$http_x_user_id"), ("user", "$http_user"), ("A1-B2", "$http_a1_b2")],
    )
    def test_variable_is_lowercase_with_underscores(self, header: str, variable: str) -> None:
        assert header_variable(header) == variable

    def test_header_variable_refuses_unsafe_names(self) -> None:
        with pytest.raises(ValueError):
            header_variable("X-User-Id; return 200")

    def test_served_by_header_has_a_default(self) -> None:
        assert make_config().served_by_header == DEFAULT_SERVED_BY_HEADER == "X-Rollforward-Variant"


class TestVariants:
    @pytest.mark.parametrize("bad", ["Champion", "cham_pion", "-a", "a-", "a.b", "", "a" * 64])
    def test_names_are_dns_labels(self, bad: str) -> None:
        with pytest.raises(ValueError, match="DNS-1123"):
            variant(bad, 10)

    def test_a_63_character_name_is_a_label(self) -> None:
        assert variant("a" * 63, 10).name == "a" * 63

    @pytest.mark.parametrize("weight", [-1, 101])
    def test_weight_is_a_percentage(self, weight: int) -> None:
        with pytest.raises(ValueError):
            variant("a", weight)

    @pytest.mark.parametrize("weights", [(90, 9), (90, 11), (0, 0)])
    def test_weights_must_sum_to_100(self, weights: tuple[int, int]) -> None:
        with pytest.raises(ValueError, match=r"sum to 100, got \d+ \(champion=\d+, b=\d+\)"):
            make_config(variants=(variant("champion", weights[0]), variant("b", weights[1])))

    def test_names_are_unique(self) -> None:
        with pytest.raises(ValueError, match="repeated: champion"):
            make_config(variants=(variant("champion", 50), variant("champion", 50)))

    def test_champion_must_be_a_variant(self) -> None:
        with pytest.raises(ValueError, match="champion 'nope'"):
            make_config(champion="nope")

    def test_at_least_one_variant(self) -> None:
        with pytest.raises(ValueError):
            make_config(variants=())

    @pytest.mark.parametrize(
        "bad",
        ["host", "host:", "host:0", "host:65536", "a b:80", "host:80;evil", ":80", "h$x:80"],
    )
    def test_upstream_is_host_and_port(self, bad: str) -> None:
        with pytest.raises(ValueError, match="host:port"):
            variant("a", 10, upstream=bad)

    @pytest.mark.parametrize(
        "good", ["champion.models.svc:3000", "127.0.0.1:1", "[::1]:65535", "localhost:80"]
    )
    def test_upstream_accepts_names_and_addresses(self, good: str) -> None:
        assert variant("a", 10, upstream=good).upstream == good

    def test_unknown_fields_are_refused(self) -> None:
        with pytest.raises(ValueError):
            make_config(colour="blue")

    def test_config_is_frozen(self) -> None:
        config = make_config()
        with pytest.raises(ValueError):
            config.listen_port = 1  # type: ignore[misc]


class TestMirrorValidation:
    def test_mirror_must_be_a_variant(self) -> None:
        with pytest.raises(ValueError, match="mirror variant 'shadow' is not one of"):
            make_config(mirror_variant="shadow")

    def test_mirror_must_have_no_users(self) -> None:
        with pytest.raises(ValueError, match="must have weight 0"):
            make_config(mirror_variant="challenger")


class TestListen:
    def test_every_address_by_default(self) -> None:
        assert "\n        listen 8080;\n" in render_nginx_config(make_config())

    def test_ipv4_address(self) -> None:
        text = render_nginx_config(make_config(listen_address="127.0.0.1", listen_port=1234))
        assert "listen 127.0.0.1:1234;" in text

    def test_ipv6_address_is_bracketed(self) -> None:
        assert "listen [::1]:8080;" in render_nginx_config(make_config(listen_address="::1"))

    def test_address_must_be_an_ip(self) -> None:
        with pytest.raises(ValueError):
            make_config(listen_address="localhost")

    @pytest.mark.parametrize("port", [0, 65536])
    def test_port_range(self, port: int) -> None:
        with pytest.raises(ValueError):
            make_config(listen_port=port)


class TestSplitBuckets:
    def test_challenger_first_champion_takes_the_rest(self) -> None:
        assert split_buckets(make_config()) == (
            SplitBucket("challenger", 10),
            SplitBucket("champion", None),
        )

    def test_champion_position_in_the_list_does_not_matter(self) -> None:
        config = make_config(variants=(variant("challenger", 10), variant("champion", 90)))
        assert split_buckets(config) == split_buckets(make_config())

    def test_three_variants_keep_declaration_order(self) -> None:
        config = make_config(variants=(variant("b", 20), variant("champion", 70), variant("a", 10)))
        assert split_buckets(config) == (
            SplitBucket("b", 20),
            SplitBucket("a", 10),
            SplitBucket("champion", None),
        )

    def test_zero_weight_challengers_get_no_bucket(self) -> None:
        config = make_config(
            variants=(variant("champion", 90), variant("idle", 0), variant("challenger", 10))
        )
        assert split_buckets(config) == (
            SplitBucket("challenger", 10),
            SplitBucket("champion", None),
        )

    def test_champion_at_100_is_the_only_bucket(self) -> None:
        config = make_config(variants=(variant("champion", 100), variant("challenger", 0)))
        assert split_buckets(config) == (SplitBucket("champion", None),)

    def test_challenger_at_100_is_the_only_bucket(self) -> None:
        config = make_config(variants=(variant("champion", 0), variant("challenger", 100)))
        assert split_buckets(config) == (SplitBucket("challenger", None),)

    def test_zero_weight_champion_hands_the_rest_to_the_last_challenger(self) -> None:
        config = make_config(variants=(variant("champion", 0), variant("a", 40), variant("b", 60)))
        assert split_buckets(config) == (SplitBucket("a", 40), SplitBucket("b", None))


class TestRenderedText:
    def test_split_block_matches_the_buckets_and_has_no_zero_percent(self) -> None:
        config = make_config(
            variants=(
                variant("champion", 65),
                variant("idle", 0),
                variant("a", 10),
                variant("b", 25),
            )
        )
        text = render_nginx_config(config)
        assert split_block(text) == [("10%", "a"), ("25%", "b"), ("*", "champion")]
        assert "idle" not in dict(split_block(text)).values()

    def test_split_hashes_the_key_that_falls_back_to_request_id(self) -> None:
        text = render_nginx_config(make_config(sticky_header="X-Customer"))
        assert map_block(text, "$http_x_customer") == [
            '""      $request_id;',
            "default $http_x_customer;",
        ]
        assert 'split_clients "${rf_sticky_key}" $rf_split_variant {' in text

    def test_pin_map_lists_every_variant_even_without_weight(self) -> None:
        config = make_config(
            variants=(variant("champion", 100), variant("challenger", 0)), pin_header="X-Pin"
        )
        assert map_block(render_nginx_config(config), "$http_x_pin") == [
            'default "";',
            "champion champion;",
            "challenger challenger;",
        ]

    def test_pin_values_that_are_map_keywords_are_escaped(self) -> None:
        config = make_config(
            champion="default",
            variants=(variant("default", 50), variant("include", 25), variant("volatile", 25)),
        )
        pins = map_block(render_nginx_config(config), "$http_x_rollforward_pin")
        assert pins == [
            'default "";',
            "\\default default;",
            "\\include include;",
            "\\volatile volatile;",
        ]

    def test_pin_overrides_split(self) -> None:
        assert map_block(render_nginx_config(make_config()), "$rf_pinned_variant") == [
            '""      $rf_split_variant;',
            "default $rf_pinned_variant;",
        ]

    def test_one_upstream_per_variant_without_resolving(self) -> None:
        config = make_config(
            variants=(variant("champion", 90), variant("challenger", 10), variant("shadow", 0)),
            mirror_variant="shadow",
        )
        upstreams = upstream_blocks(render_nginx_config(config))
        champion = "server champion.models.svc:3000 max_fails=0;"
        challenger = "server challenger.models.svc:3000 max_fails=0;"
        shadow = "server shadow.models.svc:3000 max_fails=0;"
        # The champion and the mirror have nowhere to fall back to: their own Service only.
        assert upstreams["rollforward-champion"] == [champion] * UPSTREAM_ATTEMPTS
        assert upstreams["rollforward-shadow"] == [shadow] * UPSTREAM_ATTEMPTS
        # Any other variant: its own Service first, then the champion's as the backup.
        assert (
            upstreams["rollforward-challenger"]
            == [challenger] * UPSTREAM_ATTEMPTS
            + ["server champion.models.svc:3000 max_fails=0 backup;"] * FALLBACK_ATTEMPTS
        )
        assert "resolver" not in render_nginx_config(config)

    def test_every_routed_non_champion_falls_back_to_the_champion(self) -> None:
        config = make_config(
            champion="b",
            variants=(variant("a", 20), variant("b", 50), variant("c", 30), variant("d", 0)),
        )
        upstreams = upstream_blocks(render_nginx_config(config))
        backup = "server b.models.svc:3000 max_fails=0 backup;"
        assert {name: backup in lines for name, lines in upstreams.items()} == {
            "rollforward-a": True,
            "rollforward-b": False,
            "rollforward-c": True,
            # Zero weight but not the mirror: a request pinned to it falls back too.
            "rollforward-d": True,
        }
        assert [config.falls_back(v.name) for v in config.variants] == [True, False, True, True]

    def test_a_failed_connect_is_retried_on_the_same_variant_and_a_sent_post_never(
        self,
    ) -> None:
        text = render_nginx_config(make_config())
        assert "proxy_next_upstream error timeout http_502;" in text
        # A variant's own 503 (or 504) is its answer: it never falls back to the champion.
        assert "http_503" not in text and "http_504" not in text
        assert "non_idempotent" not in text
        # Every own attempt, then the champion's.
        assert f"proxy_next_upstream_tries {UPSTREAM_ATTEMPTS + FALLBACK_ATTEMPTS};" in text
        # No idle upstream connection for a stopping bento to close under a request.
        assert "keepalive" not in text
        assert "worker_shutdown_timeout" in text
        assert "proxy_pass http://rollforward-$rf_variant;" in text

    def test_served_by_header_is_added_always_and_hidden_from_upstream(self) -> None:
        text = render_nginx_config(make_config(served_by_header="X-Served-By"))
        assert "add_header X-Served-By $rf_served_by always;" in text
        assert "proxy_hide_header X-Served-By;" in text
        # The bento's own header, which the router's replaces.
        assert f"proxy_hide_header {VARIANT_HEADER};" in text
        default = render_nginx_config(make_config())
        assert default.count("proxy_hide_header") == 1
        assert f"add_header {VARIANT_HEADER} $rf_served_by always;" in default

    def test_served_by_is_the_bentos_variant_when_it_names_one_else_the_routed_one(
        self,
    ) -> None:
        config = make_config(
            champion="default",
            variants=(variant("default", 50), variant("include", 25), variant("other", 25)),
        )
        text = render_nginx_config(config)
        assert map_block(text, "$upstream_http_x_rollforward_variant") == [
            "default $rf_variant;",
            "\\default default;",
            "\\include include;",
            "other other;",
        ]
        assert "served_by=$rf_served_by" in text

    def test_health_is_answered_by_nginx_and_everything_else_is_proxied(self) -> None:
        text = render_nginx_config(make_config())
        assert "location = /healthz {" in text
        assert 'return 200 "ok\\n";' in text
        assert "location / {" in text

    def test_without_mirror_there_is_no_mirroring(self) -> None:
        text = render_nginx_config(make_config())
        assert not re.search(r"^\s*mirror", text, re.MULTILINE)
        assert "_rollforward_mirror" not in text

    def test_mirror_copies_to_an_internal_location_for_the_shadow(self) -> None:
        config = make_config(
            variants=(variant("champion", 90), variant("challenger", 10), variant("shadow", 0)),
            mirror_variant="shadow",
        )
        text = render_nginx_config(config)
        assert "mirror /_rollforward_mirror;" in text
        assert "mirror_request_body on;" in text
        assert "location = /_rollforward_mirror {\n            internal;" in text
        assert "proxy_pass http://rollforward-shadow$request_uri;" in text
        assert split_block(text) == [("10%", "challenger"), ("*", "champion")]

    def test_nothing_the_stock_image_sets_itself(self) -> None:
        # The stock image runs `nginx -g 'daemon off;'`; a second `daemon` would be refused.
        text = render_nginx_config(make_config())
        for directive in ("daemon", "pid", "user"):
            assert not re.search(rf"^\s*{directive}\s", text, re.MULTILINE), directive

    def test_worker_processes(self) -> None:
        assert "worker_processes 3;" in render_nginx_config(make_config(worker_processes=3))

    def test_braces_balance(self) -> None:
        text = render_nginx_config(make_config(mirror_variant=None))
        assert text.count("{") == text.count("}")


class TestDeterminismAndChecksum:
    def test_same_input_same_bytes(self) -> None:
        first = render_nginx_config(make_config())
        again = render_nginx_config(make_config())
        assert first == again
        assert config_checksum(first) == config_checksum(again)

    def test_checksum_is_sha256_hex_of_the_text(self) -> None:
        text = render_nginx_config(make_config())
        assert config_checksum(text) == hashlib.sha256(text.encode()).hexdigest()
        assert re.fullmatch(r"[0-9a-f]{64}", config_checksum(text))

    @pytest.mark.parametrize(
        "change",
        [
            {"variants": (variant("champion", 75), variant("challenger", 25))},
            {"pin_header": "X-Pin"},
            {"listen_port": 8081},
            {"variants": (variant("champion", 90), variant("challenger", 10, "other:3000"))},
        ],
    )
    def test_checksum_changes_with_the_text(self, change: dict[str, Any]) -> None:
        base = render_nginx_config(make_config())
        changed = render_nginx_config(make_config(**change))
        assert changed != base
        assert config_checksum(changed) != config_checksum(base)

    def test_a_zero_weight_variant_added_elsewhere_changes_the_text(self) -> None:
        # It is pinnable, so it is in the config even though it gets no bucket.
        base = render_nginx_config(make_config())
        more = make_config(
            variants=(variant("champion", 90), variant("challenger", 10), variant("next", 0))
        )
        assert config_checksum(render_nginx_config(more)) != config_checksum(base)


class TestSplitClientsModel:
    """The harness's model of split_clients, which the integration tests hold nginx to."""

    def test_bounds_are_cumulative_and_rounded_down(self) -> None:
        buckets = (SplitBucket("a", 10), SplitBucket("b", 15), SplitBucket("c", None))
        assert bucket_bounds(buckets) == [429496729, 429496729 + 644245094, None]

    def test_hash_uses_every_byte_of_the_tail(self) -> None:
        hashes = {murmur_hash2(b"abcd" + tail) for tail in (b"", b"e", b"ef", b"efg", b"efh")}
        assert len(hashes) == 5

    def test_shares_over_many_keys_follow_the_weights(self) -> None:
        buckets = split_buckets(make_config())
        on_challenger = sum(assigned_variant(key, buckets) == "challenger" for key in KEYS)
        assert 0.08 < on_challenger / len(KEYS) < 0.12


weights_of_three = st.tuples(st.integers(0, 100), st.integers(0, 100)).filter(
    lambda pair: sum(pair) <= 100
)


class TestStickiness:
    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 100), st.integers(1, 100))
    def test_growing_the_challenger_keeps_all_its_users(self, before: int, after: int) -> None:
        low, high = sorted((before, after))
        old = split_buckets(
            make_config(variants=(variant("champion", 100 - low), variant("challenger", low)))
        )
        new = split_buckets(
            make_config(variants=(variant("champion", 100 - high), variant("challenger", high)))
        )
        for key in KEYS[:500]:
            if assigned_variant(key, old) == "challenger":
                assert assigned_variant(key, new) == "challenger", key

    @settings(max_examples=60, deadline=None)
    @given(weights_of_three, weights_of_three)
    def test_two_challengers_keep_users_as_documented(
        self, before: tuple[int, int], after: tuple[int, int]
    ) -> None:
        def buckets(weights: tuple[int, int]) -> tuple[SplitBucket, ...]:
            a, b = weights
            return split_buckets(
                make_config(
                    variants=(variant("champion", 100 - a - b), variant("a", a), variant("b", b))
                )
            )

        old, new = buckets(before), buckets(after)
        # The documented guarantee: challenger i keeps its users when the challengers before it
        # do not grow and the total through it does not shrink; the champion gains no challenger
        # user while the challengers' total does not shrink.
        keeps = {
            "a": after[0] >= before[0],
            "b": after[0] <= before[0] and sum(after) >= sum(before),
        }
        to_champion_possible = sum(after) < sum(before)
        for key in KEYS[:500]:
            was, now = assigned_variant(key, old), assigned_variant(key, new)
            if keeps.get(was):
                assert now == was, (key, was, now)
            if was != "champion" and not to_champion_possible:
                assert now != "champion", (key, was, now)
