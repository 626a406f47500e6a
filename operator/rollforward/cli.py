"""The `rollforward` command: run the operator, print the CRD, and (as `kubectl rollforward`)
see and steer ModelDeployments (rollforward.kubectl)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rollforward import __version__
from rollforward.kubectl import add_commands


def _crd(args: argparse.Namespace) -> int:
    from rollforward.api.crd import render_crd_yaml

    text = render_crd_yaml()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _run(args: argparse.Namespace) -> int:
    from rollforward.operator_main import run_operator

    run_operator(namespaces=args.namespace, all_namespaces=args.all_namespaces, shard=args.shard)
    return 0


def build_parser() -> argparse.ArgumentParser:
    # Installed as kubectl-rollforward, kubectl runs it as `kubectl rollforward`.
    invoked = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(
        prog="kubectl rollforward" if invoked.startswith("kubectl-") else "rollforward",
        description="Keep ML models healthy in production: drift, retraining, canary, promotion.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    crd = commands.add_parser("crd", help="print the ModelDeployment CRD generated from the API")
    crd.add_argument("--output", "-o", help="write to this file instead of stdout")
    crd.set_defaults(handler=_crd)

    run = commands.add_parser("run", help="start the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    run.add_argument(
        "--shard",
        default=None,
        help="i/n: act only on the ModelDeployments whose namespace/name hash falls in shard i "
        "of n (ROLLFORWARD_SHARD; default 0/1, all of them)",
    )
    run.set_defaults(handler=_run)
    add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
