"""Downloads and archives, verified before use.

A download streams to a temporary file beside its destination (:mod:`robustarch.atomic`), is
checked against its md5, and only then renamed into place, so no partial or unverified file
ever sits at the final path. Archives are read in
memory after every member name has been checked, so nothing in them can write outside.
"""

from __future__ import annotations

import hashlib
import http.client
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from ..atomic import atomic_path

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and where to put the file by hand."""


class ChecksumError(ValueError):
    """A file's md5 does not match the published one."""


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the extraction folder (absolute path, '..', link)."""


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: str | Path, expected: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has md5 ``expected``."""
    actual = md5sum(path)
    if actual != expected:
        raise ChecksumError(
            f"{path}: md5 is {actual}, expected {expected}. The file is corrupt or not the "
            f"official archive: delete it and run the workflow again to re-download it."
        )


def download(url: str, dest: str | Path, md5: str, *, retries: int = 3, backoff: float = 2.0,
             timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, verify its md5, and return ``dest``.

    Retries with exponential back-off on network errors. On failure nothing is left at
    ``dest`` (nor a temporary file), and :class:`DownloadError` names the URL and the path
    where the file can be placed by hand.
    """
    dest = Path(dest)
    last_error: Exception | None = None
    for attempt in range(retries):
        try:
            _fetch_verified(url, dest, md5, timeout)
            return dest
        except ChecksumError as exc:
            raise DownloadError(_manual_hint(url, dest, str(exc))) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
            # HTTPException: e.g. IncompleteRead of a chunked body cut short
            last_error = exc
            if attempt + 1 < retries:
                time.sleep(backoff * 2**attempt)
    raise DownloadError(_manual_hint(url, dest, f"{type(last_error).__name__}: {last_error}"))


def _fetch_verified(url: str, dest: Path, md5: str, timeout: float) -> None:
    """One attempt: stream ``url`` into a temporary file, check length and md5, then move it
    onto ``dest`` (the temporary file is removed on any error)."""
    digest = hashlib.md5()
    received = 0
    with atomic_path(dest) as part:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as fh:
            announced = response.headers.get("Content-Length")
            for chunk in iter(lambda: response.read(CHUNK), b""):
                fh.write(chunk)
                digest.update(chunk)
                received += len(chunk)
        if announced is not None and received != int(announced):
            # http.client ends a body cut short by a dropped connection without an error;
            # that is a network failure worth retrying, not a bad checksum.
            raise ConnectionError(f"connection closed after {received} of {announced} bytes")
        if digest.hexdigest() != md5:
            # A wrong checksum will not fix itself on retry (proxy page, changed file).
            raise ChecksumError(f"downloaded {url} has md5 {digest.hexdigest()}, expected {md5}")


def _manual_hint(url: str, dest: Path, reason: str) -> str:
    return (
        f"could not download {url} ({reason}). If this machine has no internet access, "
        f"download the file elsewhere and place it at {dest.resolve()}, then run again."
    )


def check_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """All members of ``tar`` after checking none could escape the extraction folder."""
    members = tar.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or member.name.startswith("\\"):
            raise UnsafeArchiveError(
                f"{tar.name}: member {member.name!r} has an absolute or '..' path; refusing the "
                "archive. Delete it and download the official one."
            )
        if member.issym() or member.islnk():
            target = PurePosixPath(member.linkname)
            if target.is_absolute() or ".." in (path.parent / target).parts:
                raise UnsafeArchiveError(
                    f"{tar.name}: link {member.name!r} points outside the archive "
                    f"({member.linkname!r}); refusing the archive."
                )
        if member.isdev():
            raise UnsafeArchiveError(f"{tar.name}: member {member.name!r} is a device file")
    return members
