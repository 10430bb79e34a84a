"""The `memoir` command: `edit`, `eval`, `report` and `demo`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from accelerate import Accelerator

from editors.edit_run import EditRun, RunManifest, file_sha256
from eval_suites.demo import run_demo
from eval_suites.editor_setup import build_editor, load_requests
from eval_suites.suites import SUITES, resolve_data

logger = logging.getLogger("memoir")


def cmd_edit(args: argparse.Namespace) -> int:
    accelerator = Accelerator()
    out = Path(args.out)
    manifest_path = out / "run.json"
    if manifest_path.exists() and not args.resume:
        raise SystemExit(f"{out} already holds a run: pass --resume to continue it, or choose another --out.")
    requests = load_requests(args.data, args.num_edits, args.strict).requests
    recorded = RunManifest.read(manifest_path) if manifest_path.exists() else None
    editor = build_editor(args.model, args.data, accelerator, out / "adapter", recorded.prefixes if recorded else None)
    manifest = RunManifest(
        model=args.model,
        data=str(resolve_data(args.data)),
        data_sha256=file_sha256(resolve_data(args.data)),
        num_edits=len(requests),
        hparams=editor.hparams.to_dict(),
        prefixes=editor.prefixes,
    )
    if recorded is not None:
        manifest.check_resumable_by(recorded)
    elif accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        manifest.write(manifest_path)
    run = EditRun(out, editor, args.checkpoint_every, is_writer=accelerator.is_main_process)
    log = run.run(requests)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        print(f"{len(log)} edits in {out / 'adapter'}; log in {out / 'edits.jsonl'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    run_demo(args.num_edits, args.model, args.out)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="memoir", description="Lifelong model editing with MEMOIR.")
    commands = root.add_subparsers(dest="command", required=True)
    edit = commands.add_parser("edit", help="apply a stream of edits and save the adapter")
    edit.add_argument("--model", default="smollm2-135m", help="embedded short name or local model folder")
    edit.add_argument("--data", required=True, help=f"a suite ({', '.join(SUITES)}) or an EasyEdit JSON/JSONL file")
    edit.add_argument("--num-edits", type=int, default=None, help="apply the first N valid records (default: all)")
    edit.add_argument("--out", required=True, help="output folder: adapter/, edits.jsonl, run.json")
    edit.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    edit.add_argument("--checkpoint-every", type=int, default=10, help="edits between atomic checkpoints")
    edit.add_argument("--strict", action="store_true", help="stop at the first bad record instead of skipping it")
    edit.set_defaults(run=cmd_edit)
    demo = commands.add_parser("demo", help="edit a few ZsRE facts into SmolLM2 and show answers before/after")
    demo.add_argument("--model", default="smollm2-135m")
    demo.add_argument("--num-edits", type=int, default=10)
    demo.add_argument("--out", default=None, help="folder for the demo's adapter (default: a temp folder)")
    demo.set_defaults(run=cmd_demo)
    return root


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
