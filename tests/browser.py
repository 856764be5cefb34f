"""Headless Chromium for the report tests, and a small PNG reader to look at its screenshots.

`find_or_install()` finds Debian's `chromium`; where it is missing and we are root with apt, it
installs the package once (non-interactively, under a file lock so that concurrent test runs do
not both run apt, printing nothing). Otherwise it raises :class:`Unavailable` with the reason,
which the tests turn into a skip. Each page is rendered in a fresh profile with networking,
sync and updates off.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAMES = ("chromium", "chromium-browser")
PACKAGE = "chromium"  # Debian's
LOCK = Path(tempfile.gettempdir()) / "etprof-chromium-install.lock"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
SIZE = (1280, 2000)


class Unavailable(Exception):
    """No usable Chromium here, and none can be installed (the message says why)."""


def find() -> str | None:
    return next((p for p in map(shutil.which, NAMES) if p), None)


def find_or_install() -> str:
    found = find()
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise Unavailable(
            f"{PACKAGE} is not installed and the tests are not running as root "
            f"(install it with: apt-get install -y {PACKAGE})"
        )
    if shutil.which("apt-get") is None:
        raise Unavailable(f"{PACKAGE} is not installed and there is no apt-get to install it")
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be installing it right now
        found = find()
        if found:
            return found
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", PACKAGE]):
            try:
                proc = subprocess.run(
                    cmd,
                    check=False,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=1200,
                )
            except subprocess.TimeoutExpired:
                raise Unavailable(f"`{' '.join(cmd)}` took more than 20 minutes") from None
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
                raise Unavailable(f"`{' '.join(cmd)}` failed: {last}")
    found = find()
    if not found:
        raise Unavailable(f"apt-get installed {PACKAGE} but no chromium binary is on PATH")
    return found


@dataclass(frozen=True)
class Browser:
    path: str

    def _run(self, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="etprof-chromium-") as profile:
            cmd = [self.path, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
            proc = subprocess.run(
                cmd,
                check=False,
                capture_output=True,
                text=True,
                timeout=180,
                stdin=subprocess.DEVNULL,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return proc

    def render(self, page: Path, png: Path, size: tuple[int, int] = SIZE) -> str:
        """Load `page` once: write its screenshot to `png` and return its DOM after rendering,
        as the browser serialises it."""
        proc = self._run(
            page, "--dump-dom", f"--screenshot={png}", f"--window-size={size[0]},{size[1]}"
        )
        if not png.exists():
            raise RuntimeError(f"chromium wrote no screenshot to {png}")
        return proc.stdout


# -- PNG ------------------------------------------------------------------------------------------


def read_png(path: Path) -> np.ndarray:
    """An 8-bit, non-interlaced RGB or RGBA PNG as a (height, width, 3 or 4) uint8 array."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError(f"{path} has no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    channels = {2: 3, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs are read here")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    rows = raw.reshape(height, width * channels + 1)
    return _unfilter(rows[:, 0], rows[:, 1:].reshape(height, width, channels))


def _unfilter(kinds: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """Undo PNG's per-row filters, one anti-diagonal of pixels at a time.

    A pixel depends on its left, upper and upper-left neighbours, which all lie on the two
    previous anti-diagonals, so each diagonal is one vectorised step whatever mix of filters the
    rows use (Chromium's encoder mixes Sub, Up and Paeth). The image is skewed (row r shifted
    right by r) so that a diagonal is a plain column slice.
    """
    h, w, ch = filtered.shape
    if int(kinds.max(initial=0)) > 4:
        raise ValueError("unknown PNG filter type")
    diagonals = h + w - 1
    # skewed[t, r] is the filtered pixel of row r on anti-diagonal t (column t - r)
    skewed = np.zeros((diagonals, h, ch), dtype=np.int16)
    rows = np.arange(h)
    for x in range(w):
        skewed[rows + x, rows] = filtered[:, x]
    # out[t + 2, r + 1] is the decoded pixel of row r on diagonal t; row 0 and diagonals 0-1
    # stay zero, which is what the filters read beyond the image's top and left edges
    out = np.zeros((diagonals + 2, h + 1, ch), dtype=np.int16)
    uses = [(kinds == kind).astype(np.int16)[:, None] for kind in (1, 2, 3, 4)]
    for t in range(diagonals):
        r0, r1 = max(0, t - w + 1), min(h - 1, t) + 1
        a = out[t + 1, r0 + 1 : r1 + 1]  # left
        b = out[t + 1, r0:r1]  # up
        c = out[t, r0:r1]  # up-left
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        sub, up, avg, pae = (u[r0:r1] for u in uses)
        pred = sub * a + up * b + avg * ((a + b) >> 1) + pae * paeth
        out[t + 2, r0 + 1 : r1 + 1] = (skewed[t, r0:r1] + pred) & 0xFF
    image = np.empty((h, w, ch), dtype=np.uint8)
    for x in range(w):
        image[:, x] = out[rows + x + 2, rows + 1]
    return image


def hex_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def count_color(pixels: np.ndarray, color: str, tolerance: int = 2) -> int:
    """Pixels within `tolerance` (per channel) of `color` ("#rrggbb")."""
    target = np.array(hex_rgb(color), dtype=np.int16)
    diff = np.abs(pixels[..., :3].astype(np.int16) - target)
    return int((diff.max(axis=-1) <= tolerance).sum())
