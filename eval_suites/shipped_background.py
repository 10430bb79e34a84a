"""The texts that ship with `editors/` for a fresh memory's statistics, made from the suites' train files.

    python -m eval_suites.shipped_background    # rewrites editors/data/background_texts.json and idf_texts.json

The background texts are ZsRE's train-slice locality texts (unrelated Natural Questions pairs);
the IDF corpus is the prompts and locality prompts of every suite's train file. Neither comes
from a scored edit set; a test checks that the shipped files are exactly what this module makes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from editors.background import SHIPPED_BACKGROUND, SHIPPED_IDF
from editors.edit_data import load_edit_data
from eval_suites.suites import SUITES, suite_train_path
from memoir.saving import write_atomic


def suite_background_texts(data: str) -> list[str]:
    """Unrelated texts of the matching suite's train file (ZsRE's for a user's file): each
    record's locality prompt followed by its answer."""
    suite = data if data in SUITES else "zsre"
    requests = load_edit_data(suite_train_path(suite)).requests
    return [f"{r.locality_prompt} {r.locality_answer or ''}".strip() for r in requests if r.locality_prompt]


def suite_idf_texts() -> list[str]:
    """The reference corpus of the token IDF table: the prompts and locality prompts of every suite's
    train file (never a scored edit file), so that the words of the suites' templates count little."""
    texts = []
    for suite in SUITES:
        for request in load_edit_data(suite_train_path(suite)).requests:
            texts += [text for text in (request.prompt, request.locality_prompt) if text]
    return texts


def shipped_documents() -> dict[Path, str]:
    """Each shipped file and the text it must hold."""
    return {
        Path(str(SHIPPED_BACKGROUND)): json.dumps(suite_background_texts("zsre"), ensure_ascii=False, indent=0) + "\n",
        Path(str(SHIPPED_IDF)): json.dumps(suite_idf_texts(), ensure_ascii=False, indent=0) + "\n",
    }


def main() -> int:
    for target, text in shipped_documents().items():
        write_atomic(target, text)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
