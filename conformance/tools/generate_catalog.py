"""Regenerate ``conformance/wsconform/cases.json`` from an installed Autobahn|Testsuite.

The catalog is a fact about the fuzzer, not something we decide: the case ids, their order and
the text that describes each case come from the testsuite's own case classes. This script asks
the testsuite's Python 2.7 interpreter for them (a short snippet that imports
``autobahntestsuite.case`` and prints JSON) and writes the packaged data file, texts
unchanged. Run it again when the pinned testsuite version changes::

    python conformance/tools/generate_catalog.py [--python PATH] [--output PATH]

``--python`` defaults to the local backend's cache, ``~/.cache/wsconform/autobahn-25.10.1``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TESTSUITE_VERSION = "25.10.1"
OUTPUT = Path(__file__).resolve().parents[1] / "wsconform" / "cases.json"

# Python 2.7 code run inside the testsuite's virtualenv; it only reads class attributes.
# Descriptions are byte strings holding UTF-8 there, so they are decoded before printing.
PY2_SNIPPET = r"""
import json, sys
import autobahntestsuite
from autobahntestsuite import case
from autobahntestsuite._version import __version__

def text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value

out = {
    "version": __version__,
    "categories": dict((k, text(v)) for k, v in case.CaseCategories.items()),
    "subcategories": dict((k, text(v)) for k, v in case.CaseSubCategories.items()),
    "cases": [
        {
            "id": ".".join(klass.__name__[len(case.CaseBasename):].split("_")),
            "description": text(klass.DESCRIPTION),
            "expectation": text(klass.EXPECTATION),
        }
        for klass in case.Cases
    ],
}
sys.stdout.write(json.dumps(out))
"""


def default_python() -> Path:
    """The interpreter of the cached local backend (``$XDG_CACHE_HOME/wsconform/...``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "wsconform" / f"autobahn-{TESTSUITE_VERSION}" / "bin" / "python"


def read_testsuite(python: Path) -> dict[str, Any]:
    """Run the snippet under the testsuite's interpreter and return what it printed."""
    proc = subprocess.run(
        [str(python), "-c", PY2_SNIPPET], capture_output=True, text=True, check=False, timeout=120
    )
    if proc.returncode != 0:
        sys.exit(f"{python} could not list the cases:\n{proc.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def build_catalog(raw: dict[str, Any]) -> dict[str, Any]:
    """Keep the case texts exactly as the testsuite has them; keep categories that have cases.

    The texts are HTML fragments; ``wsconform.catalog.plain_text`` turns them into text.
    """
    cases = [
        {"id": c["id"], "description": c["description"], "expectation": c["expectation"]}
        for c in raw["cases"]
    ]
    used = {c["id"].split(".")[0] for c in cases}
    used_sub = {".".join(c["id"].split(".")[:2]) for c in cases}
    by_number = sorted(used, key=int)
    return {
        "source": f"autobahntestsuite {raw['version']} (autobahntestsuite.case.Cases)",
        "generated_by": "conformance/tools/generate_catalog.py",
        "categories": {k: raw["categories"][k] for k in by_number},
        "subcategories": {
            k: v
            for k, v in sorted(
                raw["subcategories"].items(), key=lambda kv: tuple(map(int, kv[0].split(".")))
            )
            if k in used_sub
        },
        "cases": cases,
    }


def main() -> None:
    """Parse options, read the testsuite, write the data file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=default_python())
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    raw = read_testsuite(args.python)
    if raw["version"] != TESTSUITE_VERSION:
        sys.exit(f"expected autobahntestsuite {TESTSUITE_VERSION}, found {raw['version']}")
    catalog = build_catalog(raw)
    args.output.write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {len(catalog['cases'])} cases to {args.output}")


if __name__ == "__main__":
    main()
