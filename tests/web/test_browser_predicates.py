"""Browser tests poll with functions, never with bare expressions.

Playwright runs a bare-expression predicate (``"document.x.complete"``) through ``eval`` on every
poll after the first. Our pages send ``script-src 'self'``, which forbids ``eval``; the first check
runs inside DevTools' own evaluation and is allowed, so such a test passes whenever the condition
is already true and fails with an ``EvalError`` whenever it has to wait. A function
(``"() => ..."``) is called, not evaluated, and polls under the page's policy.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FUNCTION = re.compile(r"^\s*(async\s+)?(\([^)]*\)|\w+)\s*=>|^\s*(async\s+)?function\b")


def _bare_predicates(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "wait_for_function" or not node.args:
            continue
        first = node.args[0]
        is_text = isinstance(first, ast.Constant) and isinstance(first.value, str)
        if is_text and not FUNCTION.match(first.value):
            found.append(f"{name}:{node.lineno}: {first.value.strip()[:60]}")
    return found


def test_the_check_tells_a_function_from_a_bare_expression() -> None:
    source = (
        "page.wait_for_function('() => a.complete')\n"
        "page.wait_for_function('([a, b]) => a > b', arg=[1, 2])\n"
        "page.wait_for_function('document.querySelector(\"img\").complete')\n"
    )
    assert _bare_predicates(source, "x.py") == [
        'x.py:3: document.querySelector("img").complete',
    ]


def test_no_browser_test_waits_on_a_bare_expression() -> None:
    found: list[str] = []
    for path in sorted(TESTS.rglob("test_*.py")):
        found += _bare_predicates(path.read_text(), str(path.relative_to(TESTS)))
    assert found == [], "write these predicates as '() => ...':\n" + "\n".join(found)
