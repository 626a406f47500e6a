"""Gather for the bento store: which bentos this reconcile needs to know about, and the
store's (cached) answers. The only bento-store I/O of a reconcile besides deletions."""

from __future__ import annotations

import logging

from rollforward.api import JobPhase, ModelDeployment
from rollforward.bentostore.decisions import deletable
from rollforward.bentostore.gateway import MissingCredentialsError, StoreGateway
from rollforward.bentostore.location import store_for
from rollforward.bentostore.view import StoreView
from rollforward.observed import Manifest
from rollforward.retraining import read_job
from rollforward.serving.objectstore.client import StoreError
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants

log = logging.getLogger(__name__)


def finished_candidate(
    deployment: ModelDeployment, jobs: dict[str, Manifest], pods: dict[str, Manifest]
) -> str | None:
    """The bento a just-finished retraining Job reported, before the gate judges it."""
    current = deployment.status.retraining
    if current is None or current.phase is not JobPhase.RUNNING:
        return None
    outcome = read_job(jobs.get(current.job_name), pods.get(current.job_name))
    if not outcome.succeeded or outcome.result is None:
        return None
    return outcome.result.version or None


def gather_store(
    deployment: ModelDeployment,
    settings: OperatorSettings,
    stores: StoreGateway | None,
    jobs: dict[str, Manifest],
    pods: dict[str, Manifest],
) -> StoreView | None:
    store = store_for(deployment, settings)
    if store is None or stores is None:
        return None
    namespace = deployment.metadata.namespace
    served = served_variants(deployment.spec, deployment.status)
    tags = {v.bento for v in served if v.bento}
    candidate = finished_candidate(deployment, jobs, pods)
    if candidate:
        tags.add(candidate)
    answers = stores.probe(store, namespace, tags)
    stale = deletable(deployment, deployment.status)
    stored: set[str] | None = None
    if stale:
        try:
            stored = stores.stored_tags(store, namespace, {t.partition(":")[0] for t in stale})
        except (StoreError, MissingCredentialsError) as error:
            log.warning("cannot list the bento store of %s: %s", deployment.metadata.name, error)
    return StoreView(store, answers, stored)
