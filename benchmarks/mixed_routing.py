"""Does a mixed stream change where ZsRE paraphrases route? Stores the masks of 1000 ZsRE edits,
then of 600 hallucination and 75 temporal ones, without training (routing reads the layer's input,
which no edit changes), and prints how often a paraphrase selects its own edit and fires, before and after.

    python benchmarks/mixed_routing.py
"""

from __future__ import annotations

import torch
from routing_diagnostic import route, store

import memoir
from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from eval_suites.shipped_background import suite_background_texts, suite_idf_texts
from eval_suites.suites import resolve_data
from memoir.defaults import load_defaults

COUNTS = {"zsre": 1000, "hallucination": 600, "temporal": 75}


def main() -> None:
    torch.set_grad_enabled(False)
    defaults = load_defaults("smollm2-135m")
    model = memoir.MemoirModel.from_pretrained("smollm2-135m", config=memoir.MemoirConfig(**defaults["memoir"]))
    editor = MemoirEditor(model, memoir.load_tokenizer("smollm2-135m"), MemoirHparams.from_dict(defaults.get("editor", {})),
                          suite_background_texts("zsre"), idf_texts=suite_idf_texts())  # a mixed stream centres by its first source's
    requests = {name: load_edit_data(resolve_data(name)).requests[:count] for name, count in COUNTS.items()}
    paraphrased = [(i, r.rephrase) for i, r in enumerate(requests["zsre"]) if r.rephrase]
    before = None
    for stored in (["zsre"], ["hallucination", "temporal"]):
        for name in stored:
            store(editor, requests[name])
        fires, index, _ = route(editor, [text for _, text in paraphrased])
        own = (index == torch.tensor([i for i, _ in paraphrased])) & fires
        print(f"{len(editor.memory.index)} stored: paraphrase -> own edit and fires {own.float().mean():.3f}, "
              f"fires on a non-ZsRE edit {int(((index >= COUNTS['zsre']) & fires).sum())}")
        if before is not None:
            print(f"paraphrases routed differently: {int(((index != before[0]) | (fires != before[1])).sum())}")
        before = (index, fires)


if __name__ == "__main__":
    main()
