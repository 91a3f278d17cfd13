"""The one atomic-write helper: whole files (reports, Parquet, manifests, the daemon state file, an
imported targets file) are written to a temporary file beside the target and renamed onto it, so a
reader never sees half a file.

Renaming onto a path that is not a regular file would *replace* it: run as root, ``report -o
/dev/full`` turned the device into a regular file. So an existing path that is not a regular file is
never renamed onto: a character device (``/dev/null``, ``/dev/stdout`` on a terminal) is written
through, anything else (a FIFO, a socket, a directory, a block device) is refused with
:class:`NotRegularFile`.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


class NotRegularFile(OSError):
    """The output path exists and is neither a regular file nor a character device."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISCHR, "a character device"),
    ):
        if test(mode):
            return name
    return "something else"


def output_kind(path: str | os.PathLike) -> str | None:
    """None when ``path`` is absent or a regular file (it may be replaced), ``"chardev"`` when it is a
    character device (written through); raises NotRegularFile for anything else."""
    try:
        st = os.stat(path)  # follows symlinks: what matters is what would be written
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISCHR(st.st_mode):
        return "chardev"
    raise NotRegularFile(errno.EINVAL, f"is {_kind(st.st_mode)}, not a regular file; refusing to replace it", str(path))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # a full disk can take part of a write; nothing more is a full disk too
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def atomic_write_bytes(
    path: str | os.PathLike, data: bytes, mode: int | None = 0o600, *, overwrite: bool = True, fsync_dir: bool = False
) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (see the module doc).

    ``mode`` None: the umask's default (0666 & ~umask), as for ordinary config files. Without
    ``overwrite`` an existing file is never replaced, even one created meanwhile (FileExistsError).
    Raises OSError (NotRegularFile for a FIFO, socket, directory...); on error the old file is intact
    and no temporary file is left behind."""
    path = Path(path)
    if output_kind(path) == "chardev":
        if not overwrite:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
        fd = os.open(path, os.O_WRONLY)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        if overwrite:
            output_kind(path)  # a FIFO made meanwhile is still not replaced (what is left is a tiny race)
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and fails if the file exists
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links
                if os.path.lexists(path):
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
                os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    if fsync_dir:  # make the new directory entry durable too; not possible everywhere, not essential
        try:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass


def atomic_write_text(path: str | os.PathLike, text: str, mode: int | None = 0o600, **kw) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode, **kw)


class TooLarge(OSError):
    """An input file larger than the caller's cap."""


def read_regular(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of an input file that must be a regular file of at most ``max_bytes``: ``/dev/zero``
    would be read until memory runs out, a FIFO would hang until a writer came. Raises OSError:
    NotRegularFile, TooLarge, or what opening/reading raised (FileNotFoundError, PermissionError...)."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer before it can be refused
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, f"is {_kind(st.st_mode)}, not a regular file", str(path))
        if st.st_size > max_bytes:
            raise TooLarge(errno.EFBIG, f"the file is {st.st_size} bytes, more than {max_bytes}", str(path))
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= max_bytes:  # the file may have grown since fstat
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > max_bytes:
        raise TooLarge(errno.EFBIG, f"the file is more than {max_bytes} bytes", str(path))
    return b"".join(chunks)
