"""render's case pages: a native run's cases get ours, an Autobahn run keeps the fuzzer's, and
one page reads either engine's per-case JSON (real runs: ``fuzzer_runs``)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fuzzer_runs import native_run, real_run

from wsconform import casepages, casereport, gate, render, results
from wsconform.backends import LocalBackend


class Page(HTMLParser):
    """A case page's links, and the wire table's rows as lists of cell texts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.rows: list[list[str]] = []
        self._in_wire = False
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(str(attributes["href"]))
        if tag == "table":
            self._in_wire = attributes.get("class") == "wire"
        elif self._in_wire and tag == "tr":
            self.rows.append([])
        elif self._in_wire and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_wire = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def numbered(self) -> dict[int, list[str]]:
        """The log's rows by their number (the first cell)."""
        return {int(row[0]): row for row in self.rows[1:] if row and row[0].isdigit()}


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our layout around a native run: its output in <run>/raw, the reports in <run>."""
    run = tmp_path_factory.mktemp("native-pages") / "run"
    shutil.copytree(native_run(tmp_path_factory, "reference"), run / "raw")
    loaded = results.load(run / "raw")
    render.write_reports(loaded, gate.evaluate(loaded, "strict"), run, environ={})
    return run


def case_report(raw: Path, case_id: str) -> dict[str, Any]:
    run = results.load(raw)
    report_file = run.cases[case_id].report_file
    assert report_file is not None
    loaded: dict[str, Any] = json.loads((raw / report_file).read_text())
    return loaded


def case_page(raw: Path, case_id: str) -> str:
    report_html = results.load(raw).cases[case_id].report_html
    assert report_html is not None
    return (raw / report_html).read_text()


def test_every_native_case_links_to_a_page_of_ours_that_links_back(native_dir: Path) -> None:
    run = results.load(native_dir / "raw")
    index = Page((native_dir / "index.html").read_text())
    for case in run.cases.values():
        assert case.report_html is not None
        assert f"raw/{case.report_html}" in index.hrefs, case.case_id
        page = Page(case_page(native_dir / "raw", case.case_id))
        assert (native_dir / "raw" / page.hrefs[0]).resolve() == native_dir / "index.html"
        assert case.report_file in page.hrefs  # the whole log, from the page


def test_a_native_page_shows_each_frame_with_its_opcode_fin_and_masking_key(
    native_dir: Path,
) -> None:
    # 5.1 sends a ping in two fragments; the reference fails the connection with 1002.
    log = case_report(native_dir / "raw", "5.1")["wirelog"]
    rows = Page(case_page(native_dir / "raw", "5.1")).numbered()
    number, ping = next((n, e) for n, e in enumerate(log, 1) if e["kind"] == "tx-frame")
    assert (ping["opcode"], ping["fin"], ping["payload"]) == (9, False, "fragment1")
    assert rows[number] == [
        str(number),
        f"{ping['t'] * 1000:.3f}",
        "→ sent",
        "ping frame (9)",
        "0",
        "0",
        "9",
        ping["mask"],
        "text fragment1",
        "",
    ]
    number, close = next((n, e) for n, e in enumerate(log, 1) if e["kind"] == "rx-frame")
    length = str(close["length"])
    assert rows[number][2:8] == ["← received", "close frame (8)", "1", "0", length, "none"]
    assert rows[number][9].startswith("close code 1002, reason “control frames must not be")
    assert rows[number][8].startswith("hex 03 ea 63 6f")


def test_a_native_page_shows_the_verdicts_events_and_handshake(native_dir: Path) -> None:
    report = case_report(native_dir / "raw", "6.4.1")
    page = case_page(native_dir / "raw", "6.4.1")
    assert '<span class="verdict v-OK">OK</span> behavior' in page
    assert "<tr><th>Closing handshake started by</th><td>the testee</td></tr>" in page
    assert "<tr><th>Close code from the testee</th><td>1007 (" in page
    assert "<p>Expected for NON-STRICT</p>" in page and "<li>timeout: A</li>" in page
    assert f"<tr><th>Seed of this case</th><td>{report['caseSeed']}</td></tr>" in page
    request_line, *_ = report["httpRequest"].split("\r\n")
    assert f"<pre>{request_line}\n" in page
    accept = next(
        h for h in report["httpResponse"].split("\r\n") if h.startswith("Sec-WebSocket-A")
    )
    assert accept in page
    # The valid first fragment is shown as text, the invalid UTF-8 continuation in hex.
    valid = next(e["payload"] for e in report["wirelog"] if e["kind"] == "tx-frame")
    rows = Page(page).numbered()
    shown = [row[8] for row in rows.values() if row[3].startswith(("text", "continuation"))]
    assert shown == [f"text {valid}", "hex f4 90 80 80"]


def test_a_long_wire_log_keeps_its_start_and_its_closing_handshake(native_dir: Path) -> None:
    report = case_report(native_dir / "raw", "2.11")
    log = report["wirelog"]
    assert len(log) > 40
    rows = Page(render.case_html(report, max_rows=20)).rows
    numbers = [int(row[0]) for row in rows if row[0].isdigit()]
    assert numbers == [*range(1, 11), *range(len(log) - 9, len(log) + 1)]
    hidden = log[10 : len(log) - 10]
    frames = sum(1 for e in hidden if e["kind"].endswith("-frame"))
    assert frames > 0
    gap = next(row[0] for row in rows if "not shown" in row[0])
    assert gap.startswith(
        f"{frames} more frames not shown ({len(hidden)} log entries, #11 to #{len(log) - 10})"
    )
    assert rows[-1][9] == log[-1]["text"]  # the end of the connection is still there


def test_a_page_stays_small_whatever_its_log_holds(native_dir: Path) -> None:
    # What a 12.x case with its log on would hold: a thousand echoes and more.
    report = case_report(native_dir / "raw", "2.11")
    report["wirelog"] = report["wirelog"] * 60
    page = render.case_html(report)
    assert len(page.encode()) < 120_000
    rows = Page(page).numbered()
    assert len(rows) == casereport.MAX_ROWS
    assert max(rows) == len(report["wirelog"])
    assert "more frames not shown" in page


def test_an_autobahn_report_renders_through_the_same_page(
    tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend
) -> None:
    raw = real_run(tmp_path_factory, "websockets", local_backend)
    report = case_report(raw, "7.1.5")  # FAILED / WRONG CODE: websockets answers 1002
    page = render.case_html(report)
    assert '<span class="verdict v-WRONG-CODE">WRONG CODE</span> close' in page
    assert "<tr><th>Close code from the testee</th><td>1002" in page
    parsed = Page(page)
    assert "t (ms)" not in parsed.rows[0]  # Autobahn does not time its log
    rows = parsed.numbered()
    assert len(rows) == len(report["wirelog"])
    sent = [(n, e) for n, e in enumerate(report["wirelog"], 1) if e[0] == "TF"]
    assert sent
    for number, (_, (size, payload), opcode, fin, rsv, mask, *_) in sent:
        name = casereport.OPCODES[opcode]
        assert rows[number][1:7] == [
            "→ sent",
            f"{name} frame ({opcode})",
            str(int(fin)),
            str(rsv),
            str(size),
            mask,
        ]
        hexadecimal = payload.startswith("0x")
        octets = [payload[i : i + 2] for i in range(2, len(payload), 2)]
        shown = "hex " + " ".join(octets) if hexadecimal else f"text {payload}"
        assert rows[number][7] == (shown if payload else "empty")
    received = [n for n, e in enumerate(report["wirelog"], 1) if e[0] == "RF"]
    assert rows[received[-1]][8].startswith("close code 1002")


def test_an_autobahn_run_keeps_the_fuzzers_own_pages(
    tmp_path_factory: pytest.TempPathFactory, local_backend: LocalBackend, tmp_path: Path
) -> None:
    shutil.copytree(real_run(tmp_path_factory, "websockets", local_backend), tmp_path / "raw")
    run = results.load(tmp_path / "raw")
    before = {p.name: p.read_bytes() for p in (tmp_path / "raw").glob("*_case_*.html")}
    assert len(before) == len(run.cases)
    render.write_reports(run, gate.evaluate(run), tmp_path, environ={})
    after = {p.name: p.read_bytes() for p in (tmp_path / "raw").glob("*_case_*.html")}
    assert after == before


def test_a_page_of_ours_is_rewritten_with_the_run(native_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(native_dir, tmp_path / "run")
    run = results.load(tmp_path / "run" / "raw")
    page = tmp_path / "run" / "raw" / str(run.cases["5.1"].report_html)
    page.write_text('<meta name="generator" content="wsconform">from an older version')
    render.write_reports(run, gate.evaluate(run), tmp_path / "run", environ={})
    assert "ping frame (9)" in page.read_text()


def test_a_case_page_escapes_what_the_testee_sent() -> None:
    report = {
        "id": "1.1.1",
        "agent": "<script>alert(1)</script>",
        "behavior": "FAILED",
        "behaviorClose": "OK",
        "received": [["message", "<b>\x00\x1b[31m", False]],
        "httpResponse": "HTTP/1.1 101 <img src=x>\r\nX: \x07\r\n\r\n",
        "wirelog": [
            {
                "t": 0.5,
                "kind": "rx-frame",
                "opcode": 1,
                "fin": True,
                "rsv": 0,
                "length": 7,
                "mask": None,
                "payload": "<i>\u202e\x00",
            },
            ["RF", [2, "<u>"], 1, True, 0, False, None],
            {"kind": "from-a-newer-engine", "x": "<s>"},
        ],
    }
    page = render.case_html(report)
    for raw in ("<script>", "<b>", "<img", "<i>", "<u>", "<s>", "\x00", "\x1b", "\x07", "\u202e"):
        assert raw not in page, raw
    assert "&lt;b&gt;\\x00\\x1b[31m" in page
    assert '<span class="kind">text</span> &lt;i&gt;\\u202e\\x00' in page
    assert "&#34;from-a-newer-engine&#34;" in page  # an unknown entry is kept, as JSON


def test_pages_written_during_the_run_are_the_pages_the_end_would_write(
    native_dir: Path, tmp_path: Path
) -> None:
    """`casepages` renders in a worker process what `write_reports` would: same bytes."""
    shutil.copytree(native_dir / "raw", tmp_path / "raw")
    for page in (tmp_path / "raw").glob("*_case_*.html"):
        page.unlink()
    run = results.load(tmp_path / "raw")
    pages = casepages.BackgroundPages(tmp_path / "raw", tmp_path / "index.html")
    for case in run.cases.values():
        assert case.report_file is not None
        pages.submit(case.report_file)
    pages.submit("no_such_case.json")  # a report that is not there: no page, no crash
    rendered = pages.finish()
    assert rendered.index_page == tmp_path / "index.html"
    assert rendered.names == {case.report_html for case in run.cases.values()}
    for case in run.cases.values():
        assert case.report_html is not None
        written = (tmp_path / "raw" / case.report_html).read_text()
        assert written == (native_dir / "raw" / case.report_html).read_text(), case.case_id


def test_the_end_of_a_run_keeps_the_pages_written_during_it(
    native_dir: Path, tmp_path: Path
) -> None:
    """Only for the index page they link to; every other page of ours is rewritten."""
    shutil.copytree(native_dir, tmp_path / "run")
    raw = tmp_path / "run" / "raw"
    run = results.load(raw)
    kept, rewritten = (raw / str(run.cases[c].report_html) for c in ("2.3", "5.1"))
    for page in (kept, rewritten):
        page.write_text('<meta name="generator" content="wsconform">written during the run')
    run.rendered = results.RenderedPages(tmp_path / "run" / "index.html", frozenset({kept.name}))
    render.write_reports(run, gate.evaluate(run), tmp_path / "run", environ={})
    assert kept.read_text().endswith("written during the run")
    assert "ping frame (9)" in rewritten.read_text()
    run.rendered = results.RenderedPages(tmp_path / "elsewhere.html", frozenset({kept.name}))
    render.write_reports(run, gate.evaluate(run), tmp_path / "run", environ={})
    assert "ping frame (9)" in kept.read_text()


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities here")
def test_the_page_worker_runs_below_the_run_s_priority(native_dir: Path, tmp_path: Path) -> None:
    """Rendering must not take CPU from the testee and the engine while they play a case."""
    shutil.copytree(native_dir / "raw", tmp_path / "raw")
    pages = casepages.BackgroundPages(tmp_path / "raw", tmp_path / "index.html")
    report = next(iter(results.load(tmp_path / "raw").cases.values())).report_file
    assert report is not None
    pages.submit(report)
    worker = pages._worker
    assert worker is not None and worker.stdout is not None
    worker.stdout.readline()  # its first page is written: it has set its priority by now
    niceness = int(Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    assert niceness == min(os.nice(0) + casepages.WORKER_NICENESS, 19)
    pages.finish()


def test_visible_escapes_exactly_the_invisible_characters() -> None:
    """Every code point: escaped when its Unicode category is C or Z (other than the space),
    shown as it is otherwise, alone and inside printable text."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        invisible = char != " " and unicodedata.category(char)[0] in "CZ"
        if not invisible:
            assert casereport.visible(char) == char
            continue
        width = 2 if code < 0x100 else 4 if code < 0x10000 else 8
        escape = "\\" + ("x" if width == 2 else "u" if width == 4 else "U") + f"{code:0{width}x}"
        assert casereport.visible(char) == escape
        assert casereport.visible(f"a{char}é") == f"a{escape}é"
