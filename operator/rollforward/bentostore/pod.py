"""The pieces of a bento pod and a retraining Job that reach the bento store. Pure builders.

A bento pod fetches its bento in an init container (the bento runtime image runs
`python -m rollforward.serving.bento_store pull <tag>`) into an emptyDir that becomes the
serving container's BENTOML_HOME, so the image carries no bento and the root filesystem can
stay read-only.
"""

from __future__ import annotations

from rollforward.api.spec import BentoStoreSpec
from rollforward.bentostore.location import store_env
from rollforward.observed import Manifest
from rollforward.pod_security import container_security_context, tmp_mount
from rollforward.serving.contract import (
    DEFAULT_TERMINATION_MESSAGE_PATH,
    ENV_TERMINATION_MESSAGE_PATH,
)

FETCH_CONTAINER = "fetch-bento"
HOME_VOLUME = "bentoml-home"
BENTOML_HOME = "/home/bentoml/store"
"""Where the emptyDir is mounted, and the BENTOML_HOME of both containers."""
PULL_COMMAND = ["python", "-m", "rollforward.serving.bento_store"]


def fetch_container(tag: str, store: BentoStoreSpec, image: str) -> Manifest:
    """The init container that imports `tag` from the store into the shared BENTOML_HOME."""
    return {
        "name": FETCH_CONTAINER,
        "image": image,
        "command": PULL_COMMAND,
        "args": ["pull", tag],
        "env": [
            *store_env(store),
            {"name": "BENTOML_HOME", "value": BENTOML_HOME},
            {"name": ENV_TERMINATION_MESSAGE_PATH, "value": DEFAULT_TERMINATION_MESSAGE_PATH},
        ],
        "volumeMounts": [{"name": HOME_VOLUME, "mountPath": BENTOML_HOME}, tmp_mount()],
        "securityContext": container_security_context(),
        "terminationMessagePath": DEFAULT_TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
    }


def with_fetched_bento(
    pod_spec: Manifest, tag: str, store: BentoStoreSpec, image: str, serving: str
) -> Manifest:
    """A pod spec whose `serving` container serves the bento the init container fetched, and
    knows the store too: it appends its prediction log there (serving.prediction_log)."""
    located = store_env(store)
    replaced = {"BENTOML_HOME", *(e["name"] for e in located)}
    containers = [
        {
            **c,
            "env": [
                *(e for e in c.get("env", []) if e["name"] not in replaced),
                {"name": "BENTOML_HOME", "value": BENTOML_HOME},
                *located,
            ],
            "volumeMounts": [
                *c.get("volumeMounts", []),
                {"name": HOME_VOLUME, "mountPath": BENTOML_HOME},
            ],
        }
        if c["name"] == serving
        else c
        for c in pod_spec["containers"]
    ]
    return {
        **pod_spec,
        "initContainers": [*pod_spec.get("initContainers", []), fetch_container(tag, store, image)],
        "containers": containers,
        "volumes": [*pod_spec.get("volumes", []), {"name": HOME_VOLUME, "emptyDir": {}}],
    }


def job_with_store(job: Manifest, store: BentoStoreSpec) -> Manifest:
    """A retraining Job whose containers know where to export their bento, and with which keys."""
    pod_spec = job["spec"]["template"]["spec"]
    containers = [
        {**c, "env": [*c.get("env", []), *store_env(store)]} for c in pod_spec["containers"]
    ]
    template = {**job["spec"]["template"], "spec": {**pod_spec, "containers": containers}}
    return {**job, "spec": {**job["spec"], "template": template}}
