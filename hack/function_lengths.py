"""The longest functions of a source tree, by lines (def to last line): a style check aid.

python hack/function_lengths.py operator/rollforward [count]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def lengths(root: Path) -> list[tuple[int, str]]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((size, f"{path}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


if __name__ == "__main__":
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    for size, where in lengths(Path(sys.argv[1]))[:count]:
        print(size, where)
