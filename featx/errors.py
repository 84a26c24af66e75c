"""The one exception type that command lines turn into a one-line error."""


class FeatxError(Exception):
    """A user-facing error: bad input, a mismatched cache, a missing file. Printed on one line."""
