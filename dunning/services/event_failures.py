"""Which errors fail a stored webhook event for good, and how the error is kept.

An event fails for good when trying it again would meet the same error: it is malformed, names
a record that does not exist, or the database refuses what it would write (a value out of range,
a broken constraint), or its processing raised a programming error on its data. Anything else
(the database or the broker unreachable, a timeout) is transient: the event stays ``received``
and is tried again.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from dunning.errors import PermanentError

_FOR_GOOD: tuple[type[BaseException], ...] = (
    PermanentError,
    DataError,
    IntegrityError,
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
)


def fails_for_good(exc: BaseException) -> bool:
    return isinstance(exc, _FOR_GOOD)


def describe(exc: BaseException) -> str:
    """One line saying what went wrong: the database's own message for a refused write (never
    the statement or its parameters, which may hold customer data)."""
    if isinstance(exc, DBAPIError):
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return f"{type(exc).__name__}: {first}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
