"""IBM Z z/VM: the config punched to the virtual reader, as Ignition reads it.

The host punches a file whose type is ``ign`` (``punch config.ign to guest``)
into the guest's reader, device ``000c``. We load ``vmur``, bring the reader
online (``cio_ignore -r`` first when ``chccwdev -e`` alone fails), list the
spool with ``vmur li`` and receive the first ``ign`` file with ``vmur re``;
the NUL padding of the card records is stripped. No ``ign`` file: no config.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from provision.errors import CommandError, FetchError, ProvisionError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.localread import read_platform_file
from provision.platforms.payload import decode_payload
from provision.run import run

READER = "000c"
CONFIG_TYPE = "ign"


def _online_reader() -> None:
    try:
        run("chccwdev", ["-e", READER], timeout=60)
    except CommandError:
        run("cio_ignore", ["-r", READER], timeout=60)
        run("chccwdev", ["-e", READER], timeout=60)


def spool_files(listing: str) -> list[tuple[str, str, str]]:
    """(spool id, name, type) of each file in ``vmur li`` output (header skipped)."""
    files = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 11 or fields[0] == "ORIGINID":
            continue
        files.append((fields[1], fields[9], fields[10]))
    return files


def fetch(ctx: Context) -> Result:
    try:
        run("modprobe", ["vmur"], timeout=60)
        _online_reader()
        listing = run("vmur", ["li"], timeout=60).stdout
    except (CommandError, ProvisionError) as exc:
        raise FetchError(f"zvm: cannot reach the reader {READER}: {exc}") from None
    for spool_id, name, kind in spool_files(listing):
        if kind.lower() != CONFIG_TYPE:
            continue
        with tempfile.TemporaryDirectory(prefix="provision-zvm-") as scratch:
            target = Path(scratch, f"{name}.{kind}")
            try:
                run("vmur", ["re", "-f", spool_id, str(target)], timeout=120)
                data = (read_platform_file(target, "zvm") or b"").strip(b"\0")
            except (CommandError, OSError) as exc:
                raise FetchError(f"zvm: cannot receive spool file {spool_id}: {exc}") from None
        origin = f"zvm reader spool file {spool_id} ({name}.{kind})"
        return Found(decode_payload(data, None, origin), origin)
    return NoConfig(f"zvm: no file of type {CONFIG_TYPE} in the reader {READER}")
