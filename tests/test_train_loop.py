"""vsrife.train loop: exact resume, schedule, config errors, CLI, export -> load_model, fast acceptance runs."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from vsrife.models import load_model
from vsrife.models.loading import METADATA_KEY
from vsrife.train import ConfigError, TrainConfig, Trainer
from vsrife.train.__main__ import main as cli
from vsrife.train.acceptance import finetune_check, scratch_check
from vsrife.train.checkpoint import list_checkpoints, load_checkpoint
from vsrife.train.data import WindowDataset, make_windows
from vsrife.train.export import export_checkpoint
from vsrife.train.loop import lr_multiplier

TINY: dict[str, Any] = {
    "arch": {"widths": [16, 16], "scales": [2, 1]},
    "data": ["sample:carphone"],
    "max_frames": 40,
    "windows": [3, 4],
    "crop": [64],
    "batch_size": 4,
    "warmup": 2,
    "log_every": 1,
    "val_every": 100,
    "sample_every": 3,
    "val_max": 2,
    "tensorboard": False,
    "threads": 1,
}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in csv.DictReader(fh)]


@pytest.mark.parametrize("teacher", ["dis", "privileged"])
def test_resume_reproduces_loss_curve_exactly(tmp_path: Path, teacher: str) -> None:
    cfg = {**TINY, "steps": 6, "ckpt_every": 3, "teacher": teacher, "export_final": False}
    full = Trainer(TrainConfig(out_dir=str(tmp_path / "full"), **cfg))
    full.fit()
    part = Trainer(TrainConfig(out_dir=str(tmp_path / "part"), **cfg))
    assert part.fit(stop_at=5)["stopped"] == "stop_at"  # "crash" after step 5; last checkpoint at step 3
    assert [s for s, _ in list_checkpoints(tmp_path / "part" / "checkpoints")] == [3]
    torch.manual_seed(999)  # disturb the global RNG: the checkpoint must restore it
    resumed = Trainer(TrainConfig(out_dir=str(tmp_path / "part"), resume=True, **cfg))
    assert resumed.step == 3
    resumed.fit()
    a, b = _rows(tmp_path / "full" / "train.csv"), _rows(tmp_path / "part" / "train.csv")
    assert [r["step"] for r in b] == ["1", "2", "3", "4", "5", "6"]
    assert a == b  # bit-identical losses, PSNR, lr and gradient norms
    sa, sb = full.module.state_dict(), resumed.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    state = load_checkpoint(tmp_path / "part" / "checkpoints" / "step_00000006.pt")
    assert state["data"]["epoch"] * 0 == 0 and {"python", "numpy", "torch"} <= set(state["rng"])
    assert list((tmp_path / "full" / "samples").glob("step_*.png"))


def test_resume_refuses_another_run_or_config(tmp_path: Path) -> None:
    """A fresh run never mixes into an old run's folder, and a resume must keep the run's settings."""
    cfg = {**TINY, "steps": 2, "ckpt_every": 2, "export_final": False, "out_dir": str(tmp_path / "run")}
    Trainer(TrainConfig(**cfg)).fit()
    with pytest.raises(ConfigError, match=r"out_dir: .* holds checkpoints of an earlier run; pass --resume"):
        Trainer(TrainConfig(**cfg))
    for change, shown in (({"lr": 1e-3}, "lr 0.0003 -> 0.001"), ({"seed": 7}, "seed 1234 -> 7"),
                          ({"teacher": "privileged"}, "teacher 'none' -> 'privileged'")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"resume: {shown} differ from the checkpoint's run"):
            Trainer(TrainConfig(**{**cfg, **change}, resume=True))
    # what may change: a longer run, logging, threads, precision; the same crop spelt another way
    changes = {"steps": 3, "log_every": 2, "threads": 1, "amp": "bf16", "crop": [64, 64]}
    longer = Trainer(TrainConfig(**{**cfg, **changes}, resume=True))
    assert longer.step == 2 and longer.fit()["step"] == 3
    # a damaged newest checkpoint is named, with the way out (also an empty one)
    newest = list_checkpoints(tmp_path / "run" / "checkpoints")[-1][1]
    for damaged in (newest.read_bytes()[:1000], b""):
        newest.write_bytes(damaged)
        with pytest.raises(ConfigError, match=f"resume: {newest} cannot be read .*delete it"):
            Trainer(TrainConfig(**{**cfg, "steps": 3}, resume=True))


def test_resume_with_more_steps_follows_the_longer_schedule(tmp_path: Path) -> None:
    """A run resumed with a larger ``steps`` uses the longer run's learning rate from the first resumed step
    (the optimizer's saved lr belonged to the shorter schedule)."""
    cfg = {**TINY, "lr": 1e-3, "min_lr": 1e-5, "ckpt_every": 4, "export_final": False}
    longer = Trainer(TrainConfig(out_dir=str(tmp_path / "long"), steps=10, **cfg))
    longer.fit(stop_at=7)
    short = Trainer(TrainConfig(out_dir=str(tmp_path / "short"), steps=6, **cfg))
    short.fit(stop_at=5)  # last checkpoint: step 4
    resumed = Trainer(TrainConfig(out_dir=str(tmp_path / "short"), steps=10, resume=True, **cfg))
    assert resumed.step == 4
    resumed.fit(stop_at=7)

    def lrs(path: Path) -> dict[str, str]:
        return {r["step"]: r["lr"] for r in _rows(path / "train.csv")}

    want, got = lrs(tmp_path / "long"), lrs(tmp_path / "short")
    assert [got[s] for s in ("5", "6", "7")] == [want[s] for s in ("5", "6", "7")]


def test_resume_switching_to_fp16_keeps_a_fresh_grad_scaler(tmp_path: Path) -> None:
    """A checkpoint of a run without fp16 holds an empty GradScaler state; an fp16 resume starts its scaler
    afresh instead of failing to load it (fp16 needs CUDA: the enabled scaler is put in by hand)."""
    cfg = {**TINY, "steps": 2, "ckpt_every": 2, "export_final": False, "out_dir": str(tmp_path / "run")}
    Trainer(TrainConfig(**cfg)).fit()
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000002.pt")
    assert state["scaler"] == {}
    trainer = Trainer(TrainConfig(**{**cfg, "steps": 3, "out_dir": str(tmp_path / "other")}))
    trainer.scaler = torch.amp.GradScaler("cpu", enabled=True)
    trainer._load(state)
    assert trainer.step == 2 and trainer.scaler.is_enabled()


def test_ctrl_c_stops_after_the_step_with_a_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first SIGINT finishes the current step, saves it and returns; resuming continues from there."""

    cfg = {**TINY, "steps": 50, "ckpt_every": 100, "export_final": False, "out_dir": str(tmp_path / "run")}
    trainer = Trainer(TrainConfig(**cfg))
    step = trainer.train_step

    def interrupted_at_3(batch: dict[str, Any]) -> dict[str, Any]:
        out = step(batch)
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C, in the middle of the run
        return out

    monkeypatch.setattr(trainer, "train_step", interrupted_at_3)
    before = signal.getsignal(signal.SIGINT)
    summary = trainer.fit(ctrl_c_saves=True)
    assert summary["stopped"] == "interrupted" and summary["step"] == 3
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [3]
    assert signal.getsignal(signal.SIGINT) is before  # the usual Ctrl-C again after training
    resumed = Trainer(TrainConfig(**cfg, resume=True))
    assert resumed.step == 3
    # as a library call (no ctrl_c_saves) Ctrl-C is the usual KeyboardInterrupt
    step = resumed.train_step
    monkeypatch.setattr(resumed, "train_step", lambda batch: (step(batch), os.kill(os.getpid(), signal.SIGINT))[0])
    with pytest.raises(KeyboardInterrupt):
        resumed.fit()
    # an ignored SIGINT (a background job's) stays ignored: the run goes on to its end
    ignoring = Trainer(TrainConfig(**{**cfg, "steps": 2, "out_dir": str(tmp_path / "bg")}))
    step2 = ignoring.train_step
    monkeypatch.setattr(ignoring, "train_step", lambda batch: (step2(batch), os.kill(os.getpid(), signal.SIGINT))[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert ignoring.fit(ctrl_c_saves=True)["stopped"] == "done"
    finally:
        signal.signal(signal.SIGINT, before)


def test_lr_schedule() -> None:
    cfg = TrainConfig(arch={}, steps=110, warmup=10, lr=1e-3, min_lr=1e-5)
    f = lr_multiplier(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx((1e-5 + (1e-3 - 1e-5) * 0.5) / 1e-3)
    assert f(110) == pytest.approx(0.01)
    assert all(f(s) >= f(s + 1) for s in range(10, 110))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": -1.0}, "lr: must be a positive number"),
        ({"min_lr": 1.0}, "min_lr: must be between 0 and lr"),
        ({"teacher": "flownet"}, "teacher: expected one of none, dis, raft, privileged"),
        ({"amp": "fp8"}, "amp: expected one of none, bf16, fp16"),
        ({"steps": 0}, "steps: must be > 0"),
        ({"batch_size": "8"}, "batch_size: expected int"),
        ({"crop": [8]}, "crop: expected SIZE or HEIGHT WIDTH"),
        ({"windows": [2]}, "windows: window lengths must be >= 3"),
        ({"flip_h": 2.0}, "flip_h: is a probability"),
        ({"pan": -0.5}, "pan: is a probability"),
        ({"pan_pixels": -1}, "pan_pixels: must be >= 0"),
        ({"teacher": "raft"}, "raft_weights: teacher 'raft' needs"),
        ({"model": "3.6"}, "model: give only one of model, model_path and arch"),
        ({"data": []}, "data: at least one data source"),
        ({"device": "tpu"}, "device: expected auto, cpu, cuda"),
        ({"warmpu": 3}, "warmpu: unknown option"),
    ],
)
def test_bad_config_values_name_the_option(changes: dict[str, Any], message: str) -> None:
    data = {**TINY, "steps": 2, **changes}
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


def test_config_errors_found_when_building(tmp_path: Path) -> None:
    base = {**TINY, "steps": 2, "out_dir": str(tmp_path)}
    with pytest.raises(ConfigError, match="crop: 48x48 must be a multiple of 32"):
        Trainer(TrainConfig.from_dict({**base, "crop": [48]}))
    with pytest.raises(ConfigError, match="arch: unknown architecture field 'depth'"):
        Trainer(TrainConfig.from_dict({**base, "arch": {"depth": 3}}))
    with pytest.raises(ConfigError, match="arch: corr_radius must be >= 0"):
        Trainer(TrainConfig.from_dict({**base, "arch": {**TINY["arch"], "corr_radius": -1}}))
    with pytest.raises(ConfigError, match="amp: fp16 needs a CUDA device"):
        Trainer(TrainConfig.from_dict({**base, "amp": "fp16", "device": "cpu"}))
    with pytest.raises(ConfigError, match=r"data: .* does not exist"):
        Trainer(TrainConfig.from_dict({**base, "data": [f"video:{tmp_path / 'missing.mp4'}"]}))
    with pytest.raises(ConfigError, match="val_crop: 256x256 is larger than the frames of"):
        Trainer(TrainConfig.from_dict({**base, "val_crop": [256]}))
    with pytest.raises(ConfigError, match="model: training supports the families"):
        Trainer(TrainConfig.from_dict({**base, "arch": None, "model_path": None, "model": "hd"}))


def test_cli_errors_name_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad devices, seeds, models, files and process counts: ``error: <option>: ...`` and status 2, no traceback."""
    fake_video, fake_weights = tmp_path / "clip.mp4", tmp_path / "raft.pth"
    fake_video.write_text("not a video")
    fake_weights.write_text("not weights")
    fit = ["fit", "--arch", '{"widths": [16, 16], "scales": [2, 1]}', "--crop", "64", "--max-frames", "30",
           "--out-dir", str(tmp_path / "run"), "--threads", "1"]  # fmt: skip
    cases = [
        ([*fit, "--data", "sample:carphone", "--seed", "-1"], "seed: must be 0 or more"),
        ([*fit, "--data", f"video:{fake_video}"], f"data: ffprobe cannot read {fake_video}"),
        ([*fit, "--data", "sample:carphone", "--teacher", "raft", "--raft-weights", str(fake_weights)],
         f"raft_weights: {fake_weights} is not a PyTorch state dict"),
        (["evaluate", "--model", "9.9", "--benchmark", "footage", "--root", "sample:carphone"], "model: unknown model"),
        (["evaluate", "--model-path", str(tmp_path / "none.pkl"), "--benchmark", "footage", "--root", "x"],
         "does not exist"),
        (["export", str(tmp_path / "none.pt"), "--out", str(tmp_path / "exp")], "does not exist"),
        (["export", str(fake_weights), "--out", str(tmp_path / "exp")], "checkpoint:"),
        (["ddp-check", *fit[1:], "--data", "sample:carphone", "--batch-size", "2", "--world", "3"],
         "batch_size: 2 is not divisible by --world 3"),
    ]  # fmt: skip
    if not torch.cuda.is_available():
        cases.append(([*fit, "--data", "sample:carphone", "--device", "cuda"], "device: 'cuda' requested"))
    for argv, message in cases:
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, (argv, err)


def test_cli_fit_with_toml_and_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'out_dir = "{tmp_path / "run"}"\nsteps = 2\n[model]\narch = {{ widths = [16, 16], scales = [2, 1] }}\n'
        '[data]\ndata = ["sample:carphone"]\nmax_frames = 30\ncrop = [64]\nwindows = [3, 4]\n'
        "[optim]\nbatch_size = 2\nwarmup = 1\n[log]\ntensorboard = false\nval_max = 2\n"
    )
    assert cli(["fit", "--config", str(toml), "--lr", "1e-3", "--teacher", "dis", "--threads", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 2 and summary["stopped"] == "done"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["lr"] == 1e-3 and saved["teacher"] == "dis" and saved["arch"] == {"widths": [16, 16], "scales": [2, 1]}
    assert (tmp_path / "run" / "model" / "flownet.pkl").is_file()
    assert cli(["fit", "--config", str(toml), "--lr", "-2"]) == 2
    assert "lr: must be a positive number" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("stepz = 3\n")
    assert cli(["fit", "--config", str(bad)]) == 2
    assert "stepz: unknown option" in capsys.readouterr().err


def _same_outputs(net_a: torch.nn.Module, net_b: torch.nn.Module, timestep: float = 0.5) -> None:
    torch.manual_seed(1)
    x0, x1 = torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(net_a.eval()(x0, x1, timestep=timestep), net_b.eval()(x0, x1, timestep=timestep))


def test_export_round_trip_v4_with_own_teacher(tmp_path: Path) -> None:
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=2, teacher="privileged", teacher_width=16, name="tiny-v4",
                      **{k: v for k, v in TINY.items()})  # fmt: skip
    trainer = Trainer(cfg)
    summary = trainer.fit()
    folder = Path(summary["export"]).parent
    blob = torch.load(folder / "flownet.pkl", weights_only=True)
    assert all(k.startswith("module.") for k in blob if k != METADATA_KEY)
    assert any(k.startswith("module.teacher.") for k in blob)
    meta = json.loads(blob[METADATA_KEY])
    assert meta["name"] == "tiny-v4" and meta["family"] == "v4" and meta["spec"]["widths"] == [16, 16]
    assert meta["training"]["teacher"] == "privileged" and meta["metrics"]["step"] == 2
    loaded = load_model(model_path=folder)
    assert loaded.name == "tiny-v4" and loaded.info.spec == trainer.spec
    _same_outputs(trainer.module.net, loaded.network, 1 / 3)
    # a training checkpoint exports to the same network
    again = export_checkpoint(trainer.ckpt_dir / "step_00000002.pt", tmp_path / "again")
    _same_outputs(trainer.module.net, load_model(model_path=again.parent).network, 2 / 3)
    # fine-tuning from the export picks its teacher block up again
    resumed = Trainer(cfg.replace(arch=None, model_path=str(folder), out_dir=str(tmp_path / "ft"), steps=1))
    assert resumed.module.loaded_teacher
    assert cli(["export", str(tmp_path / "run"), "--out", str(tmp_path / "cli")]) == 0


def test_export_round_trip_v3_keeps_block_tea(tmp_path: Path) -> None:
    arch = {"family": "v3", "widths": [16, 16, 16], "scales": [4, 2, 1], "act": "prelu", "body": "v3", "head": "v3",
            "ensemble": "flip"}  # fmt: skip
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=1, teacher="privileged",
                      **{**TINY, "arch": arch, "windows": [3]})  # fmt: skip
    trainer = Trainer(cfg)
    folder = Path(trainer.fit()["export"]).parent
    loaded = load_model(model_path=folder)
    _same_outputs(trainer.module.net, loaded.network)
    with_teacher = load_model(model_path=folder, teacher=True).network
    assert torch.equal(with_teacher.flownet.block_tea.conv0[0][0].weight,
                       trainer.module.net.flownet.block_tea.conv0[0][0].weight)  # fmt: skip


def test_finetune_3_6_quick(tmp_path: Path) -> None:
    """Fast version of acceptance (a): real v3.6 weights + block_tea, a few steps on real footage."""
    res = finetune_check(tmp_path, steps=2, crop=64, batch_size=2, data=["sample:carphone"], val_max=3, threads=1)
    assert res["heldout_frames"] == 3 and res["steps"] == 2
    assert res["psnr_before"] > res["psnr_average_baseline"]  # v3.6 beats the average on real footage
    assert res["passed"] and abs(res["delta_db"]) < 0.1
    assert res["psnr_exported"] == pytest.approx(res["psnr_after"], abs=1e-6)
    assert res["config"]["teacher"] == "privileged"


def test_scratch_quick(tmp_path: Path) -> None:
    """Fast version of acceptance (b): the runner works end to end (a few steps cannot beat the average)."""
    res = scratch_check(tmp_path, teacher="dis", steps=3, widths=(16, 16, 16), crop=64, batch_size=2,
                        data=["sample:carphone"], val_max=6, threads=1)  # fmt: skip
    assert res["steps"] == 3 and res["heldout_frames"] == 6
    assert set(res["per_t"]) <= {"0.3333", "0.5000", "0.6667"} and res["per_t"]
    assert {"psnr", "psnr_average", "gain_over_average_db"} <= set(next(iter(res["per_t"].values())))
    assert res["flow_diagnostics"]["dis_mean_abs_flow"] > 0
    steps = scratch_check(
        tmp_path / "cal",
        teacher="dis",
        widths=(16, 16, 16),
        crop=64,
        batch_size=2,
        data=["sample:carphone"],
        cpu_minutes=0.05,
        calibrate_steps=3,
        calibrate_only=True,
    )
    assert steps["steps"] >= 10 and steps["cpu_seconds_per_step"] > 0


def test_bf16_autocast_and_loader_workers(tmp_path: Path) -> None:
    """The AMP path (bf16 autocast on CPU) and DataLoader workers, on offline synthetic data."""
    cfg = TrainConfig(out_dir=str(tmp_path), **{**TINY, "data": ["synthetic:2"], "max_frames": 0, "steps": 3,
                                                "amp": "bf16", "num_workers": 2, "export_final": False})  # fmt: skip
    trainer = Trainer(cfg)
    direct = [trainer.batch(s) for s in range(3)]
    loaded = list(trainer._batches())
    assert len(loaded) == 3
    for a, b in zip(direct, loaded, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    summary = trainer.fit()
    assert summary["step"] == 3 and math.isfinite(summary["last"]["total"])


def test_divergence_stops_with_a_clear_error(tmp_path: Path) -> None:
    """Exploding flows with finite losses (seen with a privileged teacher) stop the run by name."""
    from vsrife.train.loop import MAX_FLOW_RATIO, TrainingDiverged

    cfg = TrainConfig(out_dir=str(tmp_path), **{**TINY, "steps": 2, "export_final": False})
    trainer = Trainer(cfg)
    trainer.fit()  # a healthy run: flows stay far inside the bound
    trainer._pending.append(trainer.forward_backward(trainer.batch(0)))
    assert float(trainer._pending[-1]["flow_ratio"]) < MAX_FLOW_RATIO
    trainer._pending.append({"total": torch.tensor(0.35), "flow_ratio": torch.tensor(1e24)})
    with pytest.raises(TrainingDiverged, match=r"training diverged at step 2: flows reach .* times the crop size"):
        trainer._log()
    trainer._pending[:] = [{"total": torch.tensor(float("nan")), "flow_ratio": torch.tensor(0.0)}]
    with pytest.raises(TrainingDiverged, match="loss is nan at step 2"):
        trainer._log()


def test_resume_of_a_run_with_the_earlier_losses_names_what_reproduces_them(tmp_path: Path) -> None:
    """A checkpoint from before the official losses (L1 distillation at twice today's l1 scale, LapLoss with
    the low-pass residual; no lap_lowpass in its config) is not continued with other losses: the refusal
    names the options that reproduce the old ones, and with them the run resumes."""
    cfg = {**TINY, "steps": 2, "ckpt_every": 2, "teacher": "dis", "export_final": False}
    run = tmp_path / "run"
    Trainer(TrainConfig(out_dir=str(run), distill_norm="l1", **cfg)).fit()
    path = run / "checkpoints" / "step_00000002.pt"
    state = load_checkpoint(path)
    old = dict(state["config"])
    old.pop("lap_lowpass")  # as written before stop 20
    state["config"] = old
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"distill_weight 0\.02 -> 0\.01.*lap_lowpass True -> False"):
        Trainer(TrainConfig(out_dir=str(run), resume=True, distill_norm="l1", **{**cfg, "steps": 3}))
    resumed = Trainer(TrainConfig(out_dir=str(run), resume=True, distill_norm="l1", distill_weight=0.02,
                                  lap_lowpass=True, **{**cfg, "steps": 3}))  # fmt: skip
    assert resumed.step == 2


def test_divergence_stops_before_backward_without_crashing(tmp_path: Path) -> None:
    """lr 1 blows the weights up within a few steps; the NaN flows that follow used to reach PyTorch's CPU
    grid_sample backward, which crashes the process (SIGSEGV, exit 139). The loss and flows are checked every
    step before backward: a clean "training diverged" (exit 1), the checkpoints so far kept and finite.
    In a subprocess, so a crash cannot take the test run down."""
    import subprocess
    import sys

    run = tmp_path / "run"
    argv = ["fit", "--arch", '{"widths": [16, 16], "scales": [2, 1]}', "--data", "sample:carphone", "--max-frames",
            "20", "--crop", "64", "--batch-size", "1", "--steps", "30", "--lr", "1", "--min-lr", "0", "--warmup", "0",
            "--log-every", "1000", "--ckpt-every", "1", "--val-max", "1", "--threads", "1", "--no-tensorboard",
            "--no-export-final", "--out-dir", str(run)]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "vsrife.train", *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "error: training diverged at step" in proc.stderr and "Traceback" not in proc.stderr
    kept = list_checkpoints(run / "checkpoints")
    assert kept  # the run got some steps in before diverging
    module = load_checkpoint(kept[-1][1])["module"]
    assert all(bool(torch.isfinite(v).all()) for v in module.values() if v.is_floating_point())


def test_checkpoints_of_non_finite_weights_are_refused(tmp_path: Path) -> None:
    """Weights that went NaN in an optimizer step are never written as the newest checkpoint."""
    from vsrife.train.loop import TrainingDiverged

    trainer = Trainer(TrainConfig(out_dir=str(tmp_path), **{**TINY, "steps": 2, "export_final": False}))
    trainer.fit()
    with torch.no_grad():
        trainer.params[0].fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="at step 2: the weights are no longer finite"):
        trainer.save()
    with pytest.raises(TrainingDiverged, match="training diverged at step 3: loss is nan"):
        trainer.forward_backward(trainer.batch(2))


def test_resume_refuses_other_frames_under_the_same_names(tmp_path: Path) -> None:
    """The windows' fingerprint holds only names and positions: a resume at another video_scale or @scale, or
    on another clip of the same name, is refused by name; the same frames at another path resume."""
    import shutil

    from vsrife.media import read_frames
    from vsrife.samples import sample_path
    from vsrife.train.synthetic import write_frames

    frames = read_frames(sample_path("carphone"), 0, 40)
    write_frames(tmp_path / "a" / "clip", frames[:20])
    write_frames(tmp_path / "b" / "clip", frames[20:40])  # another clip, same name, same size and length
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    cfg = {**TINY, "data": ["sample:carphone"], "max_frames": 20, "steps": 1, "ckpt_every": 1, "export_final": False}
    video = tmp_path / "video"
    Trainer(TrainConfig(out_dir=str(video), **cfg)).fit()
    resume = {**cfg, "steps": 2, "resume": True}
    at_045 = r"data \['sample:carphone'\] -> \['sample:carphone@0\.45'\]"
    for change, shown in (
        ({"video_scale": 0.5}, r"video_scale 1\.0 -> 0\.5"),
        ({"data": ["sample:carphone@0.45"]}, at_045),
    ):
        with pytest.raises(ConfigError, match=r"resume: data sample:carphone.*: sample/carphone\w* is \d+x\d+") as err:
            Trainer(TrainConfig(out_dir=str(video), **{**resume, **change}))
        assert "but was 176x144 (20 frames) in the checkpoint's run" in str(err.value)
        assert re.search(shown, str(err.value)), err.value
    folder = tmp_path / "folder"
    Trainer(TrainConfig(out_dir=str(folder), **{**cfg, "data": [f"frames:{tmp_path / 'a' / 'clip'}"]})).fit()
    with pytest.raises(ConfigError, match=r"resume: data frames:.*b/clip: frames/clip holds other frames"):
        Trainer(TrainConfig(out_dir=str(folder), **{**resume, "data": [f"frames:{tmp_path / 'b' / 'clip'}"]}))
    moved = Trainer(TrainConfig(out_dir=str(folder), **{**resume, "data": [f"frames:{tmp_path / 'moved' / 'clip'}"]}))
    assert moved.step == 1


def test_val_max_0_means_no_validation(tmp_path: Path) -> None:
    """``--val-max 0`` scores no held-out frame (it scored all of them), as its help says."""
    trainer = Trainer(TrainConfig(out_dir=str(tmp_path), **{**TINY, "steps": 1, "val_max": 0, "export_final": False}))
    assert trainer.data_stats["val_windows"] > 0 and len(trainer.val_data) == 0
    trainer.fit()
    assert trainer.last_validation is None and not (tmp_path / "val.csv").exists()
    assert "val_max 0: no validation" in (tmp_path / "log.txt").read_text()


def test_out_dir_that_is_a_file_is_refused_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Before any data is loaded or network built: a usage error naming the option, not a FileExistsError."""
    import vsrife.train.loop as loop

    monkeypatch.setattr(loop, "build_splits", lambda *a, **k: pytest.fail("data loaded before out_dir was checked"))
    a_file = tmp_path / "clip.mp4"
    a_file.write_text("not a folder")
    for out in (a_file, a_file / "run"):
        with pytest.raises(ConfigError, match=f"out_dir: {out} (is a file|lies under the file {a_file}), not a folder"):
            Trainer(TrainConfig(out_dir=str(out), **{**TINY, "steps": 1}))
    argv = ["fit", "--arch", '{"widths": [16, 16], "scales": [2, 1]}', "--data", "sample:carphone", "--out-dir",
            str(a_file)]  # fmt: skip
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: out_dir: {a_file} is a file") and "Traceback" not in err


def test_narrowest_widths_build_and_train(tmp_path: Path) -> None:
    """An IFBlock's first convolution has width // 2 channels: widths and teacher_width of 1 are refused by name
    (they crashed in conv2d), and 2 is the narrowest that trains."""
    base = {**TINY, "steps": 1, "out_dir": str(tmp_path), "export_final": False}
    with pytest.raises(ConfigError, match="arch: widths must be >= 2, got 1"):
        Trainer(TrainConfig(**{**base, "arch": {"widths": [1, 1], "scales": [2, 1]}}))
    with pytest.raises(ConfigError, match="teacher_width: must be >= 2"):
        TrainConfig(**{**base, "teacher": "privileged", "teacher_width": 1}).validate()
    with pytest.raises(ConfigError, match=r"arch: widths must be multiples of groups \(2\)"):
        Trainer(TrainConfig(**{**base, "arch": {"widths": [4, 3], "scales": [2, 1], "groups": 2}}))
    with pytest.raises(ConfigError, match="teacher_width: in_channels must be divisible by groups"):
        Trainer(TrainConfig(**{**base, "arch": {"widths": [4, 4], "scales": [2, 1], "groups": 2},
                               "teacher": "privileged", "teacher_width": 3}))  # fmt: skip
    narrow = Trainer(TrainConfig(**{**base, "arch": {"widths": [2, 2], "scales": [2, 1]}, "teacher": "privileged",
                                    "teacher_width": 2}))  # fmt: skip
    assert math.isfinite(narrow.fit()["last"]["total"])


def test_resumed_finetune_needs_no_source_weights(tmp_path: Path) -> None:
    """The checkpoint holds every weight and the architecture: the model fine-tuned may be gone by the resume."""
    source = Trainer(TrainConfig(out_dir=str(tmp_path / "src"), **{**TINY, "steps": 1}))
    folder = Path(source.fit()["export"]).parent
    cfg = {**TINY, "arch": None, "model_path": str(folder), "steps": 2, "ckpt_every": 1, "export_final": False}
    full = Trainer(TrainConfig(out_dir=str(tmp_path / "full"), **cfg))
    full.fit()
    part = Trainer(TrainConfig(out_dir=str(tmp_path / "part"), **cfg))
    part.fit(stop_at=1)
    shutil.rmtree(folder)
    resumed = Trainer(TrainConfig(out_dir=str(tmp_path / "part"), resume=True, **cfg))
    assert resumed.step == 1 and resumed.base == "custom"
    resumed.fit()
    sa, sb = full.module.state_dict(), resumed.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_finetuning_a_4x_export_keeps_its_trained_teacher(tmp_path: Path) -> None:
    """Left unset, teacher_width is that of the export's trained privileged teacher, which trains on; another
    width starts a new teacher, and the log says so (it was dropped silently)."""
    cfg = {**TINY, "steps": 1, "teacher": "privileged"}
    source = Trainer(TrainConfig(out_dir=str(tmp_path / "src"), teacher_width=8, **cfg))
    folder = Path(source.fit()["export"]).parent
    ft = {**cfg, "arch": None, "model_path": str(folder), "export_final": False}
    kept = Trainer(TrainConfig(out_dir=str(tmp_path / "kept"), **ft))
    assert kept.module.loaded_teacher and kept.cfg.teacher_width == 8
    assert torch.equal(kept.module.teacher.block.conv0[0][0].weight, source.module.teacher.block.conv0[0][0].weight)
    assert "the trained teacher of model_path" in (tmp_path / "kept" / "log.txt").read_text()
    assert json.loads((tmp_path / "kept" / "config.json").read_text())["teacher_width"] == 8
    other = Trainer(TrainConfig(out_dir=str(tmp_path / "other"), teacher_width=16, **ft))
    assert not other.module.loaded_teacher
    log = (tmp_path / "other" / "log.txt").read_text()
    assert "teacher_width 16 differs from the width 8 of the trained teacher" in log
    scratch = Trainer(TrainConfig(out_dir=str(tmp_path / "scratch"), **cfg))
    assert (
        scratch.cfg.teacher_width == 64
        and "a new teacher of width 64" in (tmp_path / "scratch" / "log.txt").read_text()
    )


def test_earlier_outputs_are_replaced_only_with_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A new run into a finished run's folder (checkpoints removed) and an export over an exported model are
    refused without --overwrite; with it they replace the earlier files."""
    cfg = {**TINY, "steps": 1, "out_dir": str(tmp_path / "run")}
    first = Trainer(TrainConfig(**{**cfg, "steps": 3}))  # a sample grid at step 3
    first.fit()
    model = tmp_path / "run" / "model" / "flownet.pkl"
    before = model.read_bytes()
    shutil.copytree(tmp_path / "run" / "checkpoints", tmp_path / "kept")
    shutil.rmtree(tmp_path / "run" / "checkpoints")
    earlier = r"\(config\.json, train\.csv, val\.csv, log\.txt, model/flownet\.pkl, samples\)"
    with pytest.raises(
        ConfigError, match=rf"out_dir: .* holds the outputs of an earlier run {earlier}; pass --overwrite"
    ):
        Trainer(TrainConfig(**{**cfg, "lr": 1e-3}))
    assert model.read_bytes() == before and (tmp_path / "run" / "train.csv").is_file()
    again = Trainer(TrainConfig(**{**cfg, "lr": 1e-3, "overwrite": True}))
    assert not list((tmp_path / "run" / "samples").iterdir())
    again.fit()
    assert model.read_bytes() != before
    assert "overwrite: replaced the earlier run's" in (tmp_path / "run" / "log.txt").read_text()
    out = tmp_path / "export"
    assert cli(["export", str(tmp_path / "kept"), "--out", str(out), "--name", "first"]) == 0
    capsys.readouterr()
    assert cli(["export", str(tmp_path / "run"), "--out", str(out), "--name", "second"]) == 2
    assert (
        f"error: out: {out} already holds an exported model (flownet.pkl); pass --overwrite" in capsys.readouterr().err
    )
    assert load_model(model_path=out).name == "first"
    assert cli(["export", str(tmp_path / "run"), "--out", str(out), "--name", "second", "--overwrite"]) == 0
    assert load_model(model_path=out).name == "second"


def test_tensorboard_missing_is_said_in_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--tensorboard without TensorBoard installed logged nothing to it, silently."""
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed: the import fails
    Trainer(TrainConfig(out_dir=str(tmp_path), **{**TINY, "steps": 1, "tensorboard": True}))
    assert "tensorboard: TensorBoard is not installed" in (tmp_path / "log.txt").read_text()


def test_checkpoint_from_before_the_dataset_wide_split_resumes_with_its_split(tmp_path: Path) -> None:
    """Checkpoints without a recorded split held out a segment per sequence: they resume with that split (the
    dataset-wide one gives other training windows here), not refused for changed data."""
    cfg = {**TINY, "max_frames": 24, "steps": 1, "ckpt_every": 1, "export_final": False, "out_dir": str(tmp_path)}
    run = Trainer(TrainConfig(**cfg))
    assert run.data_stats["val_windows"] == 0  # 10% of 38 windows is less than half of either segment's
    run.fit()
    path = tmp_path / "checkpoints" / "step_00000001.pt"
    state = load_checkpoint(path)
    del state["data"]["split"], state["data"]["sequences"]  # as written before the dataset-wide split
    old_windows = make_windows(run.train_data.sequences, [3, 4], 0.1, 16, split="sequence")[0]
    state["data"]["fingerprint"] = WindowDataset(run.train_data.sequences, old_windows, None).fingerprint()
    torch.save(state, path)
    resumed = Trainer(TrainConfig(**{**cfg, "steps": 2}, resume=True))
    assert resumed.step == 1 and resumed.split == "sequence" and resumed.data_stats["val_windows"] > 0
