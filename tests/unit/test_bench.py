"""The training benchmark, the throughput table and the GPU budget run end to end on tiny settings and write their
JSON (figures are checked for being positive, never for a speed); FLOPs and budgets are checked by hand; every
benchmark is reached through ``python -m superconv.bench <subcommand>``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from superconv.bench import common, gpu_budget, throughput
from superconv.bench.__main__ import main as bench
from superconv.stages.compose import CONF_DIR


def test_compare_runs_ours_and_bare_and_writes_the_ratios(tmp_path: Path, mlflow_uri: str) -> None:
    out = tmp_path / "train_bench.json"
    report = bench(["--cases", "lenet_mnist", "--iterations", "2", "--batch", "8", "--repeats", "1",
                         "--warmup-iterations", "1", "--train-images", "32", "--overhead-iterations", "20",
                         "--threads", "1", "--no-system-metrics", "--tracking-uri", mlflow_uri, "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    case = report["cases"]["lenet_mnist"]
    assert set(case["images_per_s"]) == {"bare", "ours_tracked", "ours_untracked"}
    assert all(v > 0 for v in case["images_per_s"].values())
    for key in ("ours_over_bare", "ours_untracked_over_bare", "predicted_ours_over_bare"):
        assert case[key] > 0
    assert {"mlflow_overhead", "mlflow_call_share", "mlflow_run_open_close_s"} <= set(case)
    assert case["iterations"] == 2 and case["total_batch"] == 8 and not case["diverged"]
    assert report["loop_overhead_us"]["bare_step_us"] > 0
    assert report["targets"] == {"ours_over_bare": 0.95, "mlflow_overhead": 0.02}


def test_throughput_gives_images_per_s_flops_and_a_floor_when_the_peak_is_given(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    report = bench(["throughput", "--models", "lenet,cifar_resnet20", "--batch", "2", "--iterations", "1",
                         "--warmup", "0", "--peak-tflops", "1.5", "--out", str(out)])
    assert json.loads(out.read_text())["models"].keys() == {"lenet", "cifar_resnet20"}
    assert report["peak_tflops"] == 1.5
    for row in report["models"].values():
        assert row["images_per_s"] > 0 and row["eval_images_per_s"] > 0
        assert row["train_flops_per_image"] > row["eval_flops_per_image"] > 0
        assert row["floor_images_per_s"] == pytest.approx(1.5e12 / row["train_flops_per_image"])
    assert report["models"]["cifar_resnet20"]["input_shape"] == [3, 32, 32]


def test_every_conf_model_has_a_throughput_entry() -> None:
    groups = {p.stem for p in (CONF_DIR / "model").glob("*.yaml")}
    assert groups == {spec.group for spec in throughput.MODELS.values()}


def test_flop_counter_matches_a_hand_count() -> None:
    # conv 1->2, 3x3 on 4x4 (output 2x2x2 = 8 values of 9 MACs = 72 MACs) -> flatten 8 -> linear 8->3 (24 MACs).
    # forward: 2 x (72 + 24) = 192. backward: linear grad input + grad weight 2 x 2 x 24 = 96, conv grad weight
    # 2 x 72 = 144 (no grad input: the input needs none). Biases, flatten and the loss are not counted.
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    x, y = torch.randn(5, 1, 4, 4), torch.zeros(5, dtype=torch.long)
    assert throughput.count_flops(model, x, y, backward=False) == 5 * 192
    assert throughput.count_flops(model, x, y) == 5 * (192 + 96 + 144)


def test_budget_is_iterations_times_batch_over_images_per_s() -> None:
    rates = {"lenet": gpu_budget.Rate(1000.0, 4000.0, "assumed")}
    report = gpu_budget.budget(["paper_mnist_lenet"], rates, seeds=4)
    runs = {r["policy"]: r for r in report["runs"]}
    assert set(runs) == {"one_cycle", "inv", "step"}
    # inv: 10,000 iterations at total batch 512; 1cycle: 12 epochs of 60,000 / 512 -> round(1406.25) = 1406
    assert runs["inv"]["iterations"] == 10_000 and runs["one_cycle"]["iterations"] == 1406
    for policy, its in (("inv", 10_000), ("one_cycle", 1406)):
        run = runs[policy]
        assert run["train_hours"] == pytest.approx(its * 512 / 1000 / 3600)
        evals = its // 100 + (its % 100 > 0)  # every eval_every=100 and at the last iteration
        assert run["evaluations"] == evals
        assert run["eval_hours"] == pytest.approx(evals * 10_000 / 4000 / 3600)
        assert run["hours_all_seeds"] == pytest.approx(4 * (run["train_hours"] + run["eval_hours"]))
    total = sum(r["hours_all_seeds"] for r in runs.values())
    assert report["preset_hours"]["paper_mnist_lenet"] == pytest.approx(total)


def test_budget_cli_prints_a_markdown_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench(["budget", "--presets", "tiny_digits_lenet", "--images-per-s", "lenet=500", "--seeds", "2",
                         "--markdown", "--out", str(tmp_path / "budget.json")])
    printed = capsys.readouterr().out
    assert printed.startswith("| preset | policy | model |")
    assert "| tiny_digits_lenet | one_cycle | lenet |" in printed
    assert report["seeds"] == 2 and report["total_hours"] > 0


def test_a_recipe_that_does_not_compose_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    real = gpu_budget.compose_stage_config

    def compose(stage: str, overrides: list[str]):
        if "schedule=inv" in overrides:
            raise ValueError("Could not find 'schedule/inv'")
        return real(stage, overrides)

    monkeypatch.setattr(gpu_budget, "compose_stage_config", compose)
    plans, notes = gpu_budget.plan_preset("tiny_digits_lenet")
    assert [p.policy for p in plans] == ["one_cycle", "step"]
    assert notes == ["tiny_digits_lenet / inv: skipped, does not compose (Could not find 'schedule/inv')"]


def test_the_peak_table_finds_gpus_by_their_cuda_names() -> None:
    assert throughput.find_peak("NVIDIA A100-SXM4-80GB").name == "A100"
    assert throughput.find_peak("NVIDIA A10").name == "A10"
    assert throughput.find_peak("NVIDIA H100 PCIe").name == "H100 PCIe"
    assert throughput.find_peak("NVIDIA H100 80GB HBM3").name == "H100 SXM"
    assert throughput.find_peak("Tesla V100-SXM2-16GB").name == "V100 SXM2"
    assert throughput.find_peak("NVIDIA GeForce RTX 4090").name == "RTX 4090"
    assert throughput.device_peak("NVIDIA A100-SXM4-80GB", "bf16")[0] == 312.0
    assert throughput.device_peak("Tesla V100-SXM2-16GB", "bf16")[0] is None  # no bf16 tensor cores
    assert throughput.device_peak("CPU AMD EPYC", None)[0] is None


@pytest.mark.parametrize(("argv", "named"), [
    (["throughput", "--models", "lenet,resnet18"], "'resnet18'"),
    (["throughput", "--peak-tflops", "-2"], "-2"),
    (["--cases", "vgg_cifar"], "'vgg_cifar'"),
    (["--iterations", "0"], "0 must be > 0"),
    (["budget", "--images-per-s", "0"], "--images-per-s='0'"),
    (["budget", "--images-per-s", "-3.5"], "'-3.5'"),
    (["budget", "--images-per-s", "lenet=abc"], "'abc'"),
    (["budget", "--images-per-s", "alexnet=100"], "unknown model 'alexnet'"),
    (["budget", "--presets", "paper_imagenet"], "'paper_imagenet'"),
    (["budget", "--gpu", "GTX 480"], "'GTX 480'"),
    (["benchmark_everything"], "unknown subcommand 'benchmark_everything'"),
])
def test_a_bad_argument_is_an_error_that_names_it(argv: list[str], named: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench(argv)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_interleaved_rotates_the_order_and_warms_up_once() -> None:
    calls: list[str] = []
    samples = common.interleaved({name: (lambda n=name: calls.append(n) or n) for name in "abc"}, repeats=3)
    assert samples == {"a": ["a"] * 3, "b": ["b"] * 3, "c": ["c"] * 3}
    assert "".join(calls) == "abc" + "abc" + "bca" + "cab"


def test_synthetic_data_has_the_config_dataset_shape_and_is_seeded() -> None:
    first, second = common.synthetic_split(4, 0, 32, 10, 3), common.synthetic_split(4, 0, 32, 10, 3)
    assert first.images.shape == (4, 3, 32, 32) and torch.equal(first.images, second.images)
    assert torch.equal(first.labels, second.labels) and int(first.labels.max()) < 10


@pytest.mark.parametrize("module", ["superconv.bench", "superconv.bench.gpu_budget"])
def test_the_package_and_each_module_run_with_python_m(module: str) -> None:
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: python -m superconv.bench" in proc.stdout


def test_the_compare_module_points_elsewhere_for_the_other_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    from superconv.bench import loop

    with pytest.raises(SystemExit) as exit_info:
        loop.main(["budget", "--markdown"])
    assert exit_info.value.code == 2
    assert "python -m superconv.bench budget" in capsys.readouterr().err


def test_parallel_times_one_process_against_one_thread_processes(tmp_path: Path, data_root: Path) -> None:
    """Real train processes on the tiny profile: both arrangements train every image, and the ratio is theirs."""
    out = tmp_path / "parallel.json"
    report = bench(["parallel", "--experiment", "tiny_digits_lenet", "--iterations", "3", "--threads", "2",
                    "--repeats", "1", "--set", f"data_root={data_root}", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    one, many = report["rounds"]["one"][0], report["rounds"]["many"][0]
    assert one["images_per_s"] > 0 and many["images_per_s"] > 0
    assert report["ratio_many_over_one"] == pytest.approx(many["images_per_s"] / one["images_per_s"])


def test_budget_plans_a_study_run_by_run() -> None:
    """A study's plan: one row per training run x seed (range tests noted), at the iterations its config gives."""
    plans, notes = gpu_budget.plan_study(Path(__file__).parents[2] / "studies/paper_cifar10_fig1a/study.yaml")
    assert sorted(p.policy for p in plans) == [f"{run}-{seed}" for run in ("clr", "pc") for seed in range(4)]
    assert {p.iterations for p in plans} == {10_000, 80_000} and {p.total_batch for p in plans} == {1000}
    assert notes == ["paper_cifar10_fig1a / range_test-0: a range test, not planned"]


def test_cpu_mode_cost_weights_each_stage_kind_by_the_study_iterations(tmp_path: Path) -> None:
    """The pinned mode's study-level cost: per-iteration costs weighted by what the committed study spent on each
    kind (train runs by policy over all seeds; the range test's steps as the first run's), and the generated
    table."""
    from superconv.bench import cpu_mode

    params = {"experiment": "paper_mnist_lenet", "study": "s", "runs": ["one_cycle", "inv"], "overrides": ""}
    for name, policy, iterations in (("one_cycle-0", "one_cycle", 1406), ("one_cycle_lr_from_range_test-0",
                                                                          "one_cycle", 1406), ("inv-0", "inv", 10000)):
        (tmp_path / "train" / name).mkdir(parents=True)
        (tmp_path / "train" / name / "summary.json").write_text(json.dumps({"policy": policy,
                                                                             "iterations": iterations}))
    for seed in (0, 1):
        seed_dir = tmp_path / "range_test" / "paper_mnist_lenet" / f"seed-{seed}"
        seed_dir.mkdir(parents=True)
        (seed_dir / "config.yaml").write_text("range_test: {protocol: linear, iterations: 1000}\n")
    weights = cpu_mode.study_iterations(params, tmp_path)
    assert weights == {"train one_cycle": 2812 + 2000, "train inv": 10000}  # range-test steps count as 1cycle's
    assert set(cpu_mode.stage_kinds(params)) == set(weights)
    per = {"train one_cycle": {"pinned": 0.2, "native": 0.1}, "train inv": {"pinned": 0.3, "native": 0.1}}
    result = cpu_mode.summarize({"iterations": 50, "repeats": 3, "per_iteration_s": per, "cpu_count": 2}, weights)
    assert result["study_pinned_s"] == pytest.approx(4812 * 0.2 + 10000 * 0.3)
    assert result["study_ratio"] == pytest.approx(result["study_pinned_s"] / (14812 * 0.1))
    text = cpu_mode.markdown(result, weighted=True)
    assert "| train inv | 300 | 100 | 3.00 | 10000 |" in text and f"**{result['study_ratio']:.2f}**" in text
    assert cpu_mode.study_iterations(params, tmp_path / "none") is None


def test_cpu_pins_names_the_first_row_and_column_that_differ(tmp_path: Path) -> None:
    from superconv.bench import cpu_pins

    columns = "iteration,lr,train_loss,test_acc\n"
    reference, other, same = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    reference.write_text(columns + "0,0.1,2.5,\n1,0.1,2.25,90.0\n")
    same.write_text(reference.read_text())
    other.write_text(columns + "0,0.1,2.5,\n1,0.1,2.2500002,90.0\n")
    assert cpu_pins.first_difference(same, reference) == ""
    assert cpu_pins.first_difference(other, reference) == "iteration 1, train_loss: 2.2500002 vs 2.25"
    rows = [{"variant": "pinned (the default)", "reading": "the reference", "sha256": "ab", "first_difference": ""},
            {"variant": "native", "reading": "fast", "sha256": "cd", "first_difference": "iteration 1, lr: 1 vs 2"}]
    text = cpu_pins.markdown({"rows": rows, "golden": "g.csv", "golden_equal": True})
    assert "| native | cd | iteration 1, lr: 1 vs 2 | fast |" in text and "is byte for byte the golden" in text
