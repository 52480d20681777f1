"""``Limits``: every bound the server puts on what a peer can make it hold or wait for, and
``refusal``, the rules that turn a request head over those bounds into an HTTP answer.

Invariants:
- One frozen value per server: ``Server(app, limits=Limits(...))``; the server hands it to
  each WebSocket session and, through ``environ["rfc6455.limits"]``, to the ``WebSocket``
  middleware. Change a field with ``dataclasses.replace(DEFAULT_LIMITS, field=value)``.
- Each default has a name and cites the precedent it follows. Together they bound what a
  hostile or broken peer costs: about ``max_message_size + max_read_buffer +
  write_buffer_size`` bytes per WebSocket, ``max_head_size + max_body_size`` per HTTP request,
  times ``max_connections``; and every wait on the peer ends (``handshake_timeout``,
  ``ping_interval`` + ``ping_timeout``, ``closing_timeout``).
- ``None`` means "no bound" where a field allows it; sizes are bytes, times are seconds.
- ``refusal`` is pure: from a request head, what has been read and the server's capacity to
  a status and reason (or ``None``), before the body is read or the app is called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

__all__ = ["DEFAULT_LIMITS", "LIMITS_KEY", "MAX_MESSAGE_SIZE", "Limits", "refusal"]

# Named defaults, each with its precedent.

#: Request line plus headers. h11's ``max_incomplete_event_size`` defaults to 16 KiB, and
#: nginx's ``large_client_header_buffers`` (4 buffers of 8 KiB) allows about as much.
MAX_HEAD_SIZE = 16 * 1024
#: Header fields per request. Apache's ``LimitRequestFields`` and Python's
#: ``http.client._MAXHEADERS`` are both 100.
MAX_HEADER_COUNT = 100
#: One header field (name and value). nginx's ``large_client_header_buffers`` buffer size is
#: 8 KiB; Apache's ``LimitRequestFieldSize`` is 8190 bytes.
MAX_HEADER_FIELD_SIZE = 8 * 1024
#: Request body read before calling the WSGI app. nginx's ``client_max_body_size`` is 1 MiB.
MAX_BODY_SIZE = 2**20
#: Seconds a request (head and body) may take to arrive once the server waits for it; also
#: how long an idle keep-alive connection is kept. websockets' ``open_timeout`` is 10 s;
#: nginx's ``client_header_timeout`` is 60 s, which slowloris showed to be generous.
HANDSHAKE_TIMEOUT = 10.0
#: Connections served at once; more are answered 503. nginx's stock ``nginx.conf`` sets
#: ``worker_connections 1024``.
MAX_CONNECTIONS = 1024
#: Largest WebSocket message, after reassembly and decompression; more fails with 1009. The
#: one default of every connection (``Connection``, the server's sessions, the client), safe
#: for servers facing the internet: websockets' ``max_size`` is 1 MiB. The Autobahn echo
#: testee (``python -m rfc6455 serve``) raises it, as the fuzzer's 9.x cases send 16 MiB.
MAX_MESSAGE_SIZE = 2**20
#: Incoming bytes read ahead of a busy handler (one whose hook is suspended in an ``await``)
#: before the server stops reading the socket (TCP flow control then slows the peer).
#: websockets' legacy ``read_limit`` is 64 KiB and its ``max_queue`` holds 16 messages.
MAX_READ_BUFFER = 2**20
#: The write buffer's high-water mark: above it ``drain()`` blocks until it falls to a
#: quarter of it. asyncio's own default is 64 KiB; websockets' ``write_limit`` is 32 KiB.
WRITE_BUFFER_SIZE = 64 * 1024
#: Seconds a peer may leave our writes unread (the write buffer above its high-water mark)
#: before TCP is dropped: a client that never reads cannot hold a connection. nginx's
#: ``send_timeout`` is 60 s, likewise measured between two successive writes.
SEND_TIMEOUT = 60.0
#: Seconds the peer has to finish the closing handshake before TCP is dropped. websockets'
#: ``close_timeout`` is 10 s; Autobahn's fuzzer waits up to 5 s for a close.
CLOSING_TIMEOUT = 5.0
#: Seconds between keepalive Pings, and how long the Pong may take before the connection is
#: closed with 1011. websockets' ``ping_interval`` and ``ping_timeout`` are both 20 s.
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds a ``Server`` enforces; see the module constants for each default's origin.

    HTTP, before the upgrade: ``max_head_size`` (431 beyond it), ``max_header_count`` and
    ``max_header_field_size`` (431), ``max_body_size`` (413), ``handshake_timeout`` (408, or
    a silent close of an idle keep-alive connection), ``max_connections`` (503).
    WebSocket: ``max_message_size`` (1009), ``max_frame_size`` (1009; ``None``: bounded by
    ``max_message_size`` alone), ``max_read_buffer`` (reading pauses), ``write_buffer_size``
    (``drain()`` blocks), ``send_timeout`` (a peer that leaves a full write buffer unread
    that long is dropped; HTTP too), ``closing_timeout`` (TCP dropped), ``ping_interval`` /
    ``ping_timeout`` (keepalive; ``None`` turns it off; no Pong in time: 1011).
    """

    max_head_size: int = MAX_HEAD_SIZE
    max_header_count: int = MAX_HEADER_COUNT
    max_header_field_size: int = MAX_HEADER_FIELD_SIZE
    max_body_size: int = MAX_BODY_SIZE
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT
    max_connections: int | None = MAX_CONNECTIONS
    max_message_size: int | None = MAX_MESSAGE_SIZE
    max_frame_size: int | None = None
    max_read_buffer: int = MAX_READ_BUFFER
    write_buffer_size: int = WRITE_BUFFER_SIZE
    send_timeout: float | None = SEND_TIMEOUT
    closing_timeout: float = CLOSING_TIMEOUT
    ping_interval: float | None = PING_INTERVAL
    ping_timeout: float | None = PING_TIMEOUT

    def __post_init__(self) -> None:
        # A limit of 0 or less would refuse everything: a misconfiguration, caught early.
        for field in fields(self):
            value = getattr(self, field.name)
            kind = str(field.type)
            if value is None:
                if "None" not in kind:
                    raise TypeError(f"Limits.{field.name} may not be None")
                continue
            whole = "float" not in kind
            if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
                expected = "a whole number" if whole else "a number"
                raise TypeError(f"Limits.{field.name} must be {expected}, got {value!r}")
            if value <= 0:
                raise ValueError(f"Limits.{field.name} must be positive, got {value!r}")


#: The limits of a ``Server`` built without ``limits=``.
DEFAULT_LIMITS = Limits()

#: Where the server puts its ``Limits`` in each request's WSGI environ, for the middleware.
LIMITS_KEY = "rfc6455.limits"


# -- refusing a request before its body is read -------------------------------------------------


def refusal(
    limits: Limits,
    method: bytes,
    target: bytes,
    items: Sequence[tuple[bytes, bytes]],
    received: int,
    *,
    over_capacity: bool = False,
) -> tuple[int, str] | None:
    """The status and reason to refuse a request with before reading its body, if any.

    ``items`` are its header fields as received, ``received`` the bytes read so far for it,
    ``over_capacity`` whether its connection is beyond ``max_connections``.
    """
    if over_capacity:
        # RFC 7231 §6.6.4: 503, "temporarily overloaded"; Retry-After says when to retry.
        return 503, f"server at capacity ({limits.max_connections} connections); retry later"
    problem = _target_problem(method, target)
    if problem is not None:
        return 400, problem
    # RFC 6585 §5: 431 when "one or more of its header fields are too large". h11 only
    # bounds a head still arriving; one that came in a single read is measured here.
    if (
        received <= min(limits.max_head_size, limits.max_header_field_size)
        and len(items) <= limits.max_header_count
    ):
        # Fewer bytes arrived than either size limit: neither can be exceeded.
        return _body_refusal(limits, items)
    head_size = len(method) + len(target) + 12  # "M T HTTP/1.1\r\n"
    head_size += sum(len(name) + len(value) + 4 for name, value in items)  # "N: V\r\n"
    if head_size > limits.max_head_size:
        return 431, f"request head too large: {head_size} bytes (at most {limits.max_head_size})"
    if len(items) > limits.max_header_count:
        return 431, f"too many header fields: {len(items)} (at most {limits.max_header_count})"
    for name, value in items:
        if len(name) + len(value) > limits.max_header_field_size:
            shown = name.decode("latin-1")[:64]
            return 431, (
                f"header field {shown!r} is too large: {len(name) + len(value)} bytes "
                f"(at most {limits.max_header_field_size})"
            )
    return _body_refusal(limits, items)


def _body_refusal(limits: Limits, items: Iterable[tuple[bytes, bytes]]) -> tuple[int, str] | None:
    """413 when the announced body is over ``max_body_size`` (RFC 7231 §6.5.11)."""
    length = _header_value(items, b"content-length")
    if length is not None and length.isdigit() and int(length) > limits.max_body_size:
        return 413, f"request body too large (at most {limits.max_body_size} bytes)"
    return None


# RFC 7230 §5.3.2: absolute-form starts with a scheme (RFC 3986 §3.1) and "://".
_ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://")


def _target_problem(method: bytes, target: bytes) -> str | None:
    """Why ``target`` is not a request-target for ``method`` (RFC 7230 §5.3), or ``None``."""
    if b"#" not in target and target.startswith(b"/"):
        return None  # origin-form, the usual one
    shown = target.decode("latin-1")[:200]
    if b"#" in target:
        # RFC 7230 §5.1: the request-target carries no fragment (RFC 6455 §3: nor does a
        # WebSocket URI).
        return f"request target {shown!r} has a fragment ('#'), which is not allowed"
    if target.startswith(b"/") or _ABSOLUTE_FORM.match(target):
        return None  # origin-form or absolute-form
    if target == b"*" and method == b"OPTIONS":
        return None  # RFC 7230 §5.3.4: asterisk-form, for a server-wide OPTIONS only
    if method == b"CONNECT":
        return None  # RFC 7230 §5.3.3: authority-form, for CONNECT only
    return (
        f"request target {shown!r} is not a path starting with '/' or an absolute URI "
        "(RFC 7230 §5.3)"
    )


def _header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of the first field called ``name`` (lower case), in any case on the wire."""
    size = len(name)
    for key, value in headers:
        if len(key) == size and key.lower() == name:
            return value.decode("latin-1")
    return None
