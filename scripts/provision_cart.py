"""scripts/provision-cart: a fresh Debian computer made into one cart of the fleet, idempotently.

Every step compares what is there with what is wanted and changes only the difference; the
summary lists each change, or says that nothing changed. Standard library only: it runs on
the system's Python before the agent is installed.

--root DIR provisions a directory standing in for `/` (tests, image builds): files are written
under it, users are made by `systemd-sysusers --root` and units enabled by `systemctl --root`
(both work on files alone), and everything that would touch the running machine (apt-get,
pip, udevadm, starting services, the doctor) is recorded instead of run: `--dry-packages`,
which --root requires. The record goes to stdout ("would run: ...") and to --record FILE.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

# The repository's TOML writer, which imports nothing but the standard library.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agent.toml_write import TomlError, to_toml


class Refused(Exception):
    """Bad input: nothing was changed."""


SOURCE = Path(__file__).resolve().parent.parent
PACKAGES = ["python3-venv", "libzbar0", "fonts-hanazono", "fonts-wqy-microhei", "cage",
            "chromium", "systemd-timesyncd", "dbus", "espeak-ng", "alsa-utils"]
VENV = "/opt/cart-agent"
AGENT_USER, KIOSK_USER = "cart-agent", "cart-kiosk"
CONF_DIR = "/etc/cart-agent"
UNITS = ("cart-agent.service", "cart-kiosk.service")
CART_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
KEY = re.compile(r"^[A-Za-z0-9_-]{43}=?$")  # base64url of 32 raw bytes
HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9a-fA-F:]+\]$")
USER = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class Provision:
    def __init__(self, root: Path, dry: bool, record: Path | None) -> None:
        self.root, self.dry, self.record = root, dry, record
        self.changes: list[str] = []
        self.scratch = root != Path("/")

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    # --- commands ----------------------------------------------------------------------

    def system(self, argv: list[str]) -> None:
        """A command on the running machine: run it, or with --dry-packages record it."""
        line = shlex.join(argv)
        if self.dry:
            print(f"would run: {line}")
            if self.record is not None:
                with self.record.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            return
        subprocess.run(argv, check=True)

    def files_tool(self, argv: list[str]) -> str:
        """A tool that only edits files under the root (systemd-sysusers, systemctl enable)."""
        if self.scratch:
            argv = [argv[0], f"--root={self.root}", *argv[1:]]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    # --- files ---------------------------------------------------------------------------

    def ids(self, user: str, group: str) -> tuple[int, int]:
        def find(table: str, name: str) -> int:
            if name == "root":
                return 0
            for line in self.at(f"/etc/{table}").read_text().splitlines():
                fields = line.split(":")
                if fields[0] == name:
                    return int(fields[2])
            raise Refused(f"no {table} entry {name!r} under {self.root}")
        return find("passwd", user), find("group", group)

    def _owned(self, path: Path, mode: int, owner: tuple[str, str]) -> bool:
        """Set mode and owner; True if either changed."""
        st = path.lstat()
        changed = False
        if st.st_mode & 0o7777 != mode:
            os.chmod(path, mode)
            changed = True
        uid, gid = self.ids(*owner)
        if (st.st_uid, st.st_gid) != (uid, gid) and os.geteuid() == 0:
            os.chown(path, uid, gid)
            changed = True
        return changed

    def put(self, path: str, content: bytes, mode: int = 0o644,
            owner: tuple[str, str] = ("root", "root")) -> bool:
        target = self.at(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        same = target.is_file() and not target.is_symlink() and target.read_bytes() == content
        if not same:
            tmp = target.with_name(target.name + ".provision-tmp")
            tmp.write_bytes(content)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        if self._owned(target, mode, owner) or not same:
            self.changes.append(f"{path}" + ("" if not same else " (mode/owner)"))
            return True
        return False

    def directory(self, path: str, mode: int, owner: tuple[str, str]) -> None:
        target = self.at(path)
        made = not target.is_dir()
        target.mkdir(parents=True, exist_ok=True)
        if self._owned(target, mode, owner) or made:
            self.changes.append(f"{path}/")

    def symlink(self, path: str, to: str) -> None:
        target = self.at(path)
        if target.is_symlink() and os.readlink(target) == to:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(to)
        self.changes.append(f"{path} -> {to}")


# --- the steps ------------------------------------------------------------------------------

def packages(p: Provision) -> None:
    if p.dry:
        p.system(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES])
        return
    missing = [pkg for pkg in PACKAGES if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True,
        check=False).stdout.find("ok installed") < 0]
    if missing:
        p.system(["apt-get", "update", "-qq"])
        p.system(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing])
        p.changes.append("packages: " + " ".join(missing))


def source_version(source: Path) -> str:
    text = (source / "agent" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'__version__ = "([^"]+)"', text)
    if not match:
        raise Refused(f"{source} is not a cart-agent source tree")
    return match.group(1)


def agent_software(p: Provision, source: Path) -> None:
    version = source_version(source)
    exe = p.at(f"{VENV}/bin/cart-agent")
    if not p.dry:
        have = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                              check=False).stdout.split() if exe.exists() else []
        if have[-1:] == [version]:
            p.symlink("/usr/local/bin/cart-agent", f"{VENV}/bin/cart-agent")
            return
        p.changes.append(f"cart-agent {version} in {VENV}")
    if not p.at(f"{VENV}/bin/python").exists():
        p.system(["python3", "-m", "venv", VENV])
    p.system([f"{VENV}/bin/pip", "install", "--quiet", f"{source}[camera]"])
    p.symlink("/usr/local/bin/cart-agent", f"{VENV}/bin/cart-agent")


def users(p: Provision, source: Path) -> None:
    p.put("/etc/sysusers.d/cart-agent.conf",
          (source / "systemd" / "cart-agent.sysusers.conf").read_bytes())
    p.put("/etc/sysusers.d/cart-kiosk.conf",
          (source / "systemd" / "cart-kiosk.sysusers.conf").read_bytes())
    before = _digest(p, "/etc/passwd", "/etc/group")
    p.files_tool(["systemd-sysusers", "/etc/sysusers.d/cart-agent.conf",
                  "/etc/sysusers.d/cart-kiosk.conf"]
                 if not p.scratch else ["systemd-sysusers"])
    if _digest(p, "/etc/passwd", "/etc/group") != before:
        p.changes.append(f"users and groups ({AGENT_USER}, {KIOSK_USER})")


def _digest(p: Provision, *paths: str) -> str:
    h = hashlib.sha256()
    for path in paths:
        f = p.at(path)
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()


def devices_and_units(p: Provision, source: Path) -> bool:
    """udev rules, the kiosk's PAM session, the units; True when a unit file changed."""
    if p.put("/etc/udev/rules.d/99-cart-agent.rules",
             (source / "systemd" / "99-cart-agent.rules").read_bytes()):
        p.system(["udevadm", "control", "--reload"])
        p.system(["udevadm", "trigger", "--subsystem-match=tty", "--subsystem-match=usb"])
    p.put("/etc/pam.d/cart-kiosk", (source / "systemd" / "cart-kiosk.pam").read_bytes())
    changed = False
    for unit in UNITS:
        changed |= p.put(f"/etc/systemd/system/{unit}",
                         (source / "systemd" / unit).read_bytes())
    if changed:
        p.system(["systemctl", "daemon-reload"])
    return changed


def _key_map(values: list[str], what: str) -> dict[str, str]:
    keys = {}
    for item in values:
        kid, sep, value = item.partition("=")
        if not sep or not KID.match(kid):
            raise Refused(f"--{what}-key {item!r}: expected KID=PUBLIC-KEY or KID=@FILE.pub")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise Refused(f"--{what}-key {kid}: {exc.strerror}: {value[1:]}") from None
        if not KEY.match(value):
            raise Refused(f"--{what}-key {kid}: not a base64url Ed25519 public key")
        keys[kid] = value
    return keys


def cart_config(args: argparse.Namespace) -> dict[str, Any]:
    """The layout file with this cart's identity, broker and trusted keys laid over it."""
    try:
        doc = tomllib.loads(Path(args.layout).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise Refused(f"--layout {args.layout}: {exc}") from None
    host, port = args.broker, ""
    if args.broker.count(":") == 1 or "]:" in args.broker:  # HOST:PORT, [v6]:PORT
        host, _, port = args.broker.rpartition(":")
    if not HOST.match(host) or (port and not port.isdigit()):
        raise Refused(f"--broker {args.broker!r}: expected HOST or HOST:PORT")
    tls = not args.no_tls
    mqtt = {k: v for k, v in doc.get("mqtt", {}).items() if k != "password"}
    mqtt.update(enabled=True, host=host, port=int(port or (8883 if tls else 1883)),
                username=args.mqtt_user or args.cart_id, tls=tls,
                password_file=f"{CONF_DIR}/mqtt-password" if args.mqtt_password_file else "",
                ca_file=f"{CONF_DIR}/ca.crt" if tls and args.ca_file else "")
    security = dict(doc.get("security", {}))
    if args.attendant_pin_hash:
        security["attendant_pin_hash"] = args.attendant_pin_hash
    security.update(token_keys=_key_map(args.token_key, "token"),
                    fleet_keys=_key_map(args.fleet_key, "fleet"),
                    root_keys=_key_map(args.root_key, "root"))
    doc.update(cart_id=args.cart_id, mqtt=mqtt, security=security)
    return doc


def configuration(p: Provision, args: argparse.Namespace) -> bool:
    """/etc/cart-agent: the config, the broker password, the CA, the kiosk's address."""
    owner = ("root", AGENT_USER)
    p.directory(CONF_DIR, 0o750, owner)
    doc = cart_config(args)
    header = (f"# cart {args.cart_id}: written by scripts/provision-cart from "
              f"{Path(args.layout).name}.\n# Edit the layout or the options and run it "
              "again; changes made here are replaced.\n\n")
    try:
        text = to_toml(doc)
    except TomlError as exc:
        raise Refused(f"the config cannot be written: {exc}") from None
    changed = p.put(f"{CONF_DIR}/agent.toml", (header + text).encode(), 0o640, owner)
    if args.mqtt_password_file:
        secret = Path(args.mqtt_password_file).read_text(encoding="utf-8").strip()
        changed |= p.put(f"{CONF_DIR}/mqtt-password", (secret + "\n").encode(), 0o640, owner)
    if args.ca_file and not args.no_tls:
        changed |= p.put(f"{CONF_DIR}/ca.crt", Path(args.ca_file).read_bytes(), 0o644)
    web = doc.get("web", {})
    port = int(web.get("port", 8080))
    p.put(f"{CONF_DIR}/kiosk.env", f"KIOSK_URL=http://127.0.0.1:{port}/?kiosk=1\n".encode())
    data_dir = str(doc.get("data_dir", "/var/lib/cart-agent"))
    p.directory(data_dir, 0o700, (AGENT_USER, AGENT_USER))
    # The unit starts `releases/current`; the first one is the factory install. After an
    # update it points at a release (agent/update/slots.py): never point it back here.
    p.directory(f"{data_dir}/releases", 0o700, (AGENT_USER, AGENT_USER))
    if not p.at(f"{data_dir}/releases/current").is_symlink():
        p.symlink(f"{data_dir}/releases/current", VENV)
    return changed


def services(p: Provision, restart: bool) -> None:
    for unit in UNITS:
        if p.files_tool(["systemctl", "is-enabled", unit]) != "enabled":
            p.files_tool(["systemctl", "enable", unit])
            p.changes.append(f"enabled {unit}")
    verb = "restart" if restart else "start"
    p.system(["systemctl", verb, *UNITS])


def doctor(p: Provision) -> int:
    argv = ["/usr/local/bin/cart-agent", "doctor", "-c", f"{CONF_DIR}/agent.toml"]
    if p.dry:
        p.system(argv)
        return 0
    print("\n$ cart-agent doctor")
    return subprocess.run(argv, check=False).returncode


# --- entry --------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="provision-cart", description=__doc__.split("\n")[0])
    p.add_argument("--cart-id", required=True, help="this cart's id ([a-z0-9-], unique)")
    p.add_argument("--broker", required=True, help="HOST or HOST:PORT (default port 8883, "
                   "1883 with --no-tls)")
    p.add_argument("--mqtt-user", help="broker user name (default: the cart id)")
    p.add_argument("--mqtt-password-file", help="a file holding this cart's broker password")
    p.add_argument("--ca-file", help="the CA that signed the broker's certificate")
    p.add_argument("--no-tls", action="store_true", help="plain MQTT (a broker on the cart's "
                   "own network only)")
    for what in ("token", "fleet", "root"):
        p.add_argument(f"--{what}-key", action="append", default=[], metavar="KID=KEY",
                       help=f"trust this {what} key (KEY or @FILE.pub); repeatable")
    p.add_argument("--attendant-pin-hash", help="the console PIN's hash (cart-agent hash-pin)")
    p.add_argument("--layout", default=str(SOURCE / "config" / "example.toml"),
                   help="the cart model's config (devices, compartments, screens); default "
                   "config/example.toml")
    p.add_argument("--source", default=str(SOURCE), help="the cart-agent source to install")
    p.add_argument("--root", default="/", help="provision this directory as / (needs "
                   "--dry-packages)")
    p.add_argument("--dry-packages", action="store_true",
                   default=os.environ.get("CART_PROVISION_DRY") == "1",
                   help="record package, service and device commands instead of running them")
    p.add_argument("--record", help="append the recorded commands to this file")
    p.add_argument("--no-doctor", action="store_true", help="do not run cart-agent doctor")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    root = Path(args.root).resolve()
    try:
        if not CART_ID.match(args.cart_id):
            raise Refused(f"--cart-id {args.cart_id!r}: [a-z0-9-], at most 32")
        if args.mqtt_user and not USER.match(args.mqtt_user):
            raise Refused(f"--mqtt-user {args.mqtt_user!r}: letters, digits, . _ -")
        if not args.token_key:
            raise Refused("at least one --token-key: the cart must trust its token issuer")
        if root != Path("/") and not args.dry_packages:
            raise Refused("--root other than / needs --dry-packages (nothing can be "
                          "installed into a scratch root)")
        if os.geteuid() != 0 and root == Path("/"):
            raise Refused("run as root (sudo)")
        for option, name in (("--mqtt-password-file", args.mqtt_password_file),
                             ("--ca-file", args.ca_file)):
            if name and not os.access(name, os.R_OK):
                raise Refused(f"{option} {name}: cannot be read")
        cart_config(args)  # every input checked before anything changes
        p = Provision(root, args.dry_packages, Path(args.record) if args.record else None)
        source = Path(args.source).resolve()
        packages(p)
        agent_software(p, source)
        users(p, source)
        units_changed = devices_and_units(p, source)
        config_changed = configuration(p, args)
        services(p, restart=units_changed or config_changed)
    except Refused as exc:
        print(f"provision-cart: {exc}", file=sys.stderr)
        return 2
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"provision-cart: failed: {exc}", file=sys.stderr)
        return 1
    if p.changes:
        print(f"cart {args.cart_id}: {len(p.changes)} change(s):")
        for change in p.changes:
            print(f"  {change}")
    else:
        print(f"cart {args.cart_id}: nothing to change (already provisioned as asked)")
    return 0 if args.no_doctor else doctor(p)


if __name__ == "__main__":
    sys.exit(main())
