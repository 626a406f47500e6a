"""How the pods the operator creates start and stop without losing a request. Pure.

Shared by the bento pods and the nginx router pods:
- **Join the endpoints before counting as available** (bento pods). A pod that turns Ready
  is added to its Service's endpoints, but kube-proxy programs it a moment later, and until
  then a connection to the Service can be refused. `minReadySeconds` keeps the Deployment
  from counting the pod as available, and so the operator from calling the variant ready or
  routing to it, until it has been Ready that long. The router sets none: while an old and a
  new router pod both serve, a user can alternate between their splits, so the handover of
  a new router config is kept as short as a Ready pod makes it.
- **Surge, never unavailable.** A rolling update (a promotion, a new router config) starts
  the new pods first and stops an old one only once a new one is Ready (`maxUnavailable: 0`),
  so a variant never has fewer ready pods than it wants.
- **Leave the endpoints before stopping.** Deleting a pod and removing it from its Service's
  endpoints happen at the same time, and kube-proxy (and an nginx that opened a connection
  just before) can still send it requests for a moment. A `preStop` sleep keeps the process
  serving for `PRE_STOP_SECONDS` before it is told to stop; the sleep action of the kubelet
  needs no shell or `sleep` binary in the image (GA since Kubernetes 1.34).
- **Then stop gracefully.** The stop signal (SIGTERM for bentoml, SIGQUIT for nginx, set by
  the router image's STOPSIGNAL) lets the process finish the requests in flight;
  `TERMINATION_GRACE_SECONDS` bounds preStop plus that drain.
"""

from __future__ import annotations

from rollforward.observed import Manifest

MIN_READY_SECONDS = 3
"""Longer than the endpoints controller plus kube-proxy take to add a pod (about a second)."""
PRE_STOP_SECONDS = 5
"""Longer than the endpoints controller plus kube-proxy take to drop a pod (about a second)."""
TERMINATION_GRACE_SECONDS = 30
"""preStop, then up to 25 s for the requests in flight (a prediction takes milliseconds)."""
MAX_SURGE = "25%"
"""New pods started ahead of the old ones going (rounded up: at least one)."""


def rolling_update() -> Manifest:
    """A Deployment strategy that never drops below the wanted ready replicas."""
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": MAX_SURGE}}


def graceful_stop() -> Manifest:
    """A container's `lifecycle`: serve on while the pod leaves its Services' endpoints."""
    return {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
