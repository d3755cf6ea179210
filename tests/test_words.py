"""The explanation's text in the seed notes' languages (tconv.explainer.words): the same numbers
as English, the seeds' own terms, aligned in a terminal where a CJK character takes two columns."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from tconv.explainer import explain
from tconv.explainer.text import render
from tconv.explainer.words import LANGS, WORDS, width

#: The terms the seed notes use (the Korean notes 000-003, the Japanese 004).
SEED_TERMS = {"ko": ("전치 합성곱", "패딩", "스트라이드", "커널", "채널"),
              "ja": ("転置畳み込み", "パディング", "ストライド", "カーネル", "チャネル", "処理用画像")}

CASES = [
    ([[0.0, 1.0], [2.0, 3.0]], [[0.0, 1.0], [2.0, 3.0]], dict(stride=2)),
    ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]], dict(stride=2, padding=1, output_padding=1)),
    (np.arange(2 * 3 * 3.0).reshape(2, 3, 3), np.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2),
     dict(stride=(2, 1), padding=(0, 1))),
    (np.ones((1, 3, 3, 3)), np.ones((1, 1, 2, 2, 2)), dict(stride=2)),  # W too large to show
]


def _numbers(text: str, lang: str) -> list[str]:
    """Every number of the text in order, once the pieces of the language's own words that hold
    digits are taken out (the ``0`` and ``stride-1`` of the zero-insertion view's heading)."""
    for template in WORDS[lang].values():
        for piece in re.split(r"\{[^}]*\}|\n", template):
            if re.search(r"\d", piece):
                text = text.replace(piece, " ")
    return re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", text)


@pytest.mark.parametrize("lang", ["ko", "ja"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_same_numbers_in_every_language(lang, case):
    x, w, params = CASES[case]
    english = render(explain(x, w, **params))
    other = render(explain(x, w, **params, lang=lang))
    assert _numbers(other, lang) == _numbers(english, "en") and len(_numbers(english, "en")) > 20
    assert other != english
    assert render(explain(x, w, **params), lang=lang) == other  # render's own choice


@pytest.mark.parametrize("lang", LANGS)
def test_every_line_fits_a_terminal(lang):
    for x, w, params in CASES:
        text = render(explain(x, w, **params, lang=lang))
        assert max(width(line) for line in text.splitlines()) <= 80, lang


def test_the_seeds_terms_and_aligned_columns():
    for lang, terms in SEED_TERMS.items():
        text = render(explain([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]], stride=2, lang=lang))
        for term in terms:
            assert term in text, (lang, term)
        # the running sum's grid starts in the same column as its title, in terminal columns
        lines = text.splitlines()
        i = next(k for k, line in enumerate(lines) if WORDS[lang]["running"] in line)
        column = width(lines[i][: lines[i].index(WORDS[lang]["running"])])
        assert width(lines[i + 1][:column]) == column and lines[i + 1][:column].strip() == "1 1"
    assert set(WORDS["ko"]) == set(WORDS["ja"]) == set(WORDS["en"])


def test_a_language_it_does_not_know_is_refused():
    with pytest.raises(ValueError, match="lang must be one of en, ko, ja"):
        explain([[1.0]], [[1.0]], lang="fr")
    with pytest.raises(ValueError, match="lang"):
        render(explain([[1.0]], [[1.0]]), lang="de")


def test_the_command_line_speaks_korean():
    run = [sys.executable, "-m", "tconv", "explain", "--stride", "2", "--color", "never"]
    english = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    korean = subprocess.run([*run, "--lang", "ko"], capture_output=True, text=True, check=True).stdout
    assert "전치 합성곱" in korean and _numbers(korean, "ko") == _numbers(english, "en")
    refused = subprocess.run([*run, "--lang", "fr"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--lang" in refused.stderr
