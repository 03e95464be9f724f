"""Copy the standard-library modules the engine needs into an initramfs tree.

Run by the initramfs hooks with the image's own interpreter, so the modules
match the interpreter that goes into the image:

    python3 -I -S pack_stdlib.py MODULE_LIST DESTDIR

MODULE_LIST has one module per line ("pkg.*" means the whole package). Each
module is written as sourceless bytecode where its source would be, below
DESTDIR + the interpreter's stdlib directory (so no compiling at boot and no
source to carry). Extension modules are not copied: their paths are printed,
one per line, for the hook to copy together with the libraries they link.
"""

from __future__ import annotations

import os
import py_compile
import sys
import sysconfig
from pathlib import Path


def module_files(name: str, stdlib: Path, dynload: Path) -> list[Path]:
    whole_package = name.endswith(".*")
    rel = Path(*name.removesuffix(".*").split("."))
    package = stdlib / rel / "__init__.py"
    if package.is_file():
        if whole_package:
            return sorted(p for p in (stdlib / rel).rglob("*.py") if "__pycache__" not in p.parts)
        return [package]
    module = stdlib / rel.with_suffix(".py")
    if module.is_file():
        return [module]
    return sorted(dynload.glob(f"{name}.*.so")) + sorted(dynload.glob(f"{name}.so"))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    names = [line.strip() for line in Path(argv[0]).read_text().splitlines()]
    dest = Path(argv[1])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or stdlib / "lib-dynload")
    missing = []
    for name in filter(None, names):
        files = module_files(name, stdlib, dynload)
        if not files:
            if name not in sys.builtin_module_names and name.split(".")[0] not in sys.builtin_module_names:
                missing.append(name)
            continue
        for src in files:
            if src.suffix == ".so":
                print(src)
                continue
            target = dest / src.relative_to("/").with_suffix(".pyc")
            target.parent.mkdir(parents=True, exist_ok=True)
            py_compile.compile(
                str(src), cfile=str(target), dfile=str(src), doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                optimize=2,  # no docstrings: a third smaller, and nothing at boot reads them
            )
    # Frozen modules have no file in some builds; anything else missing is worth a word.
    for name in missing:
        print(f"pack_stdlib: note: {name} not found as a file (frozen or absent)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    raise SystemExit(main(sys.argv[1:]))
