"""No function in ``training/`` runs over 80 lines: the trainers read top to bottom through short parts
(``training/loop.py`` owns the loop both of them run)."""

from __future__ import annotations

import ast
from pathlib import Path

import outrider.training

MAX_LINES = 80
TRAINING = Path(outrider.training.__file__).parent


def long_functions(source: str, filename: str) -> list[str]:
    """``file:line name (N lines)`` for every function, method or nested function over ``MAX_LINES``,
    decorators and docstring included."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = (node.end_lineno or node.lineno) - first + 1
            if lines > MAX_LINES:
                found.append(f"{filename}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_training_is_over_80_lines():
    files = sorted(TRAINING.rglob("*.py"))
    assert files, TRAINING
    found = [hit for path in files for hit in long_functions(path.read_text(), str(path.relative_to(TRAINING)))]
    assert not found, f"split these (at most {MAX_LINES} lines each): {found}"


def test_the_check_counts_every_line_of_a_function_and_its_nested_ones():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES - 1))
    fits = f"def fits():\n{body}\n"
    assert long_functions(fits, "f.py") == []
    assert long_functions(f"@decorated\n{fits}", "f.py") == ["f.py:2 fits (81 lines)"]
    nested = "class C:\n    def outer(self):\n        def inner():\n" + "\n".join(
        f"            y{i} = {i}" for i in range(MAX_LINES)
    )
    assert [hit.split()[1] for hit in long_functions(nested, "f.py")] == ["outer", "inner"]
