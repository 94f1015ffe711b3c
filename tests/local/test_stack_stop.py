"""A local stack stops with the process that started it: SIGTERM (a CI timeout, ``kill``) becomes
SystemExit inside ``local_stack``, so its cleanup stops the processes that run in sessions of their own."""

from __future__ import annotations

import os
import signal

import pytest

from local.stack import stopping_on_sigterm


@pytest.fixture
def default_sigterm():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_inside_the_block_raises_system_exit_and_the_default_comes_back(default_sigterm):
    with pytest.raises(SystemExit) as stopped, stopping_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # let the handler run before the block ends
        pytest.fail("SIGTERM did not stop the block")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_handler_already_set_is_left_to_do_its_work(default_sigterm):
    def make_up_stops(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, make_up_stops)
    with pytest.raises(KeyboardInterrupt), stopping_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)
    assert signal.getsignal(signal.SIGTERM) is make_up_stops
