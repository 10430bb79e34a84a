"""Batches and metrics on hand-made logits whose right answer is known."""

from __future__ import annotations

import pytest
import torch

from editors.teacher_forcing import TokenizationError, prompt_batch, target_ids, teacher_forced_batch
from eval_suites.metrics import exact_match, locality_agreement, perplexity, target_predictions, token_accuracy
from tiny_tokenizer import word_tokenizer

PAD = 0


def logits_predicting(predicted: list[list[int]], vocab: int = 64) -> torch.Tensor:
    """Logits whose argmax at column i is `predicted[row][i]`: the guess for the token at column i + 1."""
    return 10.0 * torch.nn.functional.one_hot(torch.tensor(predicted), vocab).float()


def perfect_logits(input_ids: torch.Tensor, vocab: int = 64) -> torch.Tensor:
    """Logits that predict every next token of `input_ids` (the last column predicts padding)."""
    shifted = torch.cat([input_ids[:, 1:], torch.full_like(input_ids[:, :1], PAD)], dim=1)
    return logits_predicting(shifted.tolist(), vocab)


def tokens(tokenizer, ids) -> list[str]:
    return tokenizer.convert_ids_to_tokens(ids.tolist())


# --- batches -----------------------------------------------------------------------------------


def test_target_is_tokenised_with_its_leading_space():
    tokenizer = word_tokenizer()
    batch = teacher_forced_batch(tokenizer, [("The capital of Yemen is", "Sanaa")])
    assert tokens(tokenizer, batch.input_ids[0]) == ["The", "▁capital", "▁of", "▁Yemen", "▁is", "▁Sanaa"]
    assert batch.target_mask[0].tolist() == [False] * 5 + [True]
    assert batch.prompt_mask[0].tolist() == [True] * 5 + [False]
    assert tokenizer.convert_tokens_to_ids("Sanaa") not in batch.input_ids.tolist()[0]


def test_rows_are_left_padded_and_bos_stays_on_the_prompt_only():
    tokenizer = word_tokenizer(bos=True)
    batch = teacher_forced_batch(tokenizer, [("Lima is", "a city"), ("The capital of Peru is", "Lima")])
    short, long = batch.input_ids.tolist()
    assert tokens(tokenizer, batch.input_ids[1]) == ["[BOS]", "The", "▁capital", "▁of", "▁Peru", "▁is", "▁Lima"]
    assert short[:2] == [PAD, PAD]
    assert tokens(tokenizer, batch.input_ids[0])[2:] == ["[BOS]", "Lima", "▁is", "▁a", "▁city"]
    assert batch.attention_mask[0].tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert batch.prompt_mask[0].tolist() == [False, False, True, True, True, False, False]
    assert batch.target_mask[0].tolist() == [False] * 5 + [True, True]
    assert target_ids(tokenizer, "Lima") == [tokenizer.convert_tokens_to_ids("▁Lima")]  # no BOS on targets


def test_prompt_batch_is_left_padded_prompts_alone():
    tokenizer = word_tokenizer()
    batch = prompt_batch(tokenizer, ["Lima is", "The capital of Peru is"])
    assert batch.input_ids[0].tolist()[:3] == [PAD] * 3
    assert batch.prompt_mask.equal(batch.attention_mask.bool())
    assert not batch.target_mask.any()


def test_an_empty_target_is_refused():
    with pytest.raises(TokenizationError, match="empty"):
        teacher_forced_batch(word_tokenizer(), [("The capital of Peru is", "   ")])


# --- Rel / Gen ---------------------------------------------------------------------------------


def test_accuracy_reads_the_logits_one_column_before_each_target_token():
    input_ids = torch.tensor([[5, 6, 7, 8], [PAD, PAD, 5, 9]])
    target_mask = torch.tensor([[False, False, True, True], [False, False, False, True]])
    predicted = [
        [1, 7, 3, 1],  # column 1 predicts 7 (right), column 2 predicts 3 instead of 8 (wrong)
        [9, 9, 9, 2],  # padding columns "predict" the target: must not count; column 2 predicts 9
    ]
    assert token_accuracy(logits_predicting(predicted), input_ids, target_mask) == [0.5, 1.0]
    aligned_with_the_target_itself = [[1, 1, 7, 8], [1, 1, 1, 9]]
    assert token_accuracy(logits_predicting(aligned_with_the_target_itself), input_ids, target_mask) == [0.0, 0.0]


def test_accuracy_scores_the_spaced_token_not_the_bare_one():
    tokenizer = word_tokenizer()
    batch = teacher_forced_batch(tokenizer, [("The capital of Yemen is", "Sanaa city"), ("Lima is", "a city")])
    right = perfect_logits(batch.input_ids)
    assert token_accuracy(right, batch.input_ids, batch.target_mask) == [1.0, 1.0]
    bare = right.clone()
    first_target_column = int(batch.target_mask[0].nonzero()[0])
    bare[0, first_target_column - 1] = logits_predicting([[tokenizer.convert_tokens_to_ids("Sanaa")]])[0, 0]
    assert token_accuracy(bare, batch.input_ids, batch.target_mask) == [0.5, 1.0]


def test_a_target_in_column_zero_is_refused():
    with pytest.raises(ValueError, match="column 0"):
        token_accuracy(logits_predicting([[1, 2]]), torch.tensor([[1, 2]]), torch.tensor([[True, True]]))


# --- Loc ---------------------------------------------------------------------------------------


def test_locality_is_agreement_with_the_unedited_argmax():
    input_ids = torch.tensor([[5, 6, 7, 8], [PAD, 5, 6, 9]])
    target_mask = torch.tensor([[False, False, True, True], [False, False, True, True]])
    before = logits_predicting([[1, 2, 3, 4], [9, 9, 9, 9]])
    reference = target_predictions(before, target_mask)
    assert [row.tolist() for row in reference] == [[2, 3], [9, 9]]
    after = logits_predicting([[0, 2, 4, 0], [0, 9, 9, 0]])  # row 0: one of two answer positions moved
    assert locality_agreement(after, target_mask, reference) == [0.5, 1.0]
    # agreement, not correctness: the unedited model was wrong on row 1 (9 is not 6), Loc is still 1
    assert token_accuracy(before, input_ids, target_mask)[1] == 0.5


def test_locality_refuses_a_reference_of_another_shape():
    target_mask = torch.tensor([[False, True, True]])
    with pytest.raises(ValueError, match="answer positions"):
        locality_agreement(logits_predicting([[1, 2, 3]]), target_mask, [torch.tensor([2])])


# --- PPL ---------------------------------------------------------------------------------------


def test_perplexity_is_exp_of_the_mean_target_nll():
    probabilities = torch.full((2, 4, 4), 0.25)
    probabilities[0, 1] = torch.tensor([0.5, 0.0, 0.5, 0.0]) + 1e-12  # P(token 2) = 1/2
    probabilities[0, 2] = torch.tensor([0.25, 0.25, 0.25, 0.25])  # P(token 3) = 1/4
    probabilities[1, :2] = torch.tensor([1.0, 0.0, 0.0, 0.0]) + 1e-12  # padding columns: ignored
    input_ids = torch.tensor([[1, 1, 2, 3], [PAD, PAD, 1, 3]])
    target_mask = torch.tensor([[False, False, True, True], [False, False, False, True]])
    scores = perplexity(probabilities.log(), input_ids, target_mask)
    assert scores[0] == pytest.approx(2 ** 1.5)  # exp((ln 2 + ln 4) / 2)
    assert scores[1] == pytest.approx(4.0)  # uniform over 4 tokens
    assert perplexity(perfect_logits(input_ids, 4) * 10, input_ids, target_mask) == pytest.approx([1.0, 1.0])


# --- exact match of generation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "generated, target, expected",
    [
        (" Sanaa", "Sanaa", 1.0),
        ("Sanaa.", "Sanaa", 1.0),  # generation may run past the target
        ("Sanaa is old", "Sanaa", 1.0),
        ("  New\n York  city", "New York", 1.0),  # whitespace is normalised
        ("Sanaaa", "Sanaa", 0.0),  # the target must end on a word boundary
        ("2006", "200", 0.0),
        ("sanaa", "Sanaa", 0.0),  # case-sensitive
        ("The capital is Sanaa", "Sanaa", 0.0),  # must begin with the target
        ("", "Sanaa", 0.0),
    ],
)
def test_exact_match_of_generation(generated, target, expected):
    assert exact_match([generated], [target]) == [expected]


def test_exact_match_refuses_unpaired_lists():
    with pytest.raises(ValueError, match="2 generations but 1 targets"):
        exact_match(["a", "b"], ["a"])



# --- the shipped evaluate modules --------------------------------------------------------------


@pytest.fixture(scope="module")
def modules():
    """The modules as anyone loads them: `evaluate.load(<folder>)`, offline."""
    import evaluate

    from eval_suites.metrics import MODULES_DIR

    return {name: evaluate.load(str(MODULES_DIR / name)) for name in ("token_accuracy", "target_perplexity", "generation_exact_match")}


def test_modules_match_plain_torch_formulas_bit_for_bit(modules):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 64, generator=generator) * 3
    input_ids = torch.randint(1, 64, (3, 7), generator=generator)
    target_mask = torch.tensor([[False] * 3 + [True] * 4, [False] * 5 + [True] * 2, [False] * 6 + [True]])
    selected = logits[:, :-1][target_mask[:, 1:]]
    counts = target_mask.sum(dim=1).tolist()
    hits = torch.split(selected.argmax(dim=-1) == input_ids[target_mask], counts)
    nll = torch.split(torch.nn.functional.cross_entropy(selected, input_ids[target_mask], reduction="none"), counts)
    expected_accuracy = [row.float().mean().item() for row in hits]
    expected_ppl = [torch.exp(row.mean()).item() for row in nll]
    assert token_accuracy(logits, input_ids, target_mask) == expected_accuracy
    assert perplexity(logits, input_ids, target_mask) == expected_ppl
    predicted = [row.tolist() for row in target_predictions(logits, target_mask)]
    targets = [row.tolist() for row in torch.split(input_ids[target_mask], counts)]
    direct = modules["token_accuracy"].compute(predictions=predicted, references=targets)
    assert direct["scores"] == expected_accuracy
    assert direct["token_accuracy"] == sum(expected_accuracy) / 3
    assert modules["target_perplexity"].compute(predictions=[row.tolist() for row in nll])["perplexities"] == expected_ppl


def test_exact_match_module_is_the_harness_rule(modules):
    generated, targets = [" Sanaa.", "Sanaaa", "  New\n York  city", "sanaa"], ["Sanaa", "Sanaa", "New York", "Sanaa"]
    result = modules["generation_exact_match"].compute(predictions=generated, references=targets)
    assert result == {"exact_match": 0.5, "scores": exact_match(generated, targets)}
    assert result["scores"] == [1.0, 0.0, 1.0, 0.0]
