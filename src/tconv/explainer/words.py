"""The words of the explanation's text, in English, Korean and Japanese (the seed notes' languages).

Only words change with the language: numbers, formulas, argument names and code stay as they are,
and so do tconv's error messages. The Korean and Japanese terms are the ones the seed notes use:
전치 합성곱, 패딩, 스트라이드, 커널, 채널 / 転置畳み込み, パディング, ストライド, カーネル, チャネル, and the
Japanese note's 処理用画像 for the zero-inserted input.

>>> words("ja")["flipped"]
'反転したカーネル'
>>> width("커널 w"), len("커널 w")
(6, 4)
"""

from __future__ import annotations

import unicodedata

#: The languages of the text, the first the default.
LANGS = ("en", "ko", "ja")

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Transposed convolution, {rank}-d, {c_in} -> {c_out} channels",
        "size": "Output size, per dimension:",
        "dim": "dim {i}",
        "input": "input x {shape}",
        "kernel": "kernel w {shape}",
        "scatter": "Scatter view: each input element times the kernel, added into the output\n"
                   "at index*stride:",
        "step": "x[{c}][{index}] = {value} at {origin}",
        "running": "running sum",
        "more": "... {n} more steps ...",
        "crop": "Full output {shape}; crop (padding, output_padding) per dimension: {crop}",
        "crop_item": "{b} before / {a} after",
        "crop_added": "{b} before / {a} added after",
        "zero": "Zero-insertion view: stride-1 zeros between inputs, a border of\n"
                "dilation*(k-1) - padding (negative: a crop), output_padding more at the end,\n"
                "then correlate with the flipped kernel:",
        "border": "border before / after per dimension: {border}",
        "image": "processing image {shape}",
        "flipped": "flipped kernel",
        "dots": "(. marks an inserted zero or the border)",
        "matrix": "Matrix view: y = W^T x, W the matrix of the convolution that maps y back to x:",
        "matrix_note": "W is the {rows}x{cols} matrix of the convolution that maps the output back to "
                       "the input; the transposed convolution is y = W^T x",
        "matrix_big": "W would have {entries} entries ({rows} x {cols}); shown up to {limit}",
        "flat": "x (flattened)",
        "channels": "Channels: each input channel's share of each output channel (they add up):",
        "output": "Output y {shape}  (= tconv.conv_transpose, every view agrees):",
    },
    "ko": {
        "title": "전치 합성곱 (transposed convolution), {rank}차원, 채널 {c_in} -> {c_out}",
        "size": "출력 크기, 차원별:",
        "dim": "차원 {i}",
        "input": "입력 x {shape}",
        "kernel": "커널 w {shape}",
        "scatter": "스캐터(scatter) 보기: 입력의 각 원소에 커널을 곱해,\n"
                   "출력의 index*stride 위치에 더한다:",
        "step": "x[{c}][{index}] = {value}, 위치 {origin}",
        "running": "누적 합",
        "more": "... {n}단계 더 ...",
        "crop": "전체 출력 {shape}; 차원별로 잘라내기 (패딩, output_padding): {crop}",
        "crop_item": "앞 {b} / 뒤 {a}",
        "crop_added": "앞 {b} / 뒤에 {a} 추가",
        "zero": "제로 삽입 보기: 입력 사이에 (스트라이드-1)개의 0, 가장자리에\n"
                "dilation*(k-1) - 패딩 만큼의 0 (음수면 잘라내기),\n"
                "끝에 output_padding 만큼 더, 그다음 뒤집은 커널로 상관(correlation) 연산:",
        "border": "차원별 가장자리 앞 / 뒤: {border}",
        "image": "처리용 이미지 {shape}",
        "flipped": "뒤집은 커널",
        "dots": "(. 는 삽입된 0 또는 가장자리)",
        "matrix": "행렬 보기: y = W^T x, W는 y를 x로 되돌리는 합성곱의 행렬:",
        "matrix_note": "W는 출력을 입력으로 되돌리는 합성곱의 {rows}x{cols} 행렬이고, 전치 합성곱은 "
                       "y = W^T x",
        "matrix_big": "W의 원소는 {entries}개 ({rows} x {cols}); {limit}개까지만 표시",
        "flat": "x (일렬로 펼침)",
        "channels": "채널: 각 입력 채널이 각 출력 채널에 더하는 몫 (모두 더하면 출력):",
        "output": "출력 y {shape}  (= tconv.conv_transpose, 모든 보기가 일치):",
    },
    "ja": {
        "title": "転置畳み込み (transposed convolution), {rank}次元, チャネル {c_in} -> {c_out}",
        "size": "出力サイズ (次元ごと):",
        "dim": "次元 {i}",
        "input": "入力 x {shape}",
        "kernel": "カーネル w {shape}",
        "scatter": "スキャッター表示: 入力の各要素にカーネルを掛け、\n"
                   "出力の index*stride の位置に足す:",
        "step": "x[{c}][{index}] = {value}, 位置 {origin}",
        "running": "累積和",
        "more": "... あと {n} ステップ ...",
        "crop": "全出力 {shape}; 次元ごとの切り取り (パディング, output_padding): {crop}",
        "crop_item": "前 {b} / 後 {a}",
        "crop_added": "前 {b} / 後に {a} 追加",
        "zero": "ゼロ挿入表示: 入力の間に (ストライド-1) 個の 0、周囲に\n"
                "dilation*(k-1) - パディング 個の 0 (負なら切り取り)、\n"
                "末尾に output_padding 個を追加し、反転したカーネルで相関をとる:",
        "border": "次元ごとの周囲 前 / 後: {border}",
        "image": "処理用画像 {shape}",
        "flipped": "反転したカーネル",
        "dots": "(. は挿入された 0 または周囲)",
        "matrix": "行列表示: y = W^T x、W は y を x に戻す畳み込みの行列:",
        "matrix_note": "W は出力を入力に戻す畳み込みの {rows}x{cols} 行列で、転置畳み込みは y = W^T x",
        "matrix_big": "W の要素は {entries} 個 ({rows} x {cols}); {limit} 個まで表示",
        "flat": "x (一列に並べたもの)",
        "channels": "チャネル: 各入力チャネルが各出力チャネルに足す分 (すべて足すと出力):",
        "output": "出力 y {shape}  (= tconv.conv_transpose、すべての表示が一致):",
    },
}


def check_lang(op: str, lang: object) -> str:
    """``lang`` if it is one of :data:`LANGS`, else a ValueError naming the argument."""
    if not isinstance(lang, str) or lang not in LANGS:
        raise ValueError(f"{op}: lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def words(lang: str) -> dict[str, str]:
    """The text's words in ``lang`` (one of :data:`LANGS`)."""
    return WORDS[check_lang("words", lang)]


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
