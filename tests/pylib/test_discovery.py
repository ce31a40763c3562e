"""`_discovery`'s guard against `os._exit` while the pipeline file is imported."""

import os

import pytest

from pivot import _discovery
from pivot.exceptions import ExitWhileLoadingError


def test_os_exit_raises_inside_the_guard_and_is_the_real_one_again_afterwards(project):
    real = os._exit
    with _discovery._os_exit_refused(os.path.join(project, "pipeline.py")) as refusals:
        with pytest.raises(ExitWhileLoadingError) as caught:
            os._exit(3)
    assert os._exit is real
    assert refusals == [caught.value]
    assert caught.value.message.startswith(
        "`pipeline.py` called `os._exit(3)` while being loaded, at `"
    )


def test_a_process_forked_inside_the_guard_exits_with_the_real_os_exit(project):
    real = os._exit
    with _discovery._os_exit_refused(os.path.join(project, "pipeline.py")) as refusals:
        pid = os.fork()
        if pid == 0:
            try:
                os._exit(5)
            finally:
                real(1)  # never run the rest of pytest in the child
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 5
    assert refusals == []


def test_a_name_bound_inside_the_guard_exits_for_real_afterwards(project):
    real = os._exit
    with _discovery._os_exit_refused(os.path.join(project, "pipeline.py")):
        bound = os._exit
    pid = os.fork()
    if pid == 0:
        try:
            bound(6)
        finally:
            real(1)  # never run the rest of pytest in the child
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 6
