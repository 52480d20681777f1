"""Declares the optional C accelerators (rfc6455's codec, the native engine's masking); all
other metadata lives in pyproject.toml.

The extensions are optional: without a working compiler the build warns and goes on, and
``rfc6455.speedups`` and ``wsconform.native.frames`` fall back to pure Python, so
``pip install -e .`` works everywhere.
"""

from __future__ import annotations

import sys
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """A ``build_ext`` that turns a failed compile into a warning, not a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (setuptools raises its own types)
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # the compiler ran and failed
            self._skip(exc, ext.name)

    @staticmethod
    def _skip(
        exc: BaseException, name: str = "rfc6455._speedups, wsconform.native._masking"
    ) -> None:
        message = (
            f"could not build the optional extension {name} ({exc}); "
            "its package will use its pure-Python code"
        )
        warnings.warn(message, stacklevel=1)
        print(f"WARNING: {message}", file=sys.stderr)


setup(
    ext_modules=[
        Extension(
            "rfc6455._speedups",
            sources=["impl/rfc6455/_speedups.c"],
            optional=True,
        ),
        # The native engine's masking (wsconform.native.frames masks in Python without it).
        Extension(
            "wsconform.native._masking",
            sources=["conformance/wsconform/native/_masking.c"],
            optional=True,
        ),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
