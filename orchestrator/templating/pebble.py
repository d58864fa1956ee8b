"""Pebble's syntax, parsed with Jinja's lexer and parser machinery.

Why extend Jinja's lexer and parser rather than rewrite Pebble text into Jinja text:
Pebble and Jinja disagree on much more than spelling — operator precedence (``|`` binds looser
than ``~`` in Pebble, tighter in Jinja; ``is`` binds looser than ``==``), ``? :`` and ``??``
have no Jinja form, ``loop.index`` counts from 0, map iteration yields entries, string literals
keep their backslashes, ``{% set %}`` inside a loop updates the outer variable. A textual
rewrite would have to re-tokenize and re-parse anyway to be safe with strings holding ``?``
or ``..``. So the lexer here is Jinja's with four more operators (``?``, ``??``, ``???``,
``..``) and Pebble's string unescaping, and the parser builds Jinja's node tree with Pebble's
grammar — precedence climbing with Pebble's own operator table (io.pebbletemplates
ExpressionParser, CoreExtension; Kestra's ``??``/``???`` at 120).

Only ``if``/``elseif``/``else``, ``for``/``else``, ``set`` and ``raw`` tags exist; every other
tag (include, import, extends, macro, call, filter, block...) is rejected when the template is
compiled.
"""

from __future__ import annotations

import re

from jinja2 import nodes
from jinja2.lexer import (
    TOKEN_BLOCK_BEGIN,
    TOKEN_DATA,
    TOKEN_OPERATOR,
    TOKEN_STRING,
    TOKEN_VARIABLE_BEGIN,
    TOKEN_WHITESPACE,
    Lexer,
    Token,
)
from jinja2.lexer import operators as jinja_operators
from jinja2.parser import Parser

from . import compiler, registry
from .limits import MAX_NESTING

# Operators Pebble has and Jinja's lexer does not know, and the token types given to them.
EXTRA_OPERATORS = {"???": "undefco", "??": "nullco", "?": "question", "..": "dotdot"}
_OPERATOR_RE = re.compile(
    "(" + "|".join(re.escape(op) for op in sorted([*jinja_operators, *EXTRA_OPERATORS], key=lambda x: -len(x))) + ")"
)

_CARRIAGE_RETURN = "\U0010fffd"
_WHITESPACE_RE = re.compile(r"[\s\U0010fffd]+")

# (precedence, operator) of binary operators, found by token type, or by name for word operators.
_BINARY_BY_TYPE = {
    "eq": (30, "=="), "ne": (30, "!="), "lt": (30, "<"), "lteq": (30, "<="), "gt": (30, ">"),
    "gteq": (30, ">="), "add": (40, "+"), "sub": (40, "-"), "mul": (60, "*"), "div": (60, "/"),
    "mod": (60, "%"), "pipe": (100, "|"), "tilde": (110, "~"), "dotdot": (120, ".."),
    "nullco": (120, "??"), "undefco": (120, "???"),
}
_BINARY_BY_NAME = {
    "or": (10, "or"), "and": (15, "and"), "is": (20, "is"), "contains": (20, "contains"),
    "equals": (30, "=="), "isIn": (30, "isIn"), "notIn": (30, "notIn"),
}
_UNARY_PRECEDENCE = 500
_LITERALS = {"true": True, "TRUE": True, "false": False, "FALSE": False,
             "null": None, "NULL": None, "none": None, "NONE": None}
_RESERVED_NAMES = {"loop", "self", "super", "caller", "varargs", "kwargs"}  # Jinja gives them meanings
_FORBIDDEN_TAGS = {"include", "import", "from", "extends", "block", "macro", "call", "filter",
                   "with", "autoescape", "print", "do", "embed", "parallel", "cache", "verbatim",
                   "flush", "trans", "endblock", "endmacro", "endcall", "endfilter"}


def pebble_unquote(quoted: str) -> str:
    """Pebble keeps backslashes in string literals; only an escaped quote of the same kind is unescaped."""
    quote, body = quoted[0], quoted[1:-1]
    return body.replace("\\" + quote, quote)


class PebbleLexer(Lexer):
    r"""Jinja's lexer with Pebble's extra operators, string literals and line endings.

    Jinja turns every ``\r\n`` and ``\r`` into ``\n``; Pebble keeps text as written (an HTTP
    body may need its CRLFs). Carriage returns are swapped for a private-use character before
    lexing — whitespace inside tags — and restored in text and string literals.
    """

    def __init__(self, environment) -> None:
        super().__init__(environment)
        for state in (TOKEN_BLOCK_BEGIN, TOKEN_VARIABLE_BEGIN):
            self.rules[state] = [
                rule._replace(pattern=_OPERATOR_RE) if rule.tokens == TOKEN_OPERATOR
                else rule._replace(pattern=_WHITESPACE_RE) if rule.tokens == TOKEN_WHITESPACE
                else rule
                for rule in self.rules[state]
            ]

    def tokeniter(self, source, name, filename=None, state=None):
        if "\r" in source:
            source = source.replace("\r", _CARRIAGE_RETURN)
        return super().tokeniter(source, name, filename, state)

    def wrap(self, stream, name=None, filename=None):
        for lineno, token, value in stream:
            if token == TOKEN_OPERATOR and value in EXTRA_OPERATORS:
                yield Token(lineno, EXTRA_OPERATORS[value], value)
            elif token == TOKEN_STRING:
                yield Token(lineno, TOKEN_STRING, pebble_unquote(value).replace(_CARRIAGE_RETURN, "\r"))
            elif token == TOKEN_DATA:
                yield Token(lineno, TOKEN_DATA, value.replace(_CARRIAGE_RETURN, "\r"))
            else:
                yield from super().wrap(((lineno, token, value),), name, filename)


class PebbleParser(Parser):
    def __init__(self, environment, source, name=None, filename=None, state=None) -> None:
        super().__init__(environment, source, name, filename, state)
        self._loop_targets: list[str] = []
        self._nesting = 0

    # -- statements ---------------------------------------------------------------------

    def parse_statement(self):
        token = self.stream.current
        if token.type != "name":
            self.fail("A tag name is expected after {%", token.lineno)
        if token.value == "if":
            return self.parse_if()
        if token.value == "for":
            return self.parse_for()
        if token.value == "set":
            return self.parse_set()
        if token.value in _FORBIDDEN_TAGS:
            self.fail(f"The tag {{% {token.value} %}} is not supported", token.lineno)
        if token.value in ("elseif", "elif", "else", "endif", "endfor"):
            self.fail(f"Unexpected tag {{% {token.value} %}}: no open tag expects it here", token.lineno)
        self.fail(f"Unknown tag {{% {token.value} %}}", token.lineno)

    def parse_if(self) -> nodes.If:
        result = node = nodes.If(lineno=self.stream.expect("name:if").lineno)
        while True:
            node.test = compiler.truth(self.parse_expression(), node.lineno)
            self._expect_end("block_end")
            node.body = self.parse_statements(("name:elseif", "name:elif", "name:else", "name:endif"))
            node.elif_, node.else_ = [], []
            token = next(self.stream)
            if token.test("name:elseif") or token.test("name:elif"):
                node = nodes.If(lineno=self.stream.current.lineno)
                result.elif_.append(node)
                continue
            if token.test("name:else"):
                result.else_ = self.parse_statements(("name:endif",), drop_needle=True)
            return result

    def parse_for(self) -> nodes.For:
        lineno = self.stream.expect("name:for").lineno
        target = self.stream.expect("name").value
        if target in _LITERALS or target in _RESERVED_NAMES:
            self.fail(f"Can not assign a value to {target}", lineno)
        self.stream.expect("name:in")
        iterable = self.parse_expression()
        self._expect_end("block_end")
        self._loop_targets.append(target)
        try:
            body = self.parse_statements(("name:endfor", "name:else"))
        finally:
            self._loop_targets.pop()
        else_ = []
        if next(self.stream).value == "else":
            else_ = self.parse_statements(("name:endfor",), drop_needle=True)
        return nodes.For(nodes.Name(target, "store", lineno=lineno), compiler.loop_iterable(iterable, lineno),
                         body, else_, None, False, lineno=lineno)

    def parse_set(self) -> nodes.Stmt:
        lineno = self.stream.expect("name:set").lineno
        target = self.stream.expect("name").value
        if target in _LITERALS or target in _RESERVED_NAMES:
            self.fail(f"Can not assign a value to {target}", lineno)
        if not self.stream.current.test("assign"):
            self.fail("{% set %} expects `name = expression`", lineno)
        next(self.stream)
        expr = self.parse_expression()
        self._expect_end("block_end")
        if target in self._loop_targets:  # Pebble updates the loop's own scope
            return nodes.Assign(nodes.Name(target, "store", lineno=lineno), expr, lineno=lineno)
        return compiler.set_variable(target, expr, lineno)

    # Jinja's parser reaches the expression of `{{ }}` through this one.
    def parse_tuple(self, *args, **kwargs):
        expr = self.parse_expression()
        self._expect_end("variable_end")
        return expr

    def _expect_end(self, end: str) -> None:
        token = self.stream.current
        if token.type == "eof":
            closing = "}}" if end == "variable_end" else "%}"
            self.fail(f"The template ends before the closing `{closing}`", token.lineno)
        if token.type != end:
            self.fail(f"Unexpected {_describe(token)} after the expression", token.lineno)

    def parse_expression(self, with_condexpr: bool = True, min_precedence: int = 0) -> nodes.Expr:
        self._nesting += 1
        if self._nesting > MAX_NESTING:
            self.fail(f"The expression is nested more than {MAX_NESTING} levels deep")
        try:
            return self._parse_expression(min_precedence)
        finally:
            self._nesting -= 1

    # -- expressions (Pebble's precedence climbing) ---------------------------------------

    def _binary_operator(self) -> tuple[int, str] | None:
        token = self.stream.current
        if token.type == "name":
            return _BINARY_BY_NAME.get(token.value)
        return _BINARY_BY_TYPE.get(token.type)

    def _parse_expression(self, min_precedence: int) -> nodes.Expr:
        token = self.stream.current
        lineno = token.lineno
        if token.test("name:not") or token.type in ("sub", "add"):
            next(self.stream)
            operand = self.parse_expression(min_precedence=_UNARY_PRECEDENCE)
            op = "not" if token.type == "name" else ("-" if token.type == "sub" else "+")
            if op == "-" and isinstance(operand, nodes.Const) and type(operand.value) in (int, float):
                expr = nodes.Const(-operand.value, lineno=lineno)
            else:
                expr = compiler.unary(op, operand, lineno)
        else:
            expr = self._parse_primary()

        while True:
            found = self._binary_operator()
            if found is None and self.stream.current.type in ("pow", "floordiv", "semicolon"):
                self.fail(f"The operator `{self.stream.current.value}` does not exist in expressions")
            if found is None or found[0] < min_precedence:
                break
            precedence, op = found
            operator_token = next(self.stream)
            if op == "|":
                expr = self._parse_filter(expr)
            elif op == "is":
                expr = self._parse_test(expr)
            else:
                right = self.parse_expression(min_precedence=precedence + 1)
                expr = compiler.binary(op, expr, right, operator_token.lineno)

        if min_precedence == 0 and self.stream.current.type == "question":
            next(self.stream)
            when_true = self.parse_expression()
            self.stream.expect("colon")
            when_false = self.parse_expression()
            expr = compiler.ternary(expr, when_true, when_false, lineno)
        return expr

    def _parse_primary(self) -> nodes.Expr:
        token = self.stream.current
        lineno = token.lineno
        if token.type == "lparen":
            next(self.stream)
            node = self.parse_expression()
            self.stream.expect("rparen")
        elif token.type == "lbracket":
            node = self._parse_list()
        elif token.type == "lbrace":
            node = self._parse_map()
        elif token.type == "name":
            next(self.stream)
            if token.value in _LITERALS:
                node = nodes.Const(_LITERALS[token.value], lineno=lineno)
            elif self.stream.current.type == "lparen":
                node = self._parse_call(token.value, lineno)
            elif token.value in self._loop_targets or (token.value == "loop" and self._loop_targets):
                node = nodes.Name(token.value, "load", lineno=lineno)
            else:
                node = compiler.variable(token.value, lineno)
        elif token.type == "string":
            next(self.stream)
            if self.stream.current.type == "string":
                self.fail("Two string literals follow each other; join them with ~", lineno)
            node = nodes.Const(token.value, lineno=lineno)
        elif token.type in ("integer", "float"):
            next(self.stream)
            node = nodes.Const(token.value, lineno=lineno)
        elif token.type in ("variable_end", "block_end", "eof"):
            self.fail("The expression is incomplete: a value is expected", lineno)
        else:
            self.fail(f"Unexpected {_describe(token)}", lineno)
        return self._parse_postfix(node)

    def _parse_postfix(self, node: nodes.Expr) -> nodes.Expr:
        while True:
            token = self.stream.current
            if token.type == "dot":
                next(self.stream)
                attribute = self.stream.current
                if attribute.type == "name":
                    next(self.stream)
                    if self.stream.current.type == "lparen":
                        self.fail(f"Method calls are not supported: `.{attribute.value}(...)`; "
                                  "expressions read data, use a filter or a function instead", attribute.lineno)
                    node = nodes.Getattr(node, attribute.value, "load", lineno=token.lineno)
                elif attribute.type == "integer":
                    next(self.stream)
                    node = nodes.Getitem(node, nodes.Const(attribute.value), "load", lineno=token.lineno)
                else:
                    self.fail(f"An attribute name is expected after `.`, not {_describe(attribute)}", token.lineno)
            elif token.type == "lbracket":
                next(self.stream)
                argument = self.parse_expression()
                self.stream.expect("rbracket")
                node = nodes.Getitem(node, argument, "load", lineno=token.lineno)
            elif token.type == "lparen":
                self.fail("Only functions can be called, by their name: `name(...)`", token.lineno)
            else:
                return node

    def _parse_list(self) -> nodes.Expr:
        lineno = self.stream.expect("lbracket").lineno
        items = []
        while self.stream.current.type != "rbracket":
            if items:
                self.stream.expect("comma")
            items.append(self.parse_expression())
        self.stream.expect("rbracket")
        return nodes.List(items, lineno=lineno)

    def _parse_map(self) -> nodes.Expr:
        lineno = self.stream.expect("lbrace").lineno
        pairs = []
        while self.stream.current.type != "rbrace":
            if pairs:
                self.stream.expect("comma")
            key = self.parse_expression()
            self.stream.expect("colon")
            value = self.parse_expression()
            pairs.append(nodes.Pair(key, value, lineno=key.lineno))
        self.stream.expect("rbrace")
        return nodes.Dict(pairs, lineno=lineno)

    def _parse_arguments(self) -> tuple[list[nodes.Expr], list[nodes.Keyword]]:
        self.stream.expect("lparen")
        args: list[nodes.Expr] = []
        kwargs: list[nodes.Keyword] = []
        while self.stream.current.type != "rparen":
            if args or kwargs:
                self.stream.expect("comma")
            if self.stream.current.type == "name" and self.stream.look().type == "assign":
                key = next(self.stream).value
                next(self.stream)
                kwargs.append(nodes.Keyword(key, self.parse_expression(), lineno=self.stream.current.lineno))
            else:
                if kwargs:
                    self.fail("Positional arguments must be declared before any named arguments.")
                args.append(self.parse_expression())
        self.stream.expect("rparen")
        return args, kwargs

    def _checked(self, kind: str, name: str, args: list, kwargs: list, lineno: int) -> registry.Spec:
        spec = registry.lookup(kind, name)
        if spec is None:
            label = {"filter": "Filter", "function": "Function", "test": "Test"}[kind]
            self.fail(f"{label} `{name}` does not exist", lineno)
        problem = registry.check_arguments(spec, len(args), [k.key for k in kwargs])
        if problem:
            self.fail(problem, lineno)
        return spec

    def _parse_call(self, name: str, lineno: int) -> nodes.Expr:
        args, kwargs = self._parse_arguments()
        self._checked("function", name, args, kwargs, lineno)
        return compiler.call_function(name, args, kwargs, lineno)

    def _parse_filter(self, node: nodes.Expr) -> nodes.Expr:
        token = self.stream.expect("name")
        args, kwargs = self._parse_arguments() if self.stream.current.type == "lparen" else ([], [])
        spec = self._checked("filter", token.value, args, kwargs, token.lineno)
        return compiler.apply_filter(node, token.value, args, kwargs, spec.soft, token.lineno)

    def _parse_test(self, node: nodes.Expr) -> nodes.Expr:
        negated = bool(self.stream.skip_if("name:not"))
        token = self.stream.expect("name")
        args, kwargs = self._parse_arguments() if self.stream.current.type == "lparen" else ([], [])
        spec = self._checked("test", token.value, args, kwargs, token.lineno)
        return compiler.apply_test(node, token.value, args, kwargs, negated, spec.soft, token.lineno)


def _describe(token: Token) -> str:
    if token.type in ("variable_end", "block_end"):
        return "end of the expression"
    if token.type == "eof":
        return "end of the template"
    if token.type == "name":
        return f"name `{token.value}`"
    if token.type == "string":
        return f"string '{token.value}'"
    return f"`{token.value}`"
