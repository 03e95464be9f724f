"""The config cache: written once, 0600, atomically; every reader sees the same bytes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provision.errors import FetchError
from provision.fetch.cache import config_bytes, read_cache, write_cache, write_config_cache


def test_cache_is_private_and_read_back_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "run" / "provision" / "config.json"
    spec = {"provision": {"version": "1.0.0"}, "passwd": {"users": [{"name": "core", "passwordHash": "$6$x"}]}}
    assert write_config_cache(spec, path) == path
    assert (path.stat().st_mode & 0o777) == 0o600
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    assert read_cache(path) == config_bytes(spec) and json.loads(path.read_bytes()) == spec
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]


def test_serialisation_is_canonical() -> None:
    assert config_bytes({"b": 1, "a": {"d": 2, "c": "é"}}) == config_bytes({"a": {"c": "é", "d": 2}, "b": 1})


def test_a_different_config_is_not_silently_replaced(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write_cache(b"first", path)
    write_cache(b"first", path)  # the same bytes again: fine
    with pytest.raises(FetchError, match="already holds a different config"):
        write_cache(b"second", path)
    assert read_cache(path) == b"first"
    write_cache(b"second", path, replace=True)
    assert read_cache(path) == b"second" and (path.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_no_cache_reads_as_none(tmp_path: Path) -> None:
    assert read_cache(tmp_path / "absent.json") is None


def test_a_symlinked_cache_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_bytes(b"planted")
    os.symlink(tmp_path / "elsewhere", tmp_path / "config.json")
    with pytest.raises(FetchError, match="cannot read the config cache"):
        read_cache(tmp_path / "config.json")


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(FetchError, match="cannot create the config cache"):
        write_cache(b"x", blocker / "sub" / "config.json")
