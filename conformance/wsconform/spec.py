"""An existing Autobahn ``fuzzingclient.json``, read as wstest reads it, for ``--spec``.

Invariants:
- Read, never rewritten: each ``servers[]`` entry is a testee already running at its ``url``
  (``agent``, ``options``, ``protocols``, ``origin`` honoured); ``cases`` and
  ``exclude-cases`` keep wstest's pattern semantics (`catalog`); ``exclude-agent-cases`` maps
  agent patterns to case patterns, both anchored at *both* ends (wstest compiles them as
  ``^...$``, unlike ``cases``: ``12.*.1`` there does not exclude 12.1.10), and applies to the
  servers whose agent matches.
- A server without ``agent`` is ``server-N`` (N its position, from 1): wstest would take the
  testee's Server header, which is not known before a case runs, and a run is named by it.
- A spec wstest would refuse or misread is a `SpecError` naming the file and the key.
- No I/O beyond reading the file.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from wsconform import access, catalog

__all__ = ["Spec", "SpecError", "SpecServer", "load"]

#: The ``servers[]`` keys wstest's fuzzingclient reads, and the one it reads we do not honour.
SERVER_KEYS = frozenset({"url", "agent", "options", "protocols", "origin"})
UNSUPPORTED_SERVER_KEYS = {"hostname": "TLS server name checking (hostname)"}
_AGENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class SpecError(ValueError):
    """The spec cannot be run as wstest would run it."""


@dataclass(frozen=True)
class SpecServer:
    """One testee of the spec: where it runs, its name, how to reach it, what it is spared."""

    url: str
    agent: str
    reach: access.Access
    #: Case ids ``exclude-agent-cases`` leaves out for this agent.
    excluded: tuple[str, ...]


@dataclass(frozen=True)
class Spec:
    """A fuzzingclient spec: the shared selection and each server."""

    path: Path
    cases: tuple[str, ...]
    exclude: tuple[str, ...]
    outdir: Path | None
    servers: tuple[SpecServer, ...]

    def exclude_for(self, server: SpecServer) -> list[str]:
        """``exclude-cases`` and the server's agent exclusions, as exclude patterns."""
        return [*self.exclude, *server.excluded]


def _fail(path: Path, message: str) -> SpecError:
    return SpecError(f"{path}: {message}")


def _strings(path: Path, value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"{key!r} must be a list of strings")
    return tuple(value)


def _anchored(pattern: str) -> re.Pattern[str]:
    """wstest's exclude-agent-cases translation: ``.`` literal, ``*`` any, both ends fixed."""
    try:
        return re.compile("^" + pattern.replace(".", r"\.").replace("*", ".*") + "$")
    except re.error as exc:
        raise SpecError(f"invalid pattern {pattern!r} in exclude-agent-cases: {exc}") from None


def _agent_exclusions(
    path: Path, body: Mapping[str, Any]
) -> list[tuple[re.Pattern[str], list[re.Pattern[str]]]]:
    table = body.get("exclude-agent-cases", {})
    if not isinstance(table, dict):
        raise _fail(path, "'exclude-agent-cases' must map agent patterns to case pattern lists")
    return [
        (_anchored(agent), [_anchored(p) for p in _strings(path, patterns, "exclude-agent-cases")])
        for agent, patterns in table.items()
    ]


def _server(
    path: Path,
    position: int,
    entry: Any,
    shared_options: Mapping[str, Any],
    base: access.Access,
    exclusions: Sequence[tuple[re.Pattern[str], list[re.Pattern[str]]]],
) -> SpecServer:
    where = f"servers[{position - 1}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise _fail(path, f"{where} needs a 'url'")
    for key, what in UNSUPPORTED_SERVER_KEYS.items():
        if key in entry:
            raise _fail(path, f"{where}: {what} is not supported by wsconform --spec")
    agent = entry.get("agent", f"server-{position}")
    if not isinstance(agent, str) or not _AGENT.fullmatch(agent):
        raise _fail(path, f"{where}: agent {agent!r}: letters, digits and . _ + - only")
    options = entry.get("options", {})
    protocols = entry.get("protocols", [])
    origin = entry.get("origin")
    if not isinstance(options, dict):
        raise _fail(path, f"{where}: 'options' must be an object")
    if origin is not None and not isinstance(origin, str):
        raise _fail(path, f"{where}: 'origin' must be a string")
    reach = dataclasses.replace(
        base,
        subprotocols=_strings(path, protocols, f"{where}.protocols") or base.subprotocols,
        options=MappingProxyType({**shared_options, **options}),
        origin=origin,
    )
    excluded = tuple(
        case
        for case in catalog.ALL_CASES
        if any(a.match(agent) and any(p.match(case) for p in ps) for a, ps in exclusions)
    )
    return SpecServer(entry["url"], agent, reach, excluded)


def load(path: Path, base: access.Access = access.PLAIN) -> Spec:
    """Read the fuzzingclient spec at `path`; each server's access starts from `base` (the
    command line's TLS trust and headers). SpecError when it cannot be run."""
    try:
        body = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"cannot read the spec: {exc}") from exc
    if not isinstance(body, dict):
        raise _fail(path, "a fuzzingclient spec is a JSON object")
    servers = body.get("servers")
    if not isinstance(servers, list) or not servers:
        raise _fail(path, "'servers' must list at least one server (a fuzzingclient spec)")
    shared = body.get("options", {})
    if not isinstance(shared, dict):
        raise _fail(path, "'options' must be an object")
    exclusions = _agent_exclusions(path, body)
    outdir = body.get("outdir")
    if outdir is not None and not isinstance(outdir, str):
        raise _fail(path, "'outdir' must be a path")
    found = tuple(
        _server(path, n, entry, shared, base, exclusions) for n, entry in enumerate(servers, 1)
    )
    agents = [s.agent for s in found]
    if len(set(agents)) != len(agents):
        raise _fail(path, f"two servers share an agent name ({', '.join(agents)})")
    return Spec(
        path=path,
        cases=_strings(path, body.get("cases", ["*"]), "cases"),
        exclude=_strings(path, body.get("exclude-cases", []), "exclude-cases"),
        outdir=Path(outdir) if outdir is not None else None,
        servers=found,
    )
