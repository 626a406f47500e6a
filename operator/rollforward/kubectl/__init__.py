"""`kubectl rollforward`: see and steer a ModelDeployment from the terminal.

render (pure text views), actions (pure annotation plans), style (colour), client (the
cluster, with one-line errors) and commands (argparse wiring).
"""

from rollforward.kubectl.commands import add_commands

__all__ = ["add_commands"]
