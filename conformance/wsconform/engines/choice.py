"""Which engine runs: ``--engine autobahn|native|auto`` resolved against what this machine has.

Invariants:
- ``auto`` is Autobahn wherever the fuzzer can run (a Docker engine answers, a provisioned
  testsuite runs, or a Python 2.7 is found to provision it), else native; client runs are
  always Autobahn's (the native engine has no fuzzing-server mode), and so are runs that
  name a backend or a Python 2.7 (the user asked for the fuzzer: its errors are theirs).
- Looking is cheap and changes nothing: no image is pulled and nothing is provisioned here
  (the chosen engine's ``check`` does that).
"""

from __future__ import annotations

from wsconform import backends
from wsconform.engines import Engine, EngineError
from wsconform.engines.autobahn import AutobahnEngine
from wsconform.engines.native import NativeEngine

__all__ = ["ENGINES", "NativeEngine", "autobahn_missing", "choose"]

ENGINES = ("auto", "autobahn", "native")


def autobahn_missing(backend: str = "auto", python2: str | None = None) -> str | None:
    """Why the Autobahn fuzzer cannot run here through `backend`, or None when it can."""
    reasons = []
    if backend in ("auto", "docker"):
        try:
            backends.docker_client().close()
            return None
        except backends.BackendError as exc:
            reasons.append(str(exc.args[0]))
    if backend in ("auto", "local"):
        venv = backends.venv_path(backends.cache_root())
        if (venv / backends.PROVISIONED_MARKER).exists():
            try:
                backends.wstest_version(venv)
                return None
            except backends.BackendError as exc:
                reasons.append(str(exc.args[0]))
        try:
            backends.find_python2(python2)
            return None
        except backends.BackendError as exc:
            reasons.append(str(exc.args[0]))
    return "; ".join(reasons)


def choose(
    name: str,
    *,
    clients: bool = False,
    backend: str = "auto",
    python2: str | None = None,
    image: str = backends.DOCKER_IMAGE,
    step: backends.Step = backends.quiet,
) -> Engine:
    """The engine called `name` (``auto`` resolved, saying why through `step`)."""
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}", "choose one of " + ", ".join(ENGINES))
    if name == "native":
        if clients:
            raise EngineError(
                "the native engine tests servers only", "run clients with --engine autobahn"
            )
        return NativeEngine()
    if name == "auto" and not clients and backend == "auto" and not python2:
        missing = autobahn_missing(backend, python2)
        if missing is not None:
            step(f"engine: auto chose native: the Autobahn fuzzer cannot run here ({missing})")
            return NativeEngine()
    try:
        chosen = backends.choose(backend, python2=python2, image=image, step=step)
    except backends.BackendError as exc:
        raise EngineError(str(exc.args[0]), exc.hint) from exc
    return AutobahnEngine(chosen)
