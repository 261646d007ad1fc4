"""BERT's uncased WordPiece tokenizer in plain Python, for the bundled static model.

The static embedder (`bot/themes/static.py`) only needs token ids, and pulling in a compiled
tokenizer library for a dictionary walk would be a new native dependency on the default install. This
follows the rules of Hugging Face's `BertNormalizer` (clean text, pad CJK characters, strip accents,
lowercase), `BertPreTokenizer` (split on whitespace and punctuation) and `WordPiece` (greedy
longest match, `##` continuations, a word that cannot be covered is one `[UNK]`), which is the
tokenizer all-MiniLM-L6-v2 ships with. tests/unit/test_themes.py checks it id for id against the
`tokenizers` library on realistic text whenever that library is installed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

MAX_CHARS_PER_WORD = 100


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Cn", "Co", "Cs")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # ASCII symbols such as "$", "^" and "`" are not Unicode punctuation, but BERT splits on them too.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


# ASCII control characters BERT drops (tab, newline and carriage return are whitespace instead).
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# In lowercased ASCII every printable character that is not a letter or digit is BERT punctuation.
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def normalize(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)."""
    if text.isascii():  # the common case, ~20x faster: no accents, no CJK, controls are a regex away
        return _ASCII_CONTROL.sub("", text).lower()
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    # Hugging Face lowercases before stripping accents (NFD, then drop combining marks).
    decomposed = unicodedata.normalize("NFD", "".join(out).lower())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def pre_tokenize(text: str) -> list[str]:
    """Whitespace split, then every punctuation character is a word of its own."""
    if text.isascii():
        return _ASCII_WORDS.findall(text.lower())
    words: list[str] = []
    for chunk in text.split():
        start = 0
        for i, ch in enumerate(chunk):
            if _is_punctuation(ch):
                if i > start:
                    words.append(chunk[start:i])
                words.append(ch)
                start = i + 1
        if start < len(chunk):
            words.append(chunk[start:])
    return words


class WordPiece:
    """Text -> token ids for a BERT-style vocabulary (`vocab[i]` is the token with id i)."""

    def __init__(self, vocab: Sequence[str], unk_token: str = "[UNK]") -> None:
        self.ids = {tok: i for i, tok in enumerate(vocab)}
        self.unk_id = self.ids[unk_token]
        # Per-instance cache of word -> ids: feedback repeats the same few thousand words.
        self._word_ids = lru_cache(maxsize=65536)(self._word_to_ids)

    def _word_to_ids(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_CHARS_PER_WORD:
            return (self.unk_id,)
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.ids.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self.unk_id,)
            ids.append(found)
            start = end
        return tuple(ids)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in pre_tokenize(normalize(text)):
            ids.extend(self._word_ids(word))
        return ids
