"""The `memoir` command: `edit`, `show`, `forget`, `eval`, `report`, `push` and `demo`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from accelerate import Accelerator
from huggingface_hub.errors import HfHubHTTPError
from tqdm.auto import tqdm

from editors.edit_run import EditRun, RunManifest
from editors.errors import EditorError, RunStateError
from editors.ledger import adapter_folder
from editors.memoir_editor import MemoirEditor
from editors.request import EditRequest
from eval_suites.errors import EvalError, ProtocolError
from memoir.errors import MemoirError
from eval_suites.adapter_commands import add_adapter_commands
from eval_suites.demo import run_demo
from eval_suites.edit_age import age_table
from eval_suites.repeats import repeat_table
from eval_suites.hub_push import push_run
from eval_suites.editor_setup import build_editor, check_adapter_settings, load_requests, preflight, run_settings, setting
from eval_suites.protocol import RunResult, Stream, run_mixed, run_stream
from eval_suites.report import markdown_table, plot_runs
from eval_suites.run_dir import run_folders, save_run
from eval_suites.run_log import configure_console, console_beside_progress, run_log
from eval_suites.sharding import sharded_scoring
from eval_suites.suites import SUITES, data_sha256, get_suite, resolve_data, with_neighbour_probes

logger = logging.getLogger("eval_suites.cli")  # not __name__: that is __main__ under `python -m`


def writable_folder(out: Path) -> None:
    """Refuse an `--out` that is a file or lies under a folder this user cannot write, before any work."""
    if out.exists() and not out.is_dir():
        raise RunStateError(f"--out {out} is a file, not a folder: choose another --out.")
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunStateError(f"--out {out}: {existing} is not writable by this user: choose another --out.")


def recorded_run(out: Path, resume: bool) -> Optional[RunManifest]:
    """The run recorded in `out/run.json`, if any; refused unless the user asked to --resume it."""
    manifest_path = out / "run.json"
    if not manifest_path.exists():
        return None
    if not resume:
        raise RunStateError(f"{out} already holds a run: pass --resume to continue it, or choose another --out.")
    try:
        return RunManifest.read(manifest_path)
    except (ValueError, TypeError) as error:
        raise RunStateError(f"{manifest_path} is damaged ({error}): choose another --out, or delete {out} to start again.") from None


def cmd_edit(args: argparse.Namespace) -> int:
    accelerator = Accelerator()
    out = Path(args.out)
    writable_folder(out)
    recorded = recorded_run(out, args.resume)
    continued = str(adapter_folder(args.adapter)) if args.adapter else None
    check_adapter_settings(starting_adapter(out, continued), dict(args.set))
    args.config = run_settings(args.model, args.config, dict(args.set))
    checked = preflight(args.model, args.config)
    requests = load_requests(args.data, args.num_edits, args.strict, checked.check).requests
    manifest = RunManifest(
        model=args.model,
        data=str(resolve_data(args.data)),
        data_sha256=data_sha256(args.data),
        num_edits=len(requests),
        hparams=checked.hparams.to_dict(),
        adapter=continued,
    )
    if recorded is not None:
        manifest.check_resumable_by(recorded)
    accelerator.wait_for_everyone()  # every process has read the folder before the main one writes to it
    editor = build_editor(
        args.model, args.data, accelerator.device, starting_adapter(out, continued),
        recorded.prefixes if recorded else None, args.config, args.dtype, args.device_map,
    )
    manifest.prefixes = editor.prefixes
    manifest.start = recorded.start if recorded else editor.ledger.written
    if recorded is None and accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        manifest.write(out / "run.json")
    with run_log(out, accelerator.is_main_process), console_beside_progress():
        logger.info("memoir edit: %d edits from %s into %s (resume: %s)", len(requests), manifest.data, out, recorded is not None)
        run = EditRun(out, editor, args.checkpoint_every, accelerator.is_main_process, manifest.start, args.checkpoint_seconds)
        log = run.run(requests)
        accelerator.wait_for_everyone()
        logger.info("memoir edit: %d edits in %s", len(log), out / "adapter")
    if accelerator.is_main_process:
        print(f"{len(log)} edits in {out / 'adapter'}, which holds {editor.memory.num_edits} in all; "
              f"log in {out / 'edits.jsonl'} ({accelerator.num_processes} processes)")
    return 0


def starting_adapter(out: Path, continued: Optional[str]) -> Optional[Path]:
    """The adapter a run starts from: its own checkpoint when resuming, else the one it continues, else none."""
    if (out / "adapter").exists():
        return out / "adapter"
    return Path(continued) if continued else None


def positive_int(text: str, option: str) -> int:
    """One whole number >= 1 for `option`, or a usage error naming it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{option} takes whole numbers, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{option} needs numbers >= 1, got {value}")
    return value


def positive_seconds(text: str) -> float:
    """A number of seconds > 0 for --checkpoint-seconds, or a usage error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--checkpoint-seconds takes a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--checkpoint-seconds needs a number > 0, got {text}")
    return value


def count_of(option: str) -> Any:
    """The argparse type of one whole-number option >= 1."""
    return lambda text: positive_int(text, option)


def parse_counts(text: str) -> list[int]:
    counts = [positive_int(part, "--num-edits") for part in text.split(",") if part.strip()]
    if not counts:
        raise argparse.ArgumentTypeError(f"--num-edits takes counts separated by commas, got {text!r}")
    return counts


class EditingProgress:
    """The eval progress bar: shown once the model has loaded, its rate counting editing time only.

    `run_stream` scores between stretches of editing; `scored` wraps the scoring function and
    restarts the bar's clock after each scoring, so the shown s/edit is the edits' own.
    """

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar = total, enabled, None

    def start(self) -> None:
        self.bar = tqdm(total=self.total, unit="edit", desc="editing", disable=not self.enabled)

    def scored(self, score: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            records = score(*args, **kwargs)
            self.bar.unpause()
            return records

        return timed

    def edited(self, result: Any) -> None:
        self.bar.update()
        self.bar.set_postfix(loss=f"{result.loss:.4f}", steps=result.steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def suite_names(data: str) -> list[str]:
    """The parts of `--data`: one source, or several separated by commas for a mixed stream."""
    if "," not in data or Path(data).exists():
        return [data]
    return [part.strip() for part in data.split(",")]


def scores_of(data: str, args: argparse.Namespace) -> dict[str, bool]:
    """Which optional scores a source gets: PPL where asked or where it is the suite's score,
    greedy exact match unless skipped or the targets are whole passages (scored by PPL)."""
    by_perplexity = data in SUITES and get_suite(data).perplexity
    return dict(with_perplexity=args.perplexity or by_perplexity, with_exact_match=not (args.no_exact_match or by_perplexity))


def eval_setup(args: argparse.Namespace) -> tuple[Accelerator, Path, Callable[[EditRequest], None]]:
    """What every eval checks before loading the model: a writable --out, the settings, the record check."""
    accelerator = Accelerator()
    out = Path(args.out)
    writable_folder(out)
    args.config = run_settings(args.model, args.config, dict(args.set))
    return accelerator, out, preflight(args.model, args.config).check


def editor_factory(
    args: argparse.Namespace, data: str, accelerator: Accelerator, progress: EditingProgress, made: list[MemoirEditor]
) -> Callable[[], MemoirEditor]:
    """The fresh editor an eval stream asks for (kept in `made`, to save its adapter); the bar starts once it has loaded."""

    def make_editor() -> MemoirEditor:
        made.append(build_editor(args.model, data, accelerator.device, config=args.config, dtype=args.dtype, device_map=args.device_map))
        progress.start()
        return made[-1]

    return make_editor


def cmd_eval(args: argparse.Namespace) -> int:
    names = suite_names(args.data)
    if len(names) > 1:
        return eval_mixed(args, names)
    accelerator, out, check = eval_setup(args)
    requests = with_neighbour_probes(args.data, load_requests(args.data, max(args.num_edits), args.strict, check).requests)
    counts = sorted({min(count, len(requests)) for count in args.num_edits})
    progress = EditingProgress(counts[-1], accelerator.is_main_process)
    made: list[MemoirEditor] = []
    make_editor = editor_factory(args, args.data, accelerator, progress, made)

    def save(result: RunResult) -> None:
        # The editor holds exactly the T edits just scored: its adapter (and ledger) goes beside the scores,
        # so `memoir push` can publish them together.
        if accelerator.is_main_process:
            folder = out if len(counts) == 1 else out / f"t{result.metrics['num_edits']}"
            save_scored(result, args.data, folder, made[0])
            made[0].save(folder / "adapter")

    with run_log(out, accelerator.is_main_process), console_beside_progress():
        logger.info("memoir eval: %d records of %s scored at T = %s", len(requests), args.data, counts)
        try:
            run_stream(
                make_editor,
                requests,
                counts,
                model_name=args.model,
                batch_size=args.batch_size,
                score=progress.scored(sharded_scoring(accelerator)),
                on_edit=progress.edited,
                on_checkpoint=save,
                cache_unedited=True,
                **scores_of(args.data, args),
            )
        finally:
            progress.close()
    return 0


def save_scored(result: RunResult, data: str, folder: Path, editor: MemoirEditor) -> None:
    """A scored run's files, with the editor settings it ran with (its adapter's are in adapter/), then its table."""
    result.metrics["data"] = data
    result.metrics["hparams"] = editor.hparams.to_dict()
    save_run(result, folder)
    tqdm.write(f"{folder}:\n" + (folder / "table.md").read_text())


def eval_mixed(args: argparse.Namespace, names: list[str]) -> int:
    """`memoir eval --data zsre,hallucination,temporal --num-edits 1000,600,75`: one seeded stream of
    all their edits, each source scored after the last edit into `--out/NAME/` with its own metrics."""
    if len(args.num_edits) != len(names):
        raise ProtocolError(
            f"--data names {len(names)} sources for a mixed stream, so --num-edits needs one count each, "
            f"in the same order (e.g. {','.join(['100'] * len(names))}); got {len(args.num_edits)}."
        )
    accelerator, out, check = eval_setup(args)
    streams = []
    for data, count in zip(names, args.num_edits):
        requests = with_neighbour_probes(data, load_requests(data, count, args.strict, check).requests)
        streams.append(Stream(Path(data).stem, requests, **scores_of(data, args)))
    progress = EditingProgress(sum(len(stream.requests) for stream in streams), accelerator.is_main_process)
    made: list[MemoirEditor] = []
    make_editor = editor_factory(args, names[0], accelerator, progress, made)

    with run_log(out, accelerator.is_main_process), console_beside_progress():
        logger.info("memoir eval: a mixed stream of %s, seed %d", ", ".join(f"{len(s.requests)} {s.name}" for s in streams), args.seed)
        try:
            results = run_mixed(make_editor, streams, args.seed, args.model, args.batch_size, progress.edited,
                                progress.scored(sharded_scoring(accelerator)), cache_unedited=True)
        finally:
            progress.close()
        if accelerator.is_main_process:
            for data, (name, result) in zip(names, results.items()):
                save_scored(result, data, out / name, made[0])
            made[0].save(out / "adapter")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    run_dirs = [folder for run_dir in args.run_dirs for folder in run_folders(run_dir)]
    png = plot_runs(run_dirs, args.out or Path(args.run_dirs[0]) / "report.png")
    print(markdown_table(run_dirs))
    for run_dir in run_dirs if args.by_age else []:
        print(f"{run_dir}, scores by edit age:\n{age_table(run_dir, args.by_age)}")
    for run_dir in run_dirs if args.by_repeat else []:
        print(f"{run_dir}, scores by whether the subject is edited again:\n{repeat_table(run_dir)}")
    print(f"figure: {png}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    url = push_run(args.path, args.repo_id, private=args.private, revision=args.revision,
                   include_edits=args.include_edits, base_model=args.base_model)
    print(f"pushed {args.path} to {args.repo_id}: {url}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    run_demo(args.num_edits, args.model, args.out)
    return 0


def add_settings(command: argparse.ArgumentParser) -> None:
    command.add_argument("--config", default=None, help="a shipped config name or YAML file (default: the model's own)")
    command.add_argument("--set", nargs="+", type=setting, default=[], metavar="KEY=VALUE",
                         help="change settings of that config, adapter or editor alike (e.g. --set lr=5.0 consolidate_in_turn=0)")


def add_placement(command: argparse.ArgumentParser) -> None:
    command.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                         help="weights of the base model (default: the config's, else float32); R stays float32")
    command.add_argument("--device-map", default=None, help='e.g. "auto": let transformers place a large model')


VERBOSE_HELP = "log one line per edit (id, steps, loss, seconds, overlap)"


def verbosity() -> argparse.ArgumentParser:
    """-v accepted after the subcommand too; SUPPRESS keeps a -v given before it."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return shared


DATA_HELP = f"a suite ({', '.join(SUITES)}), an EasyEdit JSON/JSONL file, a datasets folder or Hub dataset (NAME[:SPLIT])"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="memoir", description="Lifelong model editing with MEMOIR.")
    root.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    commands = root.add_subparsers(dest="command", required=True)
    shared = [verbosity()]
    edit = commands.add_parser("edit", parents=shared, help="apply a stream of edits and save the adapter")
    edit.add_argument("--model", default="smollm2-135m", help="embedded short name, local model folder or Hub id")
    edit.add_argument("--data", required=True, help=DATA_HELP)
    edit.add_argument("--num-edits", type=count_of("--num-edits"), default=None, help="apply the first N valid records (default: all)")
    edit.add_argument("--out", required=True, help="output folder: adapter/ (with its ledger), edits.jsonl, run.json, run.log")
    edit.add_argument("--adapter", default=None, metavar="DIR",
                      help="start from this saved adapter (or run folder) and add the new edits to it; DIR is only read")
    add_settings(edit)
    edit.add_argument("--resume", action="store_true", help="finish an interrupted run in --out (same arguments)")
    edit.add_argument("--checkpoint-every", type=count_of("--checkpoint-every"), default=10,
                      help="edits between atomic checkpoints (or --checkpoint-seconds, whichever comes first)")
    edit.add_argument("--checkpoint-seconds", type=positive_seconds, default=60.0,
                      help="seconds of editing between atomic checkpoints (default 60): the most work a crash loses")
    edit.add_argument("--strict", action="store_true", help="stop at the first bad record instead of skipping it")
    add_placement(edit)
    edit.set_defaults(run=cmd_edit)
    add_adapter_commands(commands, shared)
    evaluate = commands.add_parser("eval", parents=shared, help="edit the first T records one after another, then score them all")
    evaluate.add_argument("--model", default="smollm2-135m", help="embedded short name, local model folder or Hub id")
    evaluate.add_argument("--data", required=True,
                          help=DATA_HELP + "; several, separated by commas, edit one mixed stream of all of them")
    evaluate.add_argument("--num-edits", type=parse_counts, required=True,
                          help="T, or several: 1,10,100,1000 (one stream); with several --data, one count per source")
    evaluate.add_argument("--seed", type=int, default=0, help="the order of a mixed stream's edits (default 0)")
    add_settings(evaluate)
    evaluate.add_argument("--out", required=True, help="run folder (one sub-folder t<T> per T when several are given)")
    evaluate.add_argument("--batch-size", type=count_of("--batch-size"), default=16)
    evaluate.add_argument("--perplexity", action="store_true", help="also score PPL (always on for hallucination)")
    evaluate.add_argument("--no-exact-match", action="store_true", help="skip greedy generation exact match (always skipped for hallucination: "
                          "its targets are whole passages, scored by PPL)")
    evaluate.add_argument("--strict", action="store_true", help="stop at the first bad record instead of skipping it")
    add_placement(evaluate)
    evaluate.set_defaults(run=cmd_eval)
    report = commands.add_parser("report", parents=shared, help="plot Rel/Gen/Loc against T from run folders and print a table")
    report.add_argument("run_dirs", nargs="+", help="run folders, or the --out folder of an eval over several T")
    report.add_argument("--out", default=None, help="the figure's path (default: report.png in the first folder named)")
    report.add_argument("--by-age", type=count_of("--by-age"), default=None, metavar="BLOCKS",
                        help="also print each run's scores in BLOCKS slices of edit order (oldest edits first)")
    report.add_argument("--by-repeat", action="store_true",
                        help="also print each run's scores split by whether the record's subject is edited again in the run, "
                        "with the same answer or another")
    report.set_defaults(run=cmd_report)
    push = commands.add_parser("push", parents=shared, help="upload an adapter and its model card (with the run's scores) to the Hub")
    push.add_argument("path", metavar="RUN_OR_ADAPTER_DIR", help="an adapter folder, or the --out folder of edit/eval")
    push.add_argument("--repo-id", required=True, help="ORG/NAME of the model repo (created if missing)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--revision", default=None, help="branch to commit to (created from main if missing)")
    push.add_argument("--include-edits", action="store_true", help="list the edited prompts and targets on the card")
    push.add_argument("--base-model", default=None,
                      help="Hub id of the base model, when the adapter records a local folder")
    push.set_defaults(run=cmd_push)
    demo = commands.add_parser("demo", parents=shared, help="edit a few ZsRE facts into SmolLM2 and show answers before/after")
    demo.add_argument("--model", default="smollm2-135m")
    demo.add_argument("--num-edits", type=count_of("--num-edits"), default=10)
    demo.add_argument("--out", default=None, help="folder for the demo's adapter (default: a temp folder)")
    demo.set_defaults(run=cmd_demo)
    return root


# HfHubHTTPError: the Hub refused a push or a download (no token, no write access, no such repo); its text says which.
USER_ERRORS = (MemoirError, EditorError, EvalError, HfHubHTTPError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    # peft 0.21 reads a property that transformers 5 deprecated; it is noise on every command here.
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    configure_console(args.verbose)
    try:
        return args.run(args)
    except USER_ERRORS as error:
        print(f"memoir {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resume = "; --resume continues from the last checkpoint" if args.command == "edit" else ""
        print(f"memoir {args.command}: interrupted{resume}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
