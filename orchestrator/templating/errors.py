"""Errors of the expression engine.

Only :class:`TemplateError` leaves the package. Inside, two lighter exceptions travel up the
generated template code and are turned into a ``TemplateError`` once, at the top, where the
template source and the line number are known:

- :class:`MissingValueError` — a variable or attribute that does not exist was *used*;
- :class:`EvaluationError` — any other reason (bad operand types, a limit, a hook refusing).
"""

from __future__ import annotations

from jinja2.runtime import StrictUndefined

# Long templates (whole scripts are templates) would drown the reason in the message.
_MAX_SOURCE_IN_MESSAGE = 300


class TemplateError(Exception):
    """A template or expression could not be rendered.

    ``str(error)`` names the expression and the reason, in Kestra's words where Kestra has
    them, e.g. "Unable to find `invalid` used in the expression `{{inputs.invalid}}` at line 1".
    The parts are also available: ``reason``, ``expression`` (the template source) and ``line``.
    """

    def __init__(self, reason: str, expression: str | None = None, line: int | None = None,
                 message: str | None = None) -> None:
        self.reason = reason
        self.expression = expression
        self.line = line
        super().__init__(message or _compose(reason, expression, line))

    def __reduce__(self):  # keep the parts when the error crosses a process boundary
        return (type(self), (self.reason, self.expression, self.line, str(self)))


def _shorten(source: str) -> str:
    if len(source) <= _MAX_SOURCE_IN_MESSAGE:
        return source
    return source[:_MAX_SOURCE_IN_MESSAGE] + "…"


def _compose(reason: str, expression: str | None, line: int | None) -> str:
    if expression is None:
        return reason
    where = f" at line {line}" if line else ""
    return f"{reason} (in the expression `{_shorten(expression)}`{where})"


def missing_message(name: str, expression: str, line: int | None) -> str:
    """Kestra's wording for a variable or attribute that does not exist."""
    return f"Unable to find `{name}` used in the expression `{_shorten(expression)}` at line {line or 1}"


class EvaluationError(Exception):
    """A reason to fail the rendering, raised by operators, filters and functions."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class MissingValueError(EvaluationError):
    """An undefined variable or attribute was used (printed, compared, computed with...)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"Unable to find `{name}`")


class PebbleUndefined(StrictUndefined):
    """The value of a name or attribute that does not exist.

    Creating one is harmless: it can be tested (``is defined``), defaulted (``??``, ``???``,
    ``default``) or chained (``missing.a.b`` stays the same undefined, keeping the first missing
    name for the message, as Kestra reports it). Every other use raises
    :class:`MissingValueError`.
    """

    __slots__ = ()

    def _fail_with_undefined_error(self, *args, **kwargs):
        raise MissingValueError(str(self._undefined_name))

    # StrictUndefined binds its dunders to the base-class function; rebind them to ours.
    __iter__ = __str__ = __len__ = _fail_with_undefined_error
    __eq__ = __ne__ = __bool__ = __hash__ = _fail_with_undefined_error
    __contains__ = _fail_with_undefined_error
    __add__ = __radd__ = __sub__ = __rsub__ = _fail_with_undefined_error
    __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _fail_with_undefined_error
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail_with_undefined_error
    __pos__ = __neg__ = __call__ = __getitem__ = _fail_with_undefined_error
    __lt__ = __le__ = __gt__ = __ge__ = _fail_with_undefined_error
    __int__ = __float__ = __complex__ = __pow__ = __rpow__ = _fail_with_undefined_error

    def __repr__(self) -> str:
        return f"PebbleUndefined({self._undefined_name!r})"


def undefined(name: object) -> PebbleUndefined:
    return PebbleUndefined(name=str(name))


def raise_if_undefined(value: object) -> None:
    if isinstance(value, PebbleUndefined):
        value._fail_with_undefined_error()
