"""Ctrl-C must stop long work even when its exception lands where Python swallows it."""

from __future__ import annotations

import contextlib
import signal

import pytest

from bastion.cli.progress import StageProgress, check_interrupted, interruptible
from bastion.errors import Interrupted


def _swallowed_ctrl_c() -> None:
    """What a weakref callback or __del__ does to an exception: print it and go on."""
    with contextlib.suppress(Interrupted):
        signal.raise_signal(signal.SIGINT)


def test_a_swallowed_ctrl_c_still_stops_at_the_next_step() -> None:
    with pytest.raises(Interrupted, match="what was kept"), interruptible("what was kept"):
        _swallowed_ctrl_c()
        with StageProgress() as hooks:
            hooks.step("attack 1", 0, 2)  # the next progress step raises
        raise AssertionError("not reached")  # pragma: no cover


def test_a_swallowed_ctrl_c_at_the_very_end_is_still_an_interruption() -> None:
    with pytest.raises(Interrupted), interruptible("kept"):
        _swallowed_ctrl_c()


def test_no_ctrl_c_no_interruption_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with interruptible("kept"):
        check_interrupted()
    assert signal.getsignal(signal.SIGINT) is before
    check_interrupted()  # nothing pending after the block
