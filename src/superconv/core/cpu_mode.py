"""The pinned CPU mode: a CPU run's numbers a function of code, config and seed, not of the machine.

Left to themselves, torch's CPU libraries pick kernels by what the CPU offers, and the kernel decides the
summation order, so the same seed gives other last bits on another CPU, which SGD amplifies (docs/determinism.md).
``pinned`` fixes every such choice at the AVX2 level, which every x86-64 server CPU since 2013-2017 has:

- ATen's vectorised kernels: ``ATEN_CPU_CAPABILITY=avx2`` (not the AVX-512 ones a newer CPU would pick);
- MKL's GEMM: its conditional numerical reproducibility mode on the ``COMPATIBLE`` branch (SSE2 without the
  approximation instructions whose results differ between vendors), the only fixed branch MKL honours on non-Intel
  CPUs: ``MKL_CBWR=AVX2`` silently falls back to MKL's own dispatch on AMD, so a curve made on an Intel CPU under it
  differed from the same run on an AMD one from its first loss. ``MKL_DYNAMIC=FALSE``: the thread count asked for;
- convolutions: oneDNN and NNPACK off. Their blocking follows the cache sizes and core count, which no flag pins,
  so convolutions take ATen's native im2col + GEMM path instead (``ONEDNN_MAX_CPU_ISA=AVX2`` caps anything
  that still reaches oneDNN);
- the intra-op thread count: ``trainer.threads``, a config value (ATen splits its reductions by it).

``native`` leaves all of these to the libraries: faster (about 2x for LeNet), but bit-identical only on the same
CPU. The libraries read the variables at their first kernel, so ``pin_cpu`` runs before any tensor is computed;
``cpu_facts`` reads back what took effect, for provenance.json and the run's MLflow tags.
"""

from __future__ import annotations

import os

import torch

from superconv.common.errors import ConfigError

PINNED_CAPABILITY = "AVX2"
PINNED_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "MKL_DYNAMIC": "FALSE",
              "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_cpu(mode: str, threads: int | None) -> dict[str, str]:
    """Put this process in ``mode`` (one of choices.CPU_MODES, as the schema checked) with ``threads`` intra-op threads
    (None: torch's default, native only) and return what took effect; a pinned mode that could not take effect
    is a ConfigError, before any compute."""
    pinned = mode == "pinned"
    if pinned:
        if threads is None:
            raise ConfigError("trainer.cpu_mode=pinned needs trainer.threads set (the thread count decides the "
                              "summation order): set trainer.threads=N, or trainer.cpu_mode=native.")
        os.environ.update(PINNED_ENV)
    torch.backends.mkldnn.enabled = not pinned
    torch.backends.nnpack.set_flags(not pinned)
    if threads is not None:
        torch.set_num_threads(int(threads))
    facts = cpu_facts(mode)
    if pinned and facts["aten_capability"] != PINNED_CAPABILITY:
        raise ConfigError(
            f"trainer.cpu_mode=pinned: torch runs its {facts['aten_capability']} kernels, not {PINNED_CAPABILITY}: "
            "either this CPU has no AVX2, or torch chose its kernels before superconv could pin them (set "
            f"ATEN_CPU_CAPABILITY=avx2 before the process starts). Use trainer.cpu_mode=native to run anyway.")
    return facts


def cpu_facts(mode: str) -> dict[str, str]:
    """What decides this process's CPU numerics, as it stands now (strings: they are MLflow tags too)."""
    return {"cpu_mode": mode, "aten_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl_cbwr": os.environ.get("MKL_CBWR", "auto"), "mkl_dynamic": os.environ.get("MKL_DYNAMIC", "auto"),
            "mkldnn": str(torch.backends.mkldnn.enabled).lower(), "nnpack": str(torch._C._get_nnpack_enabled()).lower(),
            "threads": str(torch.get_num_threads())}
