"""Writing a run in the fuzzer's own format: ``index.json`` and one JSON report per case.

Invariants:
- ``index.json`` is ``{agent: {case_id: {behavior, behaviorClose, duration, remoteCloseCode,
  reportfile}}}`` with the fuzzer's key order, indentation and file names, so every reader
  of Autobahn's output (``results.load``, ``gate``, ``render``, ``diff``) reads ours unchanged.
- A case report carries the keys ``results`` reads (``description``, ``expectation``,
  ``result``, ``resultClose``) and the fuzzer's flags and event lists under the fuzzer's key
  names, plus what only we record: ``engine``, ``seed`` and a timed ``wirelog`` with masks.
- Files are written whole and replaced atomically, so an interrupted run leaves readable files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsconform import reportjson

__all__ = ["ENGINE", "IndexEntry", "report_filename", "write_case", "write_index"]

ENGINE = "wsconform-native"
_FILENAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One case's line in ``index.json``."""

    behavior: str
    behavior_close: str
    duration_ms: int
    remote_close_code: int | None
    report_file: str

    def as_json(self) -> dict[str, Any]:
        return {
            "behavior": self.behavior,
            "behaviorClose": self.behavior_close,
            "duration": self.duration_ms,
            "remoteCloseCode": self.remote_close_code,
            "reportfile": self.report_file,
        }


def report_filename(agent: str, case_id: str) -> str:
    """The fuzzer's name for a case report: agent lower-cased, other characters as ``_``."""
    cleaned = "".join(c if c in _FILENAME_CHARS else " " for c in agent.strip().lower())
    return f"{cleaned.strip().replace(' ', '_')}_case_{case_id.replace('.', '_')}.json"


def _dump(path: Path, data: Any) -> None:
    text = reportjson.dumps(data)
    partial = path.with_name(path.name + ".part")
    partial.write_text(text, "utf-8")
    os.replace(partial, path)


def write_case(outdir: Path, report: Mapping[str, Any]) -> None:
    """One case report (its ``agent`` and ``id`` name the file)."""
    _dump(outdir / report_filename(str(report["agent"]), str(report["id"])), dict(report))


def write_index(outdir: Path, agent: str, entries: Mapping[str, IndexEntry]) -> Path:
    """``index.json`` for the cases finished so far."""
    path = outdir / "index.json"
    _dump(path, {agent: {case_id: e.as_json() for case_id, e in entries.items()}})
    return path
