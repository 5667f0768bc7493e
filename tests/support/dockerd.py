"""A real Docker daemon for tests: ``dockerd`` (Debian ``docker.io``) on a
private socket, data root and exec root, with no network setup (vfs storage
unless asked for overlay2, no iptables, no bridge), and a tiny image built from the static busybox of
Debian's ``busybox-static`` with ``docker import``: no registry is reached.

Containers run with ``--network none``, or on an ``--internal`` network (no NAT
needed) where a test needs traffic. ``start_dockerd`` returns ``None``
with the reason when the daemon cannot start here (not root, no cgroups);
callers skip with that reason.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = "/bin/busybox"
IMAGE = "modelmon-test-busybox:1"
_APPLETS = ("sh", "sleep", "head", "cat", "yes", "true", "false", "dd", "tail", "timeout", "ping")


@dataclass
class Dockerd:
    url: str  # unix:///.../docker.sock
    root: Path
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.url}

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        """Run the docker CLI against this daemon; stdout."""
        result = subprocess.run(["docker", *args], env=self.env(), capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()


def why_not() -> str | None:
    """Why dockerd cannot run here, or None."""
    for binary in ("dockerd", "docker", "containerd", "runc"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (Debian package docker.io; tests/run.sh installs it)"
    if not Path(BUSYBOX).exists():
        return f"{BUSYBOX} is missing (Debian package busybox-static)"
    if os.geteuid() != 0:
        return "dockerd needs root"
    return None


@contextmanager
def running_dockerd(root: Path, start_timeout: float = 30.0,
                    storage_driver: str = "vfs") -> Iterator[Dockerd | str]:
    """A daemon under ``root`` (yields it), or the reason it could not start (a str).
    ``storage_driver`` "overlay2" is far faster for big images (vfs copies every
    layer per container) where the kernel and the file system of ``root`` allow it."""
    reason = why_not()
    if reason is not None:
        yield reason
        return
    # unix socket paths are limited to 108 bytes: keep it short.
    socket = Path(f"/tmp/mm-dockerd-{os.getpid()}-{time.monotonic_ns() % 10**6}.sock")
    for sub in ("data", "exec"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        ["dockerd", f"--storage-driver={storage_driver}", "--iptables=false", "--ip-masq=false",
         "--bridge=none", f"--host=unix://{socket}", f"--data-root={root / 'data'}",
         f"--exec-root={root / 'exec'}", f"--pidfile={root / 'dockerd.pid'}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    daemon = Dockerd(f"unix://{socket}", root, process)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                yield f"dockerd exited with {process.returncode}: {_tail(root / 'dockerd.log')}"
                return
            if socket.exists() and daemon.docker("version", check=False, timeout=10):
                break
            if time.monotonic() > deadline:
                yield f"dockerd did not answer within {start_timeout:g}s: {_tail(root / 'dockerd.log')}"
                return
            time.sleep(0.2)
        yield daemon
    finally:
        _stop(process)
        # dockerd leaves its network namespace bind-mounted (exec/netns/default):
        # unmounted, so the temp folder can be removed.
        for mount in (root / "exec" / "netns").glob("*"):
            subprocess.run(["umount", "--lazy", str(mount)], capture_output=True, timeout=10)
        log.close()
        socket.unlink(missing_ok=True)
        # vfs layers are plain copies; containers' mounts are gone with the daemon.
        shutil.rmtree(root / "data", ignore_errors=True)


def overlay2_usable() -> bool:
    """Whether dockerd's overlay2 driver can work here: the kernel knows overlay."""
    try:
        return "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        return False


def import_busybox_image(daemon: Dockerd) -> str:
    """Build ``IMAGE`` (a static busybox and a few applets) with ``docker import``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for folder in ("tmp", "proc", "sys", "dev", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
    result = subprocess.run(["docker", "import", "-", IMAGE], input=buffer.getvalue(),
                            env=daemon.env(), capture_output=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"docker import failed: {result.stderr.decode().strip()}")
    return IMAGE


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # dockerd stops its containers and containerd
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
