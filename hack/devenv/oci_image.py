"""Tiny OCI images built without a registry, a daemon or a base image: a pause image for pod
sandboxes (from node_images/pause.c, compiled static) and a busybox test image (Debian's
busybox-static). Written as OCI archives that `ctr images import` reads.

Layers are uncompressed, deterministic tars (mtime 0, root-owned), so the same inputs give
the same digests and a rebuild is a no-op.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAUSE_SOURCE = Path(__file__).resolve().parent / "node_images" / "pause.c"
BUSYBOX = Path("/bin/busybox")
PAUSE_IMAGE = "rollforward.local/pause:1"
BUSYBOX_IMAGE = "rollforward.local/busybox:1"
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageSpec:
    """An image of one layer: `files` maps a path in the image to a host file (copied,
    mode kept), `links` maps a path to a symlink target."""

    name: str
    files: Mapping[str, Path]
    links: Mapping[str, str] = field(default_factory=dict)
    dirs: Sequence[str] = ()
    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, data: bytes | None = None) -> None:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def layer_tar(spec: ImageSpec) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = {p.strip("/") for p in spec.dirs}
        for path in [*spec.files, *spec.links]:
            parts = path.strip("/").split("/")[:-1]
            entries.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        for directory in sorted(entries):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            _add(tar, info)
        for path, source in sorted(spec.files.items()):
            data = source.read_bytes()
            info = tarfile.TarInfo(path.strip("/"))
            info.size, info.mode = len(data), source.stat().st_mode & 0o7777
            _add(tar, info, data)
        for path, target in sorted(spec.links.items()):
            info = tarfile.TarInfo(path.strip("/"))
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            _add(tar, info)
    return buffer.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes, media_type: str) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _canonical(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def write_archive(spec: ImageSpec, path: Path) -> Path:
    """Write `spec` as an OCI archive (oci-layout, index.json, blobs/) at `path`."""
    blobs: dict[str, bytes] = {}
    layer = layer_tar(spec)
    layer_desc = _blob(blobs, layer, "application/vnd.oci.image.layer.v1.tar")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [_PATH],
            "Entrypoint": list(spec.entrypoint) or None,
            "Cmd": list(spec.cmd) or None,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
    }
    config_desc = _blob(blobs, _canonical(config), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = _blob(blobs, _canonical(manifest), str(manifest["mediaType"]))
    # containerd names the image after io.containerd.image.name; other tools read ref.name.
    manifest_desc["annotations"] = {
        "io.containerd.image.name": spec.name,
        "org.opencontainers.image.ref.name": spec.name.rsplit(":", 1)[1],
    }
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc],
    }
    files = {
        "oci-layout": _canonical({"imageLayoutVersion": "1.0.0"}),
        "index.json": _canonical(index),
    }
    files.update({f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()})
    return _write_layout_tar(files, path)


def _write_layout_tar(files: Mapping[str, bytes], path: Path) -> Path:
    """The OCI layout's files as one tar, written atomically (also when two processes, say
    two xdist workers, write the same archive at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _private_tmp(path)
    with tarfile.open(tmp, "w") as tar:
        for name in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            _add(tar, info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            _add(tar, info, data)
    tmp.replace(path)
    return path


def _private_tmp(path: Path) -> Path:
    """A temporary name beside `path` that no other process uses, to rename into `path`."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def build_pause(out_dir: Path) -> Path:
    """Compile pause.c statically (cached by the source's hash)."""
    digest = hashlib.sha256(PAUSE_SOURCE.read_bytes()).hexdigest()[:16]
    binary = out_dir / f"pause-{digest}"
    if not binary.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = _private_tmp(binary)
        subprocess.run(
            ["gcc", "-static", "-Os", "-Wall", "-Werror", "-o", str(tmp), str(PAUSE_SOURCE)],
            check=True,
            capture_output=True,
        )
        subprocess.run(["strip", str(tmp)], check=True)
        tmp.replace(binary)
    return binary


def pause_spec(binary: Path) -> ImageSpec:
    return ImageSpec(PAUSE_IMAGE, {"/pause": binary}, entrypoint=["/pause"])


def busybox_spec(busybox: Path = BUSYBOX) -> ImageSpec:
    """busybox with a symlink per applet, so `sh`, `wget`, `nslookup`... are on PATH."""
    listed = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True)
    applets = [line for line in listed.stdout.split() if line and line != "bin/busybox"]
    links = {f"/{applet}": "/bin/busybox" for applet in applets}
    return ImageSpec(
        BUSYBOX_IMAGE, {"/bin/busybox": busybox}, links, dirs=["tmp", "etc"], cmd=["sh"]
    )


def node_test_images(out_dir: Path) -> list[Path]:
    """The pause and busybox archives under `out_dir` (built when missing or stale)."""
    pause = write_archive(pause_spec(build_pause(out_dir)), out_dir / "pause.oci.tar")
    busybox = write_archive(busybox_spec(), out_dir / "busybox.oci.tar")
    return [pause, busybox]
