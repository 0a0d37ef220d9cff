"""``vsrife eval VIDEO``: interpolation quality on real footage by the triplet protocol (see :mod:`vsrife.quality`).

For k = start, start+step, ... with k+2 inside the first N frames, frame k+1 is predicted from k
and k+2 at t = 1/2 by each chosen model (torch :class:`~vsrife.engine.Interpolator`) and by three
baselines (the neighbours' average, repeating frame k, MVTools FlowFPS), and compared with the
real frame k+1 (PSNR, SSIM on 8-bit RGB). Triplets whose neighbours are near-duplicates or a cut
are skipped and counted. All frames come from one BestSource clip converted to RGB24 by
VapourSynth, so every method sees (and is judged against) identical pixels; predictions are
rounded to 8 bits like a rendered video would be.

The triplets are visited once, in order, every method scoring each one before the next: only the
frames around the current triplet are held (:class:`_FrameWindow`, at most 4), each decoded once, so
memory does not grow with ``--frames``. Every requested model is loaded (fetched where missing)
before any frame is decoded.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vsrife.cli.args import add_device_options, parse_positive_int
from vsrife.cli.common import check_engine_options, check_model, info, input_file, open_source, progress_bar, warn
from vsrife.cli.errors import CliError, UsageError
from vsrife.cli.output import check_report, write_text_atomically

if TYPE_CHECKING:
    from torch import Tensor

    from vsrife.models import LoadedModel

__all__ = ["PSNR_CAP", "add_parser", "evaluate", "run"]

PSNR_CAP = 100.0
"""PSNR of identical images (infinite) is reported as this, so the JSON stays standard."""
AVERAGE, REPEAT, MVTOOLS = "average", "repeat", "mvtools"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="quality report: predict real frames from their neighbours (PSNR/SSIM vs baselines)",
        description="Triplet protocol: predict frame k+1 from k and k+2 with each model and with baselines "
        "(average, repeat, MVTools FlowFPS), compare with the real frame. Writes an HTML report and/or JSON.",
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--model", action="append", help="model version (repeatable; default 3.6)")
    p.add_argument("--start", type=int, default=0, help="first frame of the evaluated range (default 0)")
    p.add_argument("--frames", type=parse_positive_int, default=100, help="evaluate within N frames (default 100)")
    p.add_argument("--step", type=parse_positive_int, default=2, help="distance between triplets (default 2)")
    p.add_argument("--scale", type=float, default=1.0, help="flow resolution factor for the models")
    add_device_options(p, threads=True)
    p.add_argument("--no-mvtools", dest="mvtools", action="store_false", help="skip the MVTools baseline")
    p.add_argument("--out", metavar="HTML", help="write a self-contained HTML report")
    p.add_argument("--json", metavar="JSON", help="write all numbers as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=run)


# ------------------------------------------------------------------ frames


def _rgb_clip(clip: Any, matrix: int | None = None) -> Any:
    """The clip as RGB24 (matrix from the props, else BT.709 for HD and BT.601 below).

    ``matrix``: the ``_Matrix`` prop to go by; None reads frame 0's (which makes that frame).
    """
    import vapoursynth as vs

    fmt = clip.format
    if fmt.color_family == vs.RGB:
        return clip if fmt.id == vs.RGB24 else vs.core.resize.Point(clip, format=vs.RGB24)
    if fmt.color_family == vs.GRAY:
        gray = vs.core.resize.Point(clip, format=vs.GRAY8)
        return vs.core.std.ShufflePlanes(gray, planes=[0, 0, 0], colorfamily=vs.RGB)
    if matrix is None:
        matrix = clip.get_frame(0).props.get("_Matrix", 2)
    kwargs = {} if matrix not in (2, 3) else {"matrix_in": 1 if clip.height > 576 else 6}
    return vs.core.resize.Bicubic(clip, format=vs.RGB24, **kwargs)


def _tensor(frame: Any) -> Any:
    import numpy as np
    import torch

    planes = np.stack([np.asarray(frame[p]) for p in range(3)])
    return torch.from_numpy(planes).unsqueeze(0).float().div_(255.0)


def _quantize(x: Any) -> Any:
    return x.clamp(0.0, 1.0).mul(255.0).round_().div_(255.0)


class _FrameWindow:
    """Frames of the RGB24 clip as float32 tensors, each decoded once and held only while needed.

    The triplets are visited in increasing k and triplet k needs frames k..k+2, so :meth:`drop_before`
    (k) forgets the earlier ones but one: the real frame of a triplet whose MVTools score waits for the
    next scored triplet. So at most 4 frames are held, however long the evaluated range (a 1080p frame
    is 25 MB as float32, a 4K one 100 MB).
    """

    def __init__(self, clip: Any) -> None:
        self._clip = clip
        self._frames: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, n: int) -> Tensor:
        if n not in self._frames:
            self._frames[n] = self._decode(n)
        return self._frames[n]

    def _decode(self, n: int) -> Tensor:
        return _tensor(self._clip.get_frame(n))

    def drop_before(self, n: int, keep: int | None = None) -> None:
        """Forget frames before ``n`` except ``keep`` (no later triplet needs them)."""
        for i in [i for i in self._frames if i < n and i != keep]:
            del self._frames[i]


_MVTOOLS_SUBSAMPLING = {(0, 0), (1, 0), (0, 1), (1, 1)}  # 4:4:4, 4:2:2, 4:4:0, 4:2:0
_BT709 = 1


def _mvtools_source(clip: Any, rgb: Any) -> tuple[Any, int | None, str]:
    """(clip for MVTools, matrix to convert its output back to RGB or None for the clip's own, description).

    MVTools takes gray or YUV (4:2:0, 4:2:2, 4:4:0, 4:4:4) integer clips up to 16 bits: those get the
    decoded clip itself. Anything else (RGB, other subsamplings, float) gets a YUV444P16 copy of the RGB24
    frames every other method sees, BT.709; 16 bits hold 8-bit RGB exactly (RGB24 -> YUV444P16 -> RGB24 is
    lossless), so the motion search sees the same pixels and its prediction is rounded to RGB24 once, like
    the others' (an 8-bit copy would cost MVTools up to 2 levels per channel each way).
    """
    import vapoursynth as vs

    fmt = clip.format
    native = fmt.sample_type == vs.INTEGER and fmt.bits_per_sample <= 16
    native = native and (
        fmt.color_family == vs.GRAY
        or (fmt.color_family == vs.YUV and (fmt.subsampling_w, fmt.subsampling_h) in _MVTOOLS_SUBSAMPLING)
    )
    if native:
        return clip, None, f"the decoded {fmt.name} frames"
    yuv = vs.core.resize.Point(rgb, format=vs.YUV444P16, matrix=_BT709)
    return yuv, _BT709, f"a YUV444P16 (BT.709) copy of the RGB24 frames (the video is {fmt.name})"


class _MVToolsBaseline:
    """MVTools FlowFPS' t = 1/2 frame between frames k and k+2, as an RGB tensor like :func:`_tensor`'s.

    The scored triplets' pairs are conceptually spliced into one clip (k0, k0+2, k1, k1+2, ...) that
    FlowFPS plays at twice the rate. Its default occlusion handling (maskmode 2) also reads the frames
    just before and after a pair in that splice, i.e. the previous scored triplet's k+2 and the next
    one's k; :meth:`predict` splices exactly those (at most 4 frames), so a triplet's prediction is made
    once the next scored triplet is known, and no longer splice has to exist up front.
    """

    def __init__(self, clip: Any, rgb: Any) -> None:
        self._src, self._matrix, self.input = _mvtools_source(clip, rgb)
        self._blk = 16 if clip.width >= 1280 else 8
        # FlowFPS' frames carry their source frames' props: read the matrix once, not from every prediction
        self._props_matrix = int(self._src.get_frame(0).props.get("_Matrix", 2)) if self._matrix is None else 0

    def predict(self, previous: int | None, k: int, following: int | None) -> Tensor:
        """Prediction of frame k+1; ``previous`` / ``following``: k of the scored triplets around (or None)."""
        import vapoursynth as vs

        core = vs.core
        src = self._src
        # MVTools' occlusion handling also reads the frames around the pair: never the frame it predicts
        # (with --step 1 the scored neighbours' frames are k + 1 itself): those then stand in as copies
        frames = ([src[min(previous + 2, k)]] if previous is not None else []) + [src[k], src[k + 2]]
        frames += [src[max(following, k + 2)]] if following is not None else []
        pairs = core.std.Splice(frames)
        if not pairs.fps_num:
            pairs = core.std.AssumeFPS(pairs, fpsnum=25, fpsden=1)
        blk = self._blk
        sup = core.mv.Super(pairs, pel=2)
        bw = core.mv.Analyse(sup, isb=True, blksize=blk, overlap=blk // 2)
        fw = core.mv.Analyse(sup, isb=False, blksize=blk, overlap=blk // 2)
        flow = core.mv.FlowFPS(pairs, sup, bw, fw, num=2 * pairs.fps_num, den=pairs.fps_den)
        mid = flow[3 if previous is not None else 1]  # twice the rate: the middle of the pair
        if self._matrix is not None:
            rgb = core.resize.Point(mid, format=vs.RGB24, matrix_in=self._matrix)
        else:
            rgb = _rgb_clip(mid, self._props_matrix)
        return _tensor(rgb.get_frame(0))


def _load_models(models: list[str]) -> dict[str, LoadedModel]:
    """Every model of ``models`` loaded, fetched into the store where missing, before any frame is decoded.

    A model that cannot be had then fails at once, not after decoding, the baselines and the earlier
    models. Not in the store and without a download address (get the files by hand): usage error;
    a failed download or a broken stored file: runtime error. Each names ``--model`` and the fix.
    """
    from vsrife.cli.models import fetch_error_message
    from vsrife.models import FetchError, ModelLoadError, get_model, load_model, locate, model_dir
    from vsrife.models.store import fetch, version_dir

    loaded: dict[str, LoadedModel] = {}
    for name in models:
        model = get_model(name)
        importing = f"`vsrife models import FILE --model {name}`"
        if locate(name) is None:
            folder = version_dir(model, model_dir())
            manual = [f.name for f in model.files if f.url is None and f.pypi is None]
            if any(not (folder / f).is_file() for f in manual):
                raise UsageError(
                    f"--model {name} is not in the model store ({model_dir()}) and has no download address: get "
                    f"{', '.join(manual)} from {model.homepage} and run {importing} first"
                )
            info(f"--model {name} is not in the model store; fetching it")
            try:
                fetch(name)
            except FetchError as exc:
                raise CliError(
                    f"--model {name} is not in the model store ({model_dir()}) and could not be fetched: "
                    f"{fetch_error_message(exc, name)}. Online, `vsrife models fetch {name}` installs it"
                ) from None
        try:
            loaded[name] = load_model(name, fetch=False)
        except ModelLoadError as exc:
            raise CliError(
                f"--model {name} cannot be loaded: {exc}; reinstall it with `vsrife models fetch {name} --force` "
                f"or {importing}"
            ) from None
    return loaded


# ------------------------------------------------------------------ protocol


def evaluate(
    path: Path,
    models: list[str],
    *,
    start: int = 0,
    frames: int = 100,
    step: int = 2,
    scale: float = 1.0,
    device: str = "auto",
    precision: str = "auto",
    mvtools: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the triplet protocol on ``path`` and return all numbers (the JSON report).

    One pass over the triplets: each is classified and scored by every method before the next, so only the
    frames around the current triplet are held and each is decoded once (the models' engines live at once).
    """
    import vapoursynth as vs

    from vsrife.engine import Interpolator
    from vsrife.quality import CUT_DB, DUPLICATE_DB, SSIM_WINDOW, psnr, ssim

    loaded = _load_models(models)  # before any decoding: a missing model fails at once
    clip = open_source(path)
    if start < 0 or start >= clip.num_frames:
        raise UsageError(f"--start {start} is outside the video's {clip.num_frames} frames")
    end = min(clip.num_frames, start + frames)
    if end - start < 3:
        raise UsageError(f"the range {start}..{end - 1} has fewer than 3 frames; a triplet needs 3")
    if min(clip.width, clip.height) < SSIM_WINDOW:
        side = SSIM_WINDOW
        raise UsageError(f"{path} is {clip.width}x{clip.height}; SSIM needs frames of at least {side}x{side}")
    if mvtools and not hasattr(vs.core, "mv"):
        warn("MVTools (core.mv) is not installed; skipping its baseline (pip install vapoursynth-mvtools)")
        mvtools = False
    rgb = _rgb_clip(clip)
    ks = list(range(start, end - 2, step))
    methods = [f"rife-{m}" for m in models] + [AVERAGE, REPEAT] + ([MVTOOLS] if mvtools else [])
    seconds: dict[str, float] = dict.fromkeys(methods, 0.0)
    mv = _MVToolsBaseline(clip, rgb) if mvtools else None
    engines: dict[str, Interpolator] = {}
    for m in models:
        try:
            engines[m] = Interpolator(loaded.pop(m), device=device, precision=precision, scale=scale)
        except (ValueError, RuntimeError) as exc:
            raise CliError(f"--model {m}: {exc}") from None
    device_name = str(engines[models[-1]].device) if models else "cpu"
    window = _FrameWindow(rgb)

    def score(t: dict[str, Any], method: str, pred: Any, truth: Any) -> None:
        pred = _quantize(pred)
        t["scores"][method] = {"psnr": min(psnr(pred, truth), PSNR_CAP), "ssim": ssim(pred, truth)}

    previous: int | None = None  # k of the scored triplet before ``waiting``
    waiting: dict[str, Any] | None = None  # a scored triplet whose MVTools score needs the next one's k

    def score_mvtools(following: int | None) -> None:
        nonlocal previous, waiting
        if mv is None or waiting is None:
            return
        k = waiting["k"]
        began = time.perf_counter()
        pred = mv.predict(previous, k, following)
        seconds[MVTOOLS] += time.perf_counter() - began
        score(waiting, MVTOOLS, pred, window[k + 1])
        previous, waiting = k, None

    triplets: list[dict[str, Any]] = []
    bar = progress_bar(len(ks), "evaluating", enabled=progress, unit="triplet")
    try:
        for k in ks:
            window.drop_before(k, keep=waiting["k"] + 1 if waiting is not None else None)
            a, b = window[k], window[k + 2]
            p = psnr(a, b)
            kind = "duplicate" if p > DUPLICATE_DB else "cut" if p < CUT_DB else "ok"
            t: dict[str, Any] = {"k": k, "neighbours_psnr": min(p, PSNR_CAP), "kind": kind, "scores": {}}
            triplets.append(t)
            if kind == "ok":
                score_mvtools(following=k)
                window.drop_before(k)
                truth = window[k + 1]  # decoded only for a triplet that is scored
                score(t, AVERAGE, (a + b) / 2, truth)
                score(t, REPEAT, a, truth)
                if mv is not None:
                    t["scores"][MVTOOLS] = None  # scored with the next scored triplet (keeps the key order)
                    waiting = t
                for m, engine in engines.items():
                    began = time.perf_counter()
                    pred = engine.interpolate(a.to(engine.device), b.to(engine.device), 0.5).cpu()
                    seconds[f"rife-{m}"] += time.perf_counter() - began
                    score(t, f"rife-{m}", pred, truth)
            bar.update(1)
        score_mvtools(following=None)
    finally:
        bar.close()
        engines.clear()
    usable = [t for t in triplets if t["kind"] == "ok"]

    means: dict[str, dict[str, float]] = {}
    for method in methods:
        vals = [t["scores"][method] for t in usable]
        means[method] = {
            "psnr": sum(v["psnr"] for v in vals) / len(vals) if vals else math.nan,
            "ssim": sum(v["ssim"] for v in vals) / len(vals) if vals else math.nan,
        }
    margins = {
        m: {"psnr": means[m]["psnr"] - means[AVERAGE]["psnr"], "ssim": means[m]["ssim"] - means[AVERAGE]["ssim"]}
        for m in methods
    }
    return {
        "video": str(path),
        "size": [clip.width, clip.height],
        "fps": f"{clip.fps_num}/{clip.fps_den}",
        "start": start,
        "end": end,
        "step": step,
        "models": models,
        "device": device_name,
        "methods": methods,
        "thresholds": {"duplicate_db": DUPLICATE_DB, "cut_db": CUT_DB, "psnr_cap": PSNR_CAP},
        "triplets": triplets,
        "evaluated": len(usable),
        "skipped": {
            "duplicate": sum(t["kind"] == "duplicate" for t in triplets),
            "cut": sum(t["kind"] == "cut" for t in triplets),
        },
        "means": means,
        "margins_over_average": margins,
        "seconds_per_frame": {m: (seconds[m] / len(usable) if usable else 0.0) for m in methods},
        "mvtools_input": mv.input if mv is not None else None,
    }


def _summary(results: dict[str, Any]) -> str:
    lines = [
        f"{results['evaluated']} triplets evaluated; skipped: {results['skipped']['duplicate']} near-duplicate, "
        f"{results['skipped']['cut']} cut"
    ]
    lines.append(f"{'method':14} {'PSNR dB':>8} {'SSIM':>7} {'vs avg dB':>10}")
    for m in results["methods"]:
        mean, margin = results["means"][m], results["margins_over_average"][m]
        lines.append(f"{m:14} {mean['psnr']:8.2f} {mean['ssim']:7.4f} {margin['psnr']:+10.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from vsrife.models import DEFAULT_MODEL

    src = input_file(args.video)
    models = [check_model(m) for m in (args.model or [DEFAULT_MODEL])]
    models = list(dict.fromkeys(models))
    check_engine_options(args.device, args.precision, args.scale, args.threads)
    for option, target in (("--out", args.out), ("--json", args.json)):
        if target is not None:
            check_report(Path(target), option, inputs=(src,))
    if args.out and args.json and Path(args.out).absolute() == Path(args.json).absolute():
        raise UsageError(f"--out and --json are the same file {args.out}; the HTML report would replace the JSON")
    results = evaluate(
        src,
        models,
        start=args.start,
        frames=args.frames,
        step=args.step,
        scale=args.scale,
        device=args.device,
        precision=args.precision,
        mvtools=args.mvtools,
        progress=args.progress,
    )
    if results["evaluated"] == 0:
        raise CliError(
            f"no usable triplets in frames {results['start']}..{results['end'] - 1} "
            f"({results['skipped']['duplicate']} near-duplicate, {results['skipped']['cut']} cut)"
        )
    print(_summary(results))
    if args.json:
        write_text_atomically(Path(args.json), json.dumps(results, indent=2, allow_nan=False) + "\n")
        info(f"wrote {args.json}")
    if args.out:
        from vsrife.cli.report import render_html

        write_text_atomically(Path(args.out), render_html(results))
        info(f"wrote {args.out}")
    return 0
