"""The errors a PromQL query raises: ``QueryError`` (bad input or an evaluation error, with
Prometheus' message where it has one), its kinds ``ParseError`` (bad syntax) and
``UnsupportedError`` (a construct the engine does not evaluate, named in ``construct``)."""

from __future__ import annotations


class QueryError(Exception):
    """A query that cannot be evaluated; the message is Prometheus' where it has one."""


class ParseError(QueryError):
    pass


class UnsupportedError(QueryError):
    def __init__(self, construct: str) -> None:
        super().__init__(f"unsupported PromQL construct: {construct}")
        self.construct = construct
