"""The one exception type that command lines turn into a one-line error."""

from __future__ import annotations

import functools
from collections.abc import Callable


class FeatxError(Exception):
    """A user-facing error: bad input, a mismatched cache, a missing file. Printed on one line."""


def one_line_errors(fn: Callable) -> Callable:
    """Decorator for click commands: FeatxError -> click's one-line 'Error: ...', exit code 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import click

        try:
            return fn(*args, **kwargs)
        except FeatxError as e:
            raise click.ClickException(str(e)) from None

    return wrapper
