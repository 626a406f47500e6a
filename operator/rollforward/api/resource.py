"""The ModelDeployment resource as a whole, and turning validation errors into field paths."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rollforward.api.spec import ModelDeploymentSpec
from rollforward.api.status import ModelDeploymentStatus

GROUP = "rollforward.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["md", "mdep"]
CATEGORIES = ["rollforward", "ml"]


class ObjectMeta(BaseModel):
    """The parts of metadata the operator reads; the rest passes through untouched."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ModelDeployment(BaseModel):
    """A whole ModelDeployment object as read from the API server or a file."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    api_version: Literal["rollforward.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["ModelDeployment"]
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)


def field_path(loc: tuple[int | str, ...]) -> str:
    """("spec", "variants", 0, "weight") -> "spec.variants[0].weight", as the API server says."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "literal[")) or "[" in part:
            # pydantic names union branches and validators in loc; they are not fields.
            continue
        else:
            path += f".{part}" if path else part
    return path


# Cross-field validators can only fail on the model that holds both fields; they name the
# field inside it by starting their message with its relative path (see spec.field_error).
_RELATIVE_FIELD = re.compile(
    r"^([a-z][A-Za-z0-9]*(?:\[\d+\])?(?:\.[a-z][A-Za-z0-9]*)*): (.*)$", re.S
)


def validation_messages(error: ValidationError) -> list[str]:
    """One line per problem, each starting with the field path it is about."""
    lines = []
    for problem in error.errors():
        path = field_path(tuple(problem["loc"]))
        message = str(problem["msg"]).removeprefix("Value error, ")
        relative = _RELATIVE_FIELD.match(message)
        if relative:
            path = f"{path}.{relative.group(1)}" if path else relative.group(1)
            message = relative.group(2)
        lines.append(f"{path}: {message}")
    return lines


def parse_model_deployment(body: dict[str, Any]) -> ModelDeployment:
    """Validate a raw object. Raises ValidationError; format it with validation_messages."""
    return ModelDeployment.model_validate(body)
