"""`memoir show` and `memoir forget`: read, or take back, what a saved adapter holds."""

from __future__ import annotations

import argparse
import json
from typing import Any

from editors.ledger import adapter_folder, describe
from editors.memoir_editor import MemoirEditor


def cmd_show(args: argparse.Namespace) -> int:
    held = describe(args.adapter)
    if args.json:
        print(json.dumps(held, indent=1, ensure_ascii=False))
    else:
        print(show_text(held))
    return 0


SHOWN_CONFIG = ("base_model_name_or_path", "base_model_alias", "target_layer", "top_k", "tau", "pooling", "center_residual")


def show_text(held: dict[str, Any]) -> str:
    """`memoir show` for people: the count, the adapter config, then one line per edit."""
    config = held["config"]
    lines = [f"{held['adapter']}: {held['num_edits']} edits"]
    lines += [f"  {key}: {config.get(key)}" for key in SHOWN_CONFIG]
    if held["edits"] is None:
        lines.append("no ledger: this adapter was saved without one, so its edits cannot be listed")
        return "\n".join(lines)
    lines.append(f"written: {held['written']} ({len(held['forgotten'])} forgotten, "
                 f"{held['written'] - held['num_edits'] - len(held['forgotten'])} replaced by a later edit of the same prompt)")
    lines.append("id\tsteps\tloss\ttime\tprompt -> target")
    lines += [f"{e['id']}\t{e['steps']}\t{e['loss']:.4f}\t{e['time']}\t{e['prompt']} -> {e['target']}" for e in held["edits"]]
    lines += [f"forgotten {e['id']} at {e['forgotten_at']}: {e['prompt']} -> {e['target']}" for e in held["forgotten"]]
    return "\n".join(lines)


def cmd_forget(args: argparse.Namespace) -> int:
    folder = adapter_folder(args.adapter)
    editor = MemoirEditor.from_pretrained(folder, prefixes=[])
    for edit_id in args.ids:
        forgotten = editor.forget(edit_id)
        print(f"forgot {edit_id}: {forgotten.entry.prompt} -> {forgotten.entry.target}")
        if forgotten.still_fires is not None:
            print(f"  note: its prompt still fires edit {forgotten.still_fires}, whose mask is the same; "
                  "forget that edit too if its answer is wrong here")
    editor.save(folder)
    print(f"{editor.memory.num_edits} edits left in {folder}")
    return 0


def add_adapter_commands(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """`show` and `forget`: read or take back what a saved adapter holds (`parents`: the options every command takes)."""
    show = commands.add_parser("show", parents=parents, help="list the edits a saved adapter holds (count, config, ledger)")
    show.add_argument("adapter", metavar="DIR", help="an adapter folder or a `memoir edit --out` folder")
    show.add_argument("--json", action="store_true", help="print one JSON document (for tools)")
    show.set_defaults(run=cmd_show)
    forget = commands.add_parser("forget", parents=parents, help="take stored edits back (their masks and ledger rows); saves in place")
    forget.add_argument("adapter", metavar="DIR", help="an adapter folder or a `memoir edit --out` folder")
    forget.add_argument("--id", dest="ids", metavar="ID", action="append", required=True, help="id of the edit to forget (repeatable)")
    forget.set_defaults(run=cmd_forget)
