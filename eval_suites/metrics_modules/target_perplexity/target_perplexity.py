"""Perplexity of a corrected text given its prompt: memoir's score for the hallucination suite.

Per row, exp of the mean negative log-likelihood of the target tokens, each predicted by the
logits of the position before it (the prompt itself is not scored). Unlike the Hub's
`perplexity` module this one runs no model: it takes the per-token NLLs the harness already has,
so the edited model (routing included) is the one being scored.
"""

import datasets
import evaluate
import torch

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): per row, the negative log-likelihood (natural log)
        of each target token.
Returns:
    mean_perplexity (`float`): the mean of the per-row perplexities.
    perplexities (`list` of `float`): per row, exp(mean NLL).
Examples:
    >>> metric = evaluate.load("eval_suites/metrics_modules/target_perplexity")
    >>> metric.compute(predictions=[[0.0, 0.0], [1.0]])["perplexities"]
    [1.0, 2.7182817459106445]
"""

_CITATION = """
@inproceedings{hartvigsen2023grace,
  title = {Aging with GRACE: Lifelong Model Editing with Discrete Key-Value Adaptors},
  booktitle = {NeurIPS},
  year = {2023}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TargetPerplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float32"))}),
        )

    def _compute(self, predictions):
        perplexities = []
        for row, nll in enumerate(predictions):
            if not nll:
                raise ValueError(f"row {row} has no target tokens to score")
            # float32 as the logits were: the harness's numbers are computed exactly this way
            perplexities.append(torch.exp(torch.tensor(nll, dtype=torch.float32).mean()).item())
        mean = sum(perplexities) / len(perplexities) if perplexities else None
        return {"mean_perplexity": mean, "perplexities": perplexities}
