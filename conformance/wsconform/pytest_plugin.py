"""The same gate from inside a pytest suite: the ``wsconform_run`` fixture.

Enable it with ``-p wsconform.pytest_plugin`` (or ``pytest_plugins = ["wsconform.pytest_plugin"]``
in the root conftest), then::

    def test_my_server_conforms(wsconform_run):
        wsconform_run(server_cmd="python -m myserver --port {port}", profile="quick",
                      preset="standard", expectations="autobahn.expectations.toml")

The call runs the real fuzzer against the testee, writes the usual reports into the test's
temporary directory (or ``outdir``), and fails the test with the summary line and the failing
cases unless the gate passes; it returns the `RunOutcome` either way when ``check=False``.
Loading the plugin imports nothing of the harness: the fuzzer machinery is imported on first
use, so suites that never ask for the fixture pay nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

if TYPE_CHECKING:
    from wsconform.runner import RunOutcome


class RunFixture(Protocol):
    """What ``wsconform_run`` is: call it to run and gate."""

    def __call__(
        self,
        *,
        server_cmd: str | None = None,
        url: str | None = None,
        agent: str = "testee",
        profile: str = "full",
        cases: Sequence[str] = (),
        exclude: Sequence[str] = (),
        preset: str = "strict",
        expectations: str | Path | None = None,
        allow_unimplemented: bool = False,
        outdir: str | Path | None = None,
        backend: str = "auto",
        check: bool = True,
    ) -> RunOutcome: ...


def _run_and_gate(tmp_path: Path) -> RunFixture:
    def run(
        *,
        server_cmd: str | None = None,
        url: str | None = None,
        agent: str = "testee",
        profile: str = "full",
        cases: Sequence[str] = (),
        exclude: Sequence[str] = (),
        preset: str = "strict",
        expectations: str | Path | None = None,
        allow_unimplemented: bool = False,
        outdir: str | Path | None = None,
        backend: str = "auto",
        check: bool = True,
    ) -> RunOutcome:
        from wsconform import backends, catalog, gate, render, runner

        profile_cases, profile_exclude = catalog.PROFILES[profile]
        config = runner.RunConfig(
            agent=agent,
            outdir=Path(outdir) if outdir is not None else tmp_path / "wsconform" / agent,
            cases=list(cases) or list(profile_cases),
            exclude=[*profile_exclude, *exclude],
            url=url,
            server_cmd=server_cmd,
            preset=preset,
            expectations=gate.load_expectations(Path(expectations)) if expectations else (),
            allow_unimplemented=allow_unimplemented,
        )
        log: list[str] = []
        outcome = runner.execute(config, backends.choose(backend), _SilentView(), log.append)
        if check and outcome.exit_code != gate.EXIT_OK:
            failing = [v for v in outcome.report.verdicts if v.failing]
            lines = [render.summary_line(outcome.report)]
            lines += [f"  {v.case_id}: {v.reason}" for v in failing[:20]]
            lines += [f"  note: {note}" for note in outcome.notes]
            lines.append(f"reports: {outcome.paths['markdown']}")
            pytest.fail("\n".join(lines), pytrace=False)
        return outcome

    return run


class _SilentView:
    """Progress inside pytest: captured output has no use for a bar."""

    def update(self, state: object) -> None:
        pass

    def category_done(self, state: object, category: str, count: int) -> None:
        pass

    def close(self, state: object) -> None:
        pass


@pytest.fixture
def wsconform_run(tmp_path: Path) -> RunFixture:
    """Run the Autobahn fuzzer against a testee and fail the test unless the gate passes."""
    return _run_and_gate(tmp_path)
