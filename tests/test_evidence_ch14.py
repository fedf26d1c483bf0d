"""Chapter 14's evidence: the mask checker's diagnoses, and the functions behind the chapter's claims
(label-smoothing ceiling, sequence log-probabilities, length-penalty reranking, scheduled sampling,
teacher-forced against free-running accuracy), each against an independent reference."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlib.data import date_task
from attnlib.data.translation import Pair
from attnlib.exercises import encoder_decoder as ex
from attnlib.exercises.core import catalogue_problem
from attnlib.experiments.encoder_decoder import (
    error_kinds,
    exposure_accuracy,
    length_penalty_table,
    token_probabilities,
)
from attnlib.torch import (
    Transformer,
    beam_nbest,
    beam_search,
    predict,
    rerank_nbest,
    scheduled_sampling_inputs,
    scheduled_sampling_loss,
    seq2seq_loss,
    shared_vocabulary_map,
    target_log_probs,
)


@pytest.fixture(autouse=True)
def _fresh():
    ex.reset()
    yield
    ex.reset()


# ----------------------------------------------------------------------------- the mask checker

def loop_mask(tgt_lengths, T):
    """The decoder mask written with loops, element by element."""
    out = torch.zeros(len(tgt_lengths), T, T, dtype=torch.bool)
    for b in range(len(tgt_lengths)):
        for i in range(T):
            for j in range(T):
                out[b, i, j] = bool(j <= i and j < int(tgt_lengths[b]))
    return out


def test_loop_written_mask_passes():
    result = ex.check_decoder_mask(loop_mask)
    assert result.passed, result.message


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_float_mask_gets_its_own_diagnosis(dtype):
    result = ex.check_decoder_mask(lambda n, T: loop_mask(n, T).to(dtype))
    assert not result.passed and result.mistake == "float_mask", result.message
    assert "boolean" in result.message and "adds" in result.message


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_integer_mask_gets_its_own_diagnosis(dtype):
    result = ex.check_decoder_mask(lambda n, T: loop_mask(n, T).to(dtype))
    assert not result.passed and result.mistake == "integer_mask", result.message


def test_numpy_mask_gets_its_own_diagnosis():
    result = ex.check_decoder_mask(lambda n, T: loop_mask(n, T).numpy())
    assert not result.passed and result.mistake == "not_a_tensor", result.message


def test_a_failed_dtype_check_is_what_the_report_counts(capsys):
    ex.check_decoder_mask(lambda n, T: loop_mask(n, T).float())
    ex.report()
    assert "0 of 3" in capsys.readouterr().out


def test_float_mask_message_is_true():
    """What the diagnosis says about PyTorch: a float 0/1 mask is added, so it hides nothing; ~ refuses floats."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, 3, generator=g) for _ in range(3))
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    with_bool = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
    with_float = F.scaled_dot_product_attention(q, k, v, attn_mask=causal.float())
    scores = q @ k.transpose(-2, -1) / math.sqrt(3) + causal.float()      # the bias, by hand
    assert torch.allclose(with_float, scores.softmax(-1) @ v, atol=1e-6)
    assert not torch.allclose(with_bool, with_float, atol=1e-3)
    assert float(scores.softmax(-1)[0, 0, 1:].sum()) > 0.2    # the first query still sees the future
    with pytest.raises(TypeError):
        ~causal.float()
    assert int(~torch.tensor(1)) == -2 and int(~torch.tensor(0)) == -1


def test_inverted_and_additive_conventions_are_named():
    inverted = ex.check_decoder_mask(lambda n, T: ~loop_mask(n, T))
    assert inverted.mistake == "inverted", inverted.message
    additive = ex.check_decoder_mask(
        lambda n, T: torch.where(loop_mask(n, T), 0.0, float("-inf")).double())
    assert additive.mistake == "additive", additive.message


@pytest.mark.parametrize("mistake", ex.DECODER_MASK.mistakes, ids=lambda m: m.name)
def test_every_mask_mistake_gets_its_own_diagnosis(mistake):
    assert catalogue_problem(ex.DECODER_MASK, mistake) == ""


# ----------------------------------------------------------------------------- small models

def tiny(seed=0, src_v=9, tgt_v=7, scale=3.0):
    torch.manual_seed(seed)
    m = Transformer(src_v, tgt_v, d_model=16, num_heads=4, d_ff=32, num_encoder_layers=1,
                    num_decoder_layers=1, dropout=0.0, max_len=40).double().eval()
    with torch.no_grad():          # sharper distributions, so that beams and alphas can differ
        m.out.weight.mul_(scale)
    return m


@pytest.fixture(scope="module")
def dates():
    task = date_task(test_formats=())
    torch.manual_seed(1)
    m = Transformer(len(task.source_vocab), len(task.target_vocab), d_model=16, num_heads=2, d_ff=32,
                    num_encoder_layers=1, num_decoder_layers=1, dropout=0.0, max_len=64,
                    tgt_to_src=shared_vocabulary_map(task.source_vocab, task.target_vocab)).double().eval()
    return task, m, task.test[:12]


def test_label_smoothing_optimum_is_the_ceiling():
    """The minimiser of the smoothed cross-entropy puts 1 - eps + eps / V on the target (the chapter's ceiling)."""
    V, eps, y = 15, 0.1, torch.tensor([4])
    z = torch.zeros(1, V, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([z], lr=2.0)
    for _ in range(3000):                      # plain gradient descent on a convex loss
        opt.zero_grad()
        F.cross_entropy(z, y, label_smoothing=eps).backward()
        opt.step()
    p = z.detach().softmax(-1)[0]
    assert abs(float(p[4]) - (1 - eps + eps / V)) < 1e-6
    assert abs(float(p[0]) - eps / V) < 1e-6
    assert abs(1 - eps + eps / V - 0.90667) < 1e-5


def test_target_log_probs_against_stepwise_decoding(dates):
    task, m, pairs = dates
    ours = target_log_probs(m, task, pairs)
    for p, lp in zip(pairs, ours):                    # one prefix at a time, by hand
        b = task.encode_batch([p])
        memory, mask = m.encode(b.src, b.src_lengths)
        total, ids = 0.0, b.tgt_in[0].tolist()
        gold = b.tgt_out[0].tolist()
        for t in range(len(gold)):
            logits = m.decode(torch.tensor([ids[:t + 1]]), memory, mask)[0, -1]
            total += float(torch.log_softmax(logits.detach(), -1)[gold[t]])
        assert abs(total - lp) < 1e-9


def test_target_log_probs_of_the_beams_winner_is_its_score(dates):
    task, m, pairs = dates
    b = task.encode_batch(pairs)
    run = beam_search(m, b.src, b.src_lengths, beam_size=3, max_len=14)
    texts = [task.target_vocab.decode(row) for row in run.tokens]
    finished = [int(task.target_vocab.stoi["<eos>"]) in row.tolist() for row in run.tokens]
    scored = target_log_probs(m, task, pairs, texts)
    for f, a, b_ in zip(finished, scored, run.log_probs.tolist()):
        if f:
            assert abs(a - b_) < 1e-9


def test_token_probabilities_sum_to_the_log_probability(dates):
    task, m, pairs = dates
    probs = token_probabilities(m, task, pairs)
    assert np.allclose(np.nansum(np.log(probs["gold"]), 1), target_log_probs(m, task, pairs), atol=1e-9)
    assert (probs["top"][~np.isnan(probs["top"])] >= probs["gold"][~np.isnan(probs["gold"])] - 1e-12).all()
    for n, p in enumerate(pairs):
        assert np.isnan(probs["gold"][n, len(p.target) + 1:]).all()


def test_rerank_matches_beam_search_with_that_alpha():
    m = tiny(seed=3, scale=1.0)
    g = torch.Generator().manual_seed(5)
    src = torch.randint(3, 9, (6, 5), generator=g)
    lengths = torch.tensor([5, 4, 5, 3, 5, 2])
    nbest = beam_search(m, src, lengths, beam_size=4, max_len=8, alpha=0.0).nbest
    differs = False
    for alpha in (0.0, 0.6, 1.0, 2.0, 5.0):
        run = beam_search(m, src, lengths, beam_size=4, max_len=8, alpha=alpha)
        for b, winner in enumerate(rerank_nbest(nbest, alpha)):
            best = run.nbest[b][0][0]
            assert winner == best, (alpha, b)
        differs |= rerank_nbest(nbest, alpha) != rerank_nbest(nbest, 0.0)
    assert differs, "pick a case where the length penalty changes some winner"


def test_rerank_hand_case():
    nbest = [[([5, 2], -1.0, -1.0), ([5, 6, 6, 6, 2], -1.5, -1.5)]]
    assert rerank_nbest(nbest, 0.0) == [[5, 2]]
    # alpha = 1: -1 / (7 / 6) = -0.857 against -1.5 / (10 / 6) = -0.9: the short one still wins
    assert rerank_nbest(nbest, 1.0) == [[5, 2]]
    # alpha = 2: -1 / (7/6)^2 = -0.735 against -1.5 / (10/6)^2 = -0.54: the long one wins
    assert rerank_nbest(nbest, 2.0) == [[5, 6, 6, 6, 2]]
    with pytest.raises(ValueError):
        rerank_nbest([[]], 0.0)
    with pytest.raises(ValueError):
        rerank_nbest(nbest, float("nan"))


def test_length_penalty_table_hand_case(dates):
    task = dates[0]
    eos = task.target_vocab.stoi["<eos>"]
    enc = lambda s: task.target_vocab.encode(s) + [eos]  # noqa: E731
    pairs = [Pair("x", "12", "k"), Pair("y", "345", "k")]
    nbest = [[(enc("1"), -1.0, -1.0), (enc("12"), -1.1, -1.1)],
             [(enc("345"), -0.5, -0.5), (enc("34567"), -0.6, -0.6)]]
    table = length_penalty_table(task, nbest, pairs, alphas=(0.0, 2.0))
    assert table[0.0] == {"exact_match": 0.5, "mean_length": 2.0, "wrong_length": 0.5}
    # alpha 2: -1/(7/6)^2 = -0.73 < -1.1/(8/6)^2 = -0.62: "12" (right, 2 characters);
    # -0.5/(9/6)^2 = -0.22 < -0.6/(11/6)^2 = -0.18: "34567" (wrong, 5 characters)
    assert table[2.0] == {"exact_match": 0.5, "mean_length": 3.5, "wrong_length": 0.5}


def test_beam_nbest_batches_like_one_search(dates):
    task, m, pairs = dates
    b = task.encode_batch(pairs)
    whole = beam_search(m, b.src, b.src_lengths, beam_size=3, max_len=14).nbest
    ours = beam_nbest(m, task, pairs, beam_size=3, batch_size=5, max_len=14)
    assert len(ours) == len(whole)
    for a, b_ in zip(ours, whole):                   # the same hypotheses, scores to rounding
        assert [h[0] for h in a] == [h[0] for h in b_]
        assert np.allclose([h[2] for h in a], [h[2] for h in b_], atol=1e-9)


# ----------------------------------------------------------------------------- scheduled sampling

def test_scheduled_sampling_zero_is_teacher_forcing(dates):
    task, m, pairs = dates
    b = task.encode_batch(pairs)
    assert torch.equal(scheduled_sampling_inputs(m, b, 0.0), b.tgt_in)
    assert torch.allclose(scheduled_sampling_loss(m, b, 0.0, 0.1), seq2seq_loss(m, b, 0.1))


def test_scheduled_sampling_one_reads_the_models_argmax(dates):
    task, m, pairs = dates
    b = task.encode_batch(pairs)
    mixed = scheduled_sampling_inputs(m, b, 1.0, sample=False)
    logits = m(b.src, b.src_lengths, b.tgt_in)
    for n in range(len(pairs)):                       # position by position, by hand
        assert int(mixed[n, 0]) == m.bos_id
        for t in range(1, b.tgt_in.shape[1]):
            if int(b.tgt_in[n, t]) == m.pad_id:
                assert int(mixed[n, t]) == m.pad_id
            else:
                assert int(mixed[n, t]) == int(logits[n, t - 1].argmax())
    loss = scheduled_sampling_loss(m, b, 1.0, 0.0, sample=False)
    want = F.cross_entropy(m(b.src, b.src_lengths, mixed).reshape(-1, logits.shape[-1]),
                           b.tgt_out.reshape(-1), ignore_index=m.pad_id)
    assert torch.allclose(loss, want)


def test_scheduled_sampling_replaces_about_the_given_fraction():
    class Fixed(torch.nn.Module):
        """Always predicts token 6, which the targets never hold."""
        pad_id = 0

        def forward(self, src, src_lengths, tgt_in):
            out = torch.full((*tgt_in.shape, 7), -30.0)
            out[..., 6] = 0.0
            return out

    class B:
        src = torch.zeros(400, 3, dtype=torch.long)
        src_lengths = torch.full((400,), 3)
        tgt_in = torch.cat([torch.ones(400, 1, dtype=torch.long), torch.full((400, 20), 4)], 1)
        tgt_in[:, 15:] = 0                            # padding
    g = torch.Generator().manual_seed(0)
    mixed = scheduled_sampling_inputs(Fixed(), B, 0.3, generator=g)
    replaced = (mixed == 6).float()
    assert abs(float(replaced[:, 1:15].mean()) - 0.3) < 0.02
    assert not bool(replaced[:, 15:].any()) and bool((mixed[:, 0] == 1).all())
    with pytest.raises(ValueError):
        scheduled_sampling_inputs(Fixed(), B, 1.5)


# ----------------------------------------------------------------------------- exposure bias

def test_exposure_accuracy_hand_case(dates):
    task, m, _ = dates
    pairs = [Pair("a", "12", "k"), Pair("b", "345", "k")]
    out = exposure_accuracy(m, task, pairs, predictions=["13", "3456"])
    # free running, by position: "13" vs "12": 1, 0, eos 1;  "3456" vs "345": 1, 1, 1, eos 0
    assert out["free_running"] == [1.0, 0.5, 1.0, 0.0]
    assert out["count"] == [2, 2, 2, 1]
    assert out["after_error_count"] == [0, 0, 1, 0]
    assert out["after_error_free"][2] == 1.0 and math.isnan(out["after_error_free"][0])
    assert out["free_running_mean"] == pytest.approx(5 / 7)


def test_exposure_accuracy_against_a_loop(dates):
    task, m, pairs = dates
    out = exposure_accuracy(m, task, pairs)
    preds = predict(m, task, pairs)
    T = max(len(p.target) for p in pairs) + 1
    forced_hits, free_hits, counts = np.zeros(T), np.zeros(T), np.zeros(T)
    for p, g in zip(pairs, preds):
        b = task.encode_batch([p])
        arg = m(b.src, b.src_lengths, b.tgt_in)[0].argmax(-1).tolist()
        gold = b.tgt_out[0].tolist()
        written = task.target_vocab.encode(g) + [task.target_vocab.stoi["<eos>"]]
        for t in range(len(gold)):
            counts[t] += 1
            forced_hits[t] += arg[t] == gold[t]
            free_hits[t] += t < len(written) and written[t] == gold[t]
    assert np.allclose(out["teacher_forced"], forced_hits / counts)
    assert np.allclose(out["free_running"], free_hits / counts)


def test_error_kinds_agree_with_the_scores(dates):
    task, m, pairs = dates
    outputs = predict(m, task, pairs)
    kinds = error_kinds(m, task, pairs, outputs)
    assert kinds["wrong"] == sum(o != p.target for o, p in zip(outputs, pairs))
    assert kinds["search_errors"] + kinds["model_errors"] == kinds["wrong"]
    for source, out, ref, lp_out, lp_ref in kinds["examples"]:
        assert out != ref
    assert error_kinds(m, task, pairs, [p.target for p in pairs])["wrong"] == 0


# ----------------------------------------------------------------------------- misuse and the seeds' statistics

def test_new_functions_refuse_bad_input(dates):
    task, m, pairs = dates
    with pytest.raises(ValueError, match="targets"):
        target_log_probs(m, task, pairs, ["12"])
    with pytest.raises(ValueError, match="batch_size"):
        beam_nbest(m, task, pairs, batch_size=0)
    with pytest.raises(ValueError, match="beams for"):
        length_penalty_table(task, [], pairs)
    with pytest.raises(TypeError, match="nbest"):
        rerank_nbest("not a list", 0.0)
    with pytest.raises(ValueError, match="predictions"):
        exposure_accuracy(m, task, pairs, predictions=["1"])


def test_mean_std_and_compare_seeds_against_numpy():
    from attnlib.experiments.encoder_decoder import compare_seeds, mean_std
    a, b = [0.99, 0.98, 0.97], [0.90, 0.91, 0.89]
    assert mean_std(a) == pytest.approx((np.mean(a), np.std(a, ddof=1)))
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError):
        mean_std([])
    assert "A higher" in compare_seeds(a, b, "A", "B")          # gap 0.08, 2 se = 0.016
    assert "no difference" in compare_seeds(a, [0.985, 0.975, 0.98], "A", "B")
    assert "no difference" in compare_seeds([1.0, 1.0], [1.0, 1.0], "A", "B")
