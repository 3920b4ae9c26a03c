"""One dirac run (training or sampling) per run folder: an exclusive ``fcntl.flock`` on ``RUN/.dirac.lock``.

The lock belongs to the open file, so the kernel releases it when the process ends however it ends (SIGKILL
included): a stale lock file never blocks a later run. The file records the holder's PID and host so a refused
run can say who holds the folder. ``flock`` is advisory and may not work across machines on some network file
systems (NFS without lock support).
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from .distributed import on_main

LOCK_NAME = ".dirac.lock"


class RunLockedError(OSError):
    """Another process holds the run folder."""


class RunLock:
    """``with RunLock(run_dir): ...`` holds the folder for the block; a second holder fails at once."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLockedError` naming the folder and the holder's PID."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"run folder {self.run_dir} is in use by another dirac run ({holder}); wait for it to finish, "
                f"stop it, or pick another hydra.run.dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the folder back (the file stays: removing it would race with a waiting run)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


@contextmanager
def hold_run_folder(run_dir: str | Path) -> Iterator[None]:
    """``with hold_run_folder(run_dir): ...``: the main process holds :class:`RunLock` for the block; when another
    run holds the folder every rank raises :class:`RunLockedError` (no rank waits for a peer that stopped)."""
    lock = RunLock(run_dir)

    def take() -> None:  # returns nothing: on_main sends the result to every rank, and the lock stays here
        lock.acquire()

    on_main(take)
    try:
        yield
    finally:
        lock.release()


def _read_holder(fd: int) -> str:
    text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    return text.replace(" ", ", ") if text.startswith("pid=") else "PID unknown"
