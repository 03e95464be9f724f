"""The engine bundle for the initramfs: what tools/build_zipapp.py builds and how it runs.

Without root: the zipapp's contents, the standard-library list, and the
zipapp running under Debian's /usr/bin/python3 with no site-packages.
With root: initramfs images built by mkinitramfs with and without our hooks
(the size budget), and the engine run inside the unpacked image with chroot:
every bundled module imports with only the packed standard library, and
`provision run` applies a config there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vm import guest

CHECKOUT = Path(__file__).resolve().parent.parent
TARGET_PYTHON = Path("/usr/bin/python3")
MIB = 1 << 20
ENGINE_BUDGET = 6 * MIB

# Modules that may fail to import by design: optional accelerators and
# optional protocol support whose own imports are guarded by their callers.
OPTIONAL_MODULES = {"yaml.cyaml", "urllib3.http2.connection", "urllib3.http2.probe"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not TARGET_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 (python3-minimal)")
    out = tmp_path_factory.mktemp("bundle")
    subprocess.run([sys.executable, str(CHECKOUT / "tools/build_zipapp.py"), "-o", str(out),
                    "--target-python", str(TARGET_PYTHON)], check=True, capture_output=True)
    return out


def test_zipapp_holds_bytecode_and_data_but_no_sources_tests_or_extensions(bundle: Path) -> None:
    names = zipfile.ZipFile(bundle / "provision.pyz").namelist()
    assert "provision/__init__.pyc" in names and "provision/cli.pyc" in names
    assert "provision/commands/boot.pyc" in names
    assert "provision/_data/schemas/provision-1.0.0.json" in names
    assert "requests/__init__.pyc" in names and "urllib3/__init__.pyc" in names
    assert [n for n in names if n.endswith(".py")] == ["__main__.py"]
    assert not [n for n in names if n.endswith(".so")]
    assert not [n for n in names if "/tests/" in n]
    # Only what provision's modules can import: urllib3's Emscripten backend
    # is not, and extension packages nothing imports are left out too.
    assert not [n for n in names if n.startswith("urllib3/contrib/emscripten")]
    info = json.loads((bundle / "bundle.json").read_text())
    for package in (bundle / "native").iterdir():
        assert package.name in info["included"]


def test_stdlib_list_has_what_the_engine_imports_and_no_tooling(bundle: Path) -> None:
    modules = set((bundle / "stdlib-modules.txt").read_text().split())
    for needed in ("ssl", "json", "http.client", "hashlib", "argparse", "logging",
                   "encodings.utf_8", "encodings.idna", "xml.etree.ElementTree", "zlib"):
        assert needed in modules, needed
    for unwanted in ("tkinter", "unittest", "pydoc", "doctest", "test", "lib2to3", "asyncio"):
        assert not any(m == unwanted or m.startswith(unwanted + ".") for m in modules), unwanted
    info = json.loads((bundle / "bundle.json").read_text())
    assert {"requests", "urllib3", "certifi", "idna"} <= set(info["included"])


def test_zipapp_runs_under_the_system_interpreter_without_site_packages(bundle: Path) -> None:
    pyz = str(bundle / "provision.pyz")
    version = subprocess.run([str(TARGET_PYTHON), "-I", "-S", pyz, "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.startswith("provision ")
    example = CHECKOUT / "examples/web-host-docker.json"
    done = subprocess.run([str(TARGET_PYTHON), "-I", "-S", pyz, "validate", str(example)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout


# --- built images (root) ------------------------------------------------------

@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Initramfs images from one conf: no hooks, the engine hook, both hooks."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if shutil.which("mkinitramfs") is None and not Path("/usr/sbin/mkinitramfs").exists():
        pytest.skip("initramfs-tools is not installed")
    kver = guest.kernel_version()
    if kver is None:
        pytest.skip("no kernel in /boot")
    work = tmp_path_factory.mktemp("initramfs")
    return {
        name: guest.build_initramfs(work / f"{name}.img", work, kver, hooks=hooks)
        for name, hooks in (("plain", ()), ("engine", ("provision",)),
                            ("full", guest.ALL_HOOKS))
    }


@pytest.mark.root
@pytest.mark.slow
def test_engine_adds_at_most_6_mib_to_the_compressed_initramfs(images: dict[str, Path]) -> None:
    plain = images["plain"].stat().st_size
    engine = images["engine"].stat().st_size - plain
    total = images["full"].stat().st_size - plain
    print(f"\ninitramfs (zstd): plain {plain / MIB:.2f} MiB, +engine {engine / MIB:.2f} MiB, "
          f"+engine+disk tools {total / MIB:.2f} MiB")
    assert 0 < engine <= ENGINE_BUDGET, f"the engine adds {engine / MIB:.2f} MiB"
    assert total >= engine


@contextlib.contextmanager
def unpacked(image: Path, where: Path) -> Iterator[Path]:
    """The image unpacked, with /dev and /proc mounted for chroot; unmounted afterwards."""
    where.mkdir()
    subprocess.run(["unmkinitramfs", str(image), str(where)], check=True, capture_output=True)
    root = where / "main" if (where / "main").is_dir() else where
    mounted = []
    try:
        for name, argv in (("dev", ["--bind", "/dev"]), ("proc", ["-t", "proc", "proc"])):
            point = root / name
            point.mkdir(exist_ok=True)
            subprocess.run(["mount", *argv, str(point)], check=True, capture_output=True)
            mounted.append(point)
        yield root
    finally:
        for point in reversed(mounted):
            subprocess.run(["umount", str(point)], check=False, capture_output=True)


IMPORT_ALL = """
import importlib, sys, zipfile, warnings
warnings.simplefilter("ignore")
sys.path[:0] = ["/usr/lib/provision/provision.pyz", "/usr/lib/provision/native"]
failed = []
for name in sorted(zipfile.ZipFile(sys.path[0]).namelist()):
    if not name.endswith(".pyc") or name.endswith("__main__.pyc"):
        continue
    module = name[:-4].replace("/", ".").removesuffix(".__init__")
    try:
        importlib.import_module(module)
    except Exception as exc:
        failed.append(f"{module}: {exc!r}")
print("\\n".join(failed))
"""


@pytest.mark.root
@pytest.mark.slow
def test_every_bundled_module_imports_with_only_the_packed_stdlib(
    images: dict[str, Path], tmp_path: Path
) -> None:
    with unpacked(images["full"], tmp_path / "x") as root:
        done = subprocess.run(["chroot", str(root), "/usr/bin/python3", "-I", "-S", "-c", IMPORT_ALL],
                              capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    failed = [line for line in done.stdout.splitlines()
              if line and line.split(":")[0] not in OPTIONAL_MODULES]
    assert failed == []


@pytest.mark.root
@pytest.mark.slow
def test_provision_run_applies_a_config_inside_the_initramfs(
    images: dict[str, Path], tmp_path: Path
) -> None:
    config = {
        "provision": {"version": "1.0.0"},
        "storage": {"files": [{"path": "/etc/motd", "mode": 420,
                               "contents": {"source": "data:,inside%20the%20initramfs%0A"}}]},
        "passwd": {"users": [{"name": "ops", "uid": 1600,
                              "sshAuthorizedKeys": [
                                  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPyGVOfUfmw27/F78v6TXWD0VBXaYwXWsfjVmmMwnLJ6 ops@ci"]}]},
        "systemd": {"units": [{"name": "hello.service", "enabled": True,
                               "contents": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]},
    }
    with unpacked(images["full"], tmp_path / "x") as root:
        target = root / "sysroot"
        (target / "etc").mkdir(parents=True)
        (target / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (target / "etc/group").write_text("root:x:0:\n")
        (target / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
        (target / "etc/gshadow").write_text("root:*::\n")
        (root / "config.json").write_text(json.dumps(config))
        done = subprocess.run(
            ["chroot", str(root), "/usr/bin/python3", "-I", "-S", "/usr/lib/provision/provision.pyz",
             "run", "--root", "/sysroot", "--config", "/config.json", "--run-dir", "/run/provision",
             "--cmdline", ""],
            capture_output=True, text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                 "PROVISION_STATE_DIR": "/run/provision"})
        assert done.returncode == 0, done.stderr
        assert (target / "etc/motd").read_text() == "inside the initramfs\n"
        assert any(line.startswith("ops:x:1600:") for line in (target / "etc/passwd").read_text().splitlines())
        assert "ops@ci" in (target / "home/ops/.ssh/authorized_keys.d/provision").read_text()
        assert (target / "etc/systemd/system/multi-user.target.wants/hello.service").is_symlink()
        record = json.loads((target / "etc/.provision/result.json").read_text())
        assert record["status"] == "succeeded"
        timings = [line for line in done.stderr.splitlines() if line.startswith("provision: timing:")]
        assert [t.split()[2] for t in timings] == [
            "stage=fetch-offline", "stage=disks", "stage=mount", "stage=files", "stage=umount"]
