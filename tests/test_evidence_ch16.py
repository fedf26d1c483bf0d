"""Chapter 16's evidence: the WordPiece checker's new diagnoses, the Winograd pairs and their
statistics, the per-layer probes with the word-table control, and the head patterns.

References are independent of the code under test: Hugging Face ``tokenizers``' WordPiece model,
``scipy.stats.binomtest``, ``torch.nn.Linear`` trained with ``torch.optim.Adam`` one probe at a
time, hand-computed small cases, and per-sentence runs of :func:`attnlib.pretrained.pronoun_attention`.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlib.exercises import pretrained_encoder as ex
from attnlib.exercises.core import catalogue_problem
from attnlib.experiments import pretrained_encoder as xp

# ----------------------------------------------------------------------------- the WordPiece checker

def loop_wordpiece(word, vocab):
    """Greedy longest match first, written as a search over the rest of the word."""
    pieces, rest, first = [], word, True
    while rest:
        for cut in range(len(rest), 0, -1):
            piece = rest[:cut] if first else "##" + rest[:cut]
            if piece in vocab:
                pieces.append(piece)
                rest, first = rest[cut:], False
                break
        else:
            return ["[UNK]"]
    return pieces


def learner_fallback(word, vocab):
    """A learner's slip: inside a word, take the bare piece when the '##' one is missing."""
    pieces, i = [], 0
    while i < len(word):
        j = len(word)
        while j > i:
            cand = word[i:j]
            if i > 0 and "##" + cand in vocab:
                pieces.append("##" + cand)
                break
            if cand in vocab:          # the slip: also accepted inside the word
                pieces.append(cand)
                break
            j -= 1
        if j == i:
            return ["[UNK]"]
        i = j
    return pieces


def learner_fallback_second_pass(word, vocab):
    """Another form of the slip: a second pass without '##' when the first found nothing."""
    def longest(rest, prefix):
        for cut in range(len(rest), 0, -1):
            if prefix + rest[:cut] in vocab:
                return prefix + rest[:cut], cut
        return None, 0
    pieces, pos = [], 0
    while pos < len(word):
        piece, cut = longest(word[pos:], "" if pos == 0 else "##")
        if piece is None and pos > 0:
            piece, cut = longest(word[pos:], "")
        if piece is None:
            return ["[UNK]"]
        pieces.append(piece)
        pos += cut
    return pieces


@pytest.mark.parametrize("mistake", ex.WORDPIECE.mistakes, ids=lambda m: m.name)
def test_every_wordpiece_mistake_gets_its_own_diagnosis(mistake):
    assert catalogue_problem(ex.WORDPIECE, mistake) == ""


def test_loop_written_wordpiece_passes():
    assert ex.check_wordpiece(loop_wordpiece).passed


@pytest.mark.parametrize("fn, name", [(learner_fallback, "unprefixed_fallback"),
                                      (learner_fallback_second_pass, "unprefixed_fallback_last")])
def test_unprefixed_fallback_is_named(fn, name):
    result = ex.check_wordpiece(fn)
    assert not result.passed
    assert result.mistake == name
    assert "##" in str(result)


def test_the_fallback_cases_agree_with_hugging_face_wordpiece():
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {p: i for i, p in enumerate(sorted(ex.VOCAB))}
    hf = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    for case in ex._wp_cases():
        word = case.args[0]
        assert loop_wordpiece(word, ex.VOCAB) == hf.encode(word).tokens, word
    # and the new cases do tell the fallback from the right answer
    assert hf.encode("playtoken").tokens == ["play", "##to", "##ken"]
    assert learner_fallback("playtoken", ex.VOCAB) == ["play", "token"]
    assert hf.encode("playrun").tokens == ["[UNK]"]


# ----------------------------------------------------------------------------- Winograd pairs

@pytest.fixture(scope="module")
def minilm():
    from attnlib.pretrained import load_minilm
    return load_minilm(torch.device("cpu"))


def test_pairs_are_minimal_and_balanced():
    sents = xp.winograd_sentences()
    assert len(sents) >= 30
    for a, b in sents:
        wa, wb = a["sentence"].split(), b["sentence"].split()
        assert len(wa) == len(wb) and sum(x != y for x, y in zip(wa, wb)) == 1   # one word differs
        assert a["pronoun"] == b["pronoun"] and a["candidates"] == b["candidates"]
        assert {a["referent"], b["referent"]} == {0, 1}                          # the flip flips the referent


def test_every_pronoun_and_noun_is_one_token_once(minilm):
    _, tok = minilm
    for pair in xp.winograd_sentences():
        for s in pair:
            tokens = tok.tokenize(s["sentence"])
            for w in (s["pronoun"], *s["candidates"]):
                assert tokens.count(w) == 1, (w, s["sentence"])


def test_batched_weights_equal_one_sentence_at_a_time(minilm):
    from attnlib.pretrained import pronoun_attention
    model, tok = minilm
    pairs = xp.WINOGRAD_PAIRS[:3] + xp.WINOGRAD_PAIRS[-3:]
    out = xp.winograd_weights(model, tok, pairs, batch_size=4)
    assert out["weights"].shape == (6, 2, 6, 12, 2)
    for i, pair in enumerate(out["sentences"]):
        for j, s in enumerate(pair):
            ref = pronoun_attention(model, tok, s["sentence"], s["pronoun"], s["candidates"])["weights"]
            torch.testing.assert_close(out["weights"][i, j], ref, atol=1e-5, rtol=0)
            assert int(out["referents"][i, j]) == s["referent"]


def test_layer_one_is_at_chance_by_construction(minilm):
    # In layer 1 the pronoun's query and the nouns' keys ignore the flipped word: only the softmax's
    # denominator changes, so the ratio of the two weights is the same in both sentences.
    model, tok = minilm
    w = xp.winograd_weights(model, tok, xp.WINOGRAD_PAIRS[:8])["weights"]
    ratio = w[:, :, 0, :, 0] / w[:, :, 0, :, 1]
    torch.testing.assert_close(ratio[:, 0], ratio[:, 1], rtol=1e-4, atol=0)


def test_referent_correct_by_hand():
    w = torch.zeros(2, 2, 1, 2, 2)
    w[0, 0, 0, 0] = torch.tensor([0.3, 0.1])   # prefers noun 0
    w[0, 1, 0, 0] = torch.tensor([0.3, 0.1])
    w[1, 0, 0, 0] = torch.tensor([0.1, 0.3])
    w[1, 1, 0, 0] = torch.tensor([0.3, 0.1])
    w[:, :, 0, 1] = 0.2                         # head 2: ties everywhere
    ref = torch.tensor([[0, 1], [1, 0]])
    c = xp.referent_correct(w, ref)
    assert c[:, :, 0, 0].tolist() == [[True, False], [True, True]]
    assert not c[:, :, 0, 1].any()              # a tie is not a preference
    assert xp.head_accuracy(c, [0, 1]).tolist() == [[0.75, 0.0]]
    assert xp.select_heads(w, ref, [0, 1], k=1) == [(0, 0)]


def test_sign_test_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(5, 5), (0, 5), (6, 7), (3, 6), (10, 30), (1, 1)]:
        assert xp.sign_test(k, n) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, rel=1e-9)
    assert xp.sign_test(0, 0) == 1.0


def test_paired_permutation_test_by_hand():
    # [0.042, 0.042, 0, 0.042, -0.01]: |flipped mean| >= observed only when the three 0.042 share a
    # sign (2 ways), whatever the signs of 0 and -0.01 (4 ways): 8 of 32
    assert xp.paired_permutation_test([0.042, 0.042, 0.0, 0.042, -0.01]) == pytest.approx(8 / 32)
    assert xp.paired_permutation_test([1.0, 1.0, 1.0]) == pytest.approx(2 / 8)
    assert xp.paired_permutation_test([0.0, 0.0]) == 1.0
    with pytest.raises(ValueError, match="differences"):
        xp.paired_permutation_test([])


def test_accuracy_spread_by_hand():
    c = torch.tensor([[True, True], [True, False], [False, True], [False, False], [True, True]])
    r = xp.accuracy_spread(c)
    assert r["accuracy"] == pytest.approx(6 / 10)
    assert r["se"] == pytest.approx(np.sqrt(0.6 * 0.4 / 10))
    assert (r["both"], r["one"], r["neither"], r["n"]) == (2, 2, 1, 10)
    assert r["p_sign"] == pytest.approx(1.0)     # 2 against 1: P(X >= 2 | 3) = 1/2, two-sided 1


def test_report_confirms_on_held_out_pairs_only():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(20, 2, 2, 3, 2, generator=g)
    ref = torch.tensor([[0, 1]] * 20)
    sel, held = xp.split_pairs(20, 10, np.random.default_rng(0))
    assert sorted(sel.tolist() + held.tolist()) == list(range(20))
    rep = xp.winograd_report(w, ref, sel, held, k=2)
    correct = xp.referent_correct(w, ref)
    for h in rep["heads"]:
        want = correct[torch.as_tensor(held)][:, :, h["layer"], h["head"]].float().mean()
        assert h["heldout"]["accuracy"] == pytest.approx(float(want))
    with pytest.raises(ValueError, match="share pairs"):
        xp.winograd_report(w, ref, sel, sel, k=1)


# ----------------------------------------------------------------------------- probes by layer

def test_batched_probes_equal_independent_runs():
    g = torch.Generator().manual_seed(1)
    N, E, C = 48, 6, 3
    features = {"a": torch.randn(N, E, generator=g), "b": torch.randn(N, E, generator=g)}
    labels = torch.arange(N) % C
    word_index = (torch.arange(N) // C % 4).numpy()               # 4 "words" per class
    splits = [np.array([[True, True, False, False]] * C), np.array([[False, True, True, False]] * C)]
    out = xp.probe_by_layer(features, labels, word_index, splits, steps=30, lr=0.05, progress=False)
    for name, f in features.items():
        for s, split in enumerate(splits):
            is_train = torch.as_tensor(split[labels.numpy(), word_index])
            torch.manual_seed(s)
            lin = torch.nn.Linear(E, C)
            opt = torch.optim.Adam(lin.parameters(), lr=0.05)
            for _ in range(30):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(lin(f[is_train]), labels[is_train]).backward()
                opt.step()
            with torch.no_grad():
                pred = lin(f).argmax(-1)
            assert out["test"][name][s] == pytest.approx(float((pred == labels)[~is_train].float().mean()))
            assert out["train"][name][s] == pytest.approx(float((pred == labels)[is_train].float().mean()))


def test_batched_probe_leaves_the_random_stream_alone():
    torch.manual_seed(3)
    want = torch.rand(3)
    torch.manual_seed(3)
    xp.BatchedProbe(2, 4, 3, [0, 1])
    torch.testing.assert_close(torch.rand(3), want)


def test_word_splits():
    splits = xp.word_splits(4, rng=np.random.default_rng(0))
    assert splits[0][:, :10].all() and not splits[0][:, 10:].any()     # the chapter's template_task split
    assert all(s.shape == (4, 16) and (s.sum(1) == 10).all() for s in splits)
    assert len({s.tobytes() for s in splits}) == 4


def test_layer_features_by_hand(minilm):
    from attnlib.pretrained import sentence_embeddings
    model, tok = minilm
    sentences = ["I saw the dog yesterday.", "Hi!", "The zebra was next to the door."]
    f = xp.layer_features(model, tok, sentences, batch_size=2)
    assert list(f) == ["word table", "embeddings"] + [f"layer {i}" for i in range(1, 7)]
    torch.testing.assert_close(f["layer 6"], sentence_embeddings(sentences), atol=1e-5, rtol=0)
    for i, s in enumerate(sentences):
        ids = tok([s])["input_ids"][0]                             # one sentence: no padding
        with torch.no_grad():
            table = model.word_embeddings.weight[ids].mean(0)
            emb = model.embeddings_norm(model.word_embeddings.weight[ids] + model.position_embeddings.weight[:len(ids)]
                                        + model.token_type_embeddings.weight[0]).mean(0)
        torch.testing.assert_close(f["word table"][i], table / table.norm(), atol=1e-5, rtol=0)
        torch.testing.assert_close(f["embeddings"][i], emb / emb.norm(), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- head patterns, overlap

def test_head_patterns_by_hand(minilm):
    from attnlib.pretrained import attention_records
    model, tok = minilm
    sentences = ["The cat sat on the mat.", "A much longer sentence, with a comma and more words in it."]
    pat = xp.head_patterns(model, tok, sentences, batch_size=2)
    recs = attention_records(model, tok, sentences)
    prev, cls, count_prev, count_all = 0.0, 0.0, 0, 0
    for s in sentences:
        A = recs[s]["attentions"]                                    # (6, 12, L, L), no padding
        L = A.shape[-1]
        for p in range(L):
            cls = cls + A[:, :, p, 0]
            count_all += 1
            if p >= 1:
                prev = prev + A[:, :, p, p - 1]
                count_prev += 1
    np.testing.assert_allclose(pat["previous"].numpy(), prev / count_prev, atol=1e-5)
    np.testing.assert_allclose(pat["cls"].numpy(), cls / count_all, atol=1e-5)


def test_overlap_similarity_by_hand(minilm):
    _, tok = minilm
    s = xp.overlap_similarity(["the cat sat", "dogs!"], ["The cat ran.", "the cat sat"], tok)
    # {the, cat, sat} vs {the, cat, ran}: 2 / 4; vs itself: 1; 'dogs' shares nothing
    torch.testing.assert_close(s, torch.tensor([[0.5, 1.0], [0.0, 0.0]]))


# ----------------------------------------------------------------------------- misuse, figures

@pytest.mark.parametrize("call, error, match", [
    (lambda: xp.winograd_sentences("pairs"), TypeError, "pairs"),
    (lambda: xp.winograd_sentences([("no slot", ("a", "b"), "it", ("x", "y"), (0, 1))]), ValueError, r"pairs\[0\]"),
    (lambda: xp.split_pairs(10, 10, np.random.default_rng(0)), ValueError, "n_selection"),
    (lambda: xp.split_pairs(10, 5, 0), TypeError, "rng"),
    (lambda: xp.referent_correct(torch.zeros(3, 2, 1, 1, 2), torch.zeros(3, 3, dtype=torch.long)), ValueError, "referents"),
    (lambda: xp.referent_correct(torch.zeros(3, 2, 1, 2), torch.zeros(3, 2, dtype=torch.long)), ValueError, "weights"),
    (lambda: xp.select_heads(torch.zeros(3, 2, 1, 2, 2), torch.zeros(3, 2, dtype=torch.long), [5]), ValueError, "selection"),
    (lambda: xp.sign_test(4, 3), ValueError, "k must be at most n"),
    (lambda: xp.accuracy_spread(torch.zeros(0, 2, dtype=torch.bool)), ValueError, "correct_pairs"),
    (lambda: xp.word_splits(2, n_train=16), ValueError, "n_train"),
    (lambda: xp.BatchedProbe(1, 4, 2, "0"), TypeError, "seeds"),
    (lambda: xp.probe_by_layer({}, torch.zeros(2, dtype=torch.long), [0, 1], [np.ones((1, 2), bool)]), TypeError, "features"),
    (lambda: xp.probe_by_layer({"a": torch.zeros(2, 3)}, torch.zeros(2, dtype=torch.long), [0, 1],
                               [np.ones((1, 2), bool)], progress=False), ValueError, "training and test"),
    (lambda: xp.overlap_similarity(["a"], ["b"], None), TypeError, "tokenizer"),
    (lambda: xp.head_patterns(None, None, ["a"]), TypeError, "model"),
    (lambda: xp.winograd_weights("model", None), TypeError, "model"),
    (lambda: xp.layer_features(torch.nn.Linear(2, 2), None, ["a"]), TypeError, "model"),
])
def test_misuse_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_figures_draw():
    import matplotlib.pyplot as plt

    from attnlib.viz.pretrained import probe_layers_figure, winograd_heads_figure
    g = torch.Generator().manual_seed(0)
    w = torch.rand(10, 2, 2, 3, 2, generator=g)
    ref = torch.tensor([[0, 1]] * 10)
    sel, held = xp.split_pairs(10, 5, np.random.default_rng(0))
    rep = xp.winograd_report(w, ref, sel, held, k=2)
    rs = xp.repeated_selection(w, ref, 5, 5, np.random.default_rng(1))
    fig = winograd_heads_figure(rep, rs)
    assert len(fig.axes) == 2
    test = {"word table": np.array([0.9, 1.0]), "layer 1": np.array([1.0, 1.0]), "random": np.array([0.2, 0.3])}
    fig2 = probe_layers_figure(test, ["word table", "layer 1"], controls={"random": "random"}, chance=0.25)
    assert len(fig2.axes) == 1
    plt.close("all")
