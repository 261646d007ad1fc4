"""Offline names for themes: c-TF-IDF keyphrases, a short title and a summary.

Keyphrase score (class-based TF-IDF, as in BERTopic, on item counts):

    score(t, g) = (items of g containing t / items in g) * log(1 + avg_group_size / items containing t)

The first factor rewards phrases most items of the group use, the second
punishes phrases common everywhere (so "export" names the export theme even
though "app" is in every theme). Counting items rather than raw occurrences
keeps one long, repetitive message from naming a whole group. Everything is a
sparse matrix, so 100k items cost seconds, not memory.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from bot.themes.text import STOP_WORDS, TOKEN_PATTERN, clean_text
from bot.themes.types import ThemeItem

TOP_PHRASES = 5
# A bigram replaces a chosen word it contains only if it covers most of that
# word's items ("charged twice" for "charged"), not a rare variant of it.
_BIGRAM_TAKEOVER = 0.6


def _preprocess(text: str) -> str:
    return clean_text(text).lower()


def term_matrix(texts: Sequence[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Binary item x phrase matrix (words and bigrams, stop words removed) and its vocabulary."""
    n = len(texts)
    # A phrase seen in one item only cannot describe a group; but on tiny inputs
    # (a digest of 5 items) that rule would leave nothing to name with.
    for min_df in (2, 1) if n >= 20 else (1,):
        vec = CountVectorizer(
            binary=True,
            ngram_range=(1, 2),
            min_df=min_df,
            stop_words=sorted(STOP_WORDS),
            preprocessor=_preprocess,
            token_pattern=TOKEN_PATTERN,
            strip_accents="unicode",
            dtype=np.float32,
        )
        try:
            matrix = vec.fit_transform(texts)
        except ValueError:  # empty vocabulary
            continue
        return matrix.tocsr(), vec.get_feature_names_out()
    return sparse.csr_matrix((n, 0), dtype=np.float32), np.array([], dtype=object)


def group_keyphrases(
    texts: Sequence[str], labels: np.ndarray, n_groups: int, top_n: int = TOP_PHRASES
) -> list[list[str]]:
    """The `top_n` most distinctive phrases of each group 0..n_groups-1, best first."""
    matrix, vocab = term_matrix(texts)
    if matrix.shape[1] == 0 or n_groups == 0:
        return [[] for _ in range(n_groups)]
    n = matrix.shape[0]
    onehot = sparse.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(n_groups, n))
    df_group = (onehot @ matrix).tocsr()  # (groups, phrases): items of g containing t
    df_group.sort_indices()
    df_all = np.asarray(matrix.sum(axis=0)).ravel()
    sizes = np.bincount(labels, minlength=n_groups).astype(np.float64)
    avg_size = n / max(1, int((sizes > 0).sum()))
    idf = np.log1p(avg_size / np.maximum(df_all, 1.0))
    is_bigram = np.char.count(vocab.astype(str), " ") > 0

    out: list[list[str]] = []
    for g in range(n_groups):
        lo, hi = df_group.indptr[g], df_group.indptr[g + 1]
        cols, counts = df_group.indices[lo:hi], df_group.data[lo:hi].astype(np.float64)
        if cols.size == 0:
            out.append([])
            continue
        # Outside a one-item group, a phrase must recur in the group to name it.
        keep = counts >= min(2.0, sizes[g])
        cols, counts = cols[keep], counts[keep]
        scores = counts / sizes[g] * idf[cols]
        # Best first; ties broken by phrase text so the output is deterministic.
        order = sorted(range(cols.size), key=lambda i: (-scores[i], vocab[cols[i]]))
        out.append(
            _pick(
                [(str(vocab[cols[i]]), counts[i], bool(is_bigram[cols[i]])) for i in order[: top_n * 6]],
                top_n,
            )
        )
    return out


def _pick(cands: list[tuple[str, float, bool]], top_n: int) -> list[str]:
    """Greedy pick that avoids saying the same thing twice ("charged" + "charged twice").

    `cands` are (phrase, items containing it, is_bigram), best first.
    """
    chosen: list[tuple[str, float]] = []
    for phrase, count, bigram in cands:
        if len(chosen) >= top_n:
            break
        words = phrase.split()
        if any(p == phrase for p, _ in chosen) or (bigram and words[0] == words[1]):
            continue
        if not bigram:
            # Already said inside a chosen bigram.
            if any(phrase in p.split() for p, _ in chosen):
                continue
            chosen.append((phrase, count))
            continue
        inside = [i for i, (p, _) in enumerate(chosen) if " " not in p and p in words]
        if inside:
            # The bigram replaces the word(s) it extends if it is about as common,
            # otherwise the word already stands for it.
            if count >= _BIGRAM_TAKEOVER * max(chosen[i][1] for i in inside):
                chosen[inside[0]] = (phrase, count)
                chosen = [c for i, c in enumerate(chosen) if i not in inside[1:]]
            continue
        if set(words) <= {w for p, _ in chosen for w in p.split()}:
            continue
        chosen.append((phrase, count))
    return [p for p, _ in chosen]


TITLE_MIN_WORDS, TITLE_MAX_WORDS = 3, 12
TITLE_CANDIDATES = 10  # most central items considered for the title
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")


def representative_title(
    central_texts: Sequence[str], phrases: Sequence[str], avoid: Iterable[str] = ()
) -> str | None:
    """A title that names the problem in the customers' own words, e.g. "CSV export times out".

    `central_texts` are the theme's items, most central first. The title is the first sentence of
    the most central item that is short (3-12 words), uses one of the theme's top keyphrases (so it
    is typical, not an outlier that happens to sit near the centre) and names none of `avoid` (the
    accounts: one customer's name must not headline a theme that several share). If no item is that
    short, the most central suitable first sentence is cut at 12 words; None if nothing fits.
    """
    key_words = {w for p in phrases[:3] for w in p.split()}
    banned = [a.lower() for a in avoid if a and a.strip()]
    clipped: str | None = None
    for text in central_texts[:TITLE_CANDIDATES]:
        sentence = _SENTENCE_END.split(clean_text(text), maxsplit=1)[0].strip().rstrip(".,;:!?-—– ")
        lower = sentence.lower()
        words = sentence.split()
        if len(words) < TITLE_MIN_WORDS or any(b in lower for b in banned):
            continue
        if key_words and not key_words & set(_WORD.findall(lower)):
            continue
        if len(words) <= TITLE_MAX_WORDS:
            return _capitalise(sentence)
        if clipped is None:
            clipped = " ".join(words[:TITLE_MAX_WORDS]).rstrip(".,;:!?-—– ") + "…"
    return _capitalise(clipped) if clipped else None


def _capitalise(text: str) -> str:
    """Upper-case the first letter unless the first word has its own casing ("iOS", "macOS")."""
    first = text.split(" ", 1)[0]
    return text[0].upper() + text[1:] if first.islower() else text


def make_title(phrases: Sequence[str], fallback_text: str = "", max_phrases: int = 2) -> str:
    """ "refund / billing invoice": the top phrases, or the start of an example item."""
    if phrases:
        return " / ".join(phrases[:max_phrases])
    words = clean_text(fallback_text).split()
    if not words:
        return "Miscellaneous"
    return " ".join(words[:6]) + ("…" if len(words) > 6 else "")


_KIND_PLURALS = {
    "bug": "bugs",
    "idea": "ideas",
    "feature": "feature requests",
    "feature_request": "feature requests",
    "question": "questions",
    "praise": "praise",
    "feedback": "general feedback",
    "complaint": "complaints",
}


def _kind_plural(kind: str) -> str:
    return _KIND_PLURALS.get(kind.lower(), kind.replace("_", " ") + "s")


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _money(amount: float) -> str:
    if amount >= 1_000_000:
        return f"${amount / 1_000_000:.1f}M"
    if amount >= 1_000:
        return f"${amount / 1_000:.0f}k"
    return f"${amount:.0f}"


def make_summary(items: Sequence[ThemeItem], phrases: Sequence[str], *, other: bool = False) -> str:
    """One or two plain sentences, e.g. "14 items mention refund, invoice and charged twice;
    mostly bugs from 3 accounts ($240k ARR)."."""
    n = len(items)
    count = f"{n} item" + ("" if n == 1 else "s")
    verb = "mentions" if n == 1 else "mention"
    if other:
        head = f"{count} that fit no larger theme"
        head += f", touching on {_join(list(phrases[:3]))}" if phrases else ""
    elif phrases:
        head = f"{count} {verb} {_join(list(phrases[:3]))}"
    else:
        head = f"{count} with no common wording"

    tail: list[str] = []
    kinds = Counter(it.kind for it in items if it.kind)
    if kinds:
        kind, k_count = max(kinds.items(), key=lambda kv: (kv[1], kv[0]))
        if k_count == n and n > 1:
            tail.append(f"all {_kind_plural(kind)}")
        elif k_count * 2 > n:
            tail.append(f"mostly {_kind_plural(kind)}")
    # ARR is per account, so count each account once (its largest figure).
    arr_by_customer: dict[str, float] = {}
    for it in items:
        if it.customer:
            arr_by_customer[it.customer] = max(arr_by_customer.get(it.customer, 0.0), it.arr or 0.0)
    if arr_by_customer:
        names = sorted(arr_by_customer, key=lambda c: (-arr_by_customer[c], c))
        who = _join(names) if len(names) <= 2 else f"{len(names)} accounts"
        arr = sum(arr_by_customer.values())
        tail.append(f"from {who}" + (f" ({_money(arr)} ARR)" if arr > 0 else ""))
    if not tail:
        return head + "."
    return f"{head}; {' '.join(tail)}."
