"""The Kubernetes Events a decision asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to emit on the ModelDeployment."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
