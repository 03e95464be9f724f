"""A host-side metadata service on a serial port (CloudSigma, SmartOS): raw line I/O.

The port is opened without becoming our controlling terminal and switched to
raw mode (no echo, no line editing, 8 bits), as pyserial would; reads wait
with ``select`` up to a timeout. Tests hand in a pseudo-terminal instead of
/dev/ttyS1.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import time
from types import TracebackType

from provision.errors import FetchError

MAX_LINE = 16 << 20


def _make_raw(fd: int) -> None:
    """Raw mode, as cfmakeraw: no echo, no line editing or signals, 8 bits, no output
    processing; reads return as soon as a byte is there. (The ``tty`` module does the
    same but is not in the initramfs's standard library.)"""
    attrs = termios.tcgetattr(fd)
    attrs[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                  | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
    attrs[1] &= ~termios.OPOST
    attrs[2] &= ~(termios.CSIZE | termios.PARENB)
    attrs[2] |= termios.CS8
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class SerialPort:
    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise FetchError(f"{what}: cannot open {path}: {exc.strerror}") from None
        with contextlib.suppress(termios.error):  # not a terminal (a test's pipe): raw already
            _make_raw(self.fd)
        self._buffer = b""

    def __enter__(self) -> SerialPort:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        os.close(self.fd)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def drain(self, quiet: float = 0.1) -> None:
        """Drop whatever is waiting to be read (stale answers from an earlier client)."""
        self._buffer = b""
        while select.select([self.fd], [], [], quiet)[0]:
            if not os.read(self.fd, 65536):
                break

    def readline(self, timeout: float) -> bytes | None:
        """One line without its newline; None when nothing complete arrives in ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            try:
                chunk = os.read(self.fd, 65536)
            except OSError as exc:
                raise FetchError(f"{self.what}: reading {self.path}: {exc.strerror}") from None
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                raise FetchError(f"{self.what}: an answer longer than {MAX_LINE} bytes")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line
