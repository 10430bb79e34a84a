"""The routing stages beyond the paper's: IDF-weighted pooling, the feature-similarity and the margin checks."""

from __future__ import annotations

import torch

import memoir
from peft import PeftModel
from conftest import routed, store_edit, tiny_model, tiny_tokenizer, wrap
from editors.background import token_idf


def _route(model, ids: torch.Tensor):
    return routed(model, ids)[1]


def test_a_match_whose_feature_points_elsewhere_is_refused():
    memory = memoir.ResidualMemory(96, 64, memoir.MemoirConfig(top_k=24, tau=0.9, min_similarity=0.5))
    stored = torch.randn(1, 96, generator=torch.Generator().manual_seed(0))
    memory.store(stored)
    same_columns_opposite_sign = -stored  # |feature| is identical, so the TopHash masks overlap fully
    routing = memory.route(torch.cat([stored, same_columns_opposite_sign]))
    assert routing.overlap.tolist() == [1.0, 1.0]
    assert routing.active.tolist() == [True, False]


def test_without_min_similarity_overlap_alone_decides():
    memory = memoir.ResidualMemory(96, 64, memoir.MemoirConfig(top_k=24, tau=0.9))
    stored = torch.randn(1, 96, generator=torch.Generator().manual_seed(0))
    memory.store(stored)
    assert memory.route(torch.cat([stored, -stored])).active.tolist() == [True, True]


def _columns(*ranges: range) -> torch.Tensor:
    mask = torch.zeros(1, 96, dtype=torch.bool)
    for columns in ranges:
        mask[0, list(columns)] = True
    return mask


def _margin_memory(**settings) -> memoir.ResidualMemory:
    """Four stored masks of 24 columns: A, its sibling B (18 shared columns), and C, D apart from both."""
    memory = memoir.ResidualMemory(96, 64, memoir.MemoirConfig(top_k=24, tau=0.3, **settings))
    stored = torch.cat([_columns(range(0, 24)), _columns(range(0, 18), range(24, 30)), _columns(range(30, 54)), _columns(range(54, 78))])
    memory.index.add(stored, torch.randn(4, 96, generator=torch.Generator().manual_seed(0)))
    return memory


def _fires(memory: memoir.ResidualMemory, query: torch.Tensor) -> bool:
    return bool(memory.route_centred(query, torch.ones(1, 96)).active)


AMBIGUOUS = _columns(range(0, 12), range(30, 42))  # overlap .5 with A, B and C alike
NEAR_A = _columns(range(0, 20), range(80, 84))  # A .83, its sibling B .75, nothing else


def test_an_ambiguous_match_is_refused_and_one_clear_of_the_crowd_fires():
    memory = _margin_memory(min_margin=0.2, margin_rank=3)
    assert not _fires(memory, AMBIGUOUS)
    assert _fires(memory, NEAR_A)  # B is rank 2, left to the best's siblings
    assert _fires(_margin_memory(), AMBIGUOUS)  # min_margin None: overlap alone decides, as in the paper


def test_a_margin_against_the_second_best_refuses_a_prompt_that_also_matches_a_sibling():
    assert not _fires(_margin_memory(min_margin=0.2, margin_rank=2), NEAR_A)


def test_with_fewer_edits_stored_than_margin_rank_the_best_needs_only_the_margin_itself():
    memory = _margin_memory(min_margin=0.2, margin_rank=8)
    assert memory.index.best_match(AMBIGUOUS, 8).ranked.tolist() == [0.0]
    assert _fires(memory, AMBIGUOUS)


def test_idf_pooling_tells_a_neighbour_of_an_edited_template_from_the_edit():
    """Eight template tokens then a subject: the neighbour asks the same template about another subject."""
    base = tiny_model("llama")
    template = list(range(5, 13))
    edited, neighbour = torch.tensor([template + [60]]), torch.tensor([template + [61]])
    weights = torch.ones(128)
    weights[template] = 0.05  # template words are common, subjects rare
    outcomes = {}
    for pooling in ("mean", "idf"):
        model = wrap(base, tau=0.6, pooling=pooling, idf_power=1.0)
        model.base_model.memory.token_weights = weights.clone()
        store_edit(model, edited)
        outcomes[pooling] = (_route(model, edited).active.item(), _route(model, neighbour).active.item())
    assert outcomes["mean"] == (True, True)
    assert outcomes["idf"] == (True, False)


def test_idf_weights_follow_document_frequency():
    tokenizer = tiny_tokenizer()
    idf = token_idf(tokenizer, ["the capital of france", "the city of paris", "the river"], vocab_size=128)
    the, of, paris, never_seen = (tokenizer.convert_tokens_to_ids(word) for word in ("the", "of", "paris", "born"))
    assert idf[the] < idf[of] < idf[paris] < idf[never_seen]
    torch.testing.assert_close(idf[never_seen], torch.tensor(1.0 + torch.log(torch.tensor(3.0)).item()))


def test_token_weights_and_features_survive_save_and_load(tmp_path):
    base = tiny_model("llama")
    model = wrap(base, pooling="idf", min_similarity=0.2)
    model.base_model.memory.token_weights = torch.linspace(0.5, 3.0, 128)
    store_edit(model, torch.tensor([[5, 6, 7, 8, 40]]))
    model.save_pretrained(tmp_path)
    again = PeftModel.from_pretrained(tiny_model("llama"), str(tmp_path)).eval()
    assert torch.equal(again.base_model.memory.token_weights, model.base_model.memory.token_weights)
    assert torch.equal(again.base_model.memory.index.features, model.base_model.memory.index.features)
    ids = torch.tensor([[5, 6, 7, 8, 40], [9, 10, 11, 12, 13]])
    torch.testing.assert_close(again(ids).logits, model(ids).logits, rtol=0, atol=0)
