"""Every closed set of names core implements, in a module that loads nothing: the schema checks a config against
these, and the report stage (which never trains) reads the schema without loading torch (tested by
tests/unit/test_architecture.py). Each implementing module imports its set from here, so there is one list."""

from __future__ import annotations

# core.schedules: the lr/momentum policies (conf/schedule/*.yaml).
POLICIES = ("one_cycle", "fastai_one_cycle", "torch_one_cycle", "triangular", "triangular2", "exp_range", "inv",
            "multistep", "step", "exp", "constant")

# core.range_rules: the ways a range-test curve becomes a max_lr.
RULES = ("accuracy_peak", "valley", "steepest", "min_loss_div10")

# core.data.sources: dataset -> source -> reader, as ``[module:]function`` (a module of superconv.core.data; none:
# core.data.sources itself). A run imports only the reader it uses.
_CIFAR = {"local": "sources_cifar:cifar_from_local", "download": "sources_cifar:cifar_from_download"}
_FASTAI = {"local": "sources_imagefolder:fastai_from_local", "download": "sources_imagefolder:fastai_from_download"}
SOURCES: dict[str, dict[str, str]] = {
    "mnist": {"local": "mnist_from_local", "download": "mnist_from_download", "pypi_wheel": "mnist_from_pypi_wheel"},
    "digits": {"sklearn": "digits_from_sklearn"},
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "imagenette": _FASTAI,
    "imagewoof": _FASTAI,
    "imagenet": {"local": "sources_imagefolder:imagenet_from_local"},
    "imagenet_subset": {"local": "sources_imagefolder:imagenet_subset_from_local"},
}
# fastai's archive sizes (dataset.archive_size) -> the suffix of their folder names.
ARCHIVE_SUFFIX = {"full": "", "320px": "-320", "160px": "-160"}

# core.engine: trainer.amp -> the torch dtype's name.
AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}

# core.models.cifar_resnet: model.shortcut.
SHORTCUTS = ("avgpool", "A", "B")

# core.data.augment: augment.pad_mode.
PAD_MODES = ("zero", "reflect")

# core.cpu_mode: trainer.cpu_mode.
CPU_MODES = ("pinned", "native")
