"""The routing stages beyond the paper's: IDF-weighted pooling and the feature-similarity check."""

from __future__ import annotations

import torch

import memoir
from peft import PeftModel
from conftest import store_edit, tiny_model, tiny_tokenizer, wrap
from editors.background import token_idf


def _route(model, ids: torch.Tensor):
    model(ids)
    return model.base_model.memoir_layer.routing


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
