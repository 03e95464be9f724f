#!/usr/bin/env python3
"""A stand-in for vmware-rpctool (and ``vmtoolsd --cmd``), for tests.

Guestinfo lives in the JSON file named by $FAKE_RPCTOOL_STATE:
``{"values": {"guestinfo.x": "..."}, "calls": ["info-get guestinfo.x", ...]}``.
Like the real tool: ``info-get KEY`` prints the value and exits 0, or prints
"No value found" on stderr and exits 1; ``info-set KEY VALUE`` stores VALUE
(a non-empty value is required). Installed on PATH under the tool's name.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    if os.path.basename(argv[0]) == "vmtoolsd":
        if len(argv) != 3 or argv[1] != "--cmd":
            print("usage: vmtoolsd --cmd COMMAND", file=sys.stderr)
            return 2
        command = argv[2]
    else:
        if len(argv) != 2:
            print("usage: vmware-rpctool COMMAND", file=sys.stderr)
            return 2
        command = argv[1]
    path = os.environ["FAKE_RPCTOOL_STATE"]
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    state.setdefault("calls", []).append(command)
    verb, _, rest = command.partition(" ")
    status = 0
    if verb == "info-get":
        value = state["values"].get(rest.strip())
        if value is None:
            print("No value found", file=sys.stderr)
            status = 1
        else:
            sys.stdout.write(value)
    elif verb == "info-set":
        key, _, value = rest.strip().partition(" ")
        if not value:
            print("Too few arguments", file=sys.stderr)
            status = 1
        else:
            state["values"][key] = value
    else:
        print(f"Unknown command {verb}", file=sys.stderr)
        status = 1
    with open(path, "w", encoding="utf-8") as f:
        json.dump(state, f)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
