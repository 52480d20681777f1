"""The opening handshake, RFC 6455 §4, for both roles.

Invariants:
- No I/O. The server side reads a WSGI environ and returns the 101's headers; the client
  side builds request headers and checks the response's status and headers. Shells own the
  bytes on the wire.
- Every rejection is a ``HandshakeError`` whose ``reason`` names the header and what is wrong
  with it, and whose ``status``/``headers`` are the HTTP answer to send: 400 by default,
  405 (``Allow: GET``) for another method, 426 (``Upgrade: websocket``) for a request that
  does not ask for the websocket upgrade, 426 (``Sec-WebSocket-Version: 13``) via
  ``VersionMismatch`` for another protocol version.
- Misuse by our own caller (an invalid subprotocol name or header to send) is a
  ``ValueError``, never a ``HandshakeError``: the peer is not at fault.
- Subprotocol choice: the server picks the first of the *client's* offers that it supports.
  RFC 6455 §1.3 says the client lists subprotocols "ordered by preference", and the server's
  list says only what it can speak.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import HandshakeError, VersionMismatch
from .extensions import (
    ClientExtensionFactory,
    Extension,
    ServerExtensionFactory,
    negotiate_client,
    negotiate_server,
    serialize_extensions_header,
)

__all__ = [
    "GUID",
    "VERSION",
    "ServerHandshake",
    "accept_key",
    "accept_upgrade",
    "client_request",
    "is_websocket_request",
    "server_handshake",
    "validate_response",
]

# RFC 6455 §1.3: the globally unique identifier appended to the key before hashing.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# RFC 6455 §4.1 step 9 and §11.6: the only protocol version this implementation speaks.
VERSION = "13"
# RFC 6455 §4.1 step 7: the key is a base64-encoded 16-byte nonce.
_KEY_BYTES = 16
# The canonical base64 form of 16 bytes: 21 characters, a 22nd that carries the last 2 bits
# (its 4 low bits zero: A, Q, g or w), then "==". Any other key is diagnosed by
# ``_key_problem``'s slower steps.
_CANONICAL_KEY_RE = re.compile(r"[A-Za-z0-9+/]{21}[AQgw]==")

# RFC 7230 §3.2.6 tchar: what RFC 6455 §4.1 calls a token (subprotocols, header names).
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 7230 §5.4 / RFC 3986 §3.2.2: uri-host [ ":" port ], with reg-name or an IP literal.
# A comma is left out on purpose: WSGI joins repeated headers with one.
_HOST_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+;=]+)(?::[0-9]*)?")
# RFC 6455 §3: a resource name is "/" or a path, then an optional query; printable ASCII
# without spaces, and no fragment.
_RESOURCE_RE = re.compile(r"/[\x21-\x22\x24-\x7e]*")
_HTTP_VERSION_RE = re.compile(r"HTTP/([0-9]+)(?:\.([0-9]+))?")
# Header names the handshake sets itself; ``client_request``'s extra headers may not.
_RESERVED_REQUEST_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for ``key``.

    RFC 6455 §4.2.2 step 5.4: base64 of the SHA-1 of the key (as sent, not decoded)
    concatenated with the GUID.
    """
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


@dataclass(frozen=True, slots=True)
class ServerHandshake:
    """The outcome of a valid upgrade request: what the 101 carries and what was agreed."""

    key: str
    #: The 101's headers: Upgrade, Connection, Sec-WebSocket-Accept, and -Protocol and
    #: -Extensions when something was negotiated.
    headers: list[tuple[str, str]]
    subprotocol: str | None
    extensions: list[Extension]


# -- helpers shared by both roles -----------------------------------------------------------


def _list_elements(value: str) -> list[str]:
    """The elements of an RFC 7230 §7 comma-separated list; empty elements are skipped."""
    return [element for element in (part.strip(" \t") for part in value.split(",")) if element]


def _has_token(value: str, token: str) -> bool:
    """Whether the comma-separated ``value`` lists ``token``, compared ASCII case-insensitively."""
    if value.lower() == token:
        return True  # the usual one-element list, once per handshake: no split
    return any(element.lower() == token for element in _list_elements(value))


def _key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid Sec-WebSocket-Key, or ``None`` when it is.

    RFC 6455 §4.1 step 7 / §4.2.1 item 5: the value is a base64-encoded 16-byte nonce.
    Decoding is strict: only the base64 alphabet, correct padding, and the canonical
    encoding (no stray bits in the last character).
    """
    if _CANONICAL_KEY_RE.fullmatch(key):
        return None
    if "," in key:
        return "Sec-WebSocket-Key appears more than once"
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError) as exc:
        return f"Sec-WebSocket-Key {key!r} is not valid base64 ({exc})"
    if len(raw) != _KEY_BYTES:
        return f"Sec-WebSocket-Key must decode to {_KEY_BYTES} bytes, got {len(raw)}"
    if base64.b64encode(raw).decode("ascii") != key:
        return f"Sec-WebSocket-Key {key!r} is not in canonical base64 form"
    return None


# -- server side ----------------------------------------------------------------------------


def _environ_header(environ: Mapping[str, Any], cgi_name: str) -> str | None:
    """A request header from the environ, without surrounding whitespace; None if absent."""
    value = environ.get(cgi_name)
    if type(value) is str:
        return value.strip(" \t")
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")  # PEP 3333: header values are latin-1
    return str(value).strip(" \t")


def is_websocket_request(environ: Mapping[str, Any]) -> bool:
    """Whether this request tries to upgrade to WebSocket (its Upgrade lists ``websocket``).

    A request that does not is none of our business: the middleware passes it on. One that
    does is answered by ``server_handshake``, with an error if it gets the details wrong.
    """
    upgrade = _environ_header(environ, "HTTP_UPGRADE")
    return upgrade is not None and _has_token(upgrade, "websocket")


def server_handshake(
    environ: Mapping[str, Any],
    subprotocols: Sequence[str] = (),
    extensions: Sequence[ServerExtensionFactory] = (),
) -> ServerHandshake:
    """Validate an upgrade request (RFC 6455 §4.2.1) and build the 101's headers (§4.2.2).

    ``subprotocols`` are those this server speaks; the first of the client's offers found
    among them is chosen (the client's list is in preference order, RFC 6455 §1.3), and no
    common subprotocol means no ``Sec-WebSocket-Protocol`` in the response, not an error.
    ``extensions`` are offered the client's ``Sec-WebSocket-Extensions`` in this order.
    Raises ``HandshakeError`` (or ``VersionMismatch``) carrying the HTTP answer.
    """
    return ServerHandshake(*accept_upgrade(environ, subprotocols, extensions))


def accept_upgrade(
    environ: Mapping[str, Any],
    subprotocols: Sequence[str] = (),
    extensions: Sequence[ServerExtensionFactory] = (),
) -> tuple[str, list[tuple[str, str]], str | None, list[Extension]]:
    """``server_handshake``'s fields as a tuple: the key, the 101's headers, the
    subprotocol and the extensions (for the middleware, once per connection)."""
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols is a sequence of names, not one string")
    # RFC 6455 §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    method = environ.get("REQUEST_METHOD", "")
    if method != "GET":
        raise HandshakeError(
            f"a WebSocket upgrade must use GET, not {method or 'no method'}",
            status=405,
            headers=[("Allow", "GET")],
        )
    protocol = _environ_header(environ, "SERVER_PROTOCOL") or ""
    if protocol != "HTTP/1.1":
        match = _HTTP_VERSION_RE.fullmatch(protocol)
        if match is None:
            raise HandshakeError(f"unrecognised HTTP version {protocol!r}; HTTP/1.1 is required")
        if (int(match.group(1)), int(match.group(2) or 0)) < (1, 1):
            raise HandshakeError(f"a WebSocket upgrade needs HTTP/1.1 or later, got {protocol}")

    # RFC 6455 §4.2.1 item 2, and RFC 7230 §5.4: exactly one valid Host header.
    host = _environ_header(environ, "HTTP_HOST")
    if not host:
        raise HandshakeError("missing Host header" if host is None else "Host header is empty")
    if "," in host:
        raise HandshakeError("Host header appears more than once")
    if not _HOST_RE.fullmatch(host):
        raise HandshakeError(f"Host header {host!r} is not a valid host[:port]")

    # RFC 6455 §4.2.1 item 3: Upgrade lists "websocket", ASCII case-insensitively. A request
    # without it is not asking for WebSocket: 426 Upgrade Required names the protocol to use
    # (RFC 7231 §6.5.15).
    upgrade = _environ_header(environ, "HTTP_UPGRADE")
    if upgrade is None or not _has_token(upgrade, "websocket"):
        shown = "missing Upgrade header" if upgrade is None else f"Upgrade is {upgrade!r}"
        raise HandshakeError(
            f"{shown}; a WebSocket request needs 'Upgrade: websocket'",
            status=426,
            headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")],
        )
    # RFC 6455 §4.2.1 item 4: Connection includes the "Upgrade" token, case-insensitively.
    connection = _environ_header(environ, "HTTP_CONNECTION")
    if connection is None:
        raise HandshakeError("missing Connection header; it must include the 'Upgrade' token")
    if not _has_token(connection, "upgrade"):
        raise HandshakeError(f"Connection is {connection!r}; it must include the 'Upgrade' token")

    # RFC 6455 §4.2.1 item 6, §4.2.2: a version other than 13 gets 426 and the version we
    # speak. Checked before the key so that clients of older drafts (which sent other key
    # headers) are told what to speak rather than what they got wrong.
    version = _environ_header(environ, "HTTP_SEC_WEBSOCKET_VERSION")
    if version is None:
        raise VersionMismatch("missing Sec-WebSocket-Version header; this server speaks 13")
    if "," in version:
        raise HandshakeError("Sec-WebSocket-Version appears more than once")
    if version != VERSION:
        raise VersionMismatch(f"Sec-WebSocket-Version must be 13, got {version!r}")

    # RFC 6455 §4.2.1 item 5: Sec-WebSocket-Key, once, a base64-encoded 16-byte value.
    key = _environ_header(environ, "HTTP_SEC_WEBSOCKET_KEY")
    if key is None:
        raise HandshakeError("missing Sec-WebSocket-Key header")
    problem = _key_problem(key)
    if problem is not None:
        raise HandshakeError(problem)

    # RFC 6455 §4.2.1 item 8 and §4.2.2 step 5.4: the 101 proves we read this handshake.
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    subprotocol = None
    offered_subprotocols = _environ_header(environ, "HTTP_SEC_WEBSOCKET_PROTOCOL")
    if offered_subprotocols is not None:
        subprotocol = _choose_subprotocol(offered_subprotocols, subprotocols)
        if subprotocol is not None:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))

    # RFC 6455 §4.2.1 item 9, §9.1: the server answers the offers it accepts, in one header.
    offered = _environ_header(environ, "HTTP_SEC_WEBSOCKET_EXTENSIONS")
    negotiated: list[Extension] = []
    if offered is not None:
        # Parsed even when this server supports no extension: a malformed header is a 400.
        response, negotiated = negotiate_server(extensions, [offered])
        if response is not None:
            headers.append(("Sec-WebSocket-Extensions", response))

    return key, headers, subprotocol, negotiated


def _choose_subprotocol(offered: str, supported: Sequence[str]) -> str | None:
    """The first of the client's offered subprotocols that this server speaks, if any.

    RFC 6455 §4.1: ``Sec-WebSocket-Protocol = 1#token``; §11.3.4: the elements are unique.
    """
    offers = _list_elements(offered)
    if not offers:
        raise HandshakeError("Sec-WebSocket-Protocol is empty; it must list at least one token")
    seen: set[str] = set()
    for offer in offers:
        if not _TOKEN_RE.fullmatch(offer):
            raise HandshakeError(f"Sec-WebSocket-Protocol offers {offer!r}, which is not a token")
        if offer in seen:
            raise HandshakeError(f"Sec-WebSocket-Protocol offers {offer!r} more than once")
        seen.add(offer)
    # The protocol names are compared exactly: RFC 6455 §11.5 registers them as given.
    for offer in offers:
        if offer in supported:
            return offer
    return None


# -- client side ----------------------------------------------------------------------------


def client_request(
    host: str,
    path: str = "/",
    subprotocols: Sequence[str] = (),
    extensions: Sequence[ClientExtensionFactory] = (),
    headers: Sequence[tuple[str, str]] = (),
    key: str | None = None,
) -> tuple[str, list[tuple[str, str]]]:
    """The headers of the client's upgrade request, and the key they carry (RFC 6455 §4.1).

    ``host`` is the Host header value (``host[:port]``); ``path`` is the resource name the
    caller sends on the request line, checked here (RFC 6455 §3: absolute path and query,
    no fragment). ``key`` defaults to a fresh random nonce; pass one only to reproduce a
    known exchange. ``headers`` are sent after the handshake's own, which they may not
    replace. Raises ``ValueError`` for an invalid argument.
    """
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols is a sequence of names, not one string")
    if not _HOST_RE.fullmatch(host):
        raise ValueError(f"{host!r} is not a valid Host header value (host[:port])")
    # RFC 6455 §3: the resource name is "/" or an absolute path, plus an optional query;
    # "Fragment identifiers are meaningless in the context of WebSocket URIs".
    if not _RESOURCE_RE.fullmatch(path):
        raise ValueError(f"{path!r} is not a resource name: '/' then path and query, no '#'")
    if key is None:
        # RFC 6455 §4.1 step 7: "a randomly selected 16-byte value", new for each connection.
        key = base64.b64encode(os.urandom(_KEY_BYTES)).decode("ascii")
    else:
        problem = _key_problem(key)
        if problem is not None:
            raise ValueError(problem)
    seen: set[str] = set()
    for subprotocol in subprotocols:
        if not _TOKEN_RE.fullmatch(subprotocol):
            raise ValueError(f"subprotocol {subprotocol!r} is not a token (RFC 6455 §4.1)")
        if subprotocol in seen:
            raise ValueError(f"subprotocol {subprotocol!r} is listed twice (RFC 6455 §11.3.4)")
        seen.add(subprotocol)

    request = [
        ("Host", host),  # RFC 6455 §4.1 step 4
        ("Upgrade", "websocket"),  # step 5
        ("Connection", "Upgrade"),  # step 6
        ("Sec-WebSocket-Key", key),  # step 7
        ("Sec-WebSocket-Version", VERSION),  # step 9
    ]
    if subprotocols:
        request.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))  # step 10
    if extensions:
        offers = [(factory.name, factory.offer()) for factory in extensions]
        request.append(("Sec-WebSocket-Extensions", serialize_extensions_header(offers)))  # 11
    for name, value in headers:
        if not _TOKEN_RE.fullmatch(name):
            raise ValueError(f"header name {name!r} is not a token")
        if name.lower() in _RESERVED_REQUEST_HEADERS:
            raise ValueError(f"header {name!r} is set by the handshake; use the parameters")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"the value of header {name!r} contains CR, LF or NUL")
        request.append((name, value))  # step 12: other headers, e.g. Origin or cookies
    return key, request


def validate_response(
    status: int,
    headers: Sequence[tuple[str, str]],
    key: str,
    subprotocols: Sequence[str] = (),
    extensions: Sequence[ClientExtensionFactory] = (),
) -> tuple[str | None, list[Extension]]:
    """Check the server's answer to our request (RFC 6455 §4.1, the client's last steps).

    ``key``, ``subprotocols`` and ``extensions`` are what the request offered. Returns the
    subprotocol the server chose (``None`` if none) and the negotiated extensions, in
    order. Raises ``HandshakeError`` when the client must fail the connection.
    """
    # "If the status code received from the server is not 101, the client handles the
    # response per HTTP procedures": for a WebSocket client, the handshake failed.
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols is a sequence of names, not one string")
    if status != 101:
        raise HandshakeError(f"expected status 101 Switching Protocols, got {status}")
    received: dict[str, list[str]] = {}
    for name, value in headers:
        received.setdefault(name.lower(), []).append(value.strip(" \t"))

    # "If the response lacks an |Upgrade| header field or the |Upgrade| header field
    # contains a value that is not an ASCII case-insensitive match for the value
    # 'websocket', the client MUST _Fail the WebSocket Connection_."
    upgrade = received.get("upgrade")
    if upgrade is None:
        raise HandshakeError("the response has no Upgrade header")
    if len(upgrade) != 1 or upgrade[0].lower() != "websocket":
        raise HandshakeError(f"the response's Upgrade is {', '.join(upgrade)!r}, not 'websocket'")
    # "... lacks a |Connection| header field or the |Connection| header field doesn't
    # contain a token that is an ASCII case-insensitive match for the value 'Upgrade'".
    connection = received.get("connection")
    if connection is None:
        raise HandshakeError("the response has no Connection header")
    if not any(_has_token(value, "upgrade") for value in connection):
        raise HandshakeError(
            f"the response's Connection is {', '.join(connection)!r}; it lacks 'Upgrade'"
        )
    # "... lacks a |Sec-WebSocket-Accept| header field or the |Sec-WebSocket-Accept|
    # contains a value other than the base64-encoded SHA-1 of the concatenation of the
    # |Sec-WebSocket-Key| (as a string, not base64-decoded) with the string
    # '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'".
    accept = received.get("sec-websocket-accept")
    if accept is None:
        raise HandshakeError("the response has no Sec-WebSocket-Accept header")
    if len(accept) != 1:
        raise HandshakeError("the response has more than one Sec-WebSocket-Accept header")
    expected = accept_key(key)
    if accept[0] != expected:
        raise HandshakeError(
            f"Sec-WebSocket-Accept is {accept[0]!r}, expected {expected!r} for our key"
        )

    # "If the response includes a |Sec-WebSocket-Extensions| header field and this header
    # field indicates the use of an extension that was not present in the client's
    # handshake ... the client MUST _Fail the WebSocket Connection_."
    negotiated = negotiate_client(extensions, received.get("sec-websocket-extensions", []))
    claimed = 0
    for extension in negotiated:
        if extension.rsv_mask & claimed:
            raise HandshakeError(
                f"the server accepted extension {extension.name!r}, whose RSV bits are "
                "already used by another accepted extension"
            )
        claimed |= extension.rsv_mask

    # "If the response includes a |Sec-WebSocket-Protocol| header field and this header
    # field indicates the use of a subprotocol that was not present in the client's
    # handshake ... the client MUST _Fail the WebSocket Connection_." §4.2.2: one value.
    chosen = received.get("sec-websocket-protocol")
    subprotocol: str | None = None
    if chosen is not None:
        if len(chosen) != 1 or "," in chosen[0]:
            raise HandshakeError(
                f"the server selected more than one subprotocol: {', '.join(chosen)!r}"
            )
        subprotocol = chosen[0]
        if not subprotocol:
            raise HandshakeError("the response's Sec-WebSocket-Protocol is empty")
        if subprotocol not in subprotocols:
            raise HandshakeError(
                f"the server selected subprotocol {subprotocol!r}, which was not offered"
            )
    return subprotocol, negotiated
