"""Scoring split across accelerate processes: each scores a slice, all receive every record.

Edits cannot be split (each depends on the ones before), so every process applies the whole
stream and only the scoring, the part that grows with T, is divided.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from accelerate import Accelerator
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from eval_suites.scoring import score_records


def sharded_scoring(accelerator: Accelerator) -> Callable[..., list[dict[str, Any]]]:
    """A drop-in for `score_records` that scores this process's contiguous slice and gathers all.

    The main process shows a progress bar over its slice: scoring a long stream takes minutes.
    """

    def score(editor: Any, requests: Sequence[Any], reference: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        size = -(-len(requests) // accelerator.num_processes)
        start = min(accelerator.process_index * size, len(requests))
        end = min(start + size, len(requests))
        with tqdm(total=end - start, unit="record", desc="scoring", leave=False,
                  disable=not accelerator.is_main_process) as progress:
            mine = score_records(editor, requests[start:end], reference[start:end], on_scored=progress.update, **options)
        return mine if accelerator.num_processes == 1 else gather_object(mine)

    return score
