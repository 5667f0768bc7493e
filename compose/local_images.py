"""Build the compose stack's images without Docker Hub, from Debian and PyPI packages.

    compose/local-images.sh [--force] [--cache DIR]
    (or: any Python >= 3.11 with pip, compose/local_images.py)

1. ``debootstrap --variant=minbase bookworm`` (python3, python3-venv,
   ca-certificates) into a cache directory, once;
2. ``docker import`` of that root as ``modelmon-base:bookworm``;
3. ``modelmon-prometheus:local`` and ``modelmon-alertmanager:local``: the Debian
   packages installed on the base (compose/local/*.Dockerfile);
4. ``modelmon:local``: compose/Dockerfile on the base, modelmon with the demo
   extra from this checkout, its wheels built here (``pip wheel``, this machine's
   pip cache) and served to the build on loopback (``docker build --network host``).

The wheels are built while debootstrap runs; the three images build side by
side (logs in <cache>/logs). An image that exists is kept unless --force; ``modelmon:local`` is rebuilt when
the checkout's package files changed (a hash of them is a second tag). Then:

    docker-compose -f compose/docker-compose.yml -f compose/docker-compose.local.yml up -d

Docker is reached as the docker CLI does (DOCKER_HOST). Needs root for debootstrap.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "compose"
SUITE = "bookworm"
BASE_IMAGE = f"modelmon-base:{SUITE}"
MODELMON_IMAGE = "modelmon:local"
PROMETHEUS_IMAGE = "modelmon-prometheus:local"
ALERTMANAGER_IMAGE = "modelmon-alertmanager:local"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# What the Dockerfile copies (/.dockerignore): a change here rebuilds modelmon:local.
SOURCES = ("pyproject.toml", "README.md", "core", "exporters", "plugins", "dashboards", "demo")
# Left out of the base image: apt's downloads and lists, documentation.
TAR_EXCLUDES = ("./var/cache/apt/archives/*.deb", "./var/lib/apt/lists/*", "./usr/share/doc/*",
                "./usr/share/man/*", "./usr/share/locale/*", "./dev/*", "./proc/*", "./sys/*")


def default_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "modelmon" / "compose"


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"local-images: [{time.monotonic() - _STARTED:5.0f} s] {message}", flush=True)


def run(args: list[str], **kwargs: object) -> None:
    subprocess.run(args, check=True, **kwargs)  # type: ignore[call-overload]


def image_exists(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def rootfs(cache: Path, force: bool, mirror: str) -> Path:
    """The debootstrapped root, built once into ``cache`` (a marker says it is whole)."""
    target = cache / f"{SUITE}-minbase"
    marker = target / ".modelmon-complete"
    if marker.exists() and not force:
        log(f"root filesystem: {target} (cached)")
        return target
    if shutil.which("debootstrap") is None:
        sys.exit("local-images: debootstrap is missing: apt-get install debootstrap")
    partial = cache / f"{SUITE}-minbase.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {SUITE} into {target} (about a minute)")
    run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE,
         str(partial), mirror], stdout=subprocess.DEVNULL)
    (partial / marker.name).write_text(f"{SUITE} minbase {','.join(BASE_PACKAGES)}\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def import_base(root: Path) -> None:
    log(f"docker import {root} as {BASE_IMAGE}")
    tar = subprocess.Popen(
        ["tar", "-C", str(root), *(f"--exclude={p}" for p in TAR_EXCLUDES),
         "--exclude=./.modelmon-complete", "-c", "."], stdout=subprocess.PIPE)
    try:
        run(["docker", "import", "--change", "ENV LANG=C.UTF-8", "-", BASE_IMAGE],
            stdin=tar.stdout, stdout=subprocess.DEVNULL)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            sys.exit(f"local-images: tar of {root} failed")


class StepFailed(Exception):
    """A build step failed; the message ends with its output's last lines."""


def build(image: str, dockerfile: Path, context: Path, logs: Path, *build_args: str) -> None:
    """``docker build``, its output in ``logs``/<image>.log (builds run side by side)."""
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{image.replace(':', '_')}.log"
    log(f"docker build {image} ({dockerfile.relative_to(REPO)}), output in {log_path}")
    args = ["docker", "build", "--network", "host", "-t", image, "-f", str(dockerfile),
            "--build-arg", f"BASE={BASE_IMAGE}"]
    for build_arg in build_args:
        args += ["--build-arg", build_arg]
    with log_path.open("w") as output:
        code = subprocess.run([*args, str(context)], stdout=output, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise StepFailed(f"docker build {image} failed ({code}); the end of {log_path}:\n{tail}")
    log(f"{image} built")


def source_hash() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        path = REPO / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def wheelhouse(wheels: Path) -> Path:
    """modelmon[demo]'s wheels and the build backend's, from this machine's pip cache."""
    log("pip wheel .[demo] (this machine's pip cache)")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w",
         str(wheels), f"{REPO}[demo]", "setuptools>=77", "wheel"])
    return wheels


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``folder`` on a free loopback port (a pip find-links page); yields its URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild everything, root included")
    parser.add_argument("--cache", type=Path, default=default_cache(),
                        help="where the root filesystem and wheels are kept "
                             "(default ~/.cache/modelmon/compose)")
    parser.add_argument("--mirror", default=os.environ.get("DEBIAN_MIRROR",
                                                           "http://deb.debian.org/debian"),
                        help="Debian mirror of debootstrap (default $DEBIAN_MIRROR or "
                             "deb.debian.org)")
    args = parser.parse_args(argv)
    if shutil.which("docker") is None:
        sys.exit("local-images: the docker CLI is missing: apt-get install docker.io")
    try:
        build_all(args.cache, args.force, args.mirror)
    except (StepFailed, subprocess.CalledProcessError) as exc:
        print(f"local-images: {exc}", file=sys.stderr)
        return 1
    log(f"images ready: {MODELMON_IMAGE}, {PROMETHEUS_IMAGE}, {ALERTMANAGER_IMAGE}")
    return 0


def build_all(cache: Path, force: bool, mirror: str) -> None:
    """The steps, side by side where they can be: the wheels while debootstrap
    runs, then the three images at once."""
    logs = cache / "logs"
    # A tag names the checkout's state: tagging is free, a LABEL step is not.
    source_tag = f"{MODELMON_IMAGE}-{source_hash()}"
    with ThreadPoolExecutor(3) as pool, tempfile.TemporaryDirectory() as wheels:
        base_built = force or not image_exists(BASE_IMAGE)
        modelmon = base_built or not image_exists(source_tag)
        wheels_ready = pool.submit(wheelhouse, Path(wheels)) if modelmon else None
        if base_built:
            import_base(rootfs(cache, force, mirror))
        local = COMPOSE / "local"
        builds = [pool.submit(build, image, local / f"{name}.Dockerfile", local, logs)
                  for image, name in ((PROMETHEUS_IMAGE, "prometheus"),
                                      (ALERTMANAGER_IMAGE, "alertmanager"))
                  if base_built or not image_exists(image)]
        if wheels_ready is not None:
            with serving(wheels_ready.result()) as url:
                build(MODELMON_IMAGE, COMPOSE / "Dockerfile", REPO, logs,
                      f"PIP_FIND_LINKS={url}")
            run(["docker", "tag", MODELMON_IMAGE, source_tag])
        else:
            log(f"{MODELMON_IMAGE}: up to date with the checkout")
        for step in builds:
            step.result()

if __name__ == "__main__":
    sys.exit(main())
