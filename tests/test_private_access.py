"""No module reaches into another object's private members (issue #26).

Every module under ``src/interests`` and ``cli`` is parsed; an attribute
``X._name`` (one leading underscore, not a dunder) is allowed only on ``self``
or ``cls``, or when ``_name`` belongs to a class of the same module (a class
reading another instance of itself). ``getattr``/``setattr``/``hasattr`` with a
constant private name count too. Anything else is a violation: give the owner
a public name for it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = [ROOT / "src" / "interests", ROOT / "cli"]

#: underscore names that are documented public API of the standard library, with the reason each
#: is allowed. Keep it short: a name of this project never belongs here.
ALLOWED = {
    "_replace": "collections.namedtuple's documented method",
    "_asdict": "collections.namedtuple's documented method",
    "_fields": "collections.namedtuple's documented attribute",
    "_make": "collections.namedtuple's documented class method",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in ALLOWED


def _owned(tree: ast.Module) -> set[str]:
    """Private names the module's own classes define: methods, class attributes, ``self._x = ...``."""
    out: set[str] = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for node in ast.walk(cls):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node in cls.body:
                out.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                out.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    out.add(node.attr)
    return {n for n in out if n.startswith("_")}


def violations(source: str, filename: str = "<snippet>") -> Iterator[str]:
    """``file:line: expression`` for each access to another object's private member in ``source``."""
    tree = ast.parse(source, filename)
    owned = _owned(tree)
    for node in ast.walk(tree):
        name: str | None = None
        target: ast.expr | None = None
        if isinstance(node, ast.Attribute):
            name, target = node.attr, node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            name, target = node.args[1].value, node.args[0]
        if name is None or target is None or not _private(name):
            continue
        if isinstance(target, ast.Name) and target.id in ("self", "cls"):
            continue
        if name in owned:
            continue
        yield f"{filename}:{node.lineno}: {ast.unparse(node)}"


def test_no_module_reads_another_objects_private_members() -> None:
    found = [
        v
        for root in SCANNED
        for path in sorted(root.rglob("*.py"))
        for v in violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not found, "private members used across objects (give them a public name):\n" + "\n".join(found)


def test_the_check_finds_a_violation() -> None:
    snippet = (
        "def f(model):\n"
        "    model._frozen = True\n"
        "    return model._rows(['u']), getattr(model, '_encoder', None)\n"
        "class A:\n"
        "    def g(self):\n"
        "        return self._x, self.__dict__\n"
    )
    assert sorted(violations(snippet)) == [
        "<snippet>:2: model._frozen",
        "<snippet>:3: getattr(model, '_encoder', None)",
        "<snippet>:3: model._rows",
    ]


def test_a_class_may_read_its_own_private_members_on_another_instance() -> None:
    snippet = (
        "class Box:\n"
        "    def __init__(self, v):\n"
        "        self._v = v\n"
        "    def same(self, other):\n"
        "        return self._v == other._v\n"
        "def outside(box):\n"
        "    return box._w\n"
    )
    assert list(violations(snippet)) == ["<snippet>:7: box._w"]
    assert list(violations("import os\nx = os._exit\n")) == ["<snippet>:2: os._exit"]
    assert list(violations("p = point._replace(x=1)\n")) == []
