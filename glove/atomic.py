"""Saving a file so that a reader sees the old file or the new one, never half of one.

`atomic_write(path)` writes into a temporary file beside `path`, fsyncs it, and renames it over `path`:

    with atomic_write("vectors.store") as f:
        f.write(data)

What it takes care of, in the order it happens:

- the target: a symbolic link is followed (the link stays, its file is replaced); a folder, a read-only
  file or a missing folder is refused at once, with an error that names the path;
- leftovers: a temporary file of ours that a killed save (SIGKILL, a power cut) left beside the target is
  removed, but only when its writer is gone: its process is dead, or it was last written long ago;
- permissions: a new file gets the usual mode (0666 less the umask), a replaced file keeps its mode;
- signals: SIGTERM and SIGHUP during a save act like Ctrl-C: the temporary file is removed, the old file
  stays, then the signal is delivered as it would have been;
- errors while writing (a full disk): the temporary file is removed and the error names the target.

The temporary file is named `.NAME.PID-HOST-RANDOM.tmp`: the writer's process id and host are what let a
later save tell a dead writer's leftover from a file that another process is still writing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import signal
import socket
import stat
import threading
import time
from pathlib import Path

STALE_AFTER_S = 30 * 60  # a temporary file unchanged this long has no live writer, whoever made it
_SIGNALS = ("SIGTERM", "SIGHUP")  # the signals that end a process by default, handled like Ctrl-C


def _host_tag() -> str:
    """8 hex digits for this machine: a process id means something only on the host that made it."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _temp_pattern(name: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(name)}\.(\d+)-([0-9a-f]{{8}})-[0-9a-f]+\.tmp")


class _Terminated(BaseException):
    """Raised inside a save by SIGTERM or SIGHUP, so that the save cleans up as it does after Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def atomic_write(path, append_to_existing: bool = False):
    """Open a temporary file beside `path` for writing (binary); on success fsync it and rename it onto `path`.

    `append_to_existing=True` first copies the current file into the temporary one, so that appending is
    atomic too. Raises OSError subclasses whose message names `path`: IsADirectoryError,
    PermissionError (a read-only file or folder), FileNotFoundError (no such folder).
    """
    target = _target(Path(path))
    existing = _existing_file(target)
    remove_stale_temporaries(target)
    fd, tmp = _create_temporary(target, existing)
    with _signals_as_exceptions():
        try:
            with os.fdopen(fd, "wb") as f:
                if append_to_existing and existing is not None:
                    with open(target, "rb") as old:
                        while block := old.read(1 << 24):
                            f.write(block)
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)  # atomic on POSIX and Windows: readers see the old file or the new one
        except BaseException as err:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(err, OSError):  # a full disk, a quota: say which save failed
                raise _named(err, f"cannot save {target}") from None
            raise
    # Make the rename itself durable (POSIX only: folders cannot be opened on Windows).
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _named(err: OSError, what: str) -> OSError:
    """An error of the same class (PermissionError, FileNotFoundError, ...) whose message starts with `what`."""
    return _error(type(err), f"{what}: {err.strerror or err}", err.errno)


def _error(cls, message: str, code: int | None = None) -> OSError:
    err = cls(message)
    err.errno = code  # str(err) stays the message: strerror and filename are left unset
    return err


def _target(path: Path) -> Path:
    """The file to replace: a symbolic link's file (the link stays); checked for the obvious refusals."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise _error(IsADirectoryError, f"cannot save to {path}: it is a folder, not a file", errno.EISDIR)
    folder = path.parent
    if not folder.exists():
        raise _error(FileNotFoundError, f"cannot save {path}: the folder {folder} does not exist", errno.ENOENT)
    if not folder.is_dir():
        raise _error(NotADirectoryError, f"cannot save {path}: {folder} is not a folder", errno.ENOTDIR)
    return path


def _existing_file(path: Path) -> os.stat_result | None:
    """The stat of the file about to be replaced (None if there is none); a read-only file is refused.

    A file nobody may write (mode 0444, say) is a file someone protected: replacing it by a rename would
    succeed, since the rename needs only the folder, so the check is made here. Root may write anything, so
    for root the mode bits decide.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise _error(OSError, f"cannot save to {path}: it is not a regular file", errno.EINVAL)
    if not (info.st_mode & 0o222) or not os.access(path, os.W_OK):
        raise _error(PermissionError, f"cannot save to {path}: the file is read-only "
                                      f"(mode {stat.S_IMODE(info.st_mode):04o}); make it writable or save elsewhere",
                     errno.EACCES)
    return info


def _create_temporary(target: Path, existing: os.stat_result | None) -> tuple[int, str]:
    """Create `.NAME.PID-HOST-RANDOM.tmp` beside `target`, with the mode the final file should have."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    while True:
        tmp = str(target.parent / f".{target.name}.{os.getpid()}-{_host_tag()}-{secrets.token_hex(4)}.tmp")
        try:
            # 0o666 for a new file: the kernel takes the umask off, as for any file a program creates.
            fd = os.open(tmp, flags, 0o600 if existing else 0o666)
            break
        except FileExistsError:
            continue
        except OSError as err:
            raise _named(err, f"cannot save {target} (creating a temporary file in {target.parent})") from None
    # Keep the replaced file's mode, and its owner where we may (as root). POSIX only.
    if existing is not None and hasattr(os, "fchown"):
        try:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, existing.st_uid, existing.st_gid)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
    return fd, tmp


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporary files a killed save to `target` left behind; returns what was removed.

    A file is stale when its writer is known to be dead (same host, no such process) or when nobody has
    written to it for STALE_AFTER_S. A file that a live process is writing is never touched, even one of
    this process (another thread may be saving to the same place).
    """
    pattern, host, now = _temp_pattern(target.name), _host_tag(), time.time()
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if not match:
            continue
        path = target.parent / name
        try:
            age = now - path.lstat().st_mtime
        except FileNotFoundError:
            continue
        pid, made_here = int(match[1]), match[2] == host
        if age > STALE_AFTER_S or (made_here and not _process_alive(pid)):
            with contextlib.suppress(FileNotFoundError, PermissionError):
                path.unlink()
                removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


@contextlib.contextmanager
def _signals_as_exceptions():
    """While a save runs in the main thread, SIGTERM and SIGHUP raise _Terminated (as SIGINT raises
    KeyboardInterrupt); afterwards the old handlers are back, and a signal that came is delivered again."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {}
    for name in _SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) == signal.SIG_DFL:  # a handler of the program's own stays

            def handler(signum, frame):
                raise _Terminated(signum)

            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    except _Terminated as terminated:
        for signum, old in previous.items():
            signal.signal(signum, old)
        previous = {}
        signal.raise_signal(terminated.signum)  # the default action: the process ends, by that signal
        raise  # only reached if the signal did not end the process
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
