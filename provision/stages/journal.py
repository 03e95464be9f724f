"""Pre-images: what a stage found before its first change, kept inside the target.

A stage whose result depends on what was there before (an append adds to
the existing file; ``overwrite: false`` fails on an existing node) cannot
simply be re-run after a crash: the file it half-wrote is now "existing".
So before its first change the stage records the pre-image of every path it
will touch, and a rerun of the same config plans from that record instead of
from the tree. Every item is then written as a computed final state, so
applying it twice gives the same tree as applying it once.

The record is keyed by the stage and a digest of the config: a different
config ignores it, and the config the instance stage generates (applied by
the users and files stages) keeps a record of its own beside the user's.
It lives in :data:`STATE_DIR` (mode 0700, files 0600: pre-images may hold secrets).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from provision.target.tree import TargetTree

if TYPE_CHECKING:
    from provision.config.model import Config

STATE_DIR = "/etc/.provision"
JOURNAL_DIR = STATE_DIR + "/journal"


# id(config) -> (config, digest): configs are immutable, and one run asks several times.
_DIGESTS: dict[int, tuple[Config, str]] = {}


def config_digest(config: Config) -> str:
    """A stable digest of the config's content (independent of its source format)."""
    cached = _DIGESTS.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    from provision.config.build import to_spec

    canonical = json.dumps(to_spec(config), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    if len(_DIGESTS) > 8:
        _DIGESTS.clear()
    _DIGESTS[id(config)] = (config, digest)
    return digest


def ensure_state_dir(tree: TargetTree, *, journal: bool = True) -> None:
    """The state directory (0700 root), with its journal directory unless ``journal`` is false."""
    state = tree.state(STATE_DIR)
    if state is None or state.kind != "directory" or state.mode != 0o700:
        tree.make_directory(STATE_DIR, mode=0o700, uid=0, gid=0, replace=True)
    if not journal:
        return
    journal_state = tree.state(JOURNAL_DIR)
    if journal_state is None or journal_state.kind != "directory":
        tree.make_directory(JOURNAL_DIR, mode=0o700, uid=0, gid=0, replace=True)


class StageJournal:
    """The pre-image record of one stage for one config."""

    def __init__(self, tree: TargetTree, stage: str, digest: str) -> None:
        self.tree = tree
        self.stage = stage
        self.digest = digest
        self.name = f"{stage}-{digest[:16]}"
        self.path = f"{JOURNAL_DIR}/{self.name}.json"

    def _blob_path(self, key: str) -> str:
        return f"{JOURNAL_DIR}/{self.name}-{key}.blob"

    def load(self) -> dict[str, Any] | None:
        """The recorded pre-image, if one exists for this config."""
        raw = self.tree.read_bytes(self.path)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None  # torn by hand; writes are atomic, so not by us
        if not isinstance(record, dict) or record.get("config") != self.digest:
            return None
        data = record.get("data")
        return data if isinstance(data, dict) else None

    def blob(self, key: str) -> bytes:
        data = self.tree.read_bytes(self._blob_path(key))
        if data is None:
            raise FileNotFoundError(f"journal blob {key} missing")
        return data

    def record(self, data: dict[str, Any], blobs: dict[str, bytes]) -> None:
        """Save the pre-image (blobs first, the index last: the index commits it)."""
        ensure_state_dir(self.tree)
        for key, content in blobs.items():
            self.tree.write_file(self._blob_path(key), [content], mode=0o600, uid=0, gid=0)
        index = json.dumps({"config": self.digest, "data": data}, sort_keys=True)
        self.tree.write_file(self.path, [index.encode()], mode=0o600, uid=0, gid=0)
