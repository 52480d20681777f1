"""WSGI (PEP 3333) as data: the environ of a request, what an app answered, response heads.

Invariants:
- No I/O and no event loop: functions from a parsed request to an environ, and from an
  app's answer to header fields and bytes. The server (``rfc6455.server``), the middleware
  and the takeover (``rfc6455.takeover``) all build their responses here, so no layer
  imports from one above it for them.
- An environ holds one connection's strings only where they differ between connections
  (the target, ``Sec-WebSocket-Key``, cookies): every open WebSocket keeps its environ, so
  names and common values come from two bounded caches that outlive connections and never
  hold anything secret; a request without a body (every upgrade) shares one empty,
  stateless ``wsgi.input``.
- Every response carries ``Server: rfc6455/<version>`` and a ``Date`` (RFC 7231 §7.1.1.2,
  §7.4.2) unless the app set them.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol

from .errors import HandshakeError
from .limits import LIMITS_KEY, Limits
from .version import __version__

__all__ = [
    "SERVER_SOFTWARE",
    "Response",
    "StartResponse",
    "WSGIApp",
    "WsgiHandler",
    "body_chunks",
    "close_iterable",
    "encode_headers",
    "environ_of",
    "error_response",
    "response_head",
    "upgrade_head",
]

logger = logging.getLogger("rfc6455.server")

#: The ``Server`` header of every response (RFC 7231 §7.4.2).
SERVER_SOFTWARE = f"rfc6455/{__version__}"

StartResponse = Callable[..., Any]

#: A WSGI application (PEP 3333), or a middleware of a ``WsgiHandler`` chain, which may
#: also return ``None`` to pass the request on.
WSGIApp = Callable[[MutableMapping[str, Any], StartResponse], Iterable[bytes] | None]


class RequestHead(Protocol):
    """What the environ is built from: h11's ``Request`` or the upgrade fast path's."""

    @property
    def method(self) -> bytes: ...
    @property
    def target(self) -> bytes: ...
    @property
    def http_version(self) -> bytes: ...
    @property
    def headers(self) -> Any: ...  # with ``raw_items()``: [(name, value)] as received


def error_response(
    start_response: StartResponse,
    status: int,
    reason: str,
    headers: Sequence[tuple[str, str]] = (),
) -> list[bytes]:
    """Answer with ``status`` and ``reason`` as a short plain-text body."""
    body = (reason + "\n").encode("utf-8")
    start_response(
        f"{status} {_phrase(status)}",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class WsgiHandler:
    """A chain of middleware, pulsar style: the first non-``None`` response wins, else 404.

    Each middleware is called as a WSGI app; it returns a response iterable to answer the
    request, or ``None`` to let the next one try.
    """

    def __init__(self, middleware: Sequence[WSGIApp] = ()) -> None:
        self.middleware: list[WSGIApp] = list(middleware)

    def __call__(
        self, environ: MutableMapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        for middleware in self.middleware:
            response = middleware(environ, start_response)
            if response is not None:
                return response
        return error_response(start_response, 404, f"nothing here: {environ.get('PATH_INFO')}")


class Response:
    """What a WSGI app answered: status, headers, and the body still to iterate."""

    __slots__ = ("headers", "headers_sent", "status", "written")

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.written: list[bytes] = []  # PEP 3333's legacy ``write()`` callable

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Callable[[bytes], None]:
        # PEP 3333: a second call is only allowed with exc_info, and re-raises once the
        # headers are out.
        if exc_info is not None:
            if self.headers_sent:
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise RuntimeError("start_response was already called")
        self.status = status
        self.headers = list(headers)
        return self.written.append


def body_chunks(result: Iterable[bytes], response: Response) -> Iterator[bytes]:
    """The body's chunks, with ``start_response`` guaranteed to have been called.

    PEP 3333 lets an app call ``start_response`` as late as its first yielded chunk, so
    that chunk is pulled here, before the headers are built.
    """
    iterator = iter(result)
    if response.status is not None:
        return _chain(response.written, iterator)
    first = next(iterator, None)
    if response.status is None:
        raise RuntimeError("the WSGI app returned without calling start_response")
    head = [*response.written, first] if first is not None else list(response.written)
    return _chain(head, iterator)


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


def close_iterable(result: Iterable[bytes]) -> None:
    """PEP 3333: call the response's ``close()`` if it has one, whatever happened."""
    if type(result) is list:
        return  # (the usual answer, the middleware's; a list has no ``close``)
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            logger.exception("closing the WSGI response failed")


# -- the environ -------------------------------------------------------------------------------


class _NoBody(io.RawIOBase):
    """``wsgi.input`` of a request without a body (every upgrade request): PEP 3333's
    ``read``, ``readline``, ``readlines`` and iteration, all empty. Being stateless, one
    serves every request, where a ``BytesIO`` each would be kept by every open WebSocket."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return 0

    def close(self) -> None:
        """Stays open: every request without a body shares it."""


#: The one ``_NoBody``.
NO_BODY = _NoBody()


def environ_of(
    request: RequestHead,
    body: bytes,
    sockname: tuple[Any, ...],
    peer: tuple[Any, ...],
    limits: Limits,
) -> dict[str, Any]:
    """The PEP 3333 environ of ``request``, received on ``sockname`` from ``peer``."""
    target = request.target.decode("latin-1")
    if target.startswith(("http://", "https://")):  # absolute-form, RFC 7230 §5.3.2
        parts = urllib.parse.urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
    if "%" in path:
        # PEP 3333: the path is url-decoded and carried as latin-1 "bytes in a str".
        path = urllib.parse.unquote(path, encoding="latin-1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": _shared(request.method.decode("ascii")),
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": _shared(str(sockname[0])),
        "SERVER_PORT": _shared(str(sockname[1])),
        "SERVER_PROTOCOL": _shared("HTTP/" + request.http_version.decode("ascii")),
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "REMOTE_ADDR": _shared(str(peer[0])),
        "REMOTE_PORT": str(peer[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body) if body else NO_BODY,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        LIMITS_KEY: limits,
    }
    # ``raw_items()`` is a plain list: iterating h11's ``Headers`` itself goes through
    # ``Sequence.__iter__``, item by item, which showed in the handshake profile.
    for raw_name, raw_value in request.headers.raw_items():
        key, share = _fields.get(raw_name) or _field(raw_name)
        if key is None:
            # "Sec_WebSocket_Key" would land on the same key as "Sec-WebSocket-Key":
            # such names are dropped rather than let them smuggle a header in.
            continue
        if share:
            value = _shared_raw.get(raw_value) or _share_raw(raw_value)
        else:
            value = raw_value.decode("latin-1")
        if key in environ:
            # RFC 7230 §3.2.2: repeated fields combine as a comma-separated list;
            # RFC 6265 §5.4: cookies with "; ".
            separator = "; " if key == "HTTP_COOKIE" else ", "
            environ[key] = f"{environ[key]}{separator}{value}"
        else:
            environ[key] = value
    return environ


#: Header fields whose values repeat from one connection to the next (``Sec-WebSocket-Key``
#: does not): their environ values are shared, not held once per open WebSocket.
_SHARED_VALUE_HEADERS = frozenset(
    (
        b"host",
        b"upgrade",
        b"connection",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"origin",
        b"user-agent",
        b"accept-encoding",
        b"accept-language",
        b"cache-control",
        b"pragma",
    )
)

#: Bound on each cache below, so that a peer sending ever new names or values cannot grow
#: them without limit; past it, strings are just not shared.
_CACHE_SIZE = 1024

_shared_values: dict[str, str] = {}
#: The same strings by the bytes they were received as (header values of shared fields).
_shared_raw: dict[bytes, str] = {}
#: Header field name as received -> (environ key or ``None`` to drop it, share its value).
_fields: dict[bytes, tuple[str | None, bool]] = {}


def _field(raw_name: bytes) -> tuple[str | None, bool]:
    """How header field ``raw_name`` enters the environ: its key (``None``: dropped, the
    name has ``_``) and whether its value is shared; remembered, one string per name.

    Every open WebSocket keeps its environ: a shared key costs nothing per connection.
    """
    lowered = raw_name.lower()
    name = lowered.decode("latin-1")
    key: str | None
    if "_" in name:
        key = None
    elif name == "content-type":
        key = "CONTENT_TYPE"
    elif name == "content-length":
        key = "CONTENT_LENGTH"
    else:
        key = "HTTP_" + name.upper().replace("-", "_")
    field = (key, lowered in _SHARED_VALUE_HEADERS)
    if len(_fields) < _CACHE_SIZE:
        _fields[raw_name] = field
    return field


def _share_raw(raw_value: bytes) -> str:
    """The header value ``raw_value`` as a shared string (see ``_shared``), remembered by its
    bytes: the next connection that sends them gets the string without decoding them."""
    value = _shared(raw_value.decode("latin-1"))
    if len(_shared_raw) < _CACHE_SIZE and len(raw_value) <= 256:
        _shared_raw[raw_value] = value
    return value


def _shared(value: str) -> str:
    """``value``, or an equal string already held, for environ values many connections share.

    Only for values that carry no secrets (not the target, cookies or credentials): the
    cache outlives the connections.
    """
    shared = _shared_values.get(value)
    if shared is not None:
        return shared
    if len(_shared_values) < _CACHE_SIZE and len(value) <= 256:
        _shared_values[value] = value
    return value


# -- response heads ----------------------------------------------------------------------------


def base_headers() -> list[tuple[bytes, bytes]]:
    """``Server`` and ``Date``, for answers the server makes itself (100 Continue)."""
    return [(b"Server", SERVER_SOFTWARE.encode("ascii")), (b"Date", _http_date())]


def _http_date() -> bytes:
    """The ``Date`` header's value, formatted once per second rather than per response."""
    if int(time.time()) != _date_cache[0]:
        _update_date()
    date: bytes = _date_cache[1]
    return date


def _http_date_text() -> str:
    """``_http_date()`` as text."""
    if int(time.time()) != _date_cache[0]:
        _update_date()
    date: str = _date_cache[2]
    return date


def _update_date() -> None:
    now = int(time.time())
    text = formatdate(now, usegmt=True)
    _date_cache[:] = [now, text.encode("ascii"), text]


_date_cache: list[Any] = [0, b"", ""]


def encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The app's headers as bytes, plus ``Server`` and ``Date`` unless it set them."""
    encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    present = {name.lower() for name, _ in encoded}
    if b"server" not in present:
        encoded.append((b"Server", SERVER_SOFTWARE.encode("ascii")))
    if b"date" not in present:
        encoded.append((b"Date", _http_date()))
    return encoded


# RFC 7230 §3.2: field-name = token; field-value excludes CR, LF (and NUL, which no
# server accepts).
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_RE = re.compile(r"[\r\n\x00]")
#: Header names the handshake and the server write: tokens, not matched again each time.
_KNOWN_NAMES = frozenset(
    (
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Server",
        "Date",
    )
)
_SERVER_LINE = f"Server: {SERVER_SOFTWARE}\r\n"


def response_head(headers: Sequence[tuple[str, str]]) -> bytes:
    """The 101 response's head with ``headers`` as given (RFC 6455 §4.2.2).

    Raises ``HandshakeError`` (500) when a header (perhaps added by ``on_handshake``) could
    not go on the wire as given: a name that is not a token, a CR, LF or NUL in a value, or
    text outside latin-1.
    """
    return _latin1(_head_lines(headers) + "\r\n")


def upgrade_head(headers: Sequence[tuple[str, str]]) -> bytes:
    """The 101 response's head as the server writes it: ``headers``, then ``Server`` and
    ``Date`` unless they are among them. Raises as ``response_head`` does."""
    text = _head_lines(headers)
    # Names are tokens and values hold no line break: a field starts each "\n...:".
    lowered = text.lower()
    if "\nserver:" not in lowered:
        text += _SERVER_LINE
    if "\ndate:" not in lowered:
        text += f"Date: {_http_date_text()}\r\n"
    return _latin1(text + "\r\n")


def _head_lines(headers: Sequence[tuple[str, str]]) -> str:
    """The 101's status line and header lines, each ending in CRLF; ``HandshakeError`` for
    the first header whose name is not a token or whose value holds a CR, LF or NUL."""
    lines = ["HTTP/1.1 101 Switching Protocols"]
    for name, value in headers:
        if name not in _KNOWN_NAMES and not _TOKEN_RE.fullmatch(name):
            _check_headers(headers)  # raises, naming this header or an earlier one
        lines.append(name + ": " + value)
    lines.append("")
    text = "\r\n".join(lines)
    # One pass over the whole head for the values (the names are tokens): a CR or LF in
    # one adds a line end.
    ends = len(lines) - 1
    if text.count("\n") != ends or text.count("\r") != ends or "\x00" in text:
        _check_headers(headers)  # raises, naming the header
    return text


def _check_headers(headers: Sequence[tuple[str, str]]) -> None:
    """Raise ``HandshakeError`` for the first header that cannot go on the wire as given."""
    for name, value in headers:
        if not _TOKEN_RE.fullmatch(name) or _BAD_VALUE_RE.search(value):
            raise HandshakeError(f"the 101 response has an invalid header {name!r}", status=500)


def _latin1(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise HandshakeError("a header of the 101 response is not latin-1", status=500) from exc
