"""The fuzzer's compression test data (cases 12.x and 13.x): five files, found or fetched once.

Invariants:
- The files are Autobahn|Testsuite 25.10.1's own (``autobahntestsuite/testdata/``), byte for
  byte: every copy is checked against the SHA-256 the package's wheel RECORD lists, and a copy
  that does not match is never used.
- They are not shipped with wsconform: the package declares Apache-2.0 for itself, but the
  files are third-party works (a Project Gutenberg e-book, the "Lena" bitmap, a research paper
  as PDF) that carry no licence of their own allowing redistribution. They are taken, in this
  order, from our cache (``$XDG_CACHE_HOME/wsconform/testdata/``), from the fuzzer already
  provisioned there, or from the testsuite's sdist on the Python package index
  (``pip download --no-deps autobahntestsuite==25.10.1``; no Python 2 needed), and cached.
- ``origin`` says where the files came from, for the case reports.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DATA_SETS",
    "PACKAGE",
    "DataSet",
    "TestDataUnavailable",
    "cache_dir",
    "load",
    "origin",
]

PACKAGE = "autobahntestsuite==25.10.1"
_MEMBER_DIR = "autobahntestsuite/testdata"


@dataclass(frozen=True, slots=True)
class DataSet:
    """One test file: its name in the fuzzer, file name, whether it is sent as binary."""

    name: str
    filename: str
    binary: bool
    sha256: str


# The fuzzer's order (its sub-categories 12.1 .. 12.5); 13.x all use ``json_data1``.
DATA_SETS = (
    DataSet(
        "json_data1",
        "data1.json",
        False,
        "2d4f69f2249ec38381b5e8ff343591c8e9f3b40e1fcfdedb7416c4fbaf9a6113",
    ),
    DataSet(
        "lena512",
        "lena512.bmp",
        True,
        "bf3cbab2ad746926aec4e5703dcbd2ff0bff77b238541216fb33f154474aff6c",
    ),
    DataSet(
        "gutenberg_faust",
        "pg2229.txt",
        True,
        "c4bc81788bdfd371fc930a3d4eaacd75a0fb717a2560e7d15bc7f6663f6d382b",
    ),
    DataSet(
        "html_data1",
        "data1.html",
        False,
        "bbd18f60e537503f35ef6113a83550e6233f223300cbff5f36f13f33d70de36f",
    ),
    DataSet(
        "ooms",
        "10.1.1.105.5439.pdf",
        True,
        "8b9a98c6b4fad919ba67ece520ee1e66181ce409bc0799bbf46887977db94247",
    ),
)
_BY_NAME = {data.name: data for data in DATA_SETS}


class TestDataUnavailable(RuntimeError):
    """The files could be neither found nor fetched (offline, no provisioned fuzzer)."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/wsconform/testdata/autobahntestsuite-25.10.1``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wsconform" / "testdata" / "autobahntestsuite-25.10.1"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _store(data_set: DataSet, content: bytes) -> None:
    target = cache_dir() / data_set.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.part")
    partial.write_bytes(content)
    os.replace(partial, target)


def _from_provisioned_fuzzer() -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    root = cache_dir().parent.parent
    for directory in sorted(root.glob(f"autobahn-*/lib/python2.7/site-packages/{_MEMBER_DIR}")):
        for data_set in DATA_SETS:
            path = directory / data_set.filename
            if data_set.name not in found and path.is_file():
                content = path.read_bytes()
                if _digest(content) == data_set.sha256:
                    found[data_set.name] = content
    return found


def _from_package_index() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="wsconform-testdata-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:"]
        command += ["--quiet", "--dest", tmp, PACKAGE]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        archives = sorted(Path(tmp).glob("autobahntestsuite-*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise TestDataUnavailable(
                "cannot fetch the compression test data of cases 12.x/13.x: "
                f"`pip download {PACKAGE}` failed: {done.stderr.strip()[-400:]}"
            )
        found: dict[str, bytes] = {}
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                name = member.name.split("/", 1)[-1]
                directory, _, filename = name.rpartition("/")
                if directory != _MEMBER_DIR or not member.isfile():
                    continue
                for data_set in DATA_SETS:
                    if data_set.filename == filename:
                        extracted = archive.extractfile(member)
                        assert extracted is not None
                        content = extracted.read()
                        if _digest(content) == data_set.sha256:
                            found[data_set.name] = content
        return found


def _cached(data_set: DataSet) -> bytes | None:
    path = cache_dir() / data_set.filename
    if not path.is_file():
        return None
    content = path.read_bytes()
    return content if _digest(content) == data_set.sha256 else None


_ORIGIN_FILE = "ORIGIN"


@functools.cache
def _fetch_missing() -> str:
    missing = [d for d in DATA_SETS if _cached(d) is None]
    recorded = cache_dir() / _ORIGIN_FILE
    if not missing:
        return recorded.read_text("utf-8").strip() if recorded.is_file() else "cache"
    for source, fetch in (
        ("the provisioned fuzzer", _from_provisioned_fuzzer),
        (f"the Python package index ({PACKAGE} sdist)", _from_package_index),
    ):
        found = fetch()
        for data_set in missing:
            if data_set.name in found:
                _store(data_set, found[data_set.name])
        missing = [d for d in missing if _cached(d) is None]
        if not missing:
            recorded.write_text(source + "\n", "utf-8")
            return source
    raise TestDataUnavailable(
        "the compression test data of cases 12.x/13.x is incomplete: "
        + ", ".join(d.filename for d in missing)
    )


@functools.cache
def load(name: str) -> bytes:
    """The bytes of data set ``name`` (fetching all five once if needed)."""
    data_set = _BY_NAME[name]
    _fetch_missing()
    content = _cached(data_set)
    if content is None:
        raise TestDataUnavailable(f"{data_set.filename} is missing from {cache_dir()}")
    return content


def origin(name: str) -> dict[str, str]:
    """Where data set ``name`` came from, as a case report records it."""
    data_set = _BY_NAME[name]
    return {
        "name": data_set.name,
        "file": data_set.filename,
        "sha256": data_set.sha256,
        "package": PACKAGE,
        "fetchedFrom": _fetch_missing(),
        "cachedAt": str(cache_dir() / data_set.filename),
    }
