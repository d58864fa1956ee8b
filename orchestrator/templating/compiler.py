"""How Pebble's constructs become Jinja nodes, and how those compile to Python.

Jinja compiles a template to a Python module whose code calls ``environment.getattr`` and
friends. The Pebble parser (pebble.py) emits Jinja's own nodes for literals, attribute access,
``{% if %}`` and ``{% for %}``; everything whose meaning differs from Jinja's becomes a call to
a helper of the environment (sandbox.py), where Pebble's semantics and the sandbox rules live:
``helper("pb_add", left, right)`` compiles to ``environment.pb_add(left, right)``.

Jinja refuses new node types, so helpers are ordinary ``Call`` nodes on an
``EnvironmentAttribute``. A few helpers must not evaluate some arguments up front — ``??`` only
evaluates its right side when the left is missing, ``default`` and ``is defined`` must see a
failure of their operand — so the code generator wraps those arguments in lambdas
(``LAZY_ARGUMENTS``). ``and``, ``or``, ``not`` and ``? :`` use Jinja's ``And``/``Or``/``Not``/
``CondExpr`` around ``pb_truth`` calls, which compile to Python's short-circuiting forms.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame

# helper name -> how many leading arguments are passed as thunks (evaluated by the helper)
LAZY_ARGUMENTS = {"pb_coalesce": 2, "pb_soft": 1}

BINARY_HELPERS = {
    "+": "pb_add", "-": "pb_sub", "*": "pb_mul", "/": "pb_div", "%": "pb_mod",
    "==": "pb_eq", "!=": "pb_ne", "<": "pb_lt", "<=": "pb_le", ">": "pb_gt", ">=": "pb_ge",
    "~": "pb_concat", "contains": "pb_contains", "..": "pb_range",
    "isIn": "pb_is_in", "notIn": "pb_not_in",
}
UNARY_HELPERS = {"-": "pb_neg", "+": "pb_pos"}


def helper(name: str, *args: nodes.Expr, lineno: int | None = None) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name, lineno=lineno), list(args), [], None, None, lineno=lineno)


def const(value: Any, lineno: int | None = None) -> nodes.Const:
    return nodes.Const(value, lineno=lineno)


def context_ref(lineno: int | None = None) -> nodes.ContextReference:
    return nodes.ContextReference(lineno=lineno)


def variable(name: str, lineno: int) -> nodes.Expr:
    """A variable: ``{% set %}`` variables first, then the rendering context."""
    return helper("pb_var", context_ref(lineno), const(name, lineno), lineno=lineno)


def set_variable(name: str, expr: nodes.Expr, lineno: int) -> nodes.Stmt:
    """``{% set name = expr %}``, visible to the rest of the template, inside loops too (Pebble's scopes)."""
    return nodes.ExprStmt(helper("pb_set", context_ref(lineno), const(name, lineno), expr, lineno=lineno),
                          lineno=lineno)


def _arguments(args: list[nodes.Expr], kwargs: list[nodes.Keyword], lineno: int) -> list[nodes.Expr]:
    pairs = [nodes.Pair(const(k.key, lineno), k.value, lineno=lineno) for k in kwargs]
    return [nodes.List(list(args), lineno=lineno), nodes.Dict(pairs, lineno=lineno)]


def call_function(name: str, args: list, kwargs: list, lineno: int) -> nodes.Expr:
    return helper("pb_call", context_ref(lineno), const(name, lineno), *_arguments(args, kwargs, lineno),
                  lineno=lineno)


def _operand(node: nodes.Expr, soft: bool, lineno: int) -> nodes.Expr:
    return helper("pb_soft", node, lineno=lineno) if soft else node


def apply_filter(node: nodes.Expr, name: str, args: list, kwargs: list, soft: bool, lineno: int) -> nodes.Expr:
    return helper("pb_filter", context_ref(lineno), const(name, lineno), _operand(node, soft, lineno),
                  *_arguments(args, kwargs, lineno), lineno=lineno)


def apply_test(node: nodes.Expr, name: str, args: list, kwargs: list, negated: bool, soft: bool,
               lineno: int) -> nodes.Expr:
    return helper("pb_test", context_ref(lineno), const(name, lineno), _operand(node, soft, lineno),
                  *_arguments(args, kwargs, lineno), const(negated, lineno), lineno=lineno)


def truth(node: nodes.Expr, lineno: int) -> nodes.Expr:
    return helper("pb_truth", node, lineno=lineno)


def binary(op: str, left: nodes.Expr, right: nodes.Expr, lineno: int) -> nodes.Expr:
    if op == "and":
        return nodes.And(truth(left, lineno), truth(right, lineno), lineno=lineno)
    if op == "or":
        return nodes.Or(truth(left, lineno), truth(right, lineno), lineno=lineno)
    if op in ("??", "???"):
        return helper("pb_coalesce", left, right, const(op == "???", lineno), lineno=lineno)
    return helper(BINARY_HELPERS[op], left, right, lineno=lineno)


def unary(op: str, node: nodes.Expr, lineno: int) -> nodes.Expr:
    if op == "not":
        return nodes.Not(truth(node, lineno), lineno=lineno)
    return helper(UNARY_HELPERS[op], node, lineno=lineno)


def ternary(test: nodes.Expr, when_true: nodes.Expr, when_false: nodes.Expr, lineno: int) -> nodes.Expr:
    return nodes.CondExpr(truth(test, lineno), when_true, when_false, lineno=lineno)


def loop_iterable(node: nodes.Expr, lineno: int) -> nodes.Expr:
    """The iterable of ``{% for %}``: maps yield ``{key, value}`` entries; iterations are counted."""
    return helper("pb_iter", context_ref(lineno), node, lineno=lineno)


class PebbleCodeGenerator(CodeGenerator):
    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        if not isinstance(node.node, nodes.EnvironmentAttribute):
            # The Pebble parser only emits helper calls; anything else is a bug, not a feature.
            self.fail("Only registered functions can be called", node.lineno)
        name = node.node.name
        lazy = LAZY_ARGUMENTS.get(name, 0)
        self.write(f"environment.{name}(")
        for index, argument in enumerate(node.args):
            if index:
                self.write(", ")
            if index < lazy:
                self.write("(lambda: ")
                self.visit(argument, frame)
                self.write(")")
            else:
                self.visit(argument, frame)
        self.write(")")
