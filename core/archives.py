"""One safe reader of zips and folders of files, for datasets, labelling and benchmarks.

`Archive` lists the files a zip or folder holds and reads them into memory; nothing is ever extracted
to disk. What it leaves out is counted in `skipped`, by reason, never silently: absolute and ../ names,
symbolic links (a link inside a folder may point anywhere on the server), nested zips, files over a size
limit, and names a zip holds twice (the last one is read, as unzip leaves it). Hidden files and macOS's
__MACOSX forks are no one's data and are passed over without a count. A zip of more entries than
`max_entries` is refused before zipfile parses (and holds) them all, whatever its end record declares.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

MAX_MEMBER_BYTES = 20 * 1024 * 1024  # a file inside a zip or folder above this is skipped
MAX_TABLE_BYTES = 1 << 30  # a CSV of faces, streamed (Kaggle's icml_face_data.csv is 300 MB)
MAX_ENTRIES = 50_000  # FER2013's zip holds 35,887; a zip of more is refused before it is parsed

UNSAFE_NAME = "unsafe path in the zip (absolute or ../)"
SYMLINK = "symbolic link (not followed)"
NESTED_ZIP = "nested zip (unzip it and give the folder)"
DUPLICATE_NAME = "name held twice in the zip (the last one is read)"


class ArchiveError(ValueError):
    """A zip or folder that cannot be read at all, with a message fit to show the user (no server paths)."""


@dataclass(frozen=True)
class Member:
    name: str  # its path inside the zip or folder, '/'-separated
    size: int  # bytes, as the zip declares or the folder's file has

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix.lower()


class Archive:
    """The files of a zip or folder: `members` to read, `skipped` (reason -> files) for the rest.

    Use it as a context manager (a zip stays open while members are read). `read` bounds every member by
    the size it declares (see `read_member`), so a zip bomb costs no more memory than an honest file.
    """

    def __init__(self, path: str | os.PathLike, max_member_bytes: int = MAX_MEMBER_BYTES,
                 max_entries: int = MAX_ENTRIES, max_table_bytes: int = MAX_TABLE_BYTES):
        self.path = Path(path)
        self.max_member_bytes = max_member_bytes
        self.max_table_bytes = max_table_bytes
        self.skipped: Counter = Counter()
        self._zip: zipfile.ZipFile | None = None
        self._infos: dict[str, zipfile.ZipInfo] = {}  # a zip's members
        self._names: set[str] = set()  # a folder's members
        if self.path.is_dir():
            self.members = self._folder_members()
        else:
            self.members = self._zip_members(max_entries)

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def read(self, name: str) -> bytes:
        """A listed member's bytes. Raises KeyError for a name not listed, OSError for a file that went away,
        zipfile.BadZipFile for a damaged or lying zip member, RuntimeError for an encrypted one."""
        limit = self._limit(name)
        if self._zip is not None:
            return read_member(self._zip, self._infos[name], limit)
        with self._open_file(name) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise OSError(f"{name} grew over {limit // 2**20} MB since it was listed")
        return data

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        """A listed member as a stream, for a file too large to hold at once (a CSV of faces). A zip member
        never yields more than it declares; errors are read's."""
        if self._zip is None:
            with self._open_file(name) as handle:
                yield handle
            return
        try:
            with self._zip.open(self._infos[name]) as handle:
                yield handle
        except (zlib.error, lzma.LZMAError, EOFError) as error:  # compressed data that is not what it claims
            raise zipfile.BadZipFile(f"{name} is damaged ({error})") from None

    def _open_file(self, name: str) -> BinaryIO:
        if name not in self._names:
            raise KeyError(name)
        # O_NOFOLLOW: a file swapped for a link since it was listed is still not followed.
        return os.fdopen(os.open(self.path / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")

    def _limit(self, name: str) -> int:
        return self.max_table_bytes if PurePosixPath(name).suffix.lower() == ".csv" else self.max_member_bytes

    def _keep(self, name: str, size: int) -> bool:
        if PurePosixPath(name).suffix.lower() == ".zip":
            self.skipped[NESTED_ZIP] += 1
        elif size > (limit := self._limit(name)):
            self.skipped[f"file over {limit // 2**20} MB"] += 1
        else:
            return True
        return False

    def _folder_members(self) -> list[Member]:
        members = []
        # rglob does not descend into linked folders; links themselves are listed, and left out here.
        for file in sorted(self.path.rglob("*")):
            relative = file.relative_to(self.path).as_posix()
            if is_hidden(relative):
                continue
            if file.is_symlink():
                self.skipped[SYMLINK] += 1
            elif file.is_file() and self._keep(relative, size := file.stat().st_size):
                members.append(Member(relative, size))
        self._names = {member.name for member in members}
        return members

    def _zip_members(self, max_entries: int) -> list[Member]:
        try:
            entries = count_zip_entries(self.path, stop_after=max_entries)
            if entries <= max_entries:
                self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            raise ArchiveError(f"{self.path.name} is not a readable zip file ({error})") from None
        if entries > max_entries:
            raise ArchiveError(f"{self.path.name} holds more than {max_entries:,} entries; the limit for a zip "
                               f"is {max_entries:,}: unzip it and give the folder")
        last: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            if info.filename in last:
                self.skipped[DUPLICATE_NAME] += 1
            last[info.filename] = info
        members = []
        for name, info in last.items():
            if info.is_dir() or is_hidden(name):
                continue
            if is_unsafe(name):
                self.skipped[UNSAFE_NAME] += 1
            elif _is_zip_symlink(info):
                self.skipped[SYMLINK] += 1
            elif self._keep(name, info.file_size):
                members.append(Member(name, info.file_size))
                self._infos[name] = info
        return members


def is_hidden(name: str) -> bool:
    """A dot-file or dot-folder, or macOS's resource forks: not a user's data."""
    return any((part.startswith(".") and part != "..") or part == "__MACOSX" for part in PurePosixPath(name).parts)


def is_unsafe(name: str) -> bool:
    """A name that would land outside the folder if it were extracted: absolute, or climbing with '..'."""
    posix = name.replace("\\", "/")
    return posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in PurePosixPath(posix).parts


def _is_zip_symlink(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def read_member(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """A zip member's bytes, never inflating more than it declares, nor more than `limit`.

    ZipFile.read() inflates a whole compressed chunk before cutting it to the declared size, so a member that
    lies about its size (a zip bomb: 200 KB that inflate to 200 MB while claiming 1 KB) would fill memory
    first. Asking for exactly the declared size bounds every step by it, and zipfile checks the CRC there,
    so the liar is refused after the bytes it declared. Raises zipfile.BadZipFile for a damaged or lying
    member (its compressed data or checksum wrong), or one that declares more than `limit`; RuntimeError for an
    encrypted one.
    """
    info = member if isinstance(member, zipfile.ZipInfo) else archive.getinfo(member)
    if info.file_size > limit:
        raise zipfile.BadZipFile(f"{info.filename} inflates to {info.file_size / 2**20:.0f} MB, "
                                 f"over the {limit // 2**20} MB a file may have")
    try:
        with archive.open(info) as handle:
            return handle.read(info.file_size)
    except (zlib.error, lzma.LZMAError, EOFError) as error:  # compressed data that is not what it claims to be
        raise zipfile.BadZipFile(f"{info.filename} is damaged ({error})") from None


# -- counting a zip's entries before zipfile does ----------------------------------------------------------

_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_ENTRY = struct.Struct("<4s6H3L5H2L")  # a central directory entry's fixed part; name, extra, comment follow
_CHUNK = 1 << 20


def count_zip_entries(path: Path, stop_after: int | None = None) -> int:
    """How many entries a zip's central directory really holds, counted as zipfile walks it, stopping once
    past `stop_after`.

    The count in the end record is not trusted: a ZIP64 zip writes 0xFFFF there, and zipfile reads
    entries until the directory's declared size is used up, whatever the record's count. So the directory
    is walked here entry by entry, a megabyte at a time, keeping nothing: a zip of a million entries is
    refused after reading 50,000 of them, not after zipfile has built a million ZipInfo objects.
    Returns 0 where no end record is found (zipfile then says the file is not a zip).
    """
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        tail_start = max(0, size - (_END.size + 0xFFFF + _END64_LOCATOR.size + _END64.size))
        handle.seek(tail_start)
        tail = handle.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + _END.size:
            return 0
        directory_size = _END.unpack_from(tail, at)[5]
        end_at = tail_start + at
        locator_at = at - _END64_LOCATOR.size
        if locator_at >= 0 and tail[locator_at : locator_at + 4] == b"PK\x06\x07":
            record_at = end_at - _END64_LOCATOR.size - _END64.size  # where zipfile looks for the ZIP64 record
            handle.seek(max(0, record_at))
            record = handle.read(_END64.size)
            if len(record) == _END64.size and record[:4] == b"PK\x06\x06":
                directory_size = _END64.unpack(record)[8]
                end_at = record_at
        # Data prepended to the zip (a self-extractor) shifts every offset, as zipfile allows for.
        handle.seek(max(0, end_at - directory_size))
        count, data, position, remaining = 0, b"", 0, directory_size
        while stop_after is None or count <= stop_after:
            if remaining > 0 and len(data) - position < _ENTRY.size + 3 * 0xFFFF:  # room for the longest entry
                block = handle.read(min(_CHUNK, remaining))
                remaining = remaining - len(block) if block else 0
                data, position = data[position:] + block, 0
            if len(data) - position < _ENTRY.size or data[position : position + 4] != b"PK\x01\x02":
                break  # the end, or a damaged directory: zipfile will say what is wrong
            fields = _ENTRY.unpack_from(data, position)
            length = _ENTRY.size + fields[10] + fields[11] + fields[12]  # name, extra field, comment
            if len(data) - position < length:
                break  # cut short
            position += length
            count += 1
        return count
