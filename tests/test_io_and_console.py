import os

from infer_kit.fsutil import FILE_MODE, atomic_write


def test_atomic_writes_leave_normal_permissions_and_no_partials(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_write(target, "w") as handle:
        handle.write("ok")
    assert target.read_text() == "ok" and (target.stat().st_mode & 0o777) == FILE_MODE
    try:
        with atomic_write(target, "w") as handle:
            handle.write("half")
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert target.read_text() == "ok"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_log_messages_follow_the_current_stderr(capsys):
    import io
    import sys

    from infer_kit.console import configure, log

    configure(0)
    replaced = io.StringIO()
    original, sys.stderr = sys.stderr, replaced
    try:
        log.warning("disk nearly full")
    finally:
        sys.stderr = original
    assert replaced.getvalue() == "warning: disk nearly full\n"
