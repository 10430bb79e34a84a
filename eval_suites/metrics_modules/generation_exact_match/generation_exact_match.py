"""Exact match of a greedy generation against the edit's target, as memoir scores it.

1.0 where the generated continuation begins with the whole target, else 0.0. Both sides are
whitespace-normalised; the match is case-sensitive. Generation runs a couple of tokens past the
target's length, so a continuation may go on after the target ("2006.", "2006 and"); it still
matches as long as the target ends on a word boundary ("20061" does not match "2006"). This
differs from the Hub's `exact_match`, which compares whole strings.
"""

import datasets
import evaluate

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the generated continuations.
    references (`list` of `str`): the targets, non-empty.
Returns:
    exact_match (`float`): the mean of the per-row scores.
    scores (`list` of `float`): per row, 1.0 or 0.0.
Examples:
    >>> metric = evaluate.load("eval_suites/metrics_modules/generation_exact_match")
    >>> metric.compute(predictions=[" 2006 and", "20061"], references=["2006", "2006"])
    {'exact_match': 0.5, 'scores': [1.0, 0.0]}
"""

_CITATION = ""


def normalize_whitespace(text):
    """Runs of whitespace become one space; leading and trailing whitespace go."""
    return " ".join(text.split())


def matches(generated, target):
    text, target = normalize_whitespace(generated), normalize_whitespace(target)
    if not target:
        raise ValueError("an empty target cannot be matched")
    rest = text[len(target):]
    return text.startswith(target) and not (rest and rest[0].isalnum())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GenerationExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        scores = [float(matches(generated, target)) for generated, target in zip(predictions, references)]
        return {"exact_match": sum(scores) / len(scores) if scores else None, "scores": scores}
