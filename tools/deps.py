"""The import graph's rules (README "Layout"): `make deps`, and tests/test_layout.py runs it in `make test`.

Floors, bottom up: models → tasks → worker, with api on top; sandbox stands alone. A module imports only
from its own floor or below, every import counted (also one inside a function) except those under
`if TYPE_CHECKING:`, and no import circle. Prints each breach and one summary line; exit status 1 on any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "tasks", "worker", "api", "sandbox")
#: What each package may import of ours (besides itself).
ALLOWED = {"models": set(), "tasks": {"models"}, "worker": {"models", "tasks"},
           "api": {"models", "tasks", "sandbox"}, "sandbox": set()}


def module_name(path: Path) -> str:
    """`worker/beat/dispatch.py` → `worker.beat.dispatch`; a package's __init__ is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines under `if TYPE_CHECKING:` (typing only: not an import at run time)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The modules of ours that `path` imports at run time (nearest known module of each name)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    """Every module of ours and what it imports."""
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    known = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, known) for p in files}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def breaches(edges: dict[str, set[str]]) -> list[str]:
    """Each import that runs against the flow, and each import circle."""
    out = []
    for module, targets in sorted(edges.items()):
        floor = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != floor and other not in ALLOWED[floor]:
                out.append(f"{module} imports {target}")
    out += ["import circle: " + " <-> ".join(c) for c in circles(edges)]
    return out


def main() -> int:
    """Print the breaches and the summary; 1 if there is any."""
    edges = graph()
    found = breaches(edges)
    for line in found:
        print(line)
    total = sum(map(len, edges.values()))
    verdict = f"{len(found)} breaches" if found else "imports point one way, no circle"
    print(f"{len(edges)} modules, {total} imports: {verdict}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
