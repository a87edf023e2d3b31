"""cdpio's transport exceptions: what the wire raises, and what the httpx
path's failures are translated into at its one boundary (via_httpx), so the
policy (sending) and its wording (redaction.describe_exception) know only
these.

The names and the tree are httpx's, so a failure reads the same whichever
wire carried the request (describe_exception names an unknown one by its
class name).
"""

from __future__ import annotations


class HTTPError(Exception):
    """Any failure of one HTTP exchange."""


class RequestError(HTTPError):
    pass


class TransportError(RequestError):
    pass


class TimeoutException(TransportError):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class WriteTimeout(TimeoutException):
    pass


class PoolTimeout(TimeoutException):
    pass


class NetworkError(TransportError):
    pass


class ConnectError(NetworkError):
    pass


class ReadError(NetworkError):
    pass


class WriteError(NetworkError):
    pass


class CloseError(NetworkError):
    pass


class ProtocolError(TransportError):
    pass


class LocalProtocolError(ProtocolError):
    pass


class RemoteProtocolError(ProtocolError):
    pass


class ProxyError(TransportError):
    pass


class UnsupportedProtocol(TransportError):
    pass


class DecodingError(RequestError):
    pass


class TooManyRedirects(RequestError):
    pass


class InvalidURL(Exception):
    """A URL that cannot be parsed (not an HTTPError, as in httpx)."""


_BY_NAME: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        HTTPError,
        RequestError,
        TransportError,
        TimeoutException,
        ConnectTimeout,
        ReadTimeout,
        WriteTimeout,
        PoolTimeout,
        NetworkError,
        ConnectError,
        ReadError,
        WriteError,
        CloseError,
        ProtocolError,
        LocalProtocolError,
        RemoteProtocolError,
        ProxyError,
        UnsupportedProtocol,
        DecodingError,
        TooManyRedirects,
        InvalidURL,
    )
}


def translated(exc: BaseException) -> Exception:
    """cdpio's exception for one of httpx's (the nearest class of the same
    name up its tree), with the same text."""
    for cls in type(exc).__mro__:
        ours = _BY_NAME.get(cls.__name__)
        if ours is not None and cls.__module__.startswith("httpx"):
            return ours(str(exc))
    return HTTPError(str(exc))
