"""How text is presented: colour for a terminal (nothing when piped or when NO_COLOR is
set), and how long a free-text message may get before it is clipped."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_GREEN = "32"
_YELLOW = "33"
_RED = "31"
_BOLD = "1"
_DIM = "2"

# Phases grouped by what they ask of a person: nothing, patience, or attention.
_CALM_PHASES = {"Stable"}
_BUSY_PHASES = {"Pending", "Retraining", "Canary", "AwaitingApproval", "Paused", "Promoting"}
_ALARM_PHASES = {"Degraded", "Drifted", "RolledBack"}
# For these condition types, True is bad news; for the others, False is.
_TRUE_IS_BAD = {"Drifted"}
_TRUE_IS_BUSY = {"Progressing", "Retraining"}


def visible_width(text: str) -> int:
    """Width of text on screen, ignoring colour codes."""
    return len(_ANSI.sub("", text))


def color_wanted(choice: str, stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """--color=auto colours a terminal unless NO_COLOR is set (https://no-color.org)."""
    env = os.environ if environ is None else environ
    if choice == "always":
        return True
    if choice == "never" or env.get("NO_COLOR"):
        return False
    return stream.isatty()


@dataclass(frozen=True)
class Style:
    """Paints text when `color` is on; otherwise returns it unchanged."""

    color: bool = False
    message_width: int | None = 100
    """Operator messages longer than this are clipped with an ellipsis; None shows them whole."""

    def clip(self, message: str) -> str:
        """One line of at most message_width characters (messages can quote whole errors)."""
        text = " ".join(message.split())
        width = self.message_width
        return text if width is None or len(text) <= width else text[: width - 1] + "…"

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def good(self, text: str) -> str:
        return self._paint(_GREEN, text)

    def busy(self, text: str) -> str:
        return self._paint(_YELLOW, text)

    def bad(self, text: str) -> str:
        return self._paint(_RED, text)

    def bold(self, text: str) -> str:
        return self._paint(_BOLD, text)

    def dim(self, text: str) -> str:
        return self._paint(_DIM, text)

    def phase(self, phase: str, text: str | None = None) -> str:
        shown = phase if text is None else text
        if phase in _CALM_PHASES:
            return self.good(shown)
        if phase in _ALARM_PHASES:
            return self.bad(shown)
        if phase in _BUSY_PHASES:
            return self.busy(shown)
        return shown

    def condition(self, type_: str, status: str, text: str | None = None) -> str:
        shown = status if text is None else text
        if status == "Unknown":
            return self.busy(shown)
        is_true = status == "True"
        if type_ in _TRUE_IS_BUSY:
            return self.busy(shown) if is_true else shown
        if type_ in _TRUE_IS_BAD:
            return self.bad(shown) if is_true else self.good(shown)
        return self.good(shown) if is_true else self.bad(shown)

    def outcome(self, outcome: str, text: str | None = None) -> str:
        """Drift/NoDrift/Inconclusive and Successful/Failed/Inconclusive, and history outcomes."""
        shown = outcome if text is None else text
        if outcome in {"NoDrift", "Successful", "Promoted", "Serving", "Succeeded"}:
            return self.good(shown)
        if outcome in {"Drift", "Failed", "RolledBack", "Rejected"}:
            return self.bad(shown)
        if outcome in {"Inconclusive", "Running", "Canary"}:
            return self.busy(shown)
        return shown
