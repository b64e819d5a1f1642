"""Text cleaning for every record: Unicode normalisation, HTML remnants, whitespace and length limits.

Normalisation is NFKC (full-width letters and digits become ASCII, compatibility forms are folded) except
for the full-width punctuation that Chinese text uses (，：；？！（）～ and …), which NFKC would turn into
ASCII; those stay as they are. Spaces between two CJK characters are dropped (they are typing noise in
web text); indentation at the start of a line is kept (code in general instructions).
"""

from __future__ import annotations

import dataclasses
import html
import re
import unicodedata
from dataclasses import dataclass

from pedgpt.data.corpus.sources import Unusable
from pedgpt.data.schema import EvalItem, Instruction, Message, PreferencePair, PretrainText, Record

#: Chinese punctuation kept through NFKC (mapped to private-use code points and back).
KEEP_PUNCT = "，：；？！（）～…"
_TO_PUA = {ord(c): 0xE000 + i for i, c in enumerate(KEEP_PUNCT)}
_FROM_PUA = {v: k for k, v in _TO_PUA.items()}
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef"
_HTML_TAG = re.compile(
    r"</?(?:p|div|span|b|i|u|strong|em|font|a|img|br|li|ul|ol|h[1-6]|sup|sub|table|tbody|"
    r"tr|td|th)\b[^<>]{0,200}>",
    re.IGNORECASE,
)
_BREAK_TAG = re.compile(r"<br\s*/?>|</p>|</div>|</li>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:[a-zA-Z]{2,8}|#\d{2,6}|#x[0-9a-fA-F]{2,5});")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2028\u2029\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}")


def normalize(text: str) -> str:
    """NFKC that keeps Chinese full-width punctuation (see module doc)."""
    return unicodedata.normalize("NFKC", text.translate(_TO_PUA)).translate(_FROM_PUA)


def strip_html(text: str) -> str:
    """Line-break tags → newlines, other common tags removed, entities (``&nbsp;`` …) unescaped."""
    text = _BREAK_TAG.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    if _ENTITY.search(text):
        text = html.unescape(text).replace("\xa0", " ")
    return text


def tidy_whitespace(text: str) -> str:
    """CRLF → LF; invisible characters dropped; spaces between CJK characters dropped; inner runs of
    spaces collapsed (leading indentation kept); trailing spaces and 3+ blank lines removed."""
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CJK_GAP.sub("", text)
    text = _INNER_SPACES.sub(" ", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def clean_text(text: str, html_remnants: bool = True) -> str:
    """The full cleaning of one string: HTML remnants, normalisation, whitespace."""
    if html_remnants:
        text = strip_html(text)
    return tidy_whitespace(normalize(text))


@dataclass(frozen=True)
class Limits:
    """Length limits in characters; a record outside them is skipped with a counted reason."""

    max_message_chars: int = 4000
    max_text_chars: int = 20000
    min_answer_chars: int = 2
    html_remnants: bool = True


def _msgs(messages: list[Message], limits: Limits) -> list[Message]:
    out = [Message(m.role, clean_text(m.content, limits.html_remnants)) for m in messages]
    if any(not m.content for m in out):
        raise Unusable("empty_after_cleaning")
    if any(len(m.content) > limits.max_message_chars for m in out):
        raise Unusable("too_long")
    return out


def _answer(text: str, limits: Limits) -> str:
    text = clean_text(text, limits.html_remnants)
    if len(text) < limits.min_answer_chars:
        raise Unusable("answer_too_short")
    if len(text) > limits.max_message_chars:
        raise Unusable("too_long")
    return text


def clean_record(record: Record, limits: Limits) -> Record:
    """A cleaned copy of ``record``; raises :class:`Unusable` (``too_long``, ``answer_too_short``, …)."""
    if isinstance(record, PretrainText):
        text = clean_text(record.text, limits.html_remnants)
        if not text:
            raise Unusable("empty_after_cleaning")
        if len(text) > limits.max_text_chars:
            raise Unusable("too_long")
        return dataclasses.replace(record, text=text)
    if isinstance(record, Instruction):
        msgs = _msgs(record.messages, limits)
        msgs[-1] = Message("assistant", _answer(msgs[-1].content, limits))
        return dataclasses.replace(record, messages=msgs)
    if isinstance(record, PreferencePair):
        chosen, rejected = _answer(record.chosen, limits), _answer(record.rejected, limits)
        if chosen == rejected:
            raise Unusable("identical_pair")
        return dataclasses.replace(record, prompt=_msgs(record.prompt, limits), chosen=chosen, rejected=rejected)
    if isinstance(record, EvalItem):
        ref = record.reference
        if ref is not None and record.choices is None:
            ref = _answer(ref, limits)
        turns = [_answer(t, limits) for t in record.turn_references] if record.turn_references else None
        return dataclasses.replace(record, prompt=_msgs(record.prompt, limits), reference=ref, turn_references=turns)
    return record
