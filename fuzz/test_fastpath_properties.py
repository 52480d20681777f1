"""Differential properties: the upgrade fast path (httptools) never accepts what h11 refuses.

``rfc6455.fastpath.parse_upgrade_request`` may decline any request (h11 then handles it),
but a request it accepts must be one h11 accepts too, read the same way: same method,
target, version and header fields, and the same end of the head (what follows is the
WebSocket stream). Requests are built from the grammar of an upgrade request and then
mutated byte by byte (spaces, control characters, obs-fold, missing or doubled fields,
bodies announced), so that both the accepted and the declined sides are exercised.
"""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfc6455 import fastpath

pytestmark = pytest.mark.skipif(not fastpath.AVAILABLE, reason="httptools is not installed")

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

names = st.one_of(
    st.sampled_from(
        [
            "Host",
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Version",
            "Origin",
            "Content-Length",
            "Transfer-Encoding",
            "Sec_WebSocket_Key",
        ]
    ),
    st.text(TOKEN_CHARS, min_size=1, max_size=12),
)
values = st.one_of(
    st.sampled_from(["websocket", "Upgrade", "keep-alive, Upgrade", "13", "0", "chunked", ""]),
    st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=20),
)


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    """A request head, mostly a valid upgrade request, with random liberties taken."""
    method = draw(st.sampled_from(["GET", "GET", "GET", "POST", "get", "GET "]))
    target = draw(st.sampled_from(["/", "/chat?x=1", "*", "/a b", "http://h/x", "/%41"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 "]))
    fields = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    fields = draw(st.permutations(fields))
    fields = fields[: draw(st.integers(min_value=len(fields) - 2, max_value=len(fields)))]
    fields += draw(st.lists(st.tuples(names, values), max_size=3))
    separator = draw(st.sampled_from([": ", ":", ": ", " : ", ":\t", ": "]))
    lines = [f"{method} {target} {version}"] + [f"{n}{separator}{v}" for n, v in fields]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        position = draw(st.integers(min_value=0, max_value=len(head)))
        byte = draw(st.sampled_from([b" ", b"\t", b"\r", b"\n", b"\x00", b"\x7f", b":", b"\xe9"]))
        head = head[:position] + byte + head[position:]
    return head


def h11_parse(data: bytes) -> tuple[h11.Request, int] | None:
    """h11's reading of ``data``: the request and where its head ends, or None if refused."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    try:
        request = connection.next_event()
        end = connection.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(request, h11.Request) or not isinstance(end, h11.EndOfMessage):
        return None
    trailing, _ = connection.trailing_data
    return request, len(data) - len(trailing)


@settings(max_examples=1500)
@given(request_heads(), st.binary(max_size=8))
def test_what_the_fast_path_accepts_h11_accepts_alike(head: bytes, after: bytes) -> None:
    data = head + after
    fast = fastpath.parse_upgrade_request(data)
    if fast is None:
        return
    parsed = h11_parse(data)
    assert parsed is not None, f"the fast path accepted what h11 refuses: {data!r}"
    request, head_end = parsed
    assert fast.method == request.method
    assert fast.target == request.target
    assert fast.http_version == request.http_version
    assert [(n.lower(), v) for n, v in fast.raw_items()] == list(request.headers)
    assert fast.head_end == head_end


def test_a_plain_upgrade_request_takes_the_fast_path() -> None:
    # The property above would hold vacuously if the fast path declined everything.
    head = (
        b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    fast = fastpath.parse_upgrade_request(head + b"\x81\x80")
    assert fast is not None
    assert (fast.method, fast.target, fast.http_version) == (b"GET", b"/chat", b"1.1")
    assert fast.head_end == len(head)


@pytest.mark.parametrize(
    "head",
    [
        b"GET  / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Content-Length: 3\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    ],
    ids=["double-space", "no-host", "two-hosts", "body", "no-upgrade", "post", "incomplete"],
)
def test_anything_unusual_is_left_to_h11(head: bytes) -> None:
    assert fastpath.parse_upgrade_request(head) is None
