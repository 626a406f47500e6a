"""The Kubernetes adapter serializes API discovery, which the kubernetes client does not make
thread-safe (found by the end-to-end tests: two ModelDeployments reconciling at once raised
KeyError: 'resources' from the DynamicClient's discovery cache)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from kubernetes import dynamic

from rollforward import kube


class OverlapRecordingResources:
    """Discovery that records how many lookups ran at the same time."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_at_once = 0
        self.lookups = 0
        self._lock = threading.Lock()

    def get(self, api_version: str, kind: str) -> object:
        with self._lock:
            self.inside += 1
            self.lookups += 1
            self.most_at_once = max(self.most_at_once, self.inside)
        time.sleep(0.005)  # a discovery round trip, long enough for threads to meet
        with self._lock:
            self.inside -= 1
        return object()


class RecordingDynamicClient:
    def __init__(self, api_client: Any) -> None:
        self.resources = OverlapRecordingResources()


def test_discovery_lookups_from_many_reconcile_threads_never_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dynamic, "DynamicClient", RecordingDynamicClient)
    adapter = kube.KubeAdapter(api_client=None)  # type: ignore[arg-type]
    resources = adapter._dynamic.resources

    def reconcile_like() -> None:
        for _ in range(5):
            assert adapter._resource("Deployment") is not None

    threads = [threading.Thread(target=reconcile_like) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert resources.lookups == 40
    assert resources.most_at_once == 1


def test_gateway_api_presence_is_looked_up_once_a_minute_not_per_reconcile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A discovery miss makes the client rebuild its whole discovery cache (about 24
    requests); bench-operator showed that per reconcile, so the answer is cached."""
    monkeypatch.setattr(dynamic, "DynamicClient", RecordingDynamicClient)
    adapter = kube.KubeAdapter(api_client=None)  # type: ignore[arg-type]
    resources = adapter._dynamic.resources
    assert all(adapter.gateway_api_installed() for _ in range(20))
    assert resources.lookups == 1


class PagedResource:
    """A list served in pages of plain JSON, as the API server does with limit/continue."""

    def __init__(self, items: list[dict[str, Any]], page_size: int) -> None:
        self.pages = [items[i : i + page_size] for i in range(0, len(items), page_size)]
        self.calls: list[dict[str, Any]] = []

    def get(self, **params: Any) -> Any:
        self.calls.append(params)
        index = int(params.get("_continue") or 0)
        more = index + 1 < len(self.pages)
        body = {
            "apiVersion": "apps/v1",
            "kind": "DeploymentList",
            "metadata": {"resourceVersion": "42", **({"continue": str(index + 1)} if more else {})},
            "items": self.pages[index],
        }
        response = type("Response", (), {"data": json.dumps(body).encode()})
        return response


class PagedResources:
    def __init__(self, resource: PagedResource) -> None:
        self.resource = resource

    def get(self, api_version: str, kind: str) -> PagedResource:
        return self.resource


def test_a_relist_reads_pages_of_plain_json_and_slims_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client's ResourceInstance wrapping of one whole list took 212 MB for 3,000
    Deployments: a relist reads pages and never builds it."""
    items = [
        {
            "metadata": {
                "name": f"d{i}",
                "namespace": "ns",
                "resourceVersion": str(i + 1),
                "managedFields": [{"manager": "rollforward"}],
            },
            "spec": {"replicas": 1},
        }
        for i in range(5)
    ]
    resource = PagedResource(items, page_size=2)
    monkeypatch.setattr(dynamic, "DynamicClient", lambda _: None)
    adapter = kube.KubeAdapter(api_client=None)  # type: ignore[arg-type]
    adapter._dynamic = type("Dynamic", (), {"resources": PagedResources(resource)})()
    listed, version = adapter.list_kind("Deployment")
    bodies = list(listed)
    assert version == "42"
    assert [b["metadata"]["name"] for b in bodies] == [f"d{i}" for i in range(5)]
    assert all(b["kind"] == "Deployment" and b["apiVersion"] == "apps/v1" for b in bodies)
    assert all("managedFields" not in b["metadata"] for b in bodies)
    assert len(resource.calls) == 3
    assert all(
        call["serialize"] is False and call["limit"] == kube.LIST_PAGE_SIZE
        for call in resource.calls
    )
