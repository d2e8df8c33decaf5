"""Errors that carry the name of the offending input field.

Every validation failure in theory-lab raises :class:`InputError`, whose message
names the field and the accepted range in one line; the CLI prints that line and
exits with code 2.
"""
from __future__ import annotations

import re


class InputError(ValueError):
    """Bad user input: ``field`` names the parameter, the message says what is accepted."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")

    def __reduce__(self):                 # picklable, so errors in worker processes arrive intact
        return (type(self), (self.field, self.message))


class BudgetExceeded(RuntimeError):
    """A run or campaign reached its time budget (a hard limit: the work stops there)."""


def check_range(field: str, value, low=None, high=None, *, integer: bool = False,
                low_open: bool = False, high_open: bool = False):
    """Validate ``low <= value <= high`` (bounds optional, open if asked); return the value.

    Rejects non-numbers, NaN and infinities with a message naming ``field``.
    """
    import math

    kind = "an integer" if integer else "a number"
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise InputError(field, f"got {value!r}; expected {kind} in {rng}")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise InputError(field, f"got {value!r}; expected {kind} in {rng}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise InputError(field, f"got {value!r}; expected a finite number in {rng}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        raise InputError(field, f"got {value!r}; accepted range {rng}")
    return value


def check_bool(field: str, value) -> bool:
    """A boolean: True/False, 1/0, or the words true/false, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
    raise InputError(field, f"got {value!r}; expected a boolean: true or false (yes/no, 1/0)")


def read_toml(path, field: str) -> dict:
    """Parse a TOML file; a missing file or malformed TOML is an InputError naming ``field``."""
    import tomllib
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InputError(field, f"no such file {str(path)!r}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(field, f"{path} is not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except OSError as exc:
        raise InputError(field, f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(field, f"malformed TOML in {path}: {exc}") from None


def probe_writable(field: str, folder, what: str) -> None:
    """Raise InputError naming ``field`` unless a file can be created in ``folder`` (tried with a
    probe file: permission bits say nothing to root, and a file in the way shows only then)."""
    import os
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(field, f"cannot write {what} ({exc.strerror or exc}); choose another path") from None


def writable_file(field: str, path) -> None:
    """Raise InputError naming ``field`` unless ``path`` can be created in its existing folder;
    checked before any work is done."""
    from pathlib import Path

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(field, f"{str(path)!r} is a folder; give a file path")
    if not parent.is_dir():
        raise InputError(field, f"folder {str(parent)!r} does not exist; create it or choose another path")
    probe_writable(field, parent, repr(str(path)))


def open_lock(path) -> int:
    """A lock file's descriptor: created owner-only if missing, never truncated, never opened through a
    symbolic link (OSError then, ELOOP)."""
    import os

    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


#: the name of a temporary made by :func:`atomic_write`: ``.<target>.tl-<pid>-<random>.tmp``
TEMP_PATTERN = re.compile(r"\.(?P<target>.+)\.tl-(?P<pid>[0-9]+)-[A-Za-z0-9_]+\.tmp")


def atomic_write(path, write, private: bool = False) -> None:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary ``.<name>.tl-<pid>-<random>.tmp``
    (created exclusively, :data:`TEMP_PATTERN`) in the same folder (the pid lets a later run remove
    the leftovers of its own writers that died, and nothing else), which is fsynced and renamed over
    ``path``; no reader ever sees half a file. The file gets the permissions the umask gives a new
    file, or owner-only ones with ``private``. OSError propagates and the temporary is removed."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tl-{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if not private:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
