"""A NoCloud seed for the VM tests, as a cloud-init user makes one.

cloud-init's NoCloud datasource (and provision's, provision/platforms/nocloud.py)
looks for a filesystem labelled ``cidata`` holding ``user-data``,
``meta-data`` and optionally ``network-config``; ``cloud-localds`` and the
cloud-init docs make it with genisoimage/xorriso, an iso9660 with Joliet and
Rock Ridge names. The user data here is a MIME multipart archive made with
Python's email package, the way cloud-init's ``make-mime`` does.
"""

from __future__ import annotations

import shutil
import subprocess
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path


def multipart(parts: list[tuple[str, str, str]]) -> bytes:
    """A MIME multipart user data from (filename, subtype of text/, body) parts."""
    message = MIMEMultipart()
    for filename, subtype, body in parts:
        part = MIMEText(body, subtype, "us-ascii")
        part.add_header("Content-Disposition", "attachment", filename=filename)
        message.attach(part)
    return message.as_bytes()


def cidata_iso(path: Path, files: dict[str, bytes]) -> Path:
    """An iso9660 filesystem labelled ``cidata`` holding ``files`` at its top."""
    tree = path.with_suffix(".tree")
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    for name, data in files.items():
        (tree / name).write_bytes(data)
    path.unlink(missing_ok=True)
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-r", "-o", str(path), str(tree)],
        check=True, capture_output=True,
    )
    shutil.rmtree(tree)
    return path
