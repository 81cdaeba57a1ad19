"""The inline SVG charts: pure functions of their numbers."""

from __future__ import annotations

from sfsync.report._svg import Series, column_chart, esc, hbar_chart, line_chart, nice_ticks


def test_escaping_leaves_no_markup_and_no_double_slash() -> None:
    assert esc('<a href="//x">') == "&lt;a href=&quot;&#47;&#47;x&quot;&gt;"
    assert "//" not in esc("https://example.test")


def test_ticks_are_round_and_cover_the_maximum() -> None:
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(139) == [0, 50, 100, 150]
    assert nice_ticks(20_000)[-1] >= 20_000


def test_a_line_chart_leaves_gaps_where_a_rule_was_not_evaluated() -> None:
    svg = line_chart(
        "t", "trend", ["d1", "d2", "d3", "d4"], [Series("open", "#000", (5, 6, None, 4))]
    )
    assert svg.count("<polyline") == 1  # d1-d2; d4 stands alone
    assert svg.count("<circle") == 3


def test_a_single_point_is_drawn_as_a_dot() -> None:
    svg = line_chart("t", "trend", ["d1"], [Series("open", "#000", (3,))])
    assert "<polyline" not in svg
    assert svg.count("<circle") == 1


def test_bars_and_columns_skip_zero_values_and_carry_tooltips() -> None:
    bars = hbar_chart("b", "bars", ["a", "b"], [Series("open", "#000", (3, 0))])
    assert bars.count("<rect") == 1 + 1  # the legend swatch and one bar
    columns = column_chart(
        "c",
        "cols",
        ["0", "1"],
        [Series("x", "#000", (2, 1)), Series("y", "#111", (0, 1))],
        x_title="extensions",
    )
    assert columns.count("<title") == 1 + 3  # the chart's own and one per non-zero column
    assert "<title>1: 1 y</title>" in columns
