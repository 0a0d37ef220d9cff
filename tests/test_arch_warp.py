"""backward_warp on the CPU: row strips over the caller's threads give one grid_sample's frame bit for bit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import torch

from vsrife.arch import warp
from vsrife.arch.warp import backward_warp


@pytest.fixture
def set_threads() -> Iterator[Callable[[int], None]]:
    """``torch.set_num_threads`` for one test; the count from before is restored after it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The threads that ran each ``grid_sample`` call of a warp."""
    seen: list[int] = []
    sample = warp._sample

    def spy(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        seen.append(threading.get_ident())
        return sample(image, grid)

    monkeypatch.setattr(warp, "_sample", spy)
    return seen


def _pair(layout: torch.memory_format = torch.contiguous_format) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 5, 200, 333, generator=g).contiguous(memory_format=layout)
    return image, torch.randn(1, 2, 200, 333, generator=g) * 20  # flows past the borders too


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_row_strips_give_one_calls_frame(
    threads: int,
    layout: torch.memory_format,
    set_threads: Callable[[int], None],
    calls: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_threads(threads)
    image, flow = _pair(layout)
    with torch.inference_mode():
        out = backward_warp(image, flow)
    assert len(calls) == threads and len(set(calls)) == threads  # one strip per thread, side by side
    assert out.shape == (1, 5, 200, 333) and out.is_contiguous()
    calls.clear()
    monkeypatch.setattr(warp, "_SPLIT_MIN_PIXELS", 1 << 40)
    with torch.no_grad():
        ref = backward_warp(image, flow)
    assert len(calls) == 1
    assert torch.equal(out, ref)
    assert backward_warp(image.to(torch.bfloat16), flow).dtype == torch.bfloat16


def test_one_call_with_autograd_one_thread_or_small_frames(
    set_threads: Callable[[int], None], calls: list[int]
) -> None:
    set_threads(2)
    image, flow = _pair()
    image.requires_grad_()
    backward_warp(image, flow).sum().backward()  # training: one call, gradients flow
    assert len(calls) == 1 and image.grad is not None and image.grad.abs().sum() > 0
    with torch.no_grad():
        backward_warp(image[:, :, :100, :100], flow[:, :, :100, :100])  # 10,000 pixels: not worth a split
        set_threads(1)
        backward_warp(image, flow)
    assert len(calls) == 3


def test_a_failed_strip_raises_after_every_strip_finished(
    set_threads: Callable[[int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_threads(3)
    finished: list[int] = []
    sample = warp._sample
    caller = threading.get_ident()

    def flaky(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        if threading.get_ident() == caller:
            raise RuntimeError("strip failed")
        time.sleep(0.2)
        finished.append(threading.get_ident())
        return sample(image, grid)

    monkeypatch.setattr(warp, "_sample", flaky)
    image, flow = _pair()
    with torch.no_grad(), pytest.raises(RuntimeError, match="strip failed"):
        backward_warp(image, flow)
    assert len(finished) == 2  # the workers' strips were waited for, not left running
