"""Known agents: implementations the harness can start by name (``--agent websockets``).

Each agent is a server command template with ``{python}`` (this interpreter), ``{testees}``
(the shipped ``conformance/testees`` folder), ``{host}`` and ``{port}`` filled in. Peers are
echo servers over other WebSocket libraries, each configured the same way (compression on where
the library has it, messages of at least 16 MiB allowed) so a comparison measures the
libraries, not their settings. Whether a peer can run here is whether its library imports, or
for a peer outside Python (Node's ``ws``), whether its probe command succeeds.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


def _testees() -> Path:
    """``wsconform/testees`` when installed; ``conformance/testees`` in a source checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "testees"
    return installed if installed.is_dir() else here.parent / "testees"


TESTEES = _testees()


@dataclass(frozen=True)
class Agent:
    """One implementation under test: how to start it and what it needs installed."""

    name: str
    template: str
    requires: str | None  # the module that must import, None for the reference or a probe
    notes: str = ""
    probe: str = ""  # outside Python: a command that exits 0 when the agent can run here
    install: str = ""  # what it needs and how to get it, when the probe fails

    def command(self, python: str | None = None) -> str:
        """The ``--server-cmd`` template for this agent (``{host}``/``{port}`` still open)."""
        return _fill(self.template, python)

    def available(self) -> bool:
        """True when the library this agent runs on can be imported (or probed) here."""
        if self.probe:
            try:
                done = subprocess.run(
                    shlex.split(_fill(self.probe)), capture_output=True, timeout=30
                )
            except (OSError, subprocess.TimeoutExpired):
                return False
            return done.returncode == 0
        if self.requires is None:
            return True
        try:
            return importlib.util.find_spec(self.requires) is not None
        except (ImportError, ValueError):
            return False


def _fill(template: str, python: str | None = None) -> str:
    return template.replace("{python}", shlex.quote(python or sys.executable)).replace(
        "{testees}", shlex.quote(str(TESTEES))
    )


def _peer(name: str, module: str, notes: str) -> Agent:
    return Agent(name, "{python} {testees}/" + f"{name}_echo.py {{port}} {{host}}", module, notes)


AGENTS: dict[str, Agent] = {
    agent.name: agent
    for agent in (
        Agent(
            "reference",
            "{python} -m rfc6455 serve --host {host} --port {port}",
            None,
            "rfc6455, this project's server",
        ),
        _peer("websockets", "websockets", "websockets asyncio server, compression on"),
        _peer("aiohttp", "aiohttp", "aiohttp web server, compress=True"),
        _peer("tornado", "tornado", "tornado WebSocketHandler, compression on"),
        _peer("wsproto", "wsproto", "wsproto in a small asyncio shell, permessage-deflate"),
        _peer("picows", "picows", "picows (frame level; no permessage-deflate in the library)"),
        Agent(
            "node-ws",
            "node {testees}/node_ws_echo.js {port} {host}",
            None,
            "Node's ws server, perMessageDeflate on",
            probe="node {testees}/node_ws_echo.js --check",
            install="needs Node.js and its ws package: npm ci --prefix impl/tests/node",
        ),
    )
}


class UnknownAgent(ValueError):
    """A name that is not in the registry; the message lists the known ones."""


def lookup(name: str) -> Agent:
    """The registered agent `name`; UnknownAgent (naming the known ones) otherwise."""
    try:
        return AGENTS[name]
    except KeyError:
        known = ", ".join(AGENTS)
        raise UnknownAgent(
            f"unknown agent {name!r} (known: {known}); "
            "or give NAME=CMD with a command containing {port}"
        ) from None


def resolve(spec: str) -> tuple[str, str]:
    """``NAME`` (registered) or ``NAME=CMD`` (any command with ``{port}``) -> (name, template)."""
    name, sep, command = spec.partition("=")
    name = name.strip()
    if sep:
        if "{port}" not in command:
            raise ValueError(f"the command of agent {name!r} must contain {{port}}: {command!r}")
        return name, command.strip()
    agent = lookup(name)
    if not agent.available():
        needs = (
            agent.install or f"needs the {agent.requires!r} package: pip install {agent.requires}"
        )
        raise ValueError(f"agent {name!r} {needs}")
    return name, agent.command()
