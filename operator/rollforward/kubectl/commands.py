"""The `kubectl rollforward` subcommands: argparse wiring and the I/O around the renderers.

Also runs as `rollforward get|list|history|explain|approve|rollback|pause|resume|retrain`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from rollforward.api import ModelDeployment
from rollforward.kubectl.actions import Action, ActionPlan, plan_action
from rollforward.kubectl.client import CliError, ModelDeploymentClient, connect, parse
from rollforward.kubectl.render import (
    decisions,
    event_record,
    render_explain,
    render_get,
    render_history,
    render_list,
)
from rollforward.kubectl.style import Style, color_wanted

CLEAR_SCREEN = "\x1b[H\x1b[2J"
"""Cursor home, then erase the screen: how `get --watch` redraws in place on a terminal."""

Handler = Callable[[argparse.Namespace, TextIO], int]


def _common(parser: argparse.ArgumentParser, output: bool = True) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument(
        "--color", choices=["auto", "always", "never"], default="auto",
        help="colour: auto colours a terminal unless NO_COLOR is set",
    )  # fmt: skip
    if output:
        parser.add_argument("-o", "--output", choices=["text", "json", "yaml"], default="text")
        parser.add_argument(
            "--wide", action="store_true",
            help="show operator messages whole (text is clipped at 100 characters otherwise)",
        )  # fmt: skip
        parser.add_argument(
            "--now", type=_utc_time, default=None, metavar="TIME",
            help="render ages as of this ISO time instead of the clock (reproducible output)",
        )  # fmt: skip


def _utc_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add_commands(commands: Any) -> None:
    """Register the subcommands on `rollforward`'s subparsers."""
    get = commands.add_parser("get", help="show one ModelDeployment: variants, drift, canary, Job")
    get.add_argument("name")
    get.add_argument("-w", "--watch", action="store_true", help="redraw whenever it changes")
    get.add_argument("--interval", type=float, default=2.0, help="seconds between reads (watch)")
    _common(get)
    get.set_defaults(handler=run, run_command=_get)

    listing = commands.add_parser("list", help="one line per ModelDeployment")
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    _common(listing)
    listing.set_defaults(handler=run, run_command=_list)

    history = commands.add_parser("history", help="versions with trigger, metrics and outcome")
    history.add_argument("name")
    _common(history)
    history.set_defaults(handler=run, run_command=_history)

    explain = commands.add_parser("explain", help="the last decisions and their reasons")
    explain.add_argument("name")
    explain.add_argument("--limit", type=int, default=10, help="how many decisions to show")
    _common(explain)
    explain.set_defaults(handler=run, run_command=_explain)

    for action in Action:
        helps = {
            Action.APPROVE: "promote the candidate waiting for Manual approval",
            Action.ROLLBACK: "abort the canary; the champion gets all the traffic",
            Action.PAUSE: "hold the rollout and retraining where they are",
            Action.RESUME: "continue after pause",
            Action.RETRAIN: "start a retraining Job now",
        }
        verb = commands.add_parser(action.value, help=helps[action])
        verb.add_argument("name")
        verb.add_argument("--dry-run", action="store_true", help="say what would happen only")
        verb.add_argument("--force", action="store_true", help="write even if it looks pointless")
        _common(verb, output=False)
        verb.set_defaults(handler=run, run_command=_act, action=action)


# --- helpers ----------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> tuple[ModelDeploymentClient, str]:
    connection = connect(args.kubeconfig, args.context)
    return ModelDeploymentClient(connection), args.namespace or connection.namespace


def _style(args: argparse.Namespace, out: TextIO) -> Style:
    width = None if getattr(args, "wide", False) else Style.message_width
    return Style(color=color_wanted(args.color, out), message_width=width)


def _now(args: argparse.Namespace) -> datetime:
    fixed: datetime | None = getattr(args, "now", None)
    return fixed or datetime.now(UTC)


def _dump(data: Any, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    else:
        out.write(yaml.safe_dump(data, sort_keys=False, width=100))


def _status_dict(md: ModelDeployment) -> dict[str, Any]:
    dumped: dict[str, Any] = md.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


# --- read commands ----------------------------------------------------------------------------


def _get(args: argparse.Namespace, out: TextIO) -> int:
    client, namespace = _client(args)
    if args.watch:
        return _watch(args, client, namespace, out)
    body = client.get(namespace, args.name)
    md = parse(body)
    if args.output != "text":
        _dump(body, args.output, out)
        return 0
    out.write(render_get(md, _now(args), _style(args, out)))
    return 0


def _watch(
    args: argparse.Namespace, client: ModelDeploymentClient, namespace: str, out: TextIO
) -> int:
    """Redraw on change only: the screen stays still while nothing happens."""
    in_place = out.isatty()
    shown = ""
    while True:
        body = client.get(namespace, args.name)
        if args.output == "text":
            frame = render_get(parse(body), _now(args), _style(args, out))
        else:
            frame = json.dumps(body, indent=2) if args.output == "json" else yaml.safe_dump(body)
        if frame != shown:
            out.write((CLEAR_SCREEN if in_place else ("\n" if shown else "")) + frame)
            out.flush()
            shown = frame
        time.sleep(args.interval)


def _list(args: argparse.Namespace, out: TextIO) -> int:
    client, namespace = _client(args)
    bodies = client.list_all(None if args.all_namespaces else namespace)
    deployments = [parse(body) for body in bodies]
    if args.output != "text":
        _dump({"apiVersion": "v1", "kind": "List", "items": bodies}, args.output, out)
        return 0
    out.write(render_list(deployments, _now(args), _style(args, out), args.all_namespaces))
    return 0


def _history(args: argparse.Namespace, out: TextIO) -> int:
    client, namespace = _client(args)
    md = parse(client.get(namespace, args.name))
    if args.output != "text":
        _dump(_status_dict(md).get("history", []), args.output, out)
        return 0
    out.write(render_history(md, _style(args, out)))
    return 0


def _explain(args: argparse.Namespace, out: TextIO) -> int:
    client, namespace = _client(args)
    md = parse(client.get(namespace, args.name))
    note = ""
    try:
        raw_events = client.events(namespace, args.name)
    except CliError as error:  # status alone still explains a lot; say what is missing
        raw_events, note = [], f"Events not shown: {error.message}"
    events = [e for e in (event_record(raw) for raw in raw_events) if e is not None]
    if args.output != "text":
        found = decisions(md, events)[: args.limit]
        _dump(
            {"phase": md.status.phase.value, "decisions": [d.as_dict() for d in found]},
            args.output,
            out,
        )
        return 0
    out.write(render_explain(md, events, _now(args), _style(args, out), args.limit, note))
    return 0


# --- actions ----------------------------------------------------------------------------------


def request_id(now: datetime) -> str:
    """A unique value for a one-shot request: the time, to the microsecond."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def describe_patch(patch: dict[str, str | None]) -> str:
    return ", ".join(f"{k}={v}" if v is not None else f"{k}- (removed)" for k, v in patch.items())


def _act(args: argparse.Namespace, out: TextIO) -> int:
    client, namespace = _client(args)
    md = parse(client.get(namespace, args.name))
    plan: ActionPlan = plan_action(args.action, md, request_id(datetime.now(UTC)))
    target = f"modeldeployment/{args.name} in namespace {namespace}"
    if plan.nothing_to_do:
        out.write(f"Nothing to do: {target} is {plan.nothing_to_do}.\n")
        return 0
    if plan.refused and not args.force:
        raise CliError(f"not sent: {plan.refused} (use --force to send it anyway)")
    out.write(f"Will: {plan.will_happen}.\n")
    if args.dry_run:
        out.write(f"Dry run: would annotate {target}: {describe_patch(plan.patch)}.\n")
        return 0
    client.annotate(namespace, args.name, plan.patch)
    out.write(f"Done: annotated {target}: {describe_patch(plan.patch)}.\n")
    out.write(f"Follow it with: kubectl rollforward get {args.name} -n {namespace} --watch\n")
    return 0


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one subcommand; every CliError becomes one line on stderr and an exit code."""
    stdout = out or sys.stdout
    stderr = err or sys.stderr
    handler: Handler = args.run_command
    try:
        return handler(args, stdout)
    except CliError as error:
        stderr.write(f"error: {error.message}\n")
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # piped into `head`: the reader has all it wanted
        return 0
    except Exception as error:  # a bug of ours; still one line, never a traceback
        stderr.write(f"error: unexpected {type(error).__name__}: {error} (please report it)\n")
        return 1
