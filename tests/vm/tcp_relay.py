"""Relay stdin/stdout to a TCP address: QEMU's guestfwd spawns one per guest connection.

    python3 tcp_relay.py HOST PORT

Used by the VM tests so the guest's 169.254.169.254:80 reaches a stand-in on
127.0.0.1 (and nothing else: the user network runs with restrict=on).
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    conn = socket.create_connection((host, port), timeout=30)
    conn.settimeout(None)  # select() says when to read; writes may block briefly
    sel = selectors.DefaultSelector()
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    sel.register(stdin, selectors.EVENT_READ, "guest")
    sel.register(conn, selectors.EVENT_READ, "host")
    open_ends = 2
    while open_ends:
        for key, _ in sel.select(timeout=60):
            if key.data == "guest":
                data = os.read(stdin, 65536)
                if not data:
                    sel.unregister(stdin)
                    conn.shutdown(socket.SHUT_WR)
                    open_ends -= 1
                else:
                    conn.sendall(data)
            else:
                data = conn.recv(65536)
                if not data:
                    sel.unregister(conn)
                    open_ends -= 1
                    os.close(stdout)
                else:
                    view = memoryview(data)
                    while view:
                        written = os.write(stdout, view)
                        view = view[written:]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
