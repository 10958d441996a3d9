"""The folding the matcher reads prompts through (matching only; nothing sent is rewritten)."""

from __future__ import annotations

import pytest

from pixelpipe.safety.confusables import skeleton_map
from pixelpipe.safety.normalize import fold, fold_table

TABLE = fold_table()


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("BeHeAdInG", "beheading"),
        ("be\u200bhe\u200dad\u00adi\u2060ng\ufeff", "beheading"),  # ZWSP, ZWJ, soft hyphen, WJ, BOM
        ("\u202ebeheading\u202c", "beheading"),  # bidi override
        ("b\u0435h\u0435\u0430ding", "beheading"),  # Cyrillic е, а
        ("ｂｅｈｅａｄｉｎｇ", "beheading"),  # fullwidth
        ("𝐛𝐞𝐡𝐞𝐚𝐝𝐢𝐧𝐠", "beheading"),  # mathematical bold
        ("ⓑⓔⓗⓔⓐⓓⓘⓝⓖ", "beheading"),  # circled
        ("ʙᴇʜᴇᴀᴅɪɴɢ", "beheading"),  # small capitals (by their Unicode names)
        ("łøƀ", "lob"),  # letters with a stroke (by their Unicode names)
        ("🅱🅴🅷🅴🅰🅳🅸🅽🅶", "beheading"),  # negative squared letters (by their Unicode names)
        ("bé̈hêàdíñg", "beheading"),  # combining and precomposed accents
        ("be\u3164heading", "beheading"),  # Hangul filler
        ("revenge\u00a0porn", "revenge porn"),  # no-break space → space
        ("Straße", "strasse"),
        ("beheaaaaaading", "beheaading"),  # runs shortened to two
        ("b.e-h_e", "b.e-h-e"),  # separators are kept ("_" as "-"): the matcher skips them
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text, TABLE) == folded


def test_letters_without_a_latin_look_alike_stay_as_they_are() -> None:
    assert fold("猫", TABLE) == "猫"
    assert fold("кот", TABLE) == fold("КОТ", TABLE) == "kot"  # К passes for K, so к is read as k
    assert fold("жук", TABLE) == "жyk"  # ж passes for no Latin letter in either case


def test_the_skeleton_comes_from_the_packaged_unicode_data() -> None:
    skeleton = skeleton_map()
    assert len(skeleton) > 1000
    assert skeleton["а"] == "a" and skeleton["ѕ"] == "s" and skeleton["һ"] == "h"
    assert skeleton["Ι"] == "1"  # Greek capital iota: i or l, read as either
    assert all(not ch.isascii() for ch in skeleton)
