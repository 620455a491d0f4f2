"""Secrets and the sealed folder: what a scored challenge or task is made from, kept where participants cannot look.

A score is only worth something if the truth cannot be recovered from what a participant is handed. The data
generator and the fault injector are deterministic, so whoever knows their seeds can regenerate the clean data and
diff it against the hand-out. Scored data is therefore made from a secret of 256 bits drawn from the OS
(`secrets.token_hex`), from which the data seed and the fault seed are derived separately (HMAC-SHA256, 128 bits
each): knowing one does not give the other, and the same secret gives the same bytes again.

The secret lives only in a sealed folder (mode 0700, files 0600) next to the truth it belongs to; hand-outs carry
neither. Public seeds (`--seed`) remain for teaching material that anyone may regenerate: never for scores.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets as _os_secrets
import tempfile
from pathlib import Path

import polars as pl

from .atomic import atomic_write
from .errors import DataError

# The simulation's own view of care, the ground truth behind every message: it never leaves the sealed side.
SIMULATION_ONLY = ("trajecten",)
SECRET_BYTES = 32
SECRET_FILE = "secret"
SEED_BITS = 128


def new_secret() -> str:
    """A fresh secret from the operating system's CSPRNG, as 64 hex characters (256 bits)."""
    return _os_secrets.token_hex(SECRET_BYTES)


def derive_seed(secret: str, purpose: str) -> int:
    """A 128-bit seed for one purpose ("data", "faults", ...) of a secret; other purposes give unrelated seeds."""
    digest = hmac.new(bytes.fromhex(secret), purpose.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[: SEED_BITS // 8], "big")


def derive_id(secret: str, purpose: str = "id", length: int = 12) -> str:
    """A public name for what the secret made (e.g. a challenge id) that reveals nothing of the secret."""
    return hmac.new(bytes.fromhex(secret), purpose.encode(), hashlib.sha256).hexdigest()[:length]


def check_secret(secret: str) -> str:
    try:
        ok = len(bytes.fromhex(secret)) >= 16
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError("secret: not a hex string of at least 128 bits; allowed: the output of new_secret()")
    return secret


def seal(folder: str | Path) -> Path:
    """Create `folder` (and its parents) readable by its owner only."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def write_secret(folder: str | Path, secret: str) -> Path:
    path = seal(folder) / SECRET_FILE
    with atomic_write(path, mode=0o600) as tmp:
        tmp.write_text(check_secret(secret) + "\n", encoding="utf-8")
    return path


def read_secret(folder: str | Path) -> str:
    path = Path(folder) / SECRET_FILE
    try:
        return check_secret(path.read_text(encoding="utf-8").strip())
    except OSError:
        raise DataError(f"{path}: no sealed secret here") from None


def project_secret(folder: str | Path) -> str:
    """The secret of `folder`, created on first use (atomically: two first users end up with the same one)."""
    folder = seal(folder)
    path = folder / SECRET_FILE
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".secret.", suffix=".tmp", dir=folder)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_secret() + "\n")
        try:
            os.link(tmp, path)          # fails if another process created it first: then theirs is the secret
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return read_secret(folder)


def write_truth(path: str | Path, truth: pl.DataFrame) -> Path:
    """A truth table into a sealed folder: watermarked Parquet, owner-only, written atomically."""
    from .dataset import write_table
    from .privacy import WATERMARK_KEY

    path = Path(path)
    seal(path.parent)
    with atomic_write(path, mode=0o600) as tmp:
        write_table(truth, tmp, {WATERMARK_KEY: b"true"})
    return path
