"""Durations, ages, percentages and wide-character-aware truncation and padding."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from watchfloor.console import format as fmt
from watchfloor.console.i18n import LANGS, STRINGS, Translator


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0, "0s"), (42.4, "42s"), (59.6, "1m00s"), (185, "3m05s"), (3600, "1h00m"),
     (8040, "2h14m"), (86400 * 3 + 3600 * 4, "3d4h"), (-5, "0s")],
)  # fmt: skip
def test_durations_are_compact(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


@pytest.mark.parametrize(
    ("deadline", "now", "text"), [(None, 0, "—"), (250, 0, "4m10s"), (100, 162, "-1m02s")]
)
def test_countdowns_say_how_long_is_left_or_how_late(deadline, now, text) -> None:
    assert fmt.countdown(deadline, now) == text


@pytest.mark.parametrize(("ratio", "text"), [(None, "—"), (0.823, "82%"), (1, "100%"), (0, "0%")])
def test_percentages(ratio, text) -> None:
    assert fmt.percent(ratio) == text


@pytest.mark.parametrize(
    ("text", "width", "cut"),
    [("queue", 10, "queue"), ("售前咨询队列", 12, "售前咨询队列"), ("售前咨询队列", 7, "售前咨…"),
     ("after-sales", 6, "after…"), ("售a前", 2, "…"), ("x", 0, "")],
)  # fmt: skip
def test_truncation_counts_terminal_cells_not_characters(text: str, width: int, cut: str) -> None:
    assert fmt.truncate(text, width) == cut
    assert cell_len(fmt.truncate(text, width)) <= width


@pytest.mark.parametrize("text", ["售前咨询", "after-sales", "退货 refund 退款", ""])
@pytest.mark.parametrize("align", ["left", "right"])
def test_padding_gives_exactly_the_width_asked_for(text: str, align: str) -> None:
    for width in (3, 8, 15):
        assert cell_len(fmt.pad(text, width, align)) == width


def test_sparkline_scales_to_its_own_maximum_and_keeps_the_last_values() -> None:
    assert fmt.sparkline([0, 4, 8], 12) == "▁▅█"
    assert fmt.sparkline([0, 0], 12) == "▁▁"
    assert fmt.sparkline(list(range(40)), 12).endswith("█")
    assert len(fmt.sparkline(list(range(40)), 12)) == 12
    assert fmt.sparkline([], 12) == ""


def test_localized_titles_pick_the_language_and_fall_back_to_english() -> None:
    title = {"zh": "大量客户咨询应对", "en": "Contact surge"}
    assert fmt.localized(title, "zh") == "大量客户咨询应对"
    assert fmt.localized(title, "en") == "Contact surge"
    assert fmt.localized({"en": "Only English"}, "zh") == "Only English"
    assert fmt.localized("plain", "zh") == "plain"


def test_every_string_has_an_english_and_a_chinese_text() -> None:
    missing = [key for key, pair in STRINGS.items() if len(pair) != len(LANGS) or not all(pair)]
    assert missing == []


def test_a_missing_string_falls_back_to_readable_english() -> None:
    tr = Translator("zh")
    assert tr("step.paused") == "paused"
    assert tr("tile.age", age="3s") == "3s前"
    with pytest.raises(ValueError, match="unknown language"):
        Translator("fr")


@pytest.mark.parametrize(
    ("age", "text"), [(None, "—"), (42, "42s"), (61, "1m"), (3599, "59m"), (8040, "2h14m")]
)
def test_coarse_ages_tick_once_a_minute_after_the_first(age: float | None, text: str) -> None:
    assert fmt.age_coarse(None if age is None else 1000.0 - age, 1000.0) == text


def test_evidence_reads_as_labelled_text_in_both_languages() -> None:
    from watchfloor.console.evidence import evidence_lines

    evidence = {
        "longest_wait_s": 83,
        "service_level": 0.32,
        "conditions": [{"condition": "longest_wait", "waiting": 42}],
        "off_hours": True,
        "reopened_at": 0,
    }
    zh = dict(evidence_lines(evidence, "zh"))
    assert zh["最长等待"] == "1分23秒" and zh["服务水平"] == "32%"
    assert zh["非工作时间"] == "是"
    assert "{" not in zh["触发条件"] and "排队人数 42" in zh["触发条件"]
    en = dict(evidence_lines(evidence, "en"))
    assert en["longest wait"] == "1m23s" and en["service level"] == "32%"
    assert "reopened_at" in en and ":" in en["reopened_at"]  # a local time, not a Unix number
