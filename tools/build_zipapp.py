"""Build the engine bundle that goes into an initramfs.

    python tools/build_zipapp.py -o build/initramfs [--target-python /usr/bin/python3]

writes

    provision.pyz          provision and its pure-Python dependencies, as
                           bytecode only (zipimport never caches compiled code,
                           so shipping source would mean compiling at every boot)
    native/                extension packages the bundle imports that cannot
                           be imported from a zip (none today: rpds-py went
                           with jsonschema); __main__ puts it on sys.path
    stdlib-modules.txt     the standard-library modules the bundle can import,
                           one per line; the initramfs hook packs exactly these
                           from the image's own interpreter
    bundle.json            versions and sizes, for the record

Dependencies are the closure of provision's Requires-Dist (extras excluded),
taken from the distributions installed for the running interpreter, which must
be the same Python minor version as the target interpreter (the bytecode magic
is checked); of those, only the modules provision's code can import are kept
(modulefinder, run under the target interpreter from every provision module).
The provision package itself comes from this checkout, whole, with the
top-level schemas/ and datasources/ as provision/_data/ like the wheel.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import py_compile
import re
import shutil
import subprocess  # noqa: TID251 - a build script, not the engine
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

try:
    from packaging.requirements import Requirement
except ImportError:  # pip vendors it, but a bare interpreter may lack it
    Requirement = None  # type: ignore[assignment,misc]

CHECKOUT = Path(__file__).resolve().parent.parent

# Optional accelerators and developer-only parts of the dependencies: each has
# a pure-Python path that is used when the compiled or extra part is missing.
SKIP_PARTS = {
    "tests", "benchmarks", "__pycache__", "cli",  # test suites, CLIs of deps
}
SKIP_SUFFIXES = (".pyi", ".typed", ".pyc", ".c", ".h", ".pyx")
# Compiled modules the bundle really needs (no pure-Python fallback).
NATIVE_PACKAGES = {"rpds"}

# Standard-library modules modulefinder reaches only through code paths the
# engine never runs at boot (self-tests, debuggers, GUIs, interactive help).
STDLIB_EXCLUDE = {
    # interactive, debugging, profiling and test tooling
    "tkinter", "turtle", "idlelib", "pydoc", "pydoc_data", "doctest", "unittest", "test",
    "pdb", "bdb", "cmd", "code", "codeop", "tty", "pty", "readline", "rlcompleter",
    "tracemalloc", "profile", "cProfile", "pstats", "trace", "pickletools",
    # packaging and build tooling
    "lib2to3", "ensurepip", "venv", "distutils", "zipapp", "compileall", "py_compile",
    "_osx_support", "_aix_support",
    # services and protocols the engine does not speak
    "sqlite3", "dbm", "curses", "xmlrpc", "multiprocessing", "asyncio", "concurrent",
    "ftplib", "smtplib", "imaplib", "poplib", "nntplib", "telnetlib", "mailbox",
    "webbrowser", "http.server", "socketserver", "wsgiref", "xml.dom", "xml.sax",
    "plistlib", "xdrlib",
    # only reached through shutil.unpack_archive, logging's socket handlers and
    # zipfile's optional codecs (each import guarded or in an unused function)
    "tarfile", "pickle", "_compat_pickle", "lzma", "_lzma", "bz2", "_bz2", "_pyio",
    # Windows only
    "nturl2path", "_winapi", "msvcrt", "winreg", "_overlapped",
}
# Optional parts of dependencies that are imported only on other platforms or
# when an optional package is installed (each import is guarded).
DEPENDENCY_EXCLUDE = {
    "urllib3.contrib.emscripten", "urllib3.contrib.pyopenssl", "urllib3.contrib.socks",
    # requests guesses text encodings with it; the engine reads bytes only
    # (requests works without it, and __main__ silences its warning).
    "charset_normalizer", "chardet",
}
# Codecs are looked up by name at run time, which modulefinder cannot see:
# the Unicode ones, Latin-1 and the IDNA/punycode pair for host names.
STDLIB_ALWAYS = {
    "encodings", "encodings.aliases", "encodings.utf_8", "encodings.utf_8_sig",
    "encodings.utf_16", "encodings.utf_16_le", "encodings.utf_16_be", "encodings.utf_32",
    "encodings.utf_32_le", "encodings.utf_32_be", "encodings.ascii", "encodings.latin_1",
    "encodings.idna", "encodings.punycode", "encodings.raw_unicode_escape",
    "encodings.unicode_escape", "encodings.charmap", "encodings.base64_codec",
    "encodings.hex_codec", "encodings.cp437",
}

MAIN = '''\
"""Entry point of the initramfs bundle."""
import os
import sys

# Extension modules that cannot be loaded from the zip live next to it.
_native = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "native")
if os.path.isdir(_native):
    sys.path.insert(1, _native)

# requests warns when no charset guesser is installed; the engine never asks
# it to guess (it reads bytes), and a warning on the boot console would alarm.
import warnings

warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")

from provision.cli import run

run()
'''


def requirement_closure(root: str) -> list[metadata.Distribution]:
    """The distributions ``root`` needs at run time, extras left out."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        dist = metadata.distribution(name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for spec in dist.requires or ():
            todo.extend(_runtime_requirement(spec))
    return [dist for key, dist in seen.items() if key != root]


def _runtime_requirement(spec: str) -> list[str]:
    """The distribution name in ``spec`` if it is needed without extras, else nothing."""
    if Requirement is not None:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            return []
        return [req.name]
    # Without packaging: extras are left out, other markers kept (a superset).
    name, _, marker = spec.partition(";")
    if "extra" in marker:
        return []
    return [re.split(r"[\s\[<>=!~(]", name.strip(), maxsplit=1)[0]]


def _wanted(rel: PurePosixPath) -> bool:
    if rel.parts[0].startswith("..") or rel.parts[0].endswith(".dist-info"):
        return False
    if any(part in SKIP_PARTS for part in rel.parts[1:-1]):
        return False
    return not rel.name.endswith(SKIP_SUFFIXES)


def stage_dependencies(dists: list[metadata.Distribution], tree: Path, native: Path) -> None:
    for dist in dists:
        base = Path(str(dist.locate_file("")))
        for file in dist.files or ():
            rel = PurePosixPath(str(file))
            top = rel.parts[0]
            if top in NATIVE_PACKAGES:
                if rel.suffix in (".py", ".so"):
                    _copy(base / str(rel), native / str(rel))
                continue
            if not _wanted(rel):
                continue
            if rel.suffix == ".so":
                continue  # optional accelerator; the pure-Python module is shipped
            _copy(base / str(rel), tree / str(rel))
        # Keep METADATA so importlib.metadata.version() works inside the zip.
        info = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}.dist-info"
        (tree / info).mkdir(parents=True, exist_ok=True)
        # Headers only: the long description is most of the file.
        headers = (dist.read_text("METADATA") or "").split("\n\n", 1)[0] + "\n"
        (tree / info / "METADATA").write_text(headers, encoding="utf-8")


def stage_provision(tree: Path) -> None:
    source = CHECKOUT / "provision"
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
            _copy(path, tree / "provision" / rel)
    # zipimport cannot import namespace packages: give every code directory an __init__.
    for directory in sorted((tree / "provision").rglob("*")):
        if directory.is_dir() and any(directory.glob("*.py")) and not (directory / "__init__.py").exists():
            (directory / "__init__.py").write_text("")
    for kind in ("schemas", "datasources"):
        for path in sorted((CHECKOUT / kind).rglob("*")):
            if path.is_file():
                _copy(path, tree / "provision" / "_data" / kind / path.relative_to(CHECKOUT / kind))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


_FINDER = """
import json, modulefinder, pathlib, sys, sysconfig
stdlib = sysconfig.get_paths()["stdlib"]
tree, native, excludes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
finder = modulefinder.ModuleFinder(
    path=[tree, native] + [p for p in sys.path if p.startswith(stdlib)], excludes=excludes)
# Every provision module is a root: the CLI and the registries import
# commands, stages and platforms by name, which modulefinder cannot follow.
for f in sorted(pathlib.Path(tree, "provision").rglob("*.py")):
    name = ".".join(f.relative_to(tree).with_suffix("").parts).removesuffix(".__init__")
    try:
        finder.import_hook(name)
    except (ImportError, AttributeError) as exc:
        print("build_zipapp: cannot analyse", name, repr(exc), file=sys.stderr)
print(json.dumps({name: mod.__file__ for name, mod in finder.modules.items()}))
"""


def analyse_imports(tree: Path, native: Path, target_python: str) -> tuple[list[str], set[Path]]:
    """What the provision modules can import, under the target interpreter.

    Returns the standard-library modules (for stdlib-modules.txt) and the
    files in ``tree`` that are reachable: dependency modules nothing imports
    (test helpers, other platforms' backends, unused halves of a library)
    stay out of the zip.
    """
    result = subprocess.run(
        [target_python, "-I", "-c", _FINDER, str(tree), str(native), json.dumps(sorted(STDLIB_EXCLUDE | DEPENDENCY_EXCLUDE))],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        sys.exit(f"build_zipapp: finding imports failed:\n{result.stderr}")
    found: dict[str, str | None] = json.loads(result.stdout)
    stdlib_dir = subprocess.run(
        [target_python, "-I", "-c", "import sysconfig;print(sysconfig.get_paths()['stdlib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    stdlib: set[str] = set(STDLIB_ALWAYS)
    reachable: set[Path] = set()
    for name, file in found.items():
        if file is None or (file.startswith(stdlib_dir + "/") and "-packages/" not in file):
            if name != "__main__":
                stdlib.add(name)
        elif Path(file).is_relative_to(tree) or Path(file).is_relative_to(native):
            reachable.add(Path(file))
    return sorted(stdlib), reachable


def prune_native(native: Path, reachable: set[Path]) -> None:
    """Drop extension packages nothing imports (rpds-py once jsonschema is not used)."""
    used = {p.relative_to(native).parts[0] for p in reachable if p.is_relative_to(native)}
    for package in native.iterdir():
        if package.name not in used:
            shutil.rmtree(package)


def prune_unreachable(tree: Path, reachable: set[Path]) -> None:
    """Drop the dependency modules nothing imports, and the data files of
    packages nothing imports; provision itself is kept whole."""
    used_packages = {p.parent for p in reachable}
    used_tops = {p.relative_to(tree).parts[0].removesuffix(".py") for p in reachable
                 if p.is_relative_to(tree)}
    for path in sorted(tree.rglob("*"), reverse=True):
        if not path.is_file():
            continue
        top = path.relative_to(tree).parts[0]
        if top == "provision":
            continue  # all of it: commands, stages and platforms are imported by name
        if top.endswith(".dist-info"):
            if top.split("-")[0] not in used_tops:
                path.unlink()
            continue
        if path.suffix == ".py":
            keep = path in reachable
        else:  # data belongs to the nearest enclosing package
            package = path.parent
            while package != tree and not (package / "__init__.py").exists():
                package = package.parent
            keep = package in used_packages
        if not keep:
            path.unlink()


def write_zipapp(tree: Path, output: Path, keep_source: bool) -> None:
    """Bytecode-only zip; stored uncompressed so the initramfs compressor sees
    the raw bytes (compressing once, solidly, beats zip's per-file deflate)."""
    (tree / "__main__.py").write_text(MAIN, encoding="utf-8")
    tmp = output.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(tree.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(tree).as_posix()
            if path.suffix == ".py" and rel != "__main__.py":
                compiled = str(path) + "c"
                py_compile.compile(
                    str(path), cfile=compiled, dfile=rel, doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                    optimize=0 if keep_source else 2,
                )
                zf.write(compiled, rel + "c")
                if keep_source:
                    zf.write(path, rel)
            elif path.suffix != ".pyc":
                zf.write(path, rel)
    data = b"#!/usr/bin/python3 -I\n" + tmp.read_bytes()
    tmp.unlink()
    output.write_bytes(data)
    output.chmod(0o755)


def check_magic(target_python: str) -> None:
    import importlib.util

    theirs = subprocess.run(
        [target_python, "-I", "-c", "import importlib.util,sys;sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
        check=True, capture_output=True, text=True,
    ).stdout
    if theirs != importlib.util.MAGIC_NUMBER.hex():
        sys.exit(
            f"build_zipapp: {target_python} uses another bytecode version than {sys.executable}; "
            "run this script with an interpreter of the same Python minor version"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    parser.add_argument("--target-python", default="/usr/bin/python3",
                        help="interpreter the initramfs will run (default: /usr/bin/python3)")
    parser.add_argument("--keep-source", action="store_true", help="also ship .py files (tracebacks with source)")
    args = parser.parse_args(argv)
    check_magic(args.target_python)

    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    native = out / "native"
    shutil.rmtree(native, ignore_errors=True)
    native.mkdir()
    dists = requirement_closure("provision")
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        stage_provision(tree)
        stage_dependencies(dists, tree, native)
        modules, reachable = analyse_imports(tree, native, args.target_python)
        prune_unreachable(tree, reachable)
        prune_native(native, reachable)
        write_zipapp(tree, out / "provision.pyz", args.keep_source)
    (out / "stdlib-modules.txt").write_text("".join(m + "\n" for m in modules), encoding="utf-8")
    with zipfile.ZipFile(out / "provision.pyz") as zf:
        included = sorted({n.split("/")[0].removesuffix(".pyc") for n in zf.namelist()
                           if not n.split("/")[0].endswith(".dist-info") and n != "__main__.py"})
    info = {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "included": included,
        "dependencies": {d.metadata["Name"]: d.version for d in sorted(dists, key=lambda d: d.metadata["Name"].lower())},
        "native": sorted(p.name for p in native.iterdir()),
        "pyz_bytes": (out / "provision.pyz").stat().st_size,
        "native_bytes": sum(p.stat().st_size for p in native.rglob("*") if p.is_file()),
        "stdlib_modules": len(modules),
    }
    (out / "bundle.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"build_zipapp: wrote {out}/provision.pyz ({info['pyz_bytes']} bytes), "
          f"native/ ({info['native_bytes']} bytes), {len(modules)} stdlib modules", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    raise SystemExit(main())
