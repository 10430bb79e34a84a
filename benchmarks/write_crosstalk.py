"""What a memory puts on inputs it was never written for, and how much each kind of write adds to it.

    python benchmarks/write_crosstalk.py runs/results/mixed/adapter [--set lr=5 loss_threshold=0.1] [--writes 6] [--write-columns K]

A ZsRE edit is written under its own mask, from R as it stands: whatever R already gives the new
prompt under that mask, the write cancels on the prompt's own inputs, but a paraphrase reads other
inputs and keeps the rest. This prints, for ZsRE *train* records the adapter does not hold (probes):
how large R's output on their prompts' and paraphrases' inputs is under their own masks (mean norm
over positions, beside the base `down_proj` output's) and their target loss there before any write.
Then it writes `--writes` hallucination and ZsRE train records, one at a time, each taken out again
(consolidation off),
and prints per kind the steps, the update's norm and the mean norm of what that update alone gives the
probes' inputs: how much crosstalk one write of that kind adds. `--set` changes the editor settings
of the writes; `--write-columns K` writes them under masks of K columns instead of the adapter's top_k
(the probes keep theirs), to see whether a sparser or a denser update leaves less on other inputs.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from crowded_write import WITHOUT_CONSOLIDATION, adapter_editor, mean, taken_back

from editors.consolidation import StoredEditLosses
from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from editors.request import EditRequest
from eval_suites.editor_setup import setting
from eval_suites.suites import suite_train_path

# Probes are the first ZsRE train records, ZsRE writers come after them, so no probe is ever written.
ZSRE_WRITERS_FROM = 400


def probe_keys(editor: MemoirEditor, probes: list[EditRequest]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What R reads at each position of the probes' prompt and paraphrase rows under their own masks (N, D),
    the base layer's inputs there (N, D), and each probe's mask (P, D)."""
    memory = editor.memory
    keys, inputs, masks = [], [], []
    for probe in probes:
        # The editor's own forward of a plain row: the prompt's gives its mask and inputs at once.
        prompt, rephrase = (editor._plain_row_inputs(editor.rows((text, probe.target))) for text in (probe.prompt, probe.rephrase))
        mask = memory.mask_of(prompt.pooled)
        masks.append(mask)
        for row in (prompt, rephrase):
            x = row.activations[0]
            inputs.append(x)
            keys.append(memory.centred_inputs(x) * mask.to(x.dtype))
    return torch.cat(keys), torch.cat(inputs), torch.cat(masks)


def read_norm(update: torch.Tensor, keys: torch.Tensor) -> float:
    """Mean norm over positions of what `update` (d, D) gives the (N, D) masked inputs `keys`."""
    return float((keys @ update.T).norm(dim=-1).mean())


def write_and_take_back(editor: MemoirEditor, request: EditRequest, keys: torch.Tensor) -> dict[str, float]:
    """Write `request`, measure its update of R, then restore the memory and ledger."""
    with taken_back(editor, request) as (result, _, before):
        update = editor.memory.R.detach() - before
    return {"steps": result.steps, "loss": result.loss, "update_norm": float(update.norm()), "crosstalk": read_norm(update, keys)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter", help="an adapter folder with its ledger (the adapter/ of a `memoir eval` --out)")
    parser.add_argument("--probes", type=int, default=30, help="ZsRE train records read, never written")
    parser.add_argument("--writes", type=int, default=6, help="records of each kind written and taken out again")
    parser.add_argument("--write-columns", type=int, help="mask columns of the writes (default: the adapter's top_k)")
    parser.add_argument("--set", type=setting, nargs="*", default=[], metavar="KEY=VALUE", help="editor settings of the writes")
    args = parser.parse_args()
    if not 0 < args.probes <= ZSRE_WRITERS_FROM or args.writes <= 0:
        parser.error(f"--probes must be 1..{ZSRE_WRITERS_FROM} and --writes positive")
    editor = adapter_editor(args.adapter, {**dict(args.set), **WITHOUT_CONSOLIDATION})
    top_hash = editor.memory.top_hash
    if args.write_columns is not None and not 0 < args.write_columns <= top_hash.width:
        parser.error(f"--write-columns must be 1..{top_hash.width}, the MLP width")
    zsre = [r for r in load_edit_data(suite_train_path("zsre")).requests if r.rephrase]
    probes, zsre_writers = zsre[: args.probes], zsre[ZSRE_WRITERS_FROM : ZSRE_WRITERS_FROM + args.writes]
    writers = {"hallucination": load_edit_data(suite_train_path("hallucination")).requests[: args.writes], "zsre": zsre_writers}
    keys, inputs, masks = probe_keys(editor, probes)
    top_hash.top_k = args.write_columns or top_hash.top_k  # the writes' masks only: the probes' are taken
    base = editor.model.base_model.memoir_layer.base_layer.weight
    pairs = [pair for probe in probes for pair in ((probe.prompt, probe.target), (probe.rephrase, probe.target))]
    losses = StoredEditLosses(editor.model, editor.tokenizer)(pairs, masks.repeat_interleave(2, dim=0)).tolist()
    print(json.dumps({
        "adapter": args.adapter, "stored_edits": editor.memory.num_edits, "settings": dict(args.set), "write_columns": top_hash.top_k,
        "probes": len(probes),
        "R_norm": round(float(editor.memory.R.detach().norm()), 1),
        "R_read_norm": round(read_norm(editor.memory.R.detach(), keys), 2),
        "base_output_norm": round(float((inputs @ base.T).norm(dim=-1).mean()), 2),
        "probe_loss_median_before_writing": round(statistics.median(losses), 3),
        "writes": {
            kind: {key: mean(rows, key) for key in ("steps", "loss", "update_norm", "crosstalk")}
            for kind, rows in ((kind, [write_and_take_back(editor, r, keys) for r in requests]) for kind, requests in writers.items())
        },
    }, indent=1))


if __name__ == "__main__":
    main()
