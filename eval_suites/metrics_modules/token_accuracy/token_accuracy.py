"""Token accuracy of a scored answer: the score behind memoir's Rel, Gen, OOD and Loc.

Per row, the fraction of answer positions where the predicted token (the argmax of the logits
that predict it) equals the reference token. For Rel / Gen / OOD the references are the edit's
target tokens (EasyEdit's edit success per token); for Loc they are the unedited model's own
argmax on an unrelated prompt, so Loc measures agreement with the old model, not correctness.
"""

import datasets
import evaluate
import torch

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): per row, the argmax token id at each answer position.
    references (`list` of `list` of `int`): per row, the reference token id at the same positions.
Returns:
    token_accuracy (`float`): the mean of the per-row scores.
    scores (`list` of `float`): per row, the fraction of positions where prediction equals reference.
Examples:
    >>> metric = evaluate.load("eval_suites/metrics_modules/token_accuracy")
    >>> metric.compute(predictions=[[5, 7], [3]], references=[[5, 8], [3]])
    {'token_accuracy': 0.75, 'scores': [0.5, 1.0]}
"""

_CITATION = """
@inproceedings{wang2025memoir,
  title = {MEMOIR: Lifelong Model Editing with Minimal Overwrite and Informed Retention for LLMs},
  booktitle = {NeurIPS},
  year = {2025}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TokenAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("int64")),
                "references": datasets.Sequence(datasets.Value("int64")),
            }),
        )

    def _compute(self, predictions, references):
        scores = []
        for row, (predicted, reference) in enumerate(zip(predictions, references)):
            if len(predicted) != len(reference) or not reference:
                raise ValueError(f"row {row}: {len(predicted)} answer positions predicted, {len(reference)} in the "
                                 "reference; each row needs the same number of both, at least one")
            scores.append((torch.tensor(predicted) == torch.tensor(reference)).float().mean().item())
        return {"token_accuracy": sum(scores) / len(scores) if scores else None, "scores": scores}
