"""azdsl against the C++ original, side by side in one run (issue 11).

    python benchmarks/against_original.py --original PATH/TO/automl_zero [--build DIR]

PATH is a checkout of the original's automl_zero/ folder (google-research; e.g. Google's last
commit 1d49f2c0 from the fork jdonovanCS/google-research). The script builds it in DIR (a
scratch folder outside this repository, default /tmp/azdsl-original-build) with plain
g++ -O3 -march=native and Debian's protobuf, abseil, glog, gflags, gtest (for one header) and
Eigen packages, protoc compiling the .proto files into DIR; nothing of the original is ever
copied into this repository. Two builds, as the original's scripts: memory 4/3/1
(run_demo.sh) and 5/9/2 (the neural network, run_integration_test_nonlinear.sh). Each links
benchmarks/original_driver.cc (our own timing driver, calling the original's Evaluator,
Generator and RegularizedEvolution); the 4/3/1 build also links the original's
run_search_experiment, which is run once as a check.

Workloads, each run in both programs, interleaved (original, azdsl; the order alternates
from pair to pair), CPU seconds, medians of the pairs:
- one evaluation of a fixed program on all tasks: the original's LINEAR_ALGORITHM and
  NEURAL_NET_ALGORITHM against examples/linear_sgd.az and examples/neural_net.az, on the demo
  tasks (10 linear regression tasks, F = 4, 100 + 100 examples) and on 10 teacher-network
  tasks with 1000 training + 100 validation examples; microseconds per evaluation (azdsl: the
  general VM on the program lowered once, several evaluations per call where one is short
  (CALL_SECONDS); the lowering's cost is printed apart);
- the demo search (one experiment of run_demo.sh / examples/demo.toml, seed 1) for a fixed
  number of individuals: FEC off with azdsl's structural memo off, FEC off with the memo on,
  FEC on (everything on); individuals per CPU second (azdsl: bench_search.measure, Numba
  compiled before the clock starts);
- the nonlinear repair search (run_integration_test_nonlinear.sh: the damaged network
  repaired, 5/9/2, its train budget, seed 100001, FEC off, against
  examples/nonlinear_repair.toml) for a fixed number of individuals, individuals per CPU s.
The ratio is azdsl's speed over the original's (above 1: azdsl is faster). After the table:
the peak resident set size (ru_maxrss of the child process) of the original's demo search
(driver, one experiment, FEC on; and run_search_experiment's check run) and of azdsl's
(the same experiment in a fresh Python process; and `azdsl demo --seed 1` to the end).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DRIVER = ROOT / "benchmarks" / "original_driver.cc"
APT = ("apt-get install -y g++ protobuf-compiler libprotobuf-dev libabsl-dev "
       "libgoogle-glog-dev libgflags-dev libeigen3-dev libgtest-dev")
HEADERS = {  # header: the Debian package that has it
    "google/protobuf/message.h": "libprotobuf-dev",
    "absl/flags/flag.h": "libabsl-dev",
    "glog/logging.h": "libgoogle-glog-dev",
    "gflags/gflags.h": "libgflags-dev",
    "eigen3/Eigen/Core": "libeigen3-dev",
    "gtest/gtest_prod.h": "libgtest-dev",
}
MEMORY = {"demo": (4, 3, 1), "nn": (5, 9, 2)}  # build name: scalars, vectors, matrices
# Programs per VM call in the evaluation rows: enough for a call to last CALL_SECONDS (at
# most COPIES_MAX), since a call from Python costs about 8 us of argument checking and
# dispatch, which the search (calling the VM from compiled code) never pays and the
# original's driver (timing its Evaluator in a C++ loop) does not measure.
CALL_SECONDS = 200e-6
COPIES_MAX = 16
FLAGS = ["-O3", "-march=native", "-std=c++17", "-DNDEBUG", "-w"]


# ---- building the original ------------------------------------------------------------------


def check_tools() -> None:
    """Exit with the apt-get line to run when a compiler, protoc or a header is missing."""
    missing = [tool for tool in ("g++", "protoc") if shutil.which(tool) is None]
    roots = ("/usr/include", "/usr/local/include")
    missing += [f"{header} ({package})" for header, package in HEADERS.items()
                if not any(Path(root, header).exists() for root in roots)]
    if missing:
        sys.exit(f"missing: {', '.join(missing)}\ninstall them with:\n  {APT}")


def run_checked(command: Sequence[str], cwd: Path | None = None) -> None:
    done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout}{done.stderr}")


def stale(target: Path, sources: Sequence[Path]) -> bool:
    return not target.exists() or any(s.stat().st_mtime > target.stat().st_mtime for s in sources)


def compile_all(jobs: Sequence[tuple[Path, Path, list[str]]], workers: int) -> None:
    """Compile (source, object, extra flags) jobs that are out of date, `workers` at a time."""
    todo = [job for job in jobs if stale(job[1], [job[0]])]

    def one(job: tuple[Path, Path, list[str]]) -> None:
        source, obj, extra = job
        obj.parent.mkdir(parents=True, exist_ok=True)
        run_checked(["g++", *FLAGS, *extra, "-c", str(source), "-o", str(obj)])

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        for future in [pool.submit(one, job) for job in todo]:
            future.result()


def libraries() -> list[str]:
    found = glob.glob("/usr/lib/*/libabsl_*.so") + glob.glob("/usr/lib/libabsl_*.so")
    absl = sorted({Path(p).name[3:].split(".so")[0] for p in found})
    return ["-lprotobuf", "-lglog", "-lgflags", *(f"-l{name}" for name in absl), "-lpthread"]


def build(original: Path, out: Path, workers: int) -> dict[str, Path]:
    """Build the drivers (and run_search_experiment) in `out`; returns their paths."""
    check_tools()
    original = original.resolve()
    if not (original / "evaluator.cc").exists():
        sys.exit(f"{original} is not the original's automl_zero/ folder (no evaluator.cc)")
    out.mkdir(parents=True, exist_ok=True)
    proto_dir = out / "proto"
    proto_dir.mkdir(exist_ok=True)
    protos = sorted(original.glob("*.proto"))
    if stale(proto_dir / "stamp", protos):
        run_checked(["protoc", f"-I{original}", f"--cpp_out={proto_dir}",
                     *(str(p) for p in protos)])
        (proto_dir / "stamp").touch()
    includes = [f"-I{proto_dir}", f"-I{original}", "-I/usr/include/eigen3"]
    pb_sources = sorted(proto_dir.glob("*.pb.cc"))
    library = sorted(p for p in original.glob("*.cc")
                     if not p.name.endswith(("_test.cc", "_test_util.cc"))
                     and p.name != "run_search_experiment.cc")
    jobs = [(p, proto_dir / (p.name + ".o"), includes) for p in pb_sources]
    for name, (scalars, vectors, matrices) in MEMORY.items():
        defines = [f"-DMAX_SCALAR_ADDRESSES={scalars}", f"-DMAX_VECTOR_ADDRESSES={vectors}",
                   f"-DMAX_MATRIX_ADDRESSES={matrices}"]
        sources = [*library, DRIVER]
        if name == "demo":
            sources.append(original / "run_search_experiment.cc")
        jobs += [(p, out / name / (p.name + ".o"), [*includes, *defines]) for p in sources]
    compile_all(jobs, workers)
    pb_objects = [str(proto_dir / (p.name + ".o")) for p in pb_sources]
    binaries = {}
    for name in MEMORY:
        lib_objects = [str(out / name / (p.name + ".o")) for p in library]
        mains = {f"driver_{name}": DRIVER}
        if name == "demo":
            mains["run_search_experiment"] = original / "run_search_experiment.cc"
        for binary, main in mains.items():
            target = out / binary
            main_object = out / name / (main.name + ".o")
            objects = [Path(o) for o in [*lib_objects, *pb_objects]] + [main_object]
            if stale(target, objects):
                run_checked(["g++", *FLAGS, "-o", str(target), str(main_object), *lib_objects,
                             *pb_objects, *libraries()])
            binaries[binary] = target
    return binaries


def parse_fields(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-+0-9.eE]+|nan|inf)", text)}


def run_driver(binary: Path, arguments: Sequence[str]) -> dict[str, float]:
    done = subprocess.run([str(binary), *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{binary.name} {' '.join(arguments)} failed ({done.returncode}):\n"
                           f"{done.stdout}{done.stderr[-2000:]}")
    return parse_fields(done.stdout.strip().splitlines()[-1])


# Linux keeps a process's peak RSS across exec, so a child forked from this (large) Python
# process would report at least this process's size: a small Python process without site
# forks and execs the command and reports that grandchild's rusage.
MEASURER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_utime + usage.ru_stime} "
              f"{usage.ru_maxrss}")
"""


def run_measured(command: Sequence[str]) -> tuple[int, str, float, int]:
    """Run `command` as a child process: (exit status, its stdout and stderr, its CPU
    seconds, its peak RSS in kB). The RSS has a floor of the measurer's own, ~10 MB."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "rusage"
        done = subprocess.run([sys.executable, "-S", "-c", MEASURER, str(report), *command],
                              capture_output=True, text=True)
        returncode, cpu, rss = report.read_text().split()
    return int(returncode), done.stdout + done.stderr, float(cpu), int(rss)


def check_run_search_experiment(binary: Path, train_steps: int) -> str:
    """Run the original's own binary on the demo spec, FEC off, for `train_steps`; returns a
    line with its individuals per CPU second (the whole process: start-up and T_select /
    T_final evaluations included)."""
    ops = ("[SCALAR_CONST_SET_OP, VECTOR_INNER_PRODUCT_OP, SCALAR_DIFF_OP, SCALAR_PRODUCT_OP, "
           "SCALAR_VECTOR_PRODUCT_OP, VECTOR_SUM_OP]")
    spec = ("search_tasks { tasks { scalar_linear_regression_task {} features_size: 4 "
            "num_train_examples: 100 num_valid_examples: 100 num_tasks: 10 "
            f"eval_type: RMS_ERROR }} }} setup_ops: {ops} predict_ops: {ops} learn_ops: {ops} "
            "learn_size_init: 8 setup_size_init: 10 predict_size_init: 2 "
            "fitness_combination_mode: MEAN_FITNESS_COMBINATION population_size: 1000 "
            "tournament_size: 10 initial_population: RANDOM_ALGORITHM "
            f"max_train_steps: {train_steps} allowed_mutation_types {{ mutation_types: "
            "[ALTER_PARAM_MUTATION_TYPE, RANDOMIZE_INSTRUCTION_MUTATION_TYPE, "
            "RANDOMIZE_COMPONENT_FUNCTION_MUTATION_TYPE] } mutate_prob: 0.9 "
            "progress_every: 1000")
    tasks = ("tasks { scalar_linear_regression_task {} features_size: 4 "
             "num_train_examples: 1000 num_valid_examples: 100 num_tasks: 100 "
             "eval_type: RMS_ERROR data_seeds: [1000000] param_seeds: [2000000] }")
    command = [str(binary), f"--search_experiment_spec={spec}", f"--final_tasks={tasks}",
               f"--select_tasks={tasks}", "--max_experiments=1", "--randomize_task_seeds",
               "--random_seed=1"]
    returncode, stdout, cpu, rss = run_measured(command)
    if returncode != 0:
        return f"run_search_experiment failed ({returncode}): {stdout[-500:]}"
    counts = re.findall(r"indivs=(\d+)", stdout)
    final = re.findall(r"Final evaluation.*\n.*?([0-9.]+)\s*$", stdout, re.MULTILINE)
    individuals = int(counts[-1]) if counts else 0
    return (f"run_search_experiment (FEC off, {train_steps:,} train steps, whole process): "
            f"{individuals:,} individuals in {cpu:.2f} CPU s = {individuals / cpu:,.0f} /s"
            + (f"; final fitness {final[-1]}" if final else "")
            + f"; peak RSS {rss / 1024:.0f} MB")


# ---- the workloads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    unit: str  # "us" (lower is better) or "/s" (higher is better)
    original: Callable[[], float]
    azdsl: Callable[[], float]


def write_task_collection(tasks: Sequence[Any], path: Path) -> None:
    """azdsl's tasks as the original's text-format TaskCollection: one unit_test_fixed_task
    per task (features and labels verbatim, printed to round trip), ACCURACY for
    classification, RMS_ERROR for regression."""
    def vector(field: str, values: Any) -> str:
        return f"{field} {{ elements: [{', '.join(repr(float(v)) for v in values)}] }}"

    lines = []
    for task in tasks:
        fixed = [vector("train_features", x) for x in task.x_train]
        fixed += [vector("train_labels", [y]) for y in task.y_train]
        fixed += [vector("valid_features", x) for x in task.x_valid]
        fixed += [vector("valid_labels", [y]) for y in task.y_valid]
        eval_type = "ACCURACY" if task.kind == "classification" else "RMS_ERROR"
        lines.append(f"tasks {{ unit_test_fixed_task {{ {' '.join(fixed)} }} "
                     f"features_size: {task.dim} num_train_examples: {len(task.y_train)} "
                     f"num_valid_examples: {len(task.y_valid)} num_tasks: 1 "
                     f"num_train_epochs: {task.epochs} eval_type: {eval_type} }}")
    path.write_text("\n".join(lines) + "\n")


def evaluation_workloads(binaries: dict[str, Path], seconds: float,
                         scratch: Path) -> list[Workload]:
    import numpy as np

    from azdsl.language.parse import parse_file
    from azdsl.running import vm
    from azdsl.running.evaluate import Settings, memory_sizes
    from azdsl.running.tasks import TaskSpec, make_tasks

    fitnesses: dict[str, float] = {}

    def azdsl_step(program_file: str, spec: TaskSpec, memory: tuple[int, int, int]
                   ) -> Callable[[], float]:
        program = parse_file(ROOT / "examples" / program_file)
        tasks = make_tasks(spec)
        low = vm.lower(program, memory_sizes(program, memory), tasks[0].dim)
        runner = vm.Batch(vm.PackedTasks.pack(tasks, Settings()), size=COPIES_MAX)
        result = runner.run([low], [1])  # compile or load the VM
        if not np.all(np.isfinite(result.fitness)):
            raise RuntimeError(f"{program_file}: fitness {result.fitness}")
        fitnesses[spec.kind] = float(np.asarray(result.fitness).ravel()[0])
        start = time.process_time()
        runner.run([low], [1])
        one = time.process_time() - start
        copies = max(1, min(COPIES_MAX, int(CALL_SECONDS / max(one, 1e-9))))
        lowered, seeds = [low] * copies, [1] * copies

        def step() -> float:
            count = 0
            start = time.process_time()
            while True:
                runner.run(lowered, seeds)
                count += copies
                elapsed = time.process_time() - start
                if elapsed >= seconds:
                    return 1e6 * elapsed / count

        return step

    def original_step(build: str, algorithm: str, kind: str, train: int) -> Callable[[], float]:
        arguments = ["eval", algorithm, kind, "10", str(train), "100", "4", str(seconds)]
        return lambda: run_driver(binaries[f"driver_{build}"], arguments)["us_per_eval"]

    # examples/projected_binary.toml's search_tasks, fixed seeds
    projected_spec = TaskSpec(kind="projected", dataset="digits", pairs="search", dim=16,
                              num_tasks=10, num_train=250, num_valid=100, seed=1)
    projected_file = scratch / "projected_digits_f16.textproto"
    write_task_collection(make_tasks(projected_spec), projected_file)
    projected_arguments = ["eval_file", "neural_net", str(projected_file), str(seconds)]

    rows = [
        ("eval linear SGD, demo tasks (10 x 100+100)", "demo", "linear", "linear_sgd.az",
         "linear", 100, MEMORY["demo"]),
        ("eval 2-layer net 5/9/2, demo tasks", "nn", "neural_net", "neural_net.az",
         "linear", 100, MEMORY["nn"]),
        ("eval linear SGD, teacher tasks (10 x 1000+100)", "nn", "linear", "linear_sgd.az",
         "nonlinear", 1000, MEMORY["nn"]),
        ("eval 2-layer net 5/9/2, teacher tasks", "nn", "neural_net", "neural_net.az",
         "nonlinear", 1000, MEMORY["nn"]),
    ]
    for program_file, memory in (("linear_sgd.az", MEMORY["demo"]),
                                 ("neural_net.az", MEMORY["nn"])):
        program = parse_file(ROOT / "examples" / program_file)
        sizes = memory_sizes(program, memory)
        costs = []
        for all_live in (False, True):
            start = time.process_time()
            for _ in range(200):
                vm.lower(program, sizes, 4, all_live=all_live)
            costs.append(1e6 * (time.process_time() - start) / 200)
        print(f"azdsl lowering of {program_file} (once per program, not in the rows): "
              f"{costs[0]:.1f} us with the liveness analysis, {costs[1]:.1f} us without "
              "(all_live, as the search lowers pruned programs)")
    workloads = [Workload(name, "us", original_step(build, algorithm, kind, train),
                          azdsl_step(program, TaskSpec(kind=kind, dim=4, num_tasks=10,
                                                       num_train=train, num_valid=100),
                                     memory))
                 for name, build, algorithm, program, kind, train, memory in rows]
    projected = azdsl_step("neural_net.az", projected_spec, MEMORY["nn"])
    original_fitness = run_driver(binaries["driver_nn"], [*projected_arguments[:3], "0.01"])
    print(f"projected digits F=16 (10 tasks x 250+100, {projected_file}): the network's "
          f"accuracy, original {original_fitness['fitness']:.4f}, azdsl "
          f"{fitnesses['projected']:.4f} (same examples; the training order differs: each "
          "draws its own epoch shuffle)")
    workloads.append(Workload(
        "eval 2-layer net 5/9/2, projected digits F=16", "us",
        lambda: run_driver(binaries["driver_nn"], projected_arguments)["us_per_eval"],
        projected))
    return workloads


def search_workloads(binaries: dict[str, Path], fec_individuals: int,
                     nofec_individuals: int, seed: int) -> list[Workload]:
    from bench_search import measure, warm

    from azdsl.search.config import Config, load_config

    demo = load_config(ROOT / "examples" / "demo.toml")
    warm(demo)
    no_memo = replace(demo, fec=replace(demo.fec, structural_cache_size=0))

    def original(fec: bool, individuals: int) -> Callable[[], float]:
        arguments = ["search", "1" if fec else "0", str(individuals), str(seed)]
        return lambda: run_driver(binaries["driver_demo"], arguments)["per_s"]

    def ours(config: Config, fec: bool, individuals: int) -> Callable[[], float]:
        def step() -> float:
            seconds, record = measure(config, individuals, fec, seed)
            return float(record.get("individuals", individuals)) / seconds

        return step

    rows = [
        ("demo search, FEC off, memo off", False, no_memo, nofec_individuals),
        ("demo search, FEC off, memo on", False, demo, nofec_individuals),
        ("demo search, FEC on (all on)", True, demo, fec_individuals),
    ]
    return [Workload(f"{name} ({count // 1000}k ind.)", "/s", original(fec, count),
                     ours(config, fec, count))
            for name, fec, config, count in rows if count > 0]


def nonlinear_workload(binaries: dict[str, Path], individuals: int) -> list[Workload]:
    """The nonlinear repair search (FEC off, seed 100001), `individuals` each."""
    if individuals <= 0:
        return []
    from bench_search import measure, warm

    from azdsl.search.config import load_config

    config = load_config(ROOT / "examples" / "nonlinear_repair.toml")
    warm(config)
    arguments = ["nonlinear", str(individuals), "100001"]

    def ours() -> float:
        seconds, record = measure(config, individuals, False, 100001)
        return float(record.get("individuals", individuals)) / seconds

    return [Workload(f"nonlinear repair search, FEC off ({individuals // 1000}k ind.)", "/s",
                     lambda: run_driver(binaries["driver_nn"], arguments)["per_s"], ours)]


AZDSL_SEARCH = """
import sys
sys.path[:0] = [{root!r}, {bench!r}]
from bench_search import measure
from azdsl.search.config import load_config
seconds, record = measure(load_config({demo!r}), {individuals}, True, {seed})
print(f"individuals={{record.get('individuals', {individuals})}} cpu_s={{seconds}}")
"""


def peak_rss(binaries: dict[str, Path], individuals: int, seed: int, full_demo: bool
             ) -> list[str]:
    """Lines with the peak RSS of each program's demo search, each a fresh child process."""
    lines = []
    rows: list[tuple[str, list[str]]] = [
        (f"original driver, demo search, one experiment, FEC on, {individuals:,} ind.",
         [str(binaries["driver_demo"]), "search", "1", str(individuals), str(seed)]),
        ("azdsl, the same (a fresh Python process, Numba cache warm)",
         [sys.executable, "-c", AZDSL_SEARCH.format(
             root=str(ROOT), bench=str(ROOT / "benchmarks"),
             demo=str(ROOT / "examples" / "demo.toml"), individuals=individuals, seed=seed)]),
    ]
    if full_demo:
        azdsl = shutil.which("azdsl", path=str(Path(sys.executable).parent)) or "azdsl"
        rows.append(("azdsl demo --seed 1 --quiet (to the end: experiments until solved, "
                     "T_select, T_final)", [azdsl, "demo", "--seed", "1", "--quiet"]))
    for name, command in rows:
        returncode, stdout, cpu, rss = run_measured(command)
        status = "" if returncode == 0 else f" (failed, {returncode}: {stdout[-300:]!r})"
        lines.append(f"  {name}: peak RSS {rss / 1024:,.0f} MB, {cpu:.1f} CPU s{status}")
    return lines


def run_pairs(workloads: Sequence[Workload], pairs: int) -> list[tuple[Workload, float, float]]:
    """Medians of `pairs` interleaved (original, azdsl) runs of every workload."""
    measured: dict[str, tuple[list[float], list[float]]] = {w.name: ([], []) for w in workloads}
    for pair in range(pairs):
        for workload in workloads:
            first_original = pair % 2 == 0
            runs = [workload.original, workload.azdsl]
            values = [run() for run in (runs if first_original else runs[::-1])]
            original, ours = values if first_original else values[::-1]
            measured[workload.name][0].append(original)
            measured[workload.name][1].append(ours)
            print(f"  pair {pair + 1}: {workload.name:<50} original {original:>10.1f} "
                  f"azdsl {ours:>10.1f} {workload.unit}", flush=True)
    return [(w, statistics.median(measured[w.name][0]), statistics.median(measured[w.name][1]))
            for w in workloads]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, required=True,
                        help="the original's automl_zero/ folder")
    parser.add_argument("--build", type=Path, default=Path("/tmp/azdsl-original-build"),
                        help="scratch folder for the build (outside the repository)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel compilations")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved pairs per workload")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="CPU seconds per evaluation measurement")
    parser.add_argument("--fec-individuals", type=int, default=200_000,
                        help="demo search with FEC on: individuals per run (0: skip)")
    parser.add_argument("--nofec-individuals", type=int, default=100_000,
                        help="demo search with FEC off: individuals per run (0: skip)")
    parser.add_argument("--nonlinear-individuals", type=int, default=50_000,
                        help="nonlinear repair search: individuals per run (0: skip)")
    parser.add_argument("--rss-individuals", type=int, default=200_000,
                        help="peak RSS: individuals of the demo search processes (0: skip)")
    parser.add_argument("--no-full-demo", action="store_true",
                        help="peak RSS: skip the full `azdsl demo --seed 1` (~1 min)")
    parser.add_argument("--seed", type=int, default=1, help="the demo search's seed")
    parser.add_argument("--check-train-steps", type=int, default=20_000_000,
                        help="train steps of the run_search_experiment check (0: skip)")
    args = parser.parse_args(argv)
    if args.build.resolve().is_relative_to(ROOT):
        sys.exit("--build must be outside the repository")

    start = time.perf_counter()
    binaries = build(args.original, args.build, args.jobs)
    print(f"built the original in {args.build} in {time.perf_counter() - start:.1f} s "
          f"(g++ {' '.join(FLAGS)})", flush=True)
    check = ""
    if args.check_train_steps > 0:
        check = check_run_search_experiment(binaries["run_search_experiment"],
                                            args.check_train_steps)
        print(check, flush=True)

    workloads = evaluation_workloads(binaries, args.seconds, args.build)
    workloads += search_workloads(binaries, args.fec_individuals, args.nofec_individuals,
                                  args.seed)
    workloads += nonlinear_workload(binaries, args.nonlinear_individuals)
    print(f"measuring {len(workloads)} workloads, {args.pairs} interleaved pairs each "
          f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})", flush=True)
    results = run_pairs(workloads, args.pairs)

    print(f"\n{time.strftime('%Y-%m-%d')}, CPU time, medians of {args.pairs} pairs; "
          "ratio = azdsl speed / original speed")
    print(f"| {'workload':<50} | {'original':>12} | {'azdsl':>12} | {'ratio':>6} |")
    print(f"|{'-' * 52}|{'-' * 13}:|{'-' * 13}:|{'-' * 7}:|")
    for workload, original, ours in results:
        ratio = original / ours if workload.unit == "us" else ours / original
        cells = [f"{v:,.1f} us" if workload.unit == "us" else f"{v:,.0f} /s"
                 for v in (original, ours)]
        print(f"| {workload.name:<50} | {cells[0]:>12} | {cells[1]:>12} | {ratio:>5.2f}x |")
    if args.rss_individuals > 0 or check:
        print("\npeak resident set size (ru_maxrss of each child process):", flush=True)
    if check:
        print(f"  original {check}")
    if args.rss_individuals > 0:
        for line in peak_rss(binaries, args.rss_individuals, args.seed, not args.no_full_demo):
            print(line, flush=True)
    print(f"total {time.perf_counter() - start:.0f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
