"""How an engine reaches a testee beyond its URL: TLS trust, request headers, subprotocols,
and the fuzzer options an Autobahn spec gives a server.

Invariants:
- One immutable value per testee (`Access`), made by the CLI (``--ca-file``, ``--insecure``,
  ``--header``, ``--subprotocol``) or by a spec file (`wsconform.spec`); every engine gets the
  same value and either honours all of it or refuses it up front (`native_refusal`,
  `autobahn_refusal`: a usage error, never a silently different run).
- The native engine verifies a ``wss://`` testee's certificate (the system's trust store, or
  ``ca_file``) unless ``insecure``; the fuzzer never verifies one (its client uses Twisted's
  non-verifying context), so it cannot take a CA file.
- Imports nothing from wsconform: the native engine reads it too.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "PLAIN",
    "Access",
    "autobahn_refusal",
    "cli_arguments",
    "fuzzer_server",
    "native_refusal",
    "parse_header",
    "subprotocols",
    "tls_context",
]

#: The fuzzer options (a spec's server ``options``) the native engine behaves as, with the
#: values it behaves as: Autobahn's client defaults as the fuzzer sets them (RFC 6455, the
#: final draft "18"; no fail-by-drop).
NATIVE_OPTIONS: Mapping[str, object] = MappingProxyType({"version": 18, "failByDrop": False})

#: Request headers the engines write themselves: a --header may not replace them.
OWN_HEADERS = frozenset(
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


@dataclass(frozen=True, kw_only=True)
class Access:
    """What a client needs to reach one testee, besides its URL."""

    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    ca_file: Path | None = None
    insecure: bool = False
    #: Autobahn protocol options from a spec (its global ``options``, then the server's).
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: A spec server's ``origin`` (sent as the Origin header).
    origin: str | None = None

    def request_headers(self) -> tuple[tuple[str, str], ...]:
        """The extra lines of the upgrade request, in order (Origin first, as the fuzzer's)."""
        origin = (("Origin", self.origin),) if self.origin is not None else ()
        return origin + self.headers


PLAIN = Access()


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` -> ``("Name", "value")``; ValueError for anything a request line
    cannot carry or a header the engine writes itself."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    token = name and all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name)
    if not colon or not token:
        raise ValueError(f"expected 'Name: value', not {text!r}")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"a header value cannot hold line breaks: {text!r}")
    if name.lower() in OWN_HEADERS:
        raise ValueError(
            f"{name} is written by the engine itself (use --subprotocol for protocols)"
        )
    return name, value


def tls_context(url: str, access: Access) -> ssl.SSLContext | None:
    """The client TLS context for a ``wss://`` URL (None for ``ws://``)."""
    if urlsplit(url).scheme != "wss":
        return None
    context = ssl.create_default_context(
        cafile=str(access.ca_file) if access.ca_file is not None else None
    )
    if access.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _scheme_refusal(url: str, access: Access) -> str | None:
    """A URL that is not ws:// or wss:// (none given: the one a started testee gets, ws://)."""
    if url and urlsplit(url).scheme not in ("ws", "wss"):
        return f"not a ws:// or wss:// URL: {url!r}"
    return None


def native_refusal(url: str, access: Access) -> str | None:
    """Why the native engine cannot honour `access` for `url`, or None."""
    if (refusal := _scheme_refusal(url, access)) is not None:
        return refusal
    foreign = {k: v for k, v in access.options.items() if NATIVE_OPTIONS.get(k, ...) != v}
    if foreign:
        shown = ", ".join(f"{k}={v!r}" for k, v in foreign.items())
        return (
            f"the native engine does not apply the fuzzer option(s) {shown}: it behaves as "
            "Autobahn with " + ", ".join(f"{k}={v!r}" for k, v in NATIVE_OPTIONS.items())
        )
    return None


def autobahn_refusal(url: str, access: Access) -> str | None:
    """Why the fuzzer cannot honour `access` for `url`, or None."""
    if (refusal := _scheme_refusal(url, access)) is not None:
        return refusal
    host = urlsplit(url).hostname if url else None
    if host is not None and ":" in host:
        return (
            "the autobahn engine cannot test an IPv6 literal URL: the fuzzer writes its Host "
            f"header without brackets (Host: {host}:PORT), which servers refuse; use the "
            "native engine, or a host name"
        )
    if access.headers:
        return (
            "the autobahn engine cannot send extra request headers (the fuzzer's spec has no "
            "place for them); use the native engine"
        )
    if access.ca_file is not None:
        return (
            "the autobahn engine cannot take a CA file (the fuzzer does not verify the "
            "testee's certificate); pass --insecure, or use the native engine"
        )
    return None


def fuzzer_server(url: str, agent: str, access: Access, version: int) -> dict[str, Any]:
    """One ``servers[]`` entry of the fuzzer's spec for this testee."""
    server: dict[str, Any] = {
        "url": url,
        "agent": agent,
        "options": {"version": version, **access.options},
    }
    if access.subprotocols:
        server["protocols"] = list(access.subprotocols)
    if access.origin is not None:
        server["origin"] = access.origin
    return server


def cli_arguments(access: Access) -> list[str]:
    """The command-line options that give a child run (``--jobs``) the same access; a spec's
    fuzzer options travel only through its spec file, so they are refused here."""
    if access.options or access.origin is not None:
        raise ValueError("a spec's server options cannot be split across --jobs")
    words: list[str] = []
    for name, value in access.headers:
        words += ["--header", f"{name}: {value}"]
    for protocol in access.subprotocols:
        words += ["--subprotocol", protocol]
    if access.ca_file is not None:
        words += ["--ca-file", str(access.ca_file)]
    return words + (["--insecure"] if access.insecure else [])


def subprotocols(values: Sequence[str]) -> tuple[str, ...]:
    """Subprotocol names, checked: each a token (RFC 6455 §4.1, Sec-WebSocket-Protocol)."""
    for value in values:
        if not value or any(c.isspace() or c in ',;"' for c in value):
            raise ValueError(f"not a valid subprotocol name: {value!r}")
    return tuple(values)
