"""Packaging: every package of the source tree is in the distribution.

pyproject.toml lists the packages by hand (the two import packages live under impl/ and
conformance/); a package missing there installs fine in editable mode and breaks a real
install, as `wsconform.engines` once did.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_source_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    for name, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            package = ".".join([name, *relative.parts])
            assert package in listed, f"{package} ({init.parent}) is not in pyproject's packages"
