"""`litlab VERB ARGS`: one command for every job and tool of litlab (pyproject.toml's [project.scripts]).

Each verb's module is imported only once it is chosen (importlib, from the table below), so that
`litlab` and `litlab --help` list the verbs without importing Hydra, torch or anything else heavy.
The Hydra verbs (train, evaluate, predict, export, serve) take the overrides and flags of their
root scripts; the others take their own options (`litlab report --help`).

Shell completion: `eval "$(litlab train -sc install=bash)"` installs Hydra's bash completion for
`litlab`; that completion runs `litlab -sc query=bash` with the typed line in COMP_LINE, where
the verb is read from the line and taken out of it, so Hydra completes the verb's own configs.
"""

import difflib
import importlib
import os
import re
import sys
from dataclasses import dataclass

from litlab.errors import UserError, exit_on_user_error, exit_with
from litlab.run.installed import require_extra


@dataclass(frozen=True)
class Verb:
    module: str  # imported when the verb runs
    function: str  # called as function(verb, argv)
    summary: str
    extra: str | None = None  # the optional part of litlab it needs (the Hydra verbs check for themselves)

    @property
    def hydra(self) -> bool:
        return self.module == HYDRA


HYDRA = "litlab.run.commands"
VERBS = {
    "train": Verb(HYDRA, "run", "train a model: litlab train model=cnn data=digits (-m: a sweep)"),
    "evaluate": Verb(HYDRA, "run", "test a checkpoint and write its report: ckpt_path=RUN"),
    "predict": Verb(HYDRA, "run", "predict new inputs: ckpt_path=RUN or bundle=DIR, input=PATH"),
    "export": Verb(HYDRA, "run", "write a bundle (ONNX) of a checkpoint: ckpt_path=RUN"),
    "serve": Verb(HYDRA, "run", "serve a model over HTTP on 127.0.0.1: ckpt_path=RUN or bundle=DIR"),
    "report": Verb("litlab.run.report_command", "main", "a sweep's report: SWEEP_DIR (--compare A B)", "train"),
    "reproduce": Verb("litlab.run.reproduce", "main", "run a recorded run again and compare: RUN_DIR", "train"),
    "dashboard": Verb("litlab.sweeps.dashboard", "main", "Optuna's dashboard over an Optuna sweep: SWEEP_DIR", "train"),
    "mlflow-ui": Verb("litlab.review.mlflow_ui", "main", "MLflow's UI over the runs of logger=mlflow", "mlflow"),
}
HELP_FLAGS = ("-h", "--help")
COMPLETION_FLAGS = ("-sc", "--shell-completion")
# Lightning starts each further DDP rank of a run as `python sys.argv[0] sys.argv[1:]`, which no
# longer holds the verb (Hydra reads sys.argv): the verb reaches those processes in this variable.
RANKS_VERB = "LITLAB_VERB"


def usage() -> str:
    rows = "\n".join(f"  {name:<11} {verb.summary}" for name, verb in VERBS.items())
    hydra_verbs = ", ".join(name for name, verb in VERBS.items() if verb.hydra)
    return (
        "usage: litlab VERB [ARGS]   (litlab VERB --help: the verb's options and config)\n\n"
        f"verbs:\n{rows}\n\n"
        f"The Hydra verbs ({hydra_verbs}) take overrides (key=value, group=option)\n"
        "and Hydra's flags: -m (a sweep), --cfg job, --info, --config-dir DIR (configs of your own beside\n"
        'litlab\'s). Tab completion in bash: eval "$(litlab train -sc install=bash)"'
    )


def main(argv: list[str] | None = None) -> None:
    """The `litlab` program: its own flags, else the verb's."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in HELP_FLAGS:
        print(usage())
    elif args[0] == "--version":
        from importlib.metadata import version

        print(f"litlab {version('litlab')}")
    elif args[0] in COMPLETION_FLAGS:  # `litlab -sc ...`, as Hydra's completion function runs it
        dispatch(verb_of_line(args), args)
    else:
        dispatch(*verb_and_arguments(args))


def verb_and_arguments(args: list[str]) -> tuple[str, list[str]]:
    """`litlab VERB ARGS`, or the arguments alone in a DDP rank that Lightning started from a
    `litlab VERB` process: that process's verb."""
    inherited = os.environ.get(RANKS_VERB)
    if args[0] not in VERBS and inherited in VERBS and "LOCAL_RANK" in os.environ:
        return inherited, args
    return args[0], args[1:]


def dispatch(verb: str, argv: list[str]) -> None:
    """Run `verb` with its arguments; its module is imported here."""
    chosen = VERBS.get(verb)
    if chosen is None:
        exit_with(UserError(unknown(verb)))
    extra = chosen.extra
    if "COMP_LINE" in os.environ:  # a completion request: Hydra's, with the line read without the verb
        if not chosen.hydra:
            return  # no configs to offer: the shell completes file names
        os.environ["COMP_LINE"] = without_verb(os.environ["COMP_LINE"], verb)
    elif extra and not set(HELP_FLAGS) & set(argv):
        exit_on_user_error(lambda: require_extra(f"litlab {verb}", extra))
    getattr(importlib.import_module(chosen.module), chosen.function)(verb, argv)


def verb_of_line(args: list[str]) -> str:
    """The verb the completed line names, for `litlab -sc query=bash`; while the verb itself is
    typed, the verbs it may become are the answer. Any other -sc request (install=bash) is the same
    for every verb: train's answers it."""
    line = os.environ.get("COMP_LINE")
    if line is None or not any(a.startswith("query=") for a in args):
        return "train"
    words = line.split()
    if len(words) < 2 or (len(words) == 2 and not line.endswith(" ")):
        typed = words[1] if len(words) == 2 else ""
        print(" ".join(name for name in VERBS if name.startswith(typed)))
        raise SystemExit(0)
    if words[1] not in VERBS:
        raise SystemExit(0)  # nothing to offer after a word that is no verb
    return words[1]


def without_verb(line: str, verb: str) -> str:
    """COMP_LINE 'litlab train model=c' as Hydra reads a line: 'litlab model=c' (the program, then overrides)."""
    return re.sub(rf"^(\s*\S+)\s+{re.escape(verb)}(?=\s|$)", r"\1", line, count=1)


def unknown(verb: str) -> str:
    close = difflib.get_close_matches(verb, VERBS, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{verb!r} is no litlab verb; {hint}the verbs: {', '.join(VERBS)} (litlab --help says what each does)"


if __name__ == "__main__":
    main()
