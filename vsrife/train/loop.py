"""The training loop: AdamW, warm-up + cosine schedule, AMP, clipping, checkpoints with exact resume.

Determinism: the network is initialised from ``seed``; the batch of step s (order and augmentation)
is a pure function of (seed, s) (:class:`~vsrife.train.data.StepSampler`); checkpoints hold the
module, optimizer, scheduler, scaler and RNG states. On CPU an interrupted and resumed run therefore
reproduces the uninterrupted loss curve bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, default_collate

from vsrife.models.loading import spec_to_dict
from vsrife.train.augment import Augment
from vsrife.train.checkpoint import (
    checkpoint_path,
    get_rng_state,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from vsrife.train.config import DEFAULT_TEACHER_WIDTH, ConfigError, TrainConfig
from vsrife.train.data import Split, StepSampler, WindowDataset, build_splits, expand_inner, sequence_identity
from vsrife.train.distributed import DistContext, all_mean, barrier, resolve_device, wrap_ddp
from vsrife.train.evaluate import EvalResult, evaluate_windows, heldout_subset, network_interpolator
from vsrife.train.logs import RunLogger, image_grid
from vsrife.train.losses import psnr_batch
from vsrife.train.model import (
    Objective,
    TrainModule,
    build_student,
    student_from_checkpoint,
    teacher_note,
    teacher_width_of,
)
from vsrife.train.teachers import build_flow_teacher

__all__ = ["MAX_FLOW_RATIO", "Trainer", "TrainingDiverged", "lr_multiplier"]


MAX_FLOW_RATIO = 4.0
"""Largest plausible flow, in crop sizes (averaged over a log window): beyond it training has diverged."""


class TrainingDiverged(FloatingPointError):
    """Training left the range where its numbers mean anything (non-finite loss, exploding flows)."""


def lr_multiplier(cfg: TrainConfig) -> Callable[[int], float]:
    """Factor on ``lr`` at step s: linear warm-up, then cosine decay to ``min_lr`` at ``steps``."""

    def factor(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
        lr = cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return lr / cfg.lr

    return factor


RESUMABLE = frozenset({
    "out_dir", "resume", "overwrite", "device", "amp", "threads", "num_workers", "steps", "time_limit", "name",
    "model_path", "raft_weights",
    "log_every", "val_every", "val_max", "val_crop", "ckpt_every", "keep_checkpoints", "sample_every",
    "tensorboard", "export_final",
    # the data options are checked through the training windows' fingerprint and the sequences' sizes and content
    "data", "windows", "video_scale", "max_frames", "val_fraction", "val_segment", "skip_bad",
})  # fmt: skip
"""Options a resumed run may change; any other difference from the checkpoint's config is refused."""

DATA_OPTIONS = ("data", "windows", "video_scale", "max_frames", "val_fraction", "val_segment", "skip_bad")
"""The resumable options that decide the training windows (named when a resume finds other windows)."""

RUN_OUTPUTS = ("config.json", "train.csv", "val.csv", "log.txt", "model/flownet.pkl", "samples", "tensorboard")
"""What a run writes into out_dir besides checkpoints: a new run replaces these only with ``overwrite``."""


class Trainer:
    """One training run (one process of it under torchrun). See :meth:`fit`."""

    def __init__(self, config: TrainConfig, ctx: DistContext | None = None, quiet: bool = False) -> None:
        cfg = config.validate()
        if ctx is None:
            ctx = DistContext(device=_device(cfg.device))
        self.ctx = ctx
        self.device = ctx.device
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick the fastest kernels
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        _check_out_dir(self.out_dir)
        resume_from = latest_checkpoint(self.ckpt_dir)
        if resume_from is not None and not cfg.resume and not quiet:
            raise ConfigError(f"out_dir: {self.out_dir} holds checkpoints of an earlier run; pass --resume to "
                              "continue it, or choose another out_dir")  # fmt: skip
        resume_from = resume_from if cfg.resume else None
        earlier = _earlier_outputs(self.out_dir) if resume_from is None and ctx.is_main and not quiet else []
        if earlier and not cfg.overwrite:
            raise ConfigError(f"out_dir: {self.out_dir} holds the outputs of an earlier run ({', '.join(earlier)}); "
                              "pass --overwrite to replace them, or choose another out_dir")  # fmt: skip
        state: dict[str, Any] | None = None
        if resume_from is not None:
            try:
                state = load_checkpoint(resume_from)
            except (ValueError, OSError) as exc:
                raise ConfigError(f"resume: {exc}; delete it to resume from the checkpoint before it") from None
        _seed_everything(cfg.seed)
        if cfg.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("amp: fp16 needs a CUDA device (use bf16 on CPU)")

        # --- network (a resumed run rebuilds it from the checkpoint: the source weights need not exist any more)
        source = build_student(cfg) if state is None else student_from_checkpoint(state, str(resume_from))
        width = cfg.teacher_width
        if width is None:  # the source's trained teacher (or the resumed run's width), else the default
            earlier_width = (state or {}).get("config", {}).get("teacher_width")
            width = earlier_width if isinstance(earlier_width, int) else teacher_width_of(source.teacher_state)
            cfg = cfg.replace(teacher_width=width or DEFAULT_TEACHER_WIDTH)
        self.cfg = cfg
        self.base = source.base
        self.spec = source.network.spec
        multiple = self.spec.pad_multiple()
        for opt, size in (("crop", cfg.crop_hw), ("val_crop", cfg.val_crop_hw)):
            if size is not None and (size[0] % multiple or size[1] % multiple):
                raise ConfigError(f"{opt}: {size[0]}x{size[1]} must be a multiple of {multiple} for this architecture")
        assert cfg.teacher_width is not None
        self.module = TrainModule(source.network, cfg.teacher == "privileged", cfg.teacher_width,
                                  source.teacher_state).to(self.device)  # fmt: skip
        notes = list(source.notes)
        if state is None and hasattr(self.module, "teacher"):
            notes.append(teacher_note(source, cfg.teacher_width, self.module.loaded_teacher))
        self.model = wrap_ddp(self.module, ctx)
        self.params = [p for p in self.module.parameters() if p.requires_grad]

        # --- data
        midpoint = self.spec.family != "v4"
        if midpoint and any(w % 2 == 0 for w in cfg.windows):
            raise ConfigError(f"windows: a {self.spec.family} network interpolates t = 0.5 only; use odd lengths, "
                              f"got {cfg.windows}")  # fmt: skip
        # Checkpoints from before the dataset-wide split hold out segments per sequence: resumed as they were.
        split: Split = "dataset" if state is None or state["data"].get("split") == "dataset" else "sequence"
        sequences, train_w, val_w, stats = build_splits(
            cfg.data, cfg.windows, video_scale=cfg.video_scale, max_frames=cfg.max_frames,
            val_fraction=cfg.val_fraction, segment=cfg.val_segment, skip_bad=cfg.skip_bad, split=split,
        )  # fmt: skip
        if not train_w:
            raise ConfigError(f"data: no training windows in {cfg.data} (all skipped or too short: {stats})")
        aug = Augment(cfg.flip_h, cfg.flip_v, cfg.rot90, cfg.channel_perm, cfg.reverse, cfg.pan, cfg.pan_pixels)
        self.train_data = WindowDataset(sequences, train_w, cfg.crop_hw, aug, midpoint_only=midpoint)
        self.split = split
        self.fingerprint = self.train_data.fingerprint()
        used = sorted({w.seq for w in train_w})
        # What the windows' fingerprint cannot see: frame sizes (video_scale, @scale) and content (another clip
        # of the same name). Vimeo90K sequences are named by their list ids and not read here.
        self.data_identity: list[list[Any]] = [
            [sequences[i].name, sequences[i].source, sequence_identity(sequences[i])]
            for i in used
            if not sequences[i].curated
        ]
        val_items = expand_inner(val_w)
        if midpoint:
            val_items = [w for w in val_items if 2 * w.inner == w.length - 1]  # type: ignore[operator]
        self.val_data = WindowDataset(sequences, heldout_subset(val_items, cfg.val_max), cfg.val_crop_hw,
                                      midpoint_only=midpoint, crop_option="val_crop")  # fmt: skip
        self.sampler = StepSampler(len(self.train_data), cfg.batch_size, cfg.seed, rank=ctx.rank, world=ctx.world)
        self.data_stats = {"sequences": len(sequences), "train_windows": len(train_w), "val_windows": len(val_w),
                           "val_items": len(self.val_data), **stats}  # fmt: skip
        if cfg.val_max == 0:
            notes.append("val_max 0: no validation")
        elif cfg.val_fraction > 0 and not val_w:
            notes.append(f"val_fraction {cfg.val_fraction}: no window held out (too little data for that share, "
                         f"in whole segments of {cfg.val_segment} frames): no validation")  # fmt: skip

        # --- optimisation
        self.teacher = build_flow_teacher(
            cfg.teacher,
            dis_preset=cfg.dis_preset,
            raft_weights=cfg.raft_weights,
            raft_small=cfg.raft_small,
            raft_iters=cfg.raft_iters,
            device=self.device,
        )
        self.objective = Objective.from_config(cfg)
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]),
                                           weight_decay=cfg.weight_decay)  # fmt: skip
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_multiplier(cfg))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._pending: list[dict[str, Tensor]] = []
        self._window_start = time.perf_counter()
        self._window_samples = 0
        self._last: dict[str, Tensor] | None = None
        self.last_validation: EvalResult | None = None
        self.validation_cpu_seconds = 0.0

        if state is not None:
            self._load(state)
        if earlier and cfg.overwrite:
            _remove_outputs(self.out_dir)
        self.logger = RunLogger(self.out_dir, enabled=ctx.is_main and not quiet, tensorboard=cfg.tensorboard,
                                resume_step=self.step if resume_from is not None else None)  # fmt: skip
        if earlier and cfg.overwrite:
            self.logger.message(f"overwrite: replaced the earlier run's {', '.join(earlier)} in {self.out_dir}")
        for note in notes:
            self.logger.message(note)
        if resume_from is not None:
            self.logger.message(f"resumed from {resume_from} at step {self.step}")
        elif cfg.resume:
            self.logger.message(f"resume: no checkpoint in {self.ckpt_dir}, starting at step 0")
        if ctx.is_main and not quiet:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
            self.logger.message(
                f"data: {self.data_stats}; model: {self.base or 'scratch'} ({self.spec.family}, "
                f"{sum(p.numel() for p in self.params):,} trainable parameters) on {self.device}"
            )

    # ------------------------------------------------------------------ data
    def batch(self, step: int) -> dict[str, Tensor]:
        """This process's share of the global batch of ``step`` (collated, on CPU)."""
        return default_collate([self.train_data[k] for k in self.sampler.batch(step)])

    def _batches(self) -> Iterator[dict[str, Tensor]]:
        if self.cfg.num_workers == 0:
            for step in range(self.step, self.cfg.steps):
                yield self.batch(step)
            return
        sampler = StepSampler(len(self.train_data), self.cfg.batch_size, self.cfg.seed, start_step=self.step,
                              stop_step=self.cfg.steps, rank=self.ctx.rank, world=self.ctx.world)  # fmt: skip
        yield from DataLoader(self.train_data, batch_sampler=sampler, num_workers=self.cfg.num_workers,
                              pin_memory=self.device.type == "cuda", persistent_workers=False)  # fmt: skip

    # ------------------------------------------------------------------ one step
    def forward_backward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Loss terms of one batch; gradients accumulated into the parameters (DDP-averaged)."""
        dev = self.device
        img0, gt, img1 = (batch[k].to(dev, non_blocking=True).float().div_(255.0) for k in ("img0", "gt", "img1"))
        t = batch["t"].to(dev).float().reshape(-1, 1, 1, 1)
        teacher_flow = self.teacher(img0, gt, img1) if self.teacher is not None else None
        self.module.train()
        with torch.autocast(dev.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            out = self.model(img0, img1, gt, t)
        loss, terms = self.objective(out, img0, img1, gt, teacher_flow)
        # Largest student flow relative to the crop: watched for divergence (see _log), never logged.
        terms["flow_ratio"] = out["flows"][-1].detach().abs().amax().float() / max(gt.shape[2:])
        self._check_finite(loss, out)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        terms = {k: v.detach() for k, v in terms.items()}
        terms["psnr"] = psnr_batch(out["pred"].detach(), gt).mean()
        if "teacher_pred" in out:
            terms["psnr_teacher"] = psnr_batch(out["teacher_pred"].detach(), gt).mean()
        if self.cfg.sample_every and (self.step + 1) % self.cfg.sample_every == 0:
            self._last = {
                "img0": img0,
                "gt": gt,
                "img1": img1,
                "pred": out["pred"].detach(),
                **({"teacher": out["teacher_pred"].detach()} if "teacher_pred" in out else {}),
            }
        return terms

    def _check_finite(self, loss: Tensor, out: dict[str, Any]) -> None:
        """Stop a diverged run before ``backward``, every step: once the weights blow up, the flows turn NaN,
        and PyTorch's CPU ``grid_sample`` backward crashes the whole process (SIGSEGV) on a NaN sampling
        grid. One device sync per step; the checkpoints written so far are kept."""
        flows = [*out["flows"], *([out["teacher_flow"]] if "teacher_flow" in out else [])]
        probe = torch.stack([loss.detach().float().reshape(()), *(f.detach().float().abs().amax() for f in flows)])
        if not bool(torch.isfinite(probe).all()):
            what = f"loss is {float(probe[0])}" if not math.isfinite(float(probe[0])) else "flows are not finite"
            raise TrainingDiverged(f"training diverged at step {self.step + 1}: {what} (try a lower lr or amp none, "
                                   "and resume from an earlier checkpoint)")  # fmt: skip

    def gradients(self) -> dict[str, Tensor]:
        """Copies of the current gradients by parameter name (zeros where none)."""
        return {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)).cpu()
                for n, p in self.module.named_parameters() if p.requires_grad}  # fmt: skip

    def optimizer_step(self) -> Tensor:
        """Unscale, clip, step optimizer / scaler / scheduler; returns the pre-clip gradient norm."""
        self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return norm.detach()

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        lr = self.optimizer.param_groups[0]["lr"]
        terms = self.forward_backward(batch)
        terms["grad_norm"] = self.optimizer_step()
        terms["lr"] = torch.tensor(lr)
        self.step += 1
        self._window_samples += self.cfg.batch_size
        return terms

    # ------------------------------------------------------------------ the run
    def fit(self, stop_at: int | None = None, *, ctrl_c_saves: bool = False) -> dict[str, Any]:
        """Train until ``steps`` (or ``stop_at``, or ``time_limit``); returns a summary.

        ``ctrl_c_saves`` (the command line): the first Ctrl-C stops after the current step with a
        checkpoint and ``stopped="interrupted"``; otherwise Ctrl-C raises KeyboardInterrupt as usual.
        """
        cfg = self.cfg
        started = time.perf_counter()
        self._window_start, self._window_samples = started, 0
        stopped = "done"
        batches = self._batches()
        with _StopRequest(active=ctrl_c_saves) as ctrl_c:
            while self.step < cfg.steps:
                if stop_at is not None and self.step >= stop_at:
                    stopped = "stop_at"
                    break
                late_any = interrupted = 0.0
                # Every process must stop at the same step (a lone one would wait in DDP's all-reduce): any
                # one past the time limit or interrupted stops them all. Under DDP they agree at the logging
                # steps only (an all-reduce every step would stall the GPU pipeline).
                if (cfg.time_limit or ctrl_c.active) and (not self.ctx.distributed or self.step % cfg.log_every == 0):
                    late = bool(cfg.time_limit) and time.perf_counter() - started > cfg.time_limit
                    late_any, interrupted = all_mean([float(late), float(ctrl_c.requested)], self.ctx)
                if interrupted:
                    stopped = "interrupted"
                    self.logger.message(f"interrupted at step {self.step}: saving a checkpoint")
                    break
                if late_any:
                    stopped = "time_limit"
                    self.logger.message(f"time_limit of {cfg.time_limit:.0f} s reached at step {self.step}")
                    break
                self._step_and_report(next(batches))
        if self._pending:
            self._log()
        if stopped in ("time_limit", "interrupted"):
            self.save()
            if stopped == "time_limit" and len(self.val_data):
                self.validate()
        summary: dict[str, Any] = {"step": self.step, "stopped": stopped, "seconds": time.perf_counter() - started,
                                   "data": self.data_stats}  # fmt: skip
        if self.history:
            summary["last"] = self.history[-1]
        if stopped in ("done", "time_limit") and cfg.export_final and self.ctx.is_main:
            summary["export"] = str(self.export(self.out_dir / "model"))
        barrier(self.ctx)
        self.logger.close()
        return summary

    def _step_and_report(self, batch: dict[str, Tensor]) -> None:
        """One training step, then its logging, samples, checkpoint and validation when due."""
        cfg = self.cfg
        self._pending.append(self.train_step(batch))
        last = self.step == cfg.steps
        if self.step % cfg.log_every == 0 or last:
            self._log()
        if self.step % cfg.sample_every == 0 and self._last is not None:
            self._samples()
        if self.step % cfg.ckpt_every == 0 or last:
            self.save()
        if (self.step % cfg.val_every == 0 or last) and len(self.val_data):
            self.validate()

    def _log(self) -> None:
        keys = sorted(set().union(*(p.keys() for p in self._pending)))
        means = [float(torch.stack([p[k].float() for p in self._pending if k in p]).mean()) for k in keys]
        means = all_mean(means, self.ctx)
        row = dict(zip(keys, means, strict=True))
        now = time.perf_counter()
        row["samples_per_s"] = self._window_samples / max(now - self._window_start, 1e-9)
        self._pending.clear()
        self._window_start, self._window_samples = now, 0
        if not math.isfinite(row["total"]):
            raise TrainingDiverged(f"loss is {row['total']} at step {self.step} (try a lower lr or amp none)")
        if row.get("flow_ratio", 0.0) > MAX_FLOW_RATIO:
            # Seen with a privileged teacher and distillation everywhere at weight 0.1: flows grew to 1e26 px
            # while the losses stayed finite (border-clamped warps), so the loss check alone misses it.
            raise TrainingDiverged(
                f"training diverged at step {self.step}: flows reach {row['flow_ratio']:.3g} times the crop size "
                "(try a lower lr, distill_weight or teacher_weight, and resume from an earlier checkpoint)"
            )
        row = {k: row[k] for k in ("total", "rec", "teacher", "distill", "psnr", "psnr_teacher", "lr", "grad_norm",
                                   "samples_per_s") if k in row}  # fmt: skip
        self.history.append({"step": self.step, **row})
        self.logger.scalars("train", self.step, row)
        if self.step % (self.cfg.log_every * 10) == 0 or self.step == self.cfg.steps:
            self.logger.message(f"step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()))

    def _samples(self) -> None:
        last, self._last = self._last, None
        if last is None or not self.ctx.is_main:
            return
        rows = []
        for i in range(min(4, last["gt"].shape[0])):
            err = ((last["pred"][i] - last["gt"][i]).abs() * 4).clamp(0, 1)
            row = [last["img0"][i], last["gt"][i], last["pred"][i], last["img1"][i], err]
            if "teacher" in last:
                row.append(last["teacher"][i])
            rows.append(row)
        self.logger.image(self.step, image_grid(rows))

    # ------------------------------------------------------------------ validation
    def evaluate_heldout(self, limit: int | None = None) -> EvalResult:
        """Held-out windows scored with the current student (full frames or ``val_crop``)."""
        net = self.module.net
        was_training = net.training
        net.eval()
        try:
            return evaluate_windows(self.val_data, network_interpolator(net, self.device), limit)
        finally:
            net.train(was_training)

    def validate(self) -> EvalResult | None:
        """Score the held-out set (main process), log it; kept in ``last_validation``."""
        result = None
        if self.ctx.is_main:
            cpu0 = time.process_time()
            result = self.evaluate_heldout()
            self.last_validation = result
            self.validation_cpu_seconds += time.process_time() - cpu0
            for t, row in result.per_t.items():
                self.logger.scalars("val", self.step, {"t": t, **row}, tag=f"t{t}")
            self.logger.scalars(
                "val",
                self.step,
                {
                    "t": "all",
                    "count": result.count,
                    "psnr": result.psnr,
                    "ssim": result.ssim,
                    **{f"psnr_{k}": v for k, v in result.baselines.items()},
                },
            )
            self.logger.message(
                f"validation at step {self.step}: PSNR {result.psnr:.3f} dB, SSIM {result.ssim:.4f} "
                f"(average {result.baselines['average']:.3f} dB) on {result.count} frames"
            )
        barrier(self.ctx)
        return result

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "step": self.step,
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": get_rng_state(),
            "data": {
                **self.sampler.state(self.step),
                "fingerprint": self.fingerprint,
                "split": self.split,
                "sequences": self.data_identity,
            },
            "config": self.cfg.to_dict(),
            "spec": spec_to_dict(self.spec),
            "base": self.base,
            "history": self.history[-1:],
        }

    def _load(self, state: dict[str, Any]) -> None:
        old, new = _comparable(state.get("config", {})), _comparable(self.cfg.to_dict())
        changed = [k for k in new if k not in RESUMABLE and k in old and old[k] != new[k]]
        if changed:
            diffs = "; ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in changed)
            raise ConfigError(f"resume: {diffs} differ from the checkpoint's run (the network, optimiser, schedule "
                              "and data order would not continue it); resume with its settings or use a new "
                              "out_dir")  # fmt: skip
        options = "; ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in DATA_OPTIONS if k in old and old[k] != new[k])
        self._check_same_data(state["data"].get("sequences"), options)
        if state["data"].get("fingerprint") != self.fingerprint:
            raise ConfigError(f"resume: the training windows differ from the checkpoint's ({options or 'the data'} "
                              "changed); resume with the checkpoint's data options or use a new out_dir")  # fmt: skip
        if state["data"].get("global_batch") != self.cfg.batch_size:
            raise ConfigError(f"resume: batch_size {self.cfg.batch_size} differs from the checkpoint's "
                              f"{state['data'].get('global_batch')}")  # fmt: skip
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and self.scaler.is_enabled():  # amp may change on resume: fp16 <-> none/bf16
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        # The optimizer holds the lr the checkpoint's schedule gave; steps may have changed since, so
        # continue on this run's schedule from the next step on.
        factor = lr_multiplier(self.cfg)(self.step)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs, strict=True):
            group["lr"] = base * factor
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        self.history = list(state.get("history", []))

    def _check_same_data(self, recorded: list[list[Any]] | None, options: str) -> None:
        """Refuse a resume whose sequences have other frame sizes or content than the checkpoint's run
        (checkpoints from before these records are checked by their windows only); ``options``: the data
        options that differ, named in the message."""
        for (name, _, was), (new_name, source, now) in zip(recorded or [], self.data_identity, strict=False):
            if name != new_name or was == now:
                continue
            if was["size"] != now["size"] or was["frames"] != now["frames"]:
                raise ConfigError(
                    f"resume: data {source}: {name} is {_described(now)}, but was {_described(was)} in the "
                    f"checkpoint's run ({options or 'the file changed'}); resume with the checkpoint's data options "
                    "or use a new out_dir"
                )
            raise ConfigError(f"resume: data {source}: {name} holds other frames than in the checkpoint's run "
                              "(another clip of that name?); resume with the checkpoint's data or use a new "
                              "out_dir")  # fmt: skip

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (main process) and prune old ones.

        Weights that are no longer finite are never saved (TrainingDiverged): the last checkpoint stays a
        good one to resume from.
        """
        if not bool(torch.stack([torch.isfinite(p).all() for p in self.params]).all()):
            raise TrainingDiverged(f"training diverged at step {self.step}: the weights are no longer finite (try a "
                                   "lower lr or amp none, and resume from an earlier checkpoint)")  # fmt: skip
        path = None
        if self.ctx.is_main:
            path = save_checkpoint(checkpoint_path(self.ckpt_dir, self.step), self.state_dict())
            prune_checkpoints(self.ckpt_dir, self.cfg.keep_checkpoints)
        barrier(self.ctx)
        return path

    def export(self, folder: str | Path) -> Path:
        """Save the current student in the official layout (+ metadata) for ``load_model``."""
        from vsrife.train.export import export_model

        metrics: dict[str, Any] = {"step": self.step}
        if self.history:
            metrics["train"] = self.history[-1]
        return export_model(self.module, folder, name=self.cfg.name, base=self.base, config=self.cfg.to_dict(),
                            data=self.data_stats, metrics=metrics)  # fmt: skip


def _described(identity: dict[str, Any]) -> str:
    h, w = identity["size"]
    return f"{w}x{h} ({identity['frames']} frames)"


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an out_dir that cannot be a folder (a file, or under one) before anything is loaded or built."""
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == out_dir else f"lies under the file {folder}"
                raise ConfigError(f"out_dir: {out_dir} {where}, not a folder; choose another out_dir")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"out_dir: {out_dir} cannot be written in {folder} (permission denied)")
            return


def _earlier_outputs(out_dir: Path) -> list[str]:
    """Names of RUN_OUTPUTS an earlier run left in ``out_dir`` (folders only when not empty)."""
    paths = [(name, out_dir / name) for name in RUN_OUTPUTS]
    return [name for name, p in paths if p.is_file() or (p.is_dir() and any(p.iterdir()))]


def _remove_outputs(out_dir: Path) -> None:
    """Remove an earlier run's outputs (``overwrite``): only the files a run writes, never anything else."""
    for name in ("config.json", "train.csv", "val.csv", "log.txt", "model/flownet.pkl"):
        (out_dir / name).unlink(missing_ok=True)
    for pattern in ("samples/step_*.png", "tensorboard/events.out.tfevents.*"):
        for path in out_dir.glob(pattern):
            path.unlink(missing_ok=True)


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """Config values as they act: ``crop [256]`` is ``[256, 256]``; ``arch_base`` only matters with ``arch``.

    Runs from before ``lap_lowpass`` existed used the low-pass term and an L1 distillation at twice today's
    ``l1`` scale: they read as the options that reproduce them, so a resume names exactly what to pass.
    """
    out = dict(config)
    if out and "lap_lowpass" not in out:
        out["lap_lowpass"] = True
        if out.get("distill_norm") == "l1" and isinstance(out.get("distill_weight"), int | float):
            out["distill_weight"] = 2 * out["distill_weight"]
    for key in ("crop", "val_crop"):
        if isinstance(out.get(key), list) and len(out[key]) == 1:
            out[key] = out[key] * 2
    if out.get("arch") is None:
        out.pop("arch_base", None)
    return out


class _StopRequest:
    """While training (``active``): the first Ctrl-C asks to stop after the current step (with a
    checkpoint), a second one interrupts at once. Only the main thread can take signals, and an ignored
    SIGINT (e.g. a background job's) stays ignored; then it never asks."""

    def __init__(self, active: bool) -> None:
        self.active = active and threading.current_thread() is threading.main_thread()
        self.active = self.active and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        self.requested = False
        self._previous: Any = None
        self._pid = os.getpid()

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:  # a forked data-loader worker: the trainer decides
            return
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C: the usual KeyboardInterrupt
        print("stopping after this step with a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    def __enter__(self) -> _StopRequest:
        if self.active:
            self._previous = signal.signal(signal.SIGINT, self._handle) or signal.default_int_handler
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self._previous)
