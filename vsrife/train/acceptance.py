"""CPU acceptance runs of the training system (``scripts/train_*.sh`` call these; tests use tiny sizes).

* :func:`finetune_check` -- fine-tune v3.6 (real weights + its privileged ``block_tea``) on real
  footage; held-out PSNR may drop by at most ``tolerance`` dB.
* :func:`gpu_check` -- a short CUDA/AMP training run reporting throughput and the loss curve.
* :func:`scratch_check` -- train a small 4.x-style network (timestep input) from scratch within a
  CPU-time budget; held-out PSNR at t = 1/3, 1/2, 2/3 against the neighbour average. Run once with
  a distillation teacher and once without (``teacher="none"``) for the ablation.

``python -m vsrife.train.acceptance finetune|scratch --out DIR --json FILE [options]``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from vsrife.models import load_model
from vsrife.train.config import TrainConfig
from vsrife.train.evaluate import EvalResult, evaluate_windows, network_interpolator
from vsrife.train.loop import Trainer

__all__ = ["ablation_summary", "calibrate", "finetune_check", "gpu_check", "merge", "scratch_check"]

FOOTAGE = ["sample:bikes", "sample:bigbuckbunny@0.5", "sample:carphone"]
THIRDS = ("0.3333", "0.5000", "0.6667")


def _fresh(cfg: TrainConfig) -> TrainConfig:
    """A check is a new run each time: drop the checkpoints an earlier run of it left in its folder, and
    replace its other outputs."""
    shutil.rmtree(Path(cfg.out_dir) / "checkpoints", ignore_errors=True)
    return cfg.replace(overwrite=True)


def _curve(trainer: Trainer, points: int = 40) -> list[dict[str, float]]:
    hist = trainer.history
    if len(hist) <= points:
        return hist
    idx = sorted({round(i * (len(hist) - 1) / (points - 1)) for i in range(points)})
    return [hist[i] for i in idx]


def _limit_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)
        try:
            import cv2

            cv2.setNumThreads(threads)
        except ImportError:  # pragma: no cover - opencv is a training dependency
            pass


def finetune_check(
    out_dir: str | Path,
    *,
    steps: int = 200,
    crop: int = 160,
    batch_size: int = 4,
    lr: float = 1e-5,
    data: list[str] | None = None,
    val_max: int = 48,
    tolerance: float = 0.1,
    threads: int = 0,
) -> dict[str, Any]:
    """Fine-tune v3.6 with its privileged teacher; compare held-out PSNR before and after."""
    _limit_threads(threads)
    cfg = TrainConfig(
        out_dir=str(out_dir), model="3.6", teacher="privileged", data=list(data or FOOTAGE[:2]), windows=[3],
        crop=[crop], steps=steps, batch_size=batch_size, lr=lr, min_lr=lr / 10, warmup=max(1, steps // 10),
        weight_decay=1e-4, val_every=steps, ckpt_every=steps, sample_every=steps, log_every=max(1, steps // 50),
        val_max=val_max, name="3.6-finetuned", threads=threads, tensorboard=False,
    )  # fmt: skip
    trainer = Trainer(_fresh(cfg))
    before = trainer.evaluate_heldout()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    summary = trainer.fit()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    after = trainer.last_validation or trainer.evaluate_heldout()
    reloaded = load_model(model_path=Path(summary["export"]).parent)
    exported = evaluate_windows(trainer.val_data, network_interpolator(reloaded.network))
    delta = after.psnr - before.psnr
    return {
        "check": "finetune-3.6",
        "passed": bool(delta >= -tolerance),
        "tolerance_db": tolerance,
        "psnr_before": before.psnr,
        "psnr_after": after.psnr,
        "psnr_exported": exported.psnr,
        "delta_db": delta,
        "ssim_before": before.ssim,
        "ssim_after": after.ssim,
        "psnr_average_baseline": before.baselines.get("average"),
        "heldout_frames": before.count,
        "steps": trainer.step,
        "train_cpu_seconds": cpu,
        "train_wall_seconds": wall,
        "data": trainer.data_stats,
        "loss_curve": _curve(trainer),
        "config": cfg.to_dict(),
    }


@torch.no_grad()
def flow_diagnostics(trainer: Trainer, items: int = 8) -> dict[str, float]:
    """Does the student estimate motion? Its final flows against DIS flows on held-out frames."""
    from vsrife.train.teachers import DISTeacher

    dis, net = DISTeacher(), trainer.module.net
    multiple = net.spec.pad_multiple()
    stats = {"student_mean_abs_flow": 0.0, "dis_mean_abs_flow": 0.0, "mean_abs_difference": 0.0}
    count = min(items, len(trainer.val_data))
    for i in range(count):
        item = trainer.val_data[i]
        img0, gt, img1 = (item[k][None, :, :, :].float().div(255.0) for k in ("img0", "gt", "img1"))
        h, w = (img0.shape[2] // multiple) * multiple, (img0.shape[3] // multiple) * multiple
        img0, gt, img1 = (x[:, :, :h, :w].to(trainer.device) for x in (img0, gt, img1))
        t = item["t"].reshape(1, 1, 1, 1).to(trainer.device)
        flow = trainer.module(img0, img1, gt, t)["flows"][-1].float()
        ref = dis(img0, gt, img1)
        stats["student_mean_abs_flow"] += float(flow.abs().mean()) / count
        stats["dis_mean_abs_flow"] += float(ref.abs().mean()) / count
        stats["mean_abs_difference"] += float((flow - ref).abs().mean()) / count
    return stats


def _per_t(res: EvalResult) -> dict[str, dict[str, float]]:
    out = {}
    for t, row in res.per_t.items():
        out[t] = {"count": row["count"], "psnr": row["psnr"], "psnr_average": row["psnr_average"],
                  "psnr_blend": row["psnr_blend"], "gain_over_average_db": row["psnr"] - row["psnr_average"],
                  "gain_over_blend_db": row["psnr"] - row["psnr_blend"]}  # fmt: skip
    return out


def scratch_check(
    out_dir: str | Path,
    *,
    teacher: str = "dis",
    steps: int | None = None,
    cpu_minutes: float = 20.0,
    widths: tuple[int, ...] = (64, 48, 32),
    scales: tuple[float, ...] = (4, 2, 1),
    corr_radius: int = 6,
    crop: int = 128,
    batch_size: int = 8,
    lr: float = 1e-3,
    pan: float = 0.0,
    pan_pixels: int = 3,
    data: list[str] | None = None,
    val_max: int = 150,
    threads: int = 1,
    seed: int = 1234,
    calibrate_steps: int = 10,
    calibrate_only: bool = False,
) -> dict[str, Any]:
    """Train a small timestep network from scratch; score held-out frames at t = 1/3, 1/2, 2/3.

    Without ``steps``, the step count is chosen from a short calibration run (CPU seconds per step
    with the DIS teacher, the costlier variant) so that training fits ``cpu_minutes`` of CPU time;
    pass the same ``steps`` to the ablation run so both see identical data. ``pan`` (probability)
    adds whole-pixel camera pans to the training crops. ``corr_radius`` > 0 starts the cascade from a
    bilateral cost volume (:mod:`vsrife.arch.correlation`); 0 builds the plain 4.x cascade, whose
    flows collapse to zero on the sample videos within this budget.
    """
    _limit_threads(threads)
    arch = {"family": "v4", "widths": list(widths), "scales": list(scales), "corr_radius": corr_radius}
    base: dict[str, Any] = dict(
        arch=arch, arch_base="4.6", data=list(data or FOOTAGE), windows=[3, 4], crop=[crop], batch_size=batch_size,
        lr=lr, min_lr=lr / 100, weight_decay=1e-4, val_max=val_max, threads=threads, tensorboard=False, seed=seed,
        pan=pan, pan_pixels=pan_pixels,
    )  # fmt: skip
    calibration = None
    if steps is None:
        probe = Trainer(TrainConfig(out_dir=str(Path(out_dir) / "calibration"), teacher="dis", steps=calibrate_steps,
                                    warmup=1, export_final=False, **base), quiet=True)  # fmt: skip
        probe.train_step(probe.batch(0))  # warm-up (allocations)
        cpu0 = time.process_time()
        for s in range(1, calibrate_steps):
            probe.train_step(probe.batch(s))
        per_step = (time.process_time() - cpu0) / (calibrate_steps - 1)
        steps = max(10, int(cpu_minutes * 60 * 0.85 / per_step))
        calibration = {"cpu_seconds_per_step": per_step, "steps": steps}
        if calibrate_only:
            return calibration
    cfg = TrainConfig(out_dir=str(out_dir), teacher=teacher, steps=steps, warmup=max(1, steps // 20),
                      val_every=steps, ckpt_every=max(1, steps // 4), sample_every=max(1, steps // 4),
                      log_every=max(1, steps // 200), name=f"small-v4-{teacher}", **base)  # fmt: skip
    trainer = Trainer(_fresh(cfg))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    summary = trainer.fit()  # validates once, at the end
    cpu = time.process_time() - cpu0 - trainer.validation_cpu_seconds
    wall = time.perf_counter() - wall0
    res = trainer.last_validation or trainer.evaluate_heldout()
    per_t = _per_t(res)
    beats = {t: bool(per_t[t]["gain_over_average_db"] > 0) for t in THIRDS if t in per_t}
    return {
        "check": "scratch-small-v4",
        "teacher": teacher,
        "passed": bool(len(beats) == len(THIRDS) and all(beats.values())),
        "beats_average": beats,
        "per_t": per_t,
        "psnr": res.psnr,
        "heldout_frames": res.count,
        "flow_diagnostics": flow_diagnostics(trainer),
        "steps": trainer.step,
        "stopped": summary["stopped"],
        "train_cpu_minutes": cpu / 60,
        "validation_cpu_minutes": trainer.validation_cpu_seconds / 60,
        "wall_minutes": wall / 60,
        "calibration": calibration,
        "parameters": sum(p.numel() for p in trainer.module.net.parameters()),
        "data": trainer.data_stats,
        "loss_curve": _curve(trainer),
        "config": cfg.to_dict(),
    }


def ablation_summary(with_teacher: dict[str, Any], without: dict[str, Any]) -> dict[str, Any]:
    """What distillation buys: PSNR differences per t (teacher run minus no-teacher run)."""
    gains = {}
    for t in THIRDS:
        a, b = with_teacher["per_t"].get(t), without["per_t"].get(t)
        gains[t] = math.nan if a is None or b is None else a["psnr"] - b["psnr"]
    return {"distillation_gain_db": gains, "overall_gain_db": with_teacher["psnr"] - without["psnr"]}


def calibrate(out_dir: str | Path, *, cpu_minutes: float = 20.0, threads: int = 1, calibrate_steps: int = 10,
              **options: Any) -> int:  # fmt: skip
    """Steps that fit ``cpu_minutes`` of CPU time for :func:`scratch_check` with the DIS teacher."""
    return int(scratch_check(out_dir, teacher="dis", cpu_minutes=cpu_minutes, threads=threads, steps=None,
                             calibrate_steps=calibrate_steps, calibrate_only=True, **options)["steps"])  # fmt: skip


def merge(files: list[str | Path]) -> dict[str, Any]:
    """Combine scratch results (one JSON per teacher) and add the ablation summary."""
    runs = {}
    for f in files:
        data = json.loads(Path(f).read_text())
        for run in data.get("runs", {}).values():
            runs[run["teacher"]] = run
    return merge_runs(runs)


def gpu_check(out_dir: str | Path, *, minutes: float = 5.0, amp: str = "bf16", batch_size: int = 16,
              crop: int = 256, arch_base: str = "4.6", teacher: str = "privileged", num_workers: int = 4,
              data: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """A ``minutes``-long CUDA training run (full-size ``arch_base`` network from scratch, AMP).

    Reports samples/s (median over log windows after the first) and the loss curve. Without CUDA
    it returns ``{"skipped": ...}``. Offline machines train on ``synthetic:8`` unless ``data`` is given.
    """
    if not torch.cuda.is_available():
        return {"check": "gpu-train", "skipped": "CUDA is not available"}
    if data is None:
        from vsrife.samples import SAMPLES, sample_dir

        have = [n for n, f in SAMPLES.items() if (sample_dir() / f).is_file() and n != "carphone"]
        data = [f"sample:{n}" for n in have] or ["synthetic:8"]
    cfg = TrainConfig(
        out_dir=str(out_dir), arch={}, arch_base=arch_base, teacher=teacher, data=data, windows=[3, 4, 5],
        crop=[crop], batch_size=batch_size, steps=1_000_000, warmup=200, amp=amp, device="cuda",
        time_limit=minutes * 60, log_every=10, val_every=10_000_000, ckpt_every=10_000_000,
        sample_every=10_000_000, val_max=16, num_workers=num_workers, tensorboard=False, name="gpu-check",
    )  # fmt: skip
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(_fresh(cfg))
    summary = trainer.fit()
    rates = [h["samples_per_s"] for h in trainer.history[1:]] or [h["samples_per_s"] for h in trainer.history]
    res = trainer.evaluate_heldout(limit=16) if len(trainer.val_data) else None
    keys = ("step", "total", "rec", "teacher", "distill", "psnr", "samples_per_s")
    curve = [{k: h[k] for k in keys if k in h} for h in trainer.history]
    return {
        "check": "gpu-train",
        "device": torch.cuda.get_device_name(trainer.device),
        "amp": amp,
        "arch_base": arch_base,
        "batch_size": batch_size,
        "crop": crop,
        "teacher": teacher,
        "data": data,
        "steps": trainer.step,
        "seconds": summary["seconds"],
        "samples_per_s_median": float(sorted(rates)[len(rates) // 2]) if rates else None,
        "peak_memory_gib": torch.cuda.max_memory_allocated(trainer.device) / 2**30,
        "heldout_psnr": None if res is None else res.psnr,
        "loss_curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vsrife.train.acceptance")
    parser.add_argument("check", choices=("finetune", "scratch", "calibrate", "merge", "gpu"))
    parser.add_argument("--out", default="runs/acceptance")
    parser.add_argument("--json", required=True, help="result file (merge: the output)")
    parser.add_argument("--inputs", nargs="*", default=[], help="merge: scratch result files")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--crop", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--pan", type=float, default=None, help="scratch: probability of a camera pan per crop")
    parser.add_argument("--pan-pixels", type=int, default=None, help="scratch: largest pan step (pixels/frame)")
    parser.add_argument("--corr-radius", type=int, default=None, help="scratch: cost-volume radius (0: plain cascade)")
    parser.add_argument("--cpu-minutes", type=float, default=20.0)
    parser.add_argument("--teachers", nargs="+", default=["dis", "none"], help="scratch: runs to make (ablation)")
    parser.add_argument("--data", nargs="+", default=None)
    parser.add_argument("--amp", default="bf16", choices=("bf16", "fp16", "none"), help="gpu: autocast dtype")
    parser.add_argument("--minutes", type=float, default=5.0, help="gpu: training time")
    args = parser.parse_args(argv)
    opt = {k: v for k, v in (("crop", args.crop), ("batch_size", args.batch_size), ("lr", args.lr),
                             ("data", args.data)) if v is not None}  # fmt: skip
    scratch_opt = {k: v for k, v in (("pan", args.pan), ("pan_pixels", args.pan_pixels),
                                     ("corr_radius", args.corr_radius)) if v is not None}  # fmt: skip
    result: dict[str, Any]
    if args.check == "finetune":
        result = finetune_check(args.out, steps=args.steps or 200, threads=args.threads, **opt)
    elif args.check == "calibrate":
        result = {"steps": calibrate(args.out, cpu_minutes=args.cpu_minutes, threads=args.threads, **opt,
                                     **scratch_opt),
                  "cpu_minutes": args.cpu_minutes}  # fmt: skip
    elif args.check == "merge":
        result = merge(args.inputs)
    elif args.check == "gpu":
        gpu_opt = {k: v for k, v in opt.items() if k in ("crop", "batch_size", "data")}
        result = gpu_check(args.out, minutes=args.minutes, amp=args.amp, **gpu_opt)
    else:
        runs: dict[str, Any] = {}
        steps = args.steps
        for teacher in args.teachers:
            runs[teacher] = scratch_check(Path(args.out) / teacher, teacher=teacher, steps=steps,
                                          cpu_minutes=args.cpu_minutes, threads=args.threads, **opt,
                                          **scratch_opt)  # fmt: skip
            steps = runs[teacher]["steps"]  # later runs (the ablation) make the same number of steps
        result = merge_runs(runs)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    brief = {k: v for k, v in result.items() if k not in ("runs", "loss_curve", "config")}
    print(json.dumps(brief | {"file": args.json}, default=str))
    return 0


def merge_runs(runs: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"runs": runs}
    others = [k for k in runs if k != "none"]
    if "none" in runs and others:
        result["ablation"] = {t: ablation_summary(runs[t], runs["none"]) for t in others}
    result["passed"] = {t: r["passed"] for t, r in runs.items()}
    return result


if __name__ == "__main__":
    raise SystemExit(main())
