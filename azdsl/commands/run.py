"""`azdsl run FILE --task KIND --dim F ...`: score a program on tasks and print its fitness."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from azdsl.commands._args import (
    add_extension_option,
    feature_size,
    load_extension_option,
    positive,
)
from azdsl.commands.fmt import read_source
from azdsl.errors import ConfigError
from azdsl.language.parse import parse
from azdsl.limits import MAX_CELLS
from azdsl.running.tasks import (
    CLASSIFICATION,
    DATASETS,
    NPZ_ONE_TASK,
    REGRESSION,
    USER_TASK_KINDS,
    TaskSpec,
    make_tasks,
)

# Image data sets run as projected binary classification tasks (docs/semantics.md).
_IMAGE_TASKS = DATASETS
TASK_CHOICES = ("linear", "affine", "nonlinear", *_IMAGE_TASKS, "npz")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run", help="score a program on tasks",
        description="Train and validate a program on a collection of tasks (`azdsl docs "
        "semantics`) and print its fitness: the mean over tasks of 1 - (2/pi) atan(RMSE) for "
        "regression, accuracy for classification, or of the fitness --fitness names.")
    p.add_argument("file", metavar="FILE", help="the .az program (`-` reads stdin)")
    # Any name: a kind an --extension registers is known only once it is loaded.
    p.add_argument("--task", default="linear", metavar="KIND",
                   help=f"task family: {', '.join(TASK_CHOICES)} (image data sets give "
                   "projected binary tasks), or one an --extension registers (default linear)")
    p.add_argument("--dim", type=feature_size, metavar="F",
                   help="feature size (default 4; 16 for image tasks; the file's for npz)")
    p.add_argument("--tasks", type=positive, metavar="N",
                   help="number of tasks (default 10; npz: 1, the file's one task)")
    p.add_argument("--train", type=positive, metavar="N", help="training examples per task")
    p.add_argument("--valid", type=positive, metavar="N", help="validation examples per task")
    p.add_argument("--epochs", type=positive, default=1, metavar="N")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="task seed base and evaluation seed (default: the original's task seeds "
                   "and evaluation seed 0)")
    p.add_argument("--data", metavar="PATH",
                   help="data folder (cifar10/mnist/fashion_mnist) or .npz file")
    p.add_argument("--kind", choices=(REGRESSION, CLASSIFICATION),
                   help="npz: how its labels are scored, if the file has no `kind` array "
                   "(if it has, they must agree)")
    p.add_argument("--memory", type=_memory, metavar="S,V,M",
                   help="cells allowed per kind; a program needing more is an error")
    p.add_argument("--backend", choices=("interp", "jit", "vm"), default="vm")
    p.add_argument("--fitness", metavar="NAME",
                   help="score with this fitness: accuracy, atan_rmse or one an extension "
                   "registers (default: by task kind)")
    add_extension_option(p)
    p.add_argument("-v", "--verbose", action="store_true", help="also print per-task fitness")
    p.set_defaults(func=run)


def _memory(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three whole numbers S,V,M: {text!r}") from None
    if len(sizes) != 3 or min(sizes) < 0:
        raise argparse.ArgumentTypeError(f"expected three whole numbers S,V,M: {text!r}")
    if max(sizes) > MAX_CELLS:
        raise argparse.ArgumentTypeError(f"at most {MAX_CELLS} cells of a kind: {text!r}")
    return sizes[0], sizes[1], sizes[2]


def _check_memory(needs: dict[Any, int], allowed: tuple[int, int, int]) -> None:
    from azdsl.language.ops import Kind

    for kind, limit in zip((Kind.SCALAR, Kind.VECTOR, Kind.MATRIX), allowed, strict=True):
        if needs[kind] > limit:
            raise ConfigError(
                f"the program needs {needs[kind]} {kind.word} cells "
                f"({kind.prefix}0..{kind.prefix}{needs[kind] - 1}) but --memory allows {limit}")


def _task_label(task: str) -> str | None:
    """How `task`'s labels score (None: the npz file says); a ConfigError naming every
    known kind if there is no such task family."""
    if task in USER_TASK_KINDS:
        return USER_TASK_KINDS[task].label
    if task not in TASK_CHOICES:
        known = ", ".join((*TASK_CHOICES, *USER_TASK_KINDS))
        raise ConfigError(f"--task {task!r}: no such task family; the known ones are {known} "
                          "(an --extension may register more)")
    if task == "npz":
        return None
    return CLASSIFICATION if task in _IMAGE_TASKS else REGRESSION


def run(args: argparse.Namespace) -> int:
    from azdsl import limits
    from azdsl.running.evaluate import evaluate

    load_extension_option(args)  # before parsing: the program may use their ops
    label = _task_label(args.task)
    source = read_source(args.file)
    program = parse(source, args.file, args.dim)
    limits.check_cells(program, source, args.file)
    if args.memory is not None:
        _check_memory(program.memory_needs(), args.memory)
    if args.task in _IMAGE_TASKS:
        spec = TaskSpec(kind="projected", dataset=args.task, data_path=args.data)
    elif args.task == "npz":
        if args.data is None:
            raise ConfigError("--task npz needs --data FILE.npz")
        if args.tasks not in (None, 1):
            raise ConfigError(f"{NPZ_ONE_TASK}; --tasks must be 1 (score each file with its "
                              "own run)")
        spec = TaskSpec(kind="npz", data_path=args.data, label_kind=args.kind)
    else:
        spec = TaskSpec(kind=args.task)
    if args.kind is not None and args.task != "npz":
        raise ConfigError(f"--kind is for --task npz; {args.task} tasks are always {label}")
    num_tasks = args.tasks or (1 if args.task == "npz" else 10)
    spec = TaskSpec(**{**spec.__dict__, "dim": args.dim, "num_tasks": num_tasks,
                       "num_train": args.train, "num_valid": args.valid, "epochs": args.epochs,
                       "seed": args.seed})
    # Before anything is allocated (an npz file whose headers do not say: once it is read).
    shape = limits.task_shape(spec)
    needs = [limits.data_need(spec, "--tasks, --train, --valid, --dim", shape)]
    if shape is not None:
        needs.append(limits.program_needs(program, shape[0], args.file, args.memory))
    limits.check_memory([need for need in needs if need is not None])
    tasks = make_tasks(spec)
    if shape is None:
        limits.check_memory([limits.program_needs(program, tasks[0].dim, args.file,
                                                  args.memory)])
    result = evaluate(program, tasks, seed=args.seed or 0, backend=args.backend,
                      memory=args.memory, fitness=args.fitness)
    print(f"fitness {result.fitness!r}")
    if args.verbose:
        for i, fitness in enumerate(result.task_fitness):
            print(f"  task {i} ({tasks[i].name}): {fitness!r}")
        print(f"train steps {result.train_steps}", file=sys.stderr)
    return 0
