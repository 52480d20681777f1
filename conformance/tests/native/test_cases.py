"""Case definitions of categories 6 and 9: their data against the catalog, and representative
cases played against real testees (the reference server and the websockets echo server)."""

from __future__ import annotations

import json
import re
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from wsconform import catalog, testee
from wsconform.native import cases, engine
from wsconform.native.cases.utf8_sequences import GROUPS, is_valid

REFERENCE = f"{shlex.quote(sys.executable)} -m rfc6455 serve --port {{port}}"


def raw_descriptions() -> dict[str, str]:
    """The testsuite's own descriptions, HTML and all (they end with the payload in hex)."""
    data = json.loads(resources.files("wsconform").joinpath("cases.json").read_text("utf-8"))
    return {c["id"]: c["description"] for c in data["cases"]}


def test_every_case_of_the_catalog_is_defined_in_its_order() -> None:
    assert cases.supported() == list(catalog.ALL_CASES)
    assert len(cases.supported()) == 517


def test_utf8_sequences_are_the_catalogs_payloads_with_its_validity() -> None:
    descriptions = raw_descriptions()
    generated = [
        (f"6.{group}.{number}", payload)
        for group, payloads in enumerate(GROUPS, 5)
        for number, payload in enumerate(payloads, 1)
    ]
    assert len(generated) == 132
    assert {c for c, _ in generated} == {
        c for c in descriptions if re.fullmatch(r"6\.(\d+)\.\d+", c) and int(c.split(".")[1]) >= 5
    }
    for case_id, payload in generated:
        description = descriptions[case_id]
        assert description.endswith(f"Payload: 0x{payload.hex()}"), case_id
        assert ("which is valid UTF-8" in description) == is_valid(payload), case_id


def run_cases(command: str, ids: list[str], where: Path) -> dict[str, dict[str, Any]]:
    """Play ``ids`` against a fresh testee; each case's report by id."""
    with testee.start(command, where / "logs") as server:
        server.wait_ready()
        engine.run(server.url, "t", ids, where / "run", seed=1)
    index = json.loads((where / "run" / "index.json").read_text())["t"]
    return {c: json.loads((where / "run" / e["reportfile"]).read_text()) for c, e in index.items()}


def test_the_reference_passes_utf8_and_limit_cases_strictly(tmp_path: Path) -> None:
    ids = ["6.2.3", "6.3.2", "6.4.1", "6.4.3", "9.2.1", "9.7.1"]
    reports = run_cases(REFERENCE, ids, tmp_path)
    assert {c: (r["behavior"], r["behaviorClose"]) for c, r in reports.items()} == {
        c: ("OK", "OK") for c in ids
    }
    # Split one octet per frame as the fuzzer splits: 29 octets end with an empty frame.
    assert reports["6.2.3"]["txFrameStats"] == {"0": 29, "1": 1, "8": 1}
    # Fail fast: the testee failed within the second wait, inside one streamed frame.
    assert reports["6.4.3"]["received"] == [["timeout", "A"]]
    assert reports["6.4.3"]["remoteCloseCode"] == 1007
    assert reports["9.2.1"]["result"] == "Received binary message of length 65536."
    assert reports["9.7.1"]["txFrameStats"] == {"1": 1000, "8": 1}
    assert reports["9.7.1"]["received"] == [] and reports["9.7.1"]["expected"] == {}
    assert reports["9.7.1"]["reportTime"] is True and reports["6.2.3"]["reportTime"] is False


def test_websockets_validates_late_and_refuses_many_fragments(
    tmp_path: Path, echo_cmd: str
) -> None:
    reports = run_cases(echo_cmd, ["6.4.2", "6.4.4", "9.4.3"], tmp_path)
    for case_id in ("6.4.2", "6.4.4"):
        assert (reports[case_id]["behavior"], reports[case_id]["behaviorClose"]) == (
            "NON-STRICT",
            "OK",
        )
        assert reports[case_id]["received"] == [["timeout", "A"], ["timeout", "B"]]
    limit = reports["9.4.3"]
    assert (limit["behavior"], limit["behaviorClose"], limit["remoteCloseCode"]) == (
        "FAILED",
        "FAILED",
        1009,
    )
    assert limit["result"] == "Did not receive message within 100 seconds."
