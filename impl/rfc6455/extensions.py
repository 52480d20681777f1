"""WebSocket extensions: the interface, and ``Sec-WebSocket-Extensions`` negotiation.

Invariants:
- Negotiation is data in, data out: offers are parsed from header values, factories decide,
  and the chosen ``Extension`` objects are handed to the connection. No I/O.
- An ``Extension`` sees data frames only (RFC 7692 §6.1: control frames are never
  transformed), inbound in the reverse order of negotiation and outbound in order.
- A malformed header or an offer a factory cannot parse is a ``HandshakeError`` (400 for a
  request; the client fails the connection for a response).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

from .errors import HandshakeError
from .frame import Frame

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionParams",
    "ServerExtensionFactory",
    "negotiate_client",
    "negotiate_server",
    "parse_extensions_header",
    "serialize_extensions_header",
]

# One extension's parameters, in the order given; a parameter without "=" has the value None.
ExtensionParams = list[tuple[str, str | None]]


class Extension(ABC):
    """A negotiated extension, one instance per connection."""

    name: str
    #: The RSV bits this extension claims on data frames (0b100 = RSV1, 0b010 = RSV2, ...).
    rsv_mask: int = 0

    @abstractmethod
    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Transform one received data frame (text, binary or continuation).

        ``max_size`` is how many payload bytes the message in progress may still grow by;
        an extension that expands data (inflation) must stop and raise ``MessageTooBig``
        rather than produce more. Malformed extension data raises ``ProtocolError``.
        """

    @abstractmethod
    def encode(self, frame: Frame) -> Frame:
        """Transform one data frame about to be sent."""


class ServerExtensionFactory(ABC):
    """Decides, on the server, whether and how to accept a client's offers of one extension."""

    name: str

    @abstractmethod
    def accept(self, offers: Sequence[ExtensionParams]) -> tuple[ExtensionParams, Extension] | None:
        """Pick the first acceptable offer (RFC 7692 §5: offers are in preference order).

        Returns the parameters for the response and the extension, or ``None`` to decline
        every offer. Raises ``HandshakeError`` when an offer is malformed.
        """


class ClientExtensionFactory(ABC):
    """Offers one extension from the client, and checks the server's answer."""

    name: str

    @abstractmethod
    def offer(self) -> ExtensionParams:
        """Parameters of this client's offer."""

    @abstractmethod
    def accept_response(self, params: ExtensionParams) -> Extension:
        """The extension for the server's response; ``HandshakeError`` if it is invalid."""


# RFC 7230 §3.2.6 token characters, and RFC 6455 §9.1's grammar on top of them.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OWS = re.compile(r"[ \t]*")


def parse_extensions_header(values: Iterable[str]) -> list[tuple[str, ExtensionParams]]:
    """Parse ``Sec-WebSocket-Extensions`` header values into (name, params), in order.

    RFC 6455 §9.1: ``extension = token *( ";" param )``; ``param = token [ "=" (token |
    quoted-string) ]``, where a quoted value must itself be a token once unquoted.
    """
    parsed: list[tuple[str, ExtensionParams]] = []
    for value in values:
        pos = 0
        end = len(value)
        while pos < end:
            pos = _OWS.match(value, pos).end()  # type: ignore[union-attr]
            if pos < end and value[pos] == ",":  # empty list elements are allowed (RFC 7230 §7)
                pos += 1
                continue
            if pos >= end:
                break
            name, pos = _expect_token(value, pos, "an extension name")
            params: ExtensionParams = []
            while True:
                pos = _OWS.match(value, pos).end()  # type: ignore[union-attr]
                if pos >= end or value[pos] == ",":
                    pos += 1
                    break
                if value[pos] != ";":
                    raise HandshakeError(f"unexpected {value[pos]!r} in extension {name!r}")
                pos = _OWS.match(value, pos + 1).end()  # type: ignore[union-attr]
                param, pos = _expect_token(value, pos, f"a parameter name of {name!r}")
                pos = _OWS.match(value, pos).end()  # type: ignore[union-attr]
                param_value: str | None = None
                if pos < end and value[pos] == "=":
                    pos = _OWS.match(value, pos + 1).end()  # type: ignore[union-attr]
                    quoted = _QUOTED_RE.match(value, pos)
                    if quoted:
                        param_value = re.sub(r"\\(.)", r"\1", quoted.group(1))
                        if not _TOKEN_RE.fullmatch(param_value):
                            raise HandshakeError(
                                f"the quoted value of {param!r} is not a token (RFC 6455 §9.1)"
                            )
                        pos = quoted.end()
                    else:
                        param_value, pos = _expect_token(value, pos, f"a value for {param!r}")
                params.append((param, param_value))
            parsed.append((name, params))
    return parsed


def _expect_token(value: str, pos: int, what: str) -> tuple[str, int]:
    match = _TOKEN_RE.match(value, pos)
    if not match:
        raise HandshakeError(f"expected {what} at position {pos} of {value!r}")
    return match.group(0), match.end()


def serialize_extensions_header(extensions: Iterable[tuple[str, ExtensionParams]]) -> str:
    """The header value for a list of (name, params)."""
    parts = []
    for name, params in extensions:
        items = [name] + [key if val is None else f"{key}={val}" for key, val in params]
        parts.append("; ".join(items))
    return ", ".join(parts)


def negotiate_server(
    factories: Sequence[ServerExtensionFactory], header_values: Iterable[str]
) -> tuple[str | None, list[Extension]]:
    """Server side of extension negotiation.

    Each factory, in the server's order, sees the client's offers of its extension. Returns
    the ``Sec-WebSocket-Extensions`` response value (``None`` when nothing was accepted) and
    the extensions in negotiated order. Extensions nobody here knows are ignored (RFC 6455
    §9.1: the server picks what it supports).
    """
    offers = parse_extensions_header(header_values)
    accepted: list[tuple[str, ExtensionParams]] = []
    extensions: list[Extension] = []
    claimed_rsv = 0
    for factory in factories:
        mine = [params for name, params in offers if name.lower() == factory.name.lower()]
        if not mine:
            continue
        result = factory.accept(mine)
        if result is None:
            continue
        params, extension = result
        if extension.rsv_mask & claimed_rsv:
            continue  # two extensions cannot share an RSV bit; the first one keeps it
        claimed_rsv |= extension.rsv_mask
        accepted.append((factory.name, params))
        extensions.append(extension)
    header = serialize_extensions_header(accepted) if accepted else None
    return header, extensions


def negotiate_client(
    factories: Sequence[ClientExtensionFactory], header_values: Iterable[str]
) -> list[Extension]:
    """Client side: check the server's ``Sec-WebSocket-Extensions`` against what we offered.

    RFC 6455 §4.1: the client fails the connection if the server uses an extension that was
    not offered, or answers one offer twice.
    """
    by_name = {factory.name.lower(): factory for factory in factories}
    seen: set[str] = set()
    extensions: list[Extension] = []
    for name, params in parse_extensions_header(header_values):
        key = name.lower()
        if key not in by_name:
            raise HandshakeError(f"the server accepted extension {name!r}, which was not offered")
        if key in seen:
            raise HandshakeError(f"the server accepted extension {name!r} twice")
        seen.add(key)
        extensions.append(by_name[key].accept_response(params))
    return extensions
