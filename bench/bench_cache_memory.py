"""Where the operator's memory goes at N ModelDeployments, measured without a cluster.

tracemalloc over the operator's own code paths, fed with objects shaped as the API server
stores them: each resource's 7 children rendered by the operator's planner, plus what the
server adds (uid, resourceVersion, a Deployment's status, and managedFields that list every
field set, as server-side apply records them), and the ModelDeployment with a status of the
size a Ready one has. It measures:

- the watch-fed cache (rollforward.cache.ObjectCache) holding every resource and child, and
  the same objects held as Python dicts (what the cache kept before);
- a relist of the 3N Deployments into a full cache, through the operator's paged reader
  (KubeAdapter.list_kind over pages of JSON), and through the kubernetes client's
  ResourceInstance wrapping of one whole list (what the relist did before);
- kopf's own per-object memory (ResourceMemories) for every object it watches.

    PYTHONPATH=operator:hack python bench/bench_cache_memory.py --count 1000
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import threading
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devenv.api_cases import example_manifest
from devenv.cluster import REPO_ROOT
from rollforward.api import parse_model_deployment
from rollforward.cache import ObjectCache, slim
from rollforward.kube import LIST_PAGE_SIZE, KubeAdapter
from rollforward.metrics import OperatorMetrics
from rollforward.observed import Observed
from rollforward.serving_plan import plan_serving
from rollforward.settings import OperatorSettings

NOW = "2026-12-01T16:00:00Z"


def fields_v1(value: Any) -> Any:
    """The managedFields tree server-side apply records for `value`: f:<key> per field."""
    if isinstance(value, dict):
        return {f"f:{key}": fields_v1(item) for key, item in value.items()}
    if isinstance(value, list):
        return {f'k:{{"name":"{i}"}}': fields_v1(item) for i, item in enumerate(value)}
    return {}


def as_stored(manifest: dict[str, Any], version: int) -> dict[str, Any]:
    body = copy.deepcopy(manifest)
    meta = body["metadata"]
    meta.update(
        uid=f"00000000-0000-0000-0000-{version:012d}",
        resourceVersion=str(version),
        generation=1,
        creationTimestamp=NOW,
    )
    managed = [
        {
            "manager": "rollforward",
            "operation": "Apply",
            "time": NOW,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(manifest),
        }
    ]
    if body["kind"] == "Deployment":
        conditions = [
            {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastUpdateTime": NOW,
                "lastTransitionTime": NOW,
            }
            for kind, reason, message in (
                ("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                (
                    "Progressing",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{meta["name"]}-5d8f7c9b6" has successfully progressed.',
                ),
            )
        ]
        body["status"] = {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": conditions,
        }
        managed.append(
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "subresource": "status",
                "time": NOW,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1({"status": body["status"]}),
            }
        )
    meta["managedFields"] = managed
    return body


def resource_objects(namespace: str, name: str, version: int) -> list[tuple[str, dict[str, Any]]]:
    manifest = copy.deepcopy(example_manifest())
    manifest["metadata"] = {"name": name, "namespace": namespace, "uid": f"uid-{version}"}
    manifest["spec"]["variants"][0]["replicas"] = 1
    plan = plan_serving(
        parse_model_deployment(manifest), Observed(), OperatorSettings(), datetime.now(UTC)
    )
    objects = [(child["kind"], as_stored(child, version + i)) for i, child in enumerate(plan.apply)]
    md = as_stored({**manifest, "kind": "ModelDeployment"}, version + 100)
    md["status"] = {
        "observedGeneration": 1,
        "phase": "Stable",
        "conditions": [
            {
                "type": kind,
                "status": "True",
                "reason": "AsExpected",
                "observedGeneration": 1,
                "message": f"{kind}: every variant serves; nothing to report on this resource",
                "lastTransitionTime": NOW,
            }
            for kind in ("Ready", "Progressing", "Drifted", "Retraining", "MonitoringAvailable")
        ],
        "variants": [
            {
                "name": v["name"],
                "bento": v["bento"],
                "ready": True,
                "readyReplicas": 1,
                "weight": v["weight"],
                "message": "1/1 replicas ready",
            }
            for v in manifest["spec"]["variants"]
        ],
        "drift": {
            "outcome": "Inconclusive",
            "reason": "NoData",
            "checkedAt": NOW,
            "message": "no samples in the window (0 < minSamples 200)",
        },
    }
    return [*objects, ("ModelDeployment", md)]


def traced(build: Callable[[], object]) -> tuple[float, float, object]:
    """(MB kept, MB at the peak) allocated by `build`, and what it built."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    built = build()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (kept - base) / 1e6, (peak - base) / 1e6, built


class _Page:
    def __init__(self, data: bytes) -> None:
        self.data = data


class _PagedList:
    """A list served as the API server serves it: pages of JSON with continue tokens."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.pages = [
            json.dumps(
                {
                    "apiVersion": "apps/v1",
                    "kind": "DeploymentList",
                    "metadata": {
                        "resourceVersion": "99",
                        **(
                            {"continue": str(start + LIST_PAGE_SIZE)}
                            if start + LIST_PAGE_SIZE < len(items)
                            else {}
                        ),
                    },
                    "items": [
                        {k: v for k, v in i.items() if k not in ("kind", "apiVersion")}
                        for i in items[start : start + LIST_PAGE_SIZE]
                    ],
                }
            ).encode()
            for start in range(0, len(items), LIST_PAGE_SIZE)
        ]
        self.whole = json.dumps(
            {
                "apiVersion": "apps/v1",
                "kind": "DeploymentList",
                "metadata": {"resourceVersion": "99"},
                "items": items,
            }
        ).encode()

    def get(self, **params: Any) -> _Page:
        return _Page(self.pages[int(params.get("_continue") or 0) // LIST_PAGE_SIZE])


def paged_adapter(listing: _PagedList) -> KubeAdapter:
    adapter = KubeAdapter.__new__(KubeAdapter)
    adapter._discovery_lock = threading.Lock()
    adapter._metrics = OperatorMetrics()
    adapter._dynamic = type(
        "Dynamic",
        (),
        {"resources": type("Resources", (), {"get": staticmethod(lambda **_: listing)})()},
    )()
    return adapter


def kopf_memories(count: int) -> object:
    import asyncio

    from kopf._core.reactor.inventory import ResourceMemories

    async def recall() -> ResourceMemories:
        memories = ResourceMemories()
        for i in range(count):
            body = {"metadata": {"uid": f"uid-{i}", "name": f"n{i}", "namespace": "ns"}}
            await memories.recall(body)  # type: ignore[arg-type]
        return memories

    return asyncio.run(recall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench-results/cache-memory.md")
    args = parser.parse_args()
    n = args.count
    objects = [o for i in range(n) for o in resource_objects("scale", f"m{i:04d}", 1000 * i + 1)]
    sizes = {kind: len(json.dumps(body)) for kind, body in reversed(objects)}
    deployments = [body for kind, body in objects if kind == "Deployment"]
    listing = _PagedList(
        [{**d, "metadata": {**d["metadata"], "resourceVersion": "1"}} for d in deployments]
    )

    def fresh() -> list[tuple[str, dict[str, Any]]]:
        return [(kind, json.loads(json.dumps(body))) for kind, body in objects]

    def as_dicts() -> object:
        return {(k, b["metadata"]["name"]): slim(b) for k, b in fresh()}

    def as_cache() -> ObjectCache:
        cache = ObjectCache()
        for kind, body in fresh():
            cache.upsert(kind, body)
        return cache

    dicts_mb, _, built = traced(as_dicts)
    del built
    cache_mb, _, cache = traced(as_cache)
    assert isinstance(cache, ObjectCache)

    def relist_paged() -> None:
        listed, version = paged_adapter(listing).list_kind("Deployment")
        cache.replace("Deployment", listed, version)

    def relist_whole() -> None:
        from kubernetes.dynamic.resource import ResourceInstance

        whole = ResourceInstance(None, json.loads(listing.whole))  # type: ignore[no-untyped-call]
        cache.replace("Deployment", [item.to_dict() for item in whole.items], "99")

    _, paged_peak, _ = traced(relist_paged)
    _, whole_peak, _ = traced(relist_whole)
    memories_mb, _, _ = traced(lambda: kopf_memories(len(objects)))
    lines = [
        f"# Where the operator's memory goes: {n} ModelDeployments, measured with tracemalloc",
        "",
        f"Objects shaped as stored (bench/bench_cache_memory.py): {len(objects)} in all; one as "
        f"JSON with managedFields: "
        + ", ".join(f"{k} {v / 1e3:.1f} kB" for k, v in sizes.items())
        + ". RSS adds the interpreter and imports (about 70 MB once started), threads' stacks "
        "and malloc's free lists, which tracemalloc does not see.",
        "",
        "| what | MB |",
        "|---|---|",
        f"| the cache as Python dicts (managedFields dropped), as before | {dicts_mb:.1f} |",
        f"| the cache as compact JSON (ObjectCache), now | {cache_mb:.1f} |",
        f"| a relist of {len(deployments)} Deployments, peak over the cache: one whole list "
        f"through the client's ResourceInstance, as before | {whole_peak:.1f} |",
        f"| the same relist, peak over the cache: pages of {LIST_PAGE_SIZE} as plain JSON, now "
        f"| {paged_peak:.1f} |",
        f"| kopf's per-object memory (ResourceMemories) for {len(objects)} objects "
        f"| {memories_mb:.1f} |",
        "",
    ]
    text = "\n".join(lines)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
