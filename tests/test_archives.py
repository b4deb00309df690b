"""The one reader of zips and folders (core.archives): what it lists, what it leaves out and why, what it refuses."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import pytest

from support.photos import lie_about_size
from core.archives import (DUPLICATE_NAME, NESTED_ZIP, SYMLINK, UNSAFE_NAME, Archive, ArchiveError,
                           count_zip_entries)


def write_zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name, data in entries:
            zipped.writestr(name, data)
    return path


def test_a_zip_lists_its_files_and_counts_what_it_leaves_out(tmp_path):
    path = write_zip(tmp_path / "mixed.zip", [
        ("happy/a.jpg", b"a"), ("notes.txt", b"n"), ("../../outside.jpg", b"x"), ("/etc/passwd", b"x"),
        ("C:/windows.jpg", b"x"), ("inner.zip", b"PK"), ("__MACOSX/happy/._a.jpg", b"x"), (".DS_Store", b"x"),
        ("happy/.hidden.jpg", b"x")])
    with Archive(path) as archive:
        assert [(member.name, member.size) for member in archive.members] == [("happy/a.jpg", 1), ("notes.txt", 1)]
        assert archive.read("happy/a.jpg") == b"a"
        assert archive.skipped == {UNSAFE_NAME: 3, NESTED_ZIP: 1}
        with pytest.raises(KeyError):
            archive.read("../../outside.jpg")


def test_two_entries_of_one_name_are_one_file_and_counted(tmp_path):
    """Issue 24.P8: both were read, each as the last; now the last is read once and the other is counted."""
    path = tmp_path / "twice.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("happy/a.jpg", b"first")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zipped.writestr("happy/a.jpg", b"second")
    with Archive(path) as archive:
        assert [member.name for member in archive.members] == ["happy/a.jpg"]
        assert archive.read("happy/a.jpg") == b"second"
        assert archive.skipped == {DUPLICATE_NAME: 1}


def test_a_folder_does_not_follow_links_out_of_it(tmp_path):
    """Issue 24.P12: a link placed in a data folder, to a file or a folder outside it, is not followed."""
    outside = tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "secret.jpg").write_bytes(b"secret")
    (outside / "private" / "key.jpg").write_bytes(b"key")
    data = tmp_path / "data"
    (data / "happy").mkdir(parents=True)
    (data / "happy" / "a.jpg").write_bytes(b"a")
    (data / "happy" / "link.jpg").symlink_to(outside / "secret.jpg")
    (data / "sad").symlink_to(outside / "private")
    (data / "nested.zip").write_bytes(b"PK")
    (data / ".git").mkdir()
    (data / ".git" / "HEAD").write_text("ref")
    with Archive(data) as archive:
        assert [member.name for member in archive.members] == ["happy/a.jpg"]
        assert archive.skipped == {SYMLINK: 2, NESTED_ZIP: 1}
        assert archive.read("happy/a.jpg") == b"a"
        with pytest.raises(KeyError):  # only what is listed can be read
            archive.read("happy/link.jpg")


def test_a_zip_link_entry_is_not_a_file(tmp_path):
    path = tmp_path / "links.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        link = zipfile.ZipInfo("happy/link.jpg")
        link.external_attr = 0o120777 << 16  # how zip -y stores a symbolic link: its target as the content
        zipped.writestr(link, "/etc/passwd")
        zipped.writestr("happy/a.jpg", b"a")
    with Archive(path) as archive:
        assert [member.name for member in archive.members] == ["happy/a.jpg"]
        assert archive.skipped == {SYMLINK: 1}


def test_members_over_the_size_limit_and_liars_are_never_inflated(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("big.jpg", bytes(2000))
        zipped.writestr("liar.jpg", bytes(5000))
    lie_about_size(path, "liar.jpg", 10)
    with Archive(path, max_member_bytes=1000) as archive:
        assert [member.name for member in archive.members] == ["liar.jpg"]
        assert archive.skipped == {"file over 0 MB": 1}
        with pytest.raises(zipfile.BadZipFile):  # 10 bytes read, then the checksum fails
            archive.read("liar.jpg")


def damage_compressed_data(path: Path, member: str) -> None:
    """Overwrite the start of a deflated member's compressed bytes, as a bad disk or a cut download leaves it."""
    data = bytearray(path.read_bytes())
    start = data.find(member.encode()) + len(member)  # its local header's name comes first; its data follows
    data[start : start + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))


def test_a_member_whose_compressed_data_is_damaged_is_a_bad_zip_member(tmp_path):
    """zlib's own error (invalid block type) is not one zipfile raises: it must not escape as itself."""
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("happy/a.jpg", bytes(range(256)) * 40)
        zipped.writestr("happy/b.jpg", bytes(range(256)) * 40)
    damage_compressed_data(path, "happy/a.jpg")
    with Archive(path) as archive:
        with pytest.raises(zipfile.BadZipFile, match="happy/a.jpg is damaged"):
            archive.read("happy/a.jpg")
        assert archive.read("happy/b.jpg") == bytes(range(256)) * 40


def test_the_entry_limit_counts_the_directory_not_what_the_end_record_declares(tmp_path):
    """Issue 24.P3: the count in the end record can say anything (0xFFFF in a ZIP64 zip, or a lie); zipfile reads
    every entry the directory holds, so that is what is counted, and a zip over the limit is refused."""
    path = write_zip(tmp_path / "many.zip", [(f"{number}.jpg", b"") for number in range(30)])
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 2, 2)  # this disk's entries, all entries: 2, not 30
    path.write_bytes(bytes(data))
    assert count_zip_entries(path) == 30 == len(zipfile.ZipFile(path).infolist())
    assert count_zip_entries(path, stop_after=10) == 11
    with pytest.raises(ArchiveError, match="many.zip holds more than 20 entries; the limit for a zip is 20"):
        Archive(path, max_entries=20)
    assert len(Archive(path, max_entries=30).members) == 30


def test_the_count_follows_zipfile_through_zip64_and_data_before_the_zip(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for number in range(5):
            with zipped.open(f"{number}.jpg", "w", force_zip64=True) as member:
                member.write(b"x" * number)
    plain = tmp_path / "plain.zip"
    plain.write_bytes(buffer.getvalue())
    prefixed = tmp_path / "prefixed.zip"  # a self-extracting zip: a program, then the zip
    prefixed.write_bytes(os.urandom(3000) + buffer.getvalue())
    for path in (plain, prefixed):
        assert count_zip_entries(path) == 5 == len(zipfile.ZipFile(path).infolist())
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"hello")
    assert count_zip_entries(not_zip) == 0
    with pytest.raises(ArchiveError, match="not.zip is not a readable zip file"):
        Archive(not_zip)
