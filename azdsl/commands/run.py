"""`azdsl run FILE --task KIND --dim F ...`: score a program on tasks and print its fitness."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from azdsl.commands._args import feature_size, positive
from azdsl.commands.fmt import read_source
from azdsl.errors import ConfigError
from azdsl.parse import parse

# Image data sets run as projected binary classification tasks (SEMANTICS §5).
_IMAGE_TASKS = ("digits", "cifar10", "mnist", "fashion_mnist")
TASK_CHOICES = ("linear", "affine", "nonlinear", *_IMAGE_TASKS, "npz")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run", help="score a program on tasks",
        description="Train and validate a program on a collection of tasks (SEMANTICS §2) and "
        "print its fitness: the mean over tasks of 1 - (2/pi) atan(RMSE) for regression, "
        "accuracy for classification.")
    p.add_argument("file", metavar="FILE", help="the .az program (`-` reads stdin)")
    p.add_argument("--task", choices=TASK_CHOICES, default="linear",
                   help="task family (image data sets give projected binary tasks)")
    p.add_argument("--dim", type=feature_size, metavar="F",
                   help="feature size (default 4; 16 for image tasks; the file's for npz)")
    p.add_argument("--tasks", type=positive, default=10, metavar="N", help="number of tasks")
    p.add_argument("--train", type=positive, metavar="N", help="training examples per task")
    p.add_argument("--valid", type=positive, metavar="N", help="validation examples per task")
    p.add_argument("--epochs", type=positive, default=1, metavar="N")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="task seed base and evaluation seed (default: the original's task seeds "
                   "and evaluation seed 0)")
    p.add_argument("--data", metavar="PATH",
                   help="data folder (cifar10/mnist/fashion_mnist) or .npz file")
    p.add_argument("--memory", type=_memory, metavar="S,V,M",
                   help="cells allowed per kind; a program needing more is an error")
    p.add_argument("--backend", choices=("interp", "jit", "vm"), default="vm")
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
    return sizes[0], sizes[1], sizes[2]


def _check_memory(needs: dict[Any, int], allowed: tuple[int, int, int]) -> None:
    from azdsl.ops import Kind

    for kind, limit in zip((Kind.SCALAR, Kind.VECTOR, Kind.MATRIX), allowed, strict=True):
        if needs[kind] > limit:
            raise ConfigError(
                f"the program needs {needs[kind]} {kind.word} cells "
                f"({kind.prefix}0..{kind.prefix}{needs[kind] - 1}) but --memory allows {limit}")


def run(args: argparse.Namespace) -> int:
    from azdsl.evaluate import evaluate
    from azdsl.tasks import TaskSpec, make_tasks

    program = parse(read_source(args.file), args.file, args.dim)
    if args.memory is not None:
        _check_memory(program.memory_needs(), args.memory)
    if args.task in _IMAGE_TASKS:
        spec = TaskSpec(kind="projected", dataset=args.task, data_path=args.data)
    elif args.task == "npz":
        if args.data is None:
            raise ConfigError("--task npz needs --data FILE.npz")
        spec = TaskSpec(kind="npz", data_path=args.data)
    else:
        spec = TaskSpec(kind=args.task)
    spec = TaskSpec(**{**spec.__dict__, "dim": args.dim, "num_tasks": args.tasks,
                       "num_train": args.train, "num_valid": args.valid, "epochs": args.epochs,
                       "seed": args.seed})
    tasks = make_tasks(spec)
    result = evaluate(program, tasks, seed=args.seed or 0, backend=args.backend,
                      memory=args.memory)
    print(f"fitness {result.fitness!r}")
    if args.verbose:
        for i, fitness in enumerate(result.task_fitness):
            print(f"  task {i} ({tasks[i].name}): {fitness!r}")
        print(f"train steps {result.train_steps}", file=sys.stderr)
    return 0
