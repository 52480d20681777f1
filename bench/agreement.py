"""The agreement panel: Autobahn 25.10.1 and the native engine against the same testees.

Each panel member is started fresh for each engine (``wsconform.native.agree.run_both``);
the two runs are compared case by case and the table (member x category: cases, agreeing,
differing), each member's verdict kinds and every difference go to one Markdown file.
Members: the known agents (``reference``, ``websockets``, ``tornado``, ``node-ws``, ...) and
``broken:MODE`` for each mode of ``conformance/testees/broken_echo.py`` (``broken:all`` for
every mode). Runs stay in ``--workdir``; ``--reuse`` compares runs already there instead of
running them again. Run it niced, the machine is shared::

    nice .venv/bin/python bench/agreement.py --workdir /tmp/agreement \\
        --out reports/agreement.md reference websockets tornado broken:all

Exit 1 when any case differs.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
from pathlib import Path

from wsconform import agents, backends
from wsconform.native import agree, cases

BROKEN_ECHO = agents.TESTEES / "broken_echo.py"
DEFAULT_CATEGORIES = ("1", "2", "3", "4", "5", "7", "10")


def broken_modes() -> list[str]:
    """The modes of broken_echo.py, in its own order (read from the testee itself)."""
    spec = importlib.util.spec_from_file_location("broken_echo", BROKEN_ECHO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return list(module.MODES)


def members(names: list[str]) -> list[tuple[str, str, str]]:
    """(run folder, label, command template) per requested member, ``broken:all`` expanded."""
    found: list[tuple[str, str, str]] = []
    for name in names:
        if name == "broken:all":
            found += members([f"broken:{mode}" for mode in broken_modes()])
        elif name.startswith("broken:"):
            mode = name.partition(":")[2]
            testee = f"{shlex.quote(sys.executable)} {shlex.quote(str(BROKEN_ECHO))}"
            found.append((f"broken-{mode}", f"broken_echo {mode}", f"{testee} {{port}} {mode}"))
        else:
            agent, command = agents.resolve(name)
            found.append((agent, agent, command))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("members", nargs="+", help="agent names, broken:MODE or broken:all")
    parser.add_argument("--categories", default=",".join(DEFAULT_CATEGORIES))
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="write the Markdown here (else stdout)")
    parser.add_argument("--reuse", action="store_true", help="compare the runs in --workdir")
    args = parser.parse_args(argv)
    wanted = set(args.categories.split(","))
    ids = [c for c in cases.supported() if c.split(".")[0] in wanted]
    agreements = []
    for folder, label, command in members(args.members):
        workdir = args.workdir / folder
        if args.reuse:
            found = agree.compare(
                workdir / "autobahn" / backends.RAW_DIR, workdir / "native", label=label
            )
        else:
            found, _ = agree.run_both(command, ids, workdir, label=label)
        print(f"{label}: {len(found.cases)} cases, {len(found.differences)} differ", flush=True)
        agreements.append(found)
    text = (
        "## Agreement per category\n\n"
        + agree.markdown(agreements)
        + "\n## Verdict kinds (one number: both engines; A / N: Autobahn / native)\n\n"
        + agree.kinds_markdown(agreements)
    )
    if args.out:
        args.out.write_text(text, "utf-8")
    else:
        print(text)
    return 1 if any(a.differences for a in agreements) else 0


if __name__ == "__main__":
    sys.exit(main())
