"""cloud-init's datasources that provision lacked, each against a stand-in speaking the
platform's own protocol: devlxd on a unix socket, MAAS with OAuth, OpenNebula's
context.sh, CloudSigma and SmartOS on a (pseudo-)serial port, Bigstep, NWCS, CloudCIX."""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import socketserver
import threading
import tty
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import yaml

from provision.errors import FetchError
from provision.platforms.acquire import acquire_config
from provision.platforms.detect import detect_platform
from provision.platforms.maas import oauth_header
from provision.platforms.opennebula import parse_context
from provision.platforms.settings import Settings
from tests.standins.http_server import LoopbackHTTPServer, Reply
from tests.standins.metadata import Answer, MetadataStandIn, Request
from tests.standins.systree import loop_device, make_iso, make_sys_root

USER_DATA = b"#cloud-config\nhostname: from-the-platform\n"


def settings(root: Path, cmdline: str = "", **kw: str) -> Settings:
    return Settings.load(sys_root=str(root), cmdline=cmdline, run_dir=str(root / "run"),
                         environ={}, **kw)


# --- LXD ------------------------------------------------------------------------------

class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def devlxd(path: Path, config: dict[str, bytes], statuses: dict[str, list[int]]
           ) -> Iterator[list[str]]:
    """A devlxd stand-in: /1.0/meta-data, /1.0/config (route list), /1.0/config/<key>."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def address_string(self) -> str:
            return "devlxd"

        def do_GET(self) -> None:
            seen.append(self.path)
            queued = statuses.get(self.path)
            if queued:
                self._send(queued.pop(0), b"transient")
                return
            if self.path == "/1.0/meta-data":
                self._send(200, b"#cloud-config\ninstance-id: c1\nlocal-hostname: c1\n")
            elif self.path == "/1.0/config":
                self._send(200, json.dumps([f"/1.0/config/{k}" for k in config]).encode(),
                           "application/json")
            elif self.path.startswith("/1.0/config/") and self.path[12:] in config:
                self._send(200, config[self.path[12:]])
            else:
                self._send(404, b'{"error": "not found"}')

        def _send(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    path.parent.mkdir(parents=True, exist_ok=True)
    server = _UnixHTTPServer(str(path), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_lxd_reads_devlxd_as_cloud_init_does(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r")
    config = {"user.user-data": b"#cloud-config\nhostname: old-style\n",
              "cloud-init.user-data": USER_DATA,
              "cloud-init.network-config": b"version: 2\n",
              "user.vendor-data": b"#cloud-config\n{}\n",
              "volatile.base_image": b"abc"}
    for seen in devlxd(root / "dev/lxd/sock", config, {"/1.0/config": [500, 500]}):
        s = settings(root)
        assert detect_platform(s).platform == "lxd"
        outcome = acquire_config(s, offline=True)  # a local socket: no network needed
        assert seen.count("/1.0/config") == 3  # two 500s retried
        assert "/1.0/config/volatile.base_image" not in seen
    assert outcome.data == USER_DATA and outcome.source == "lxd cloud-init.user-data"
    assert outcome.extras["network-config"] == b"version: 2\n"
    assert outcome.extras["vendor-data"] == b"#cloud-config\n{}\n"  # user.* as the fallback
    assert b"instance-id: c1" in outcome.extras["meta-data"]


def test_lxd_without_user_data(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r")
    for _ in devlxd(root / "dev/lxd/sock", {}, {}):
        assert acquire_config(settings(root, "provision.platform=lxd")).status == "none"


# --- MAAS -----------------------------------------------------------------------------

CREDS = {"consumer_key": "ck1", "token_key": "tk1", "token_secret": "ts/1&x"}


class MaasMetadata(MetadataStandIn):
    """MAAS's metadata API: every request must carry a valid PLAINTEXT OAuth header."""

    def __init__(self, user_data: bytes | None) -> None:
        super().__init__()
        self.user_data = user_data
        self.nonces: set[str] = set()

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization") or ""
        if not header.startswith("OAuth "):
            return False
        params = {k.strip(): unquote(v.strip().strip('"'))
                  for k, v in (p.split("=", 1) for p in header[6:].split(","))}
        fresh = params.get("oauth_nonce") not in self.nonces
        self.nonces.add(params.get("oauth_nonce", ""))
        return (fresh and params.get("oauth_signature_method") == "PLAINTEXT"
                and params.get("oauth_version") == "1.0"
                and params.get("oauth_consumer_key") == CREDS["consumer_key"]
                and params.get("oauth_token") == CREDS["token_key"]
                # PLAINTEXT: encode(consumer_secret) & encode(token_secret); the header
                # encodes it once more, undone above
                and params.get("oauth_signature") == "&" + quote(CREDS["token_secret"], safe="~")
                and params.get("oauth_timestamp", "").isdigit())

    def answer(self, request: Request) -> Answer:
        if not self._authorized(request):
            return Answer(401, b"Authorization Error: 'Invalid access token'")
        prefix = "/MAAS/metadata/2012-03-01/"
        files = {"meta-data/instance-id": b"node-abc", "meta-data/local-hostname": b"node1",
                 "meta-data/public-keys": b"ssh-ed25519 AAAAk1 a@b\nssh-rsa AAAAk2 c@d\n",
                 "user-data": self.user_data}
        value = files.get(request.path[len(prefix):]) if request.path.startswith(prefix) else None
        return Answer(200, value) if value is not None else Answer(404, b"Not Found")


def _maas_cfg(root: Path, url: str) -> None:
    cfg = root / "etc/cloud/cloud.cfg.d/90_dpkg_maas.cfg"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(yaml.safe_dump({"datasource_list": ["MAAS"], "datasource": {
        "MAAS": {"metadata_url": url, **CREDS}}}))


def test_maas_with_oauth_signed_requests(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r")
    with MaasMetadata(USER_DATA) as maas:
        _maas_cfg(root, f"{maas.base_url}/MAAS/metadata/")
        s = settings(root, "provision.platform=maas")
        assert acquire_config(s, offline=True).status == "need-network"
        outcome = acquire_config(s)
        assert all(r.headers["Authorization"].startswith("OAuth ") for r in maas.requests)
    assert outcome.data == USER_DATA
    assert yaml.safe_load(outcome.extras["meta-data"]) == {
        "instance-id": "node-abc", "local-hostname": "node1",
        "public-keys": ["ssh-ed25519 AAAAk1 a@b", "ssh-rsa AAAAk2 c@d"]}


def test_maas_credentials_from_cloud_config_url(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r")
    with MaasMetadata(None) as maas, LoopbackHTTPServer() as region:
        region.route("/preseed", Reply(body=yaml.safe_dump({"datasource": {"MAAS": {
            "metadata_url": f"{maas.base_url}/MAAS/metadata/", **CREDS}}}).encode()))
        s = settings(root, f"cloud-config-url={region.url('/preseed')}")
        assert detect_platform(s).platform == "maas"
        outcome = acquire_config(s)
    assert outcome.status == "none" and "cloud-config-url" in outcome.source


def test_maas_refused_credentials_are_an_error(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r")
    with MaasMetadata(USER_DATA) as maas:
        cfg_url = f"{maas.base_url}/MAAS/metadata/"
        cfg = root / "etc/cloud/cloud.cfg.d/90_dpkg_maas.cfg"
        cfg.parent.mkdir(parents=True)
        cfg.write_text(yaml.safe_dump({"datasource": {"MAAS": {
            "metadata_url": cfg_url, **CREDS, "token_secret": "wrong"}}}))
        with pytest.raises(FetchError, match="credentials were refused"):
            acquire_config(settings(root, "provision.platform=maas"))


def test_oauth_plaintext_signature_escapes_secrets() -> None:
    header = oauth_header("ck", "tk", "a&b c", "cs", now=1700000000, nonce="n1")
    assert 'oauth_signature="cs%26a%2526b%2520c"' in header
    assert 'oauth_timestamp="1700000000"' in header


# --- OpenNebula -----------------------------------------------------------------------

CONTEXT_SH = b"""# Context variables generated by OpenNebula
DISK_ID='1'
ETH0_IP='192.0.2.5'
ETH0_MASK='255.255.255.0'
SSH_PUBLIC_KEY='ssh-ed25519 AAAAC3Nza one
ssh-ed25519 AAAAC3Nzb two'
USER_DATA='""" + base64.b64encode(USER_DATA) + b"""'
USER_DATA_ENCODING='base64'
QUOTED='it'\\''s'
"""


def test_opennebula_context_is_parsed_without_running_it() -> None:
    values = parse_context(CONTEXT_SH.decode() + 'EVIL="$(touch /tmp/pwned)"\n')
    assert values["ETH0_IP"] == "192.0.2.5"
    assert values["SSH_PUBLIC_KEY"].splitlines()[1] == "ssh-ed25519 AAAAC3Nzb two"
    assert values["QUOTED"] == "it's"
    assert values["EVIL"] == "$(touch /tmp/pwned)"  # text, never executed


@pytest.mark.root
@pytest.mark.skipif(not all(shutil.which(t) for t in ("xorriso", "losetup")),
                    reason="needs xorriso and losetup")
def test_opennebula_context_cd(tmp_path: Path) -> None:
    image = make_iso(tmp_path / "ctx.iso", "CONTEXT", {"context.sh": CONTEXT_SH})
    with loop_device(image) as device:
        root = make_sys_root(tmp_path / "r", labels={"CONTEXT": device})
        s = settings(root)
        assert detect_platform(s).platform == "opennebula"
        outcome = acquire_config(s, offline=True)
    assert outcome.data == USER_DATA
    assert outcome.extras["context.sh"] == CONTEXT_SH


# --- serial ports: CloudSigma, SmartOS ---------------------------------------------------

def pty_service(root: Path, device: str, serve: Callable[[int], None]) -> Iterator[None]:
    """A pseudo-terminal standing in for /dev/ttyS1; ``serve`` runs on the host side."""
    host, guest = os.openpty()
    # A serial line does not echo what the host sends back to the host: put the
    # pty in raw mode before the host side writes anything (the client's own
    # switch to raw mode may come after the host's first line).
    tty.setraw(guest)
    link = root / device.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.ttyname(guest))
    thread = threading.Thread(target=serve, args=(host,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        os.close(guest)
        thread.join(5)
        os.close(host)


def _read_until(fd: int, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


def test_cloudsigma_server_context_over_serial(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r", dmi={"product_name": "CloudSigma"})
    context = {"name": "srv", "uuid": "65b2fb23-8c03-4187-a3ba-8b7c919e8890",
               "meta": {"base64_fields": "cloudinit-user-data",
                        "cloudinit-user-data": base64.b64encode(USER_DATA).decode(),
                        "ssh_public_key": "ssh-rsa AAAA"},
               "vendor_data": {"cloudinit": "#cloud-config\n{}\n"}}
    requests: list[bytes] = []

    def serve(fd: int) -> None:
        requests.append(_read_until(fd, b">"))
        os.write(fd, json.dumps(context).encode() + b"\x04\n")

    for _ in pty_service(root, "/dev/ttyS1", serve):
        s = settings(root)
        assert detect_platform(s).platform == "cloudsigma"
        outcome = acquire_config(s, offline=True)
    assert requests == [b"<\n\n>"]
    assert outcome.data == USER_DATA
    assert outcome.extras["vendor-data"] == b"#cloud-config\n{}\n"


def _crc(body: str) -> str:
    return f"{binascii.crc32(body.encode()) & 0xFFFFFFFF:08x}"


def smartos_host(values: dict[str, bytes], log: list[str], *, corrupt: bool = False
                 ) -> Callable[[int], None]:
    """The host side of the Joyent metadata protocol V2 (serial flavour)."""

    def serve(fd: int) -> None:
        buffer = b""
        os.write(fd, b"stale junk from a previous client\n")
        while True:
            while b"\n" not in buffer:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
            raw, _, buffer = buffer.partition(b"\n")
            line = raw.decode()
            log.append(line)
            if line == "":
                os.write(fd, b"invalid command\n")
            elif line == "NEGOTIATE V2":
                os.write(fd, b"V2_OK\n")
            elif line.startswith("V2 "):
                _, length, crc, body = line.split(" ", 3)
                assert int(length) == len(body) and crc == _crc(body)
                request_id, _kind, key64 = body.split(" ")
                key = base64.b64decode(key64).decode()
                value = values.get(key)
                answer = (f"{request_id} SUCCESS {base64.b64encode(value).decode()}"
                          if value is not None else f"{request_id} NOTFOUND")
                checksum = "00000000" if corrupt else _crc(answer)
                os.write(fd, f"V2 {len(answer)} {checksum} {answer}\n".encode())
            else:
                os.write(fd, b"invalid command\n")

    return serve


def test_smartos_metadata_protocol_v2_over_serial(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r", dmi={"product_name": "SmartDC HVM"})
    values = {"cloud-init:user-data": USER_DATA, "sdc:uuid": b"a3f1-uuid",
              "sdc:hostname": b"smart1", "sdc:nics": b'[{"mac": "90:b8:d0:00:00:01"}]'}
    log: list[str] = []
    for _ in pty_service(root, "/dev/ttyS1", smartos_host(values, log)):
        s = settings(root)
        assert detect_platform(s).platform == "smartos"
        outcome = acquire_config(s, offline=True)
    # the handshake (a bare newline answered "invalid command") comes before NEGOTIATE V2
    assert "" in log and log.index("") < log.index("NEGOTIATE V2")
    assert outcome.data == USER_DATA
    assert yaml.safe_load(outcome.extras["meta-data"]) == {"instance-id": "a3f1-uuid",
                                                           "local-hostname": "smart1"}
    assert outcome.extras["sdc-nics.json"].startswith(b'[{"mac"')
    assert "vendor-data" not in outcome.extras  # NOTFOUND


def test_smartos_refuses_a_corrupt_frame(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r")
    for _ in pty_service(root, "/dev/ttyS1", smartos_host({"user-data": USER_DATA}, [],
                                                          corrupt=True)):
        with pytest.raises(FetchError, match="checksum"):
            acquire_config(settings(root, "provision.platform=smartos"), offline=True)


# --- Bigstep, NWCS, CloudCIX ---------------------------------------------------------------

def test_bigstep_url_from_the_seed_file(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r")
    with LoopbackHTTPServer() as bigstep:
        bigstep.route("/md", Reply(body=json.dumps({
            "metadata": {"instance-id": "b1"}, "vendordata_raw": "#cloud-config\n{}\n",
            "userdata_raw": USER_DATA.decode()}).encode()))
        seed = root / "var/lib/cloud/data/seed/bigstep/url"
        seed.parent.mkdir(parents=True)
        seed.write_text(bigstep.url("/md") + "\n")
        outcome = acquire_config(settings(root, "provision.platform=bigstep"))
    assert outcome.data == USER_DATA
    assert json.loads(outcome.extras["meta-data"]) == {"instance-id": "b1"}


def test_nwcs_user_data_is_a_key_of_the_metadata(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r", dmi={"sys_vendor": "NWCS"})
    document = {"instance-id": "n1", "hostname": "nw1", "userdata": USER_DATA.decode(),
                "network": {"version": 1, "config": []}}
    with LoopbackHTTPServer() as nwcs:
        nwcs.route("/api/v1/metadata", Reply(body=json.dumps(document).encode()))
        s = settings(root, metadata_url=nwcs.base_url)
        assert detect_platform(s).platform == "nwcs"
        outcome = acquire_config(s)
    assert outcome.data == USER_DATA
    assert json.loads(outcome.extras["meta-data"])["instance-id"] == "n1"


def test_nwcs_without_user_data(tmp_path: Path) -> None:
    with LoopbackHTTPServer() as nwcs:
        nwcs.route("/api/v1/metadata", Reply(body=b'{"instance-id": "n1", "userdata": null}'))
        outcome = acquire_config(settings(make_sys_root(tmp_path / "r"), "provision.platform=nwcs",
                                          metadata_url=nwcs.base_url))
    assert outcome.status == "none"


@pytest.mark.parametrize("served", [USER_DATA, base64.b64encode(USER_DATA)])
def test_cloudcix_user_data_raw_or_base64_and_metadata(tmp_path: Path, served: bytes) -> None:
    root = make_sys_root(tmp_path / "r", dmi={"product_name": "CloudCIX"})
    with LoopbackHTTPServer() as cix:
        cix.route("/v1/userdata", Reply(body=served))
        cix.route("/v1/metadata", Reply(body=b'{"instance_id": "x1", "network": {}}'))
        s = settings(root, metadata_url=cix.base_url)
        assert detect_platform(s).platform == "cloudcix"
        outcome = acquire_config(s)
    assert outcome.data == USER_DATA
    assert outcome.extras["meta-data"] == b'{"instance_id": "x1", "network": {}}'
