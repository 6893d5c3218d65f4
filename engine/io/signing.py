"""Signed models: an Ed25519 signature over the exact bytes of ``manifest.json``.

The manifest holds the sha256 of every file in the model directory, so one
signature over its bytes covers every byte of the model: :func:`check_signature`
verifies the signature first, then the hashes are checked against the signed
manifest. The signature lives in ``signature.json`` beside the manifest (not
listed in it)::

    {"format": 1, "algorithm": "ed25519", "key": "SHA256:<fingerprint>",
     "signature": "<base64 of 64 bytes>"}

What is signed is ``b"ensemble-engine model manifest v1\\0" + manifest bytes``:
the prefix keeps a signature made here from being valid for anything else the
same key signs (an SSH login, a git commit).

Why Ed25519 through ``cryptography``: the library is maintained by the Python
Cryptographic Authority on OpenSSL, already in our lock file and reviewed far
more than anything we could write; Ed25519 has one parameter set (nothing to
choose wrong), small keys (one line in a trusted-keys file), and deterministic
signatures (no per-signature random nonce whose reuse leaks the key, as with
ECDSA). ``cryptography`` reads OpenSSH keys too, so ``ssh-keygen -t ed25519``
keys work and fingerprints read like ``ssh-keygen -lf`` prints them. Sigstore
needs a network and an identity provider, GnuPG an external program and keyring.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EnsembleError, ModelDirectoryError
from engine.io.atomic import atomic_write, locked
from engine.io.files import MAX_JSON_BYTES, parse_json, read_bytes
from engine.io.integrity import MANIFEST, SIGNATURE, verify_files
from engine.io.schema import MANIFEST_SCHEMA, SIGNATURE_SCHEMA, validate

DOMAIN = b"ensemble-engine model manifest v1\0"
TRUSTED_KEYS_ENV = "ENSEMBLE_TRUSTED_KEYS"
REQUIRE_ENV = "ENSEMBLE_REQUIRE_SIGNATURE"
PASSPHRASE_ENV = "ENSEMBLE_KEY_PASSPHRASE"
MAX_KEY_BYTES = 1 << 20  # a key, a trusted-keys file or a signature.json: far less
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class SignatureError(ModelDirectoryError):
    """A signature is missing, invalid, by an untrusted key, or a key cannot be used."""


@dataclass(frozen=True)
class TrustPolicy:
    """Which public keys are trusted, and whether an unsigned model is an error.

    ``keys`` maps each trusted key's fingerprint to the key; ``source`` says
    where they came from, for messages. A policy is hashable (a model loaded once
    per process is keyed by the policy it was verified with) and pickles as its
    keys' OpenSSH lines, so a worker process verifies with the policy its parent
    chose, not with whatever its own environment held when it started.
    """

    keys: dict[str, Any]
    require: bool = False
    source: str = field(default="", compare=False)  # the same keys by another path: equal

    def __hash__(self) -> int:
        return hash((frozenset(self.keys), self.require))

    def __dask_tokenize__(self) -> tuple[Any, ...]:  # Dask names tasks by their arguments
        return tuple(sorted(self.keys)), self.require

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # cryptography's key objects do not pickle
        return _policy_from_lines, (tuple(public_line(k) for k in self.keys.values()),
                                    self.require, self.source)


def _policy_from_lines(lines: tuple[str, ...], require: bool, source: str) -> TrustPolicy:
    keys = parse_public_keys("\n".join(lines).encode(), source or "the keys given")
    return TrustPolicy({fingerprint(k): k for k in keys}, require, source)


def _read_small(path: Path, what: str, mask: int = 0) -> bytes:
    """A small regular file's bytes, never through a symbolic link.

    ``mask``: permission bits that must be clear, as OpenSSH insists (0o022 for
    keys that decide whom to trust: no one else may add one; 0o077 for a
    private key: no one else may read it).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise SignatureError(f"cannot read {what} {path} ({exc.strerror}); check the path "
                             f"and its permissions") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KEY_BYTES:
            raise SignatureError(f"{what} {path} is not a small regular file; refusing to read it")
        if stat.S_IMODE(info.st_mode) & mask:
            who = "read" if mask & 0o044 else "change"
            raise SignatureError(f"{what} {path} has mode {stat.S_IMODE(info.st_mode):o}: others "
                                 f"can {who} it; run chmod {0o777 & ~mask & ~0o111:o} {path}")
        return handle.read(MAX_KEY_BYTES + 1)


def fingerprint(public_key: Any) -> str:
    """``SHA256:...`` of the key's OpenSSH encoding, as ``ssh-keygen -lf`` prints it."""
    from cryptography.hazmat.primitives import serialization

    line = public_key.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_line(public_key: Any) -> str:
    """The key as one OpenSSH line (``ssh-ed25519 AAAA...``), for a trusted-keys file."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH).decode()


def _ed25519(key: Any, where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if not isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        raise SignatureError(f"{where} is a {type(key).__name__.replace('_', '')} key; model "
                             f"signatures use Ed25519 keys: make one with `ensemble keygen "
                             f"KEYFILE` (or ssh-keygen -t ed25519)")
    return key


def parse_public_keys(text: bytes, where: str) -> list[Any]:
    """Every public key in ``text``: OpenSSH lines and/or PEM blocks (``#`` comments)."""
    from cryptography.hazmat.primitives import serialization

    keys, pem = [], []
    for number, raw in enumerate(text.decode("utf-8", "replace").splitlines(), 1):
        line = raw.strip()
        if pem or line.startswith("-----BEGIN"):
            pem.append(line)
            if line.startswith("-----END"):
                block = "\n".join(pem).encode()
                pem = []
                if b"PRIVATE KEY" in block:
                    raise SignatureError(f"{where} holds a private key; give the public key "
                                         f"(KEYFILE.pub from `ensemble keygen`), and keep the "
                                         f"private one secret")
                try:
                    key = serialization.load_pem_public_key(block)
                except ValueError:
                    raise SignatureError(f"{where}: a PEM block ending on line {number} is not "
                                         f"a public key") from None
                keys.append(_ed25519(key, where))
            continue
        if not line or line.startswith("#"):
            continue
        if line.split(None, 1)[0].endswith("-cert-v01@openssh.com"):
            # cryptography would return the certified key and drop what the certificate
            # limits (validity, principals, its CA), which we do not check
            raise SignatureError(f"{where}, line {number}: an OpenSSH certificate, whose limits "
                                 f"are not checked here; give the plain public key "
                                 f"(ssh-ed25519 AAAA..., the KEYFILE.pub beside it)")
        try:
            key = serialization.load_ssh_public_key(line.encode())
        except (ValueError, IndexError):
            raise SignatureError(f"{where}, line {number}: not a public key; each line must be "
                                 f"one OpenSSH public key (ssh-ed25519 AAAA...)") from None
        except Exception as exc:  # cryptography's UnsupportedAlgorithm for unknown key types
            raise SignatureError(f"{where}, line {number}: unsupported key "
                                 f"({type(exc).__name__}); use an Ed25519 key") from None
        keys.append(_ed25519(key, f"{where}, line {number}"))
    if pem:
        raise SignatureError(f"{where}: a PEM block has no END line")
    return keys


def _as_keys(item: Any) -> tuple[list[Any], str]:
    """Public keys from a key object, PEM/OpenSSH text or bytes, or a path to a file of them."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if isinstance(item, ed25519.Ed25519PublicKey):
        return [item], "the key given"
    if isinstance(item, ed25519.Ed25519PrivateKey):
        return [item.public_key()], "the key given"
    if isinstance(item, bytes):
        return parse_public_keys(item, "the key given"), "the key given"
    if isinstance(item, str) and (item.startswith(("ssh-", "-----BEGIN")) or "\n" in item):
        return parse_public_keys(item.encode(), "the key given"), "the key given"
    if isinstance(item, (str, os.PathLike)):
        path = Path(item).expanduser()
        return (parse_public_keys(_read_small(path, "trusted-keys file", 0o022), str(path)),
                str(path))
    _ed25519(item, "the key given")  # raises with the fix
    raise AssertionError


def signature_required_by_env() -> bool:
    """``$ENSEMBLE_REQUIRE_SIGNATURE`` read strictly: a value neither on nor off is an error.

    Reading ``on`` or ``enabled`` as off would load unsigned models the user meant to refuse.
    """
    value = os.environ.get(REQUIRE_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise SignatureError(f"{REQUIRE_ENV}={os.environ[REQUIRE_ENV]!r} is neither on nor off; "
                         f"set it to 1 (require signatures) or 0")


def trust_policy(verify_with: Any = None, require_signature: bool | None = None) -> TrustPolicy:
    """The policy of :func:`engine.load`: keys given, else ``$ENSEMBLE_TRUSTED_KEYS``.

    Giving keys requires a signature, as ``--trusted-keys`` does: ``verify_with``
    unless ``require_signature=False``, ``$ENSEMBLE_TRUSTED_KEYS`` unless
    ``$ENSEMBLE_REQUIRE_SIGNATURE`` is set off (with keys but no requirement,
    deleting ``signature.json`` turned "signed by an untrusted key: refused" into
    "unsigned: loaded"). ``$ENSEMBLE_REQUIRE_SIGNATURE=1`` (the CLI's
    ``--require-signature``) makes unsigned models an error. A ``TrustPolicy``
    given as ``verify_with`` is returned as it is (what a worker process is
    handed by its parent).
    """
    if isinstance(verify_with, TrustPolicy):
        if require_signature is not None:
            raise ValueError("require_signature is part of the TrustPolicy given; pass one "
                             "or the other")
        return verify_with
    from_env = signature_required_by_env()
    if verify_with is None and os.environ.get(TRUSTED_KEYS_ENV):
        verify_with = os.environ[TRUSTED_KEYS_ENV]
        implied = not os.environ.get(REQUIRE_ENV, "").strip()  # unless explicitly off
    else:
        implied = verify_with is not None
    require = (implied or from_env) if require_signature is None else require_signature
    if verify_with is None:
        return TrustPolicy({}, require, "")
    items = verify_with if isinstance(verify_with, (list, tuple, set)) else [verify_with]
    keys, sources = {}, []
    for item in items:
        found, source = _as_keys(item)
        keys.update({fingerprint(k): k for k in found})
        sources.append(source)
    if not keys:
        raise SignatureError(f"no public keys in {', '.join(sources)}; add one OpenSSH public "
                             f"key per line (the KEYFILE.pub `ensemble keygen` writes)")
    return TrustPolicy(keys, require, ", ".join(dict.fromkeys(sources)))


def _read_signature(path: Path) -> dict[str, Any] | None:
    file = path / SIGNATURE
    if not os.path.lexists(file):
        return None
    try:
        record = validate(parse_json(read_bytes(file, MAX_KEY_BYTES), SIGNATURE),
                          SIGNATURE_SCHEMA, SIGNATURE)
        return {**record, "bytes": base64.b64decode(record["signature"], validate=True)}
    except (ModelDirectoryError, ValueError) as exc:
        reason = str(exc).removesuffix("; refusing to load")
        raise SignatureError(f"{file} is not a valid ensemble-engine signature ({reason}); the "
                             f"model is not the one that was signed: get it again from its "
                             f"author") from None


def check_signature(path: Path, manifest: dict[str, Any], policy: TrustPolicy
                    ) -> str | None:
    """Verify ``signature.json`` over the manifest's bytes; the signer's fingerprint, or None.

    Reads ``manifest.json`` again and checks it parses to ``manifest`` (what
    the loader will use), so the bytes verified are the bytes obeyed. An
    unsigned model passes unless ``policy.require``; a signed model must be
    signed by a trusted key when keys are given (with no keys configured, its
    signature cannot say who wrote it, and it loads as an unsigned model).
    """
    from cryptography.exceptions import InvalidSignature

    record = _read_signature(path)
    if record is None:
        if policy.require:
            raise SignatureError(f"{path} is not signed and a signature is required; ask its "
                                 f"author to sign it (ensemble sign MODEL --key KEYFILE), or "
                                 f"if you trust its source, load it with --allow-unsigned "
                                 f"(and without --require-signature)")
        return None
    if not policy.keys:
        if policy.require:
            raise SignatureError(f"{path} is signed by key {record['key']}, but no trusted keys "
                                 f"are configured; pass --trusted-keys FILE (or set "
                                 f"{TRUSTED_KEYS_ENV}) with its author's public key")
        return None
    key = policy.keys.get(record["key"])
    if key is None:
        raise SignatureError(f"{path} is signed by key {record['key']}, which is not among the "
                             f"trusted keys ({policy.source}); add its author's public key "
                             f"there only if you trust them, or get the model from a trusted "
                             f"author")
    data = read_bytes(path / MANIFEST, MAX_JSON_BYTES)
    try:
        key.verify(record["bytes"], DOMAIN + data)
    except InvalidSignature:
        raise SignatureError(f"{MANIFEST} in {path} is NOT the manifest that key {record['key']} "
                             f"signed (the signature does not match): the model was changed "
                             f"after it was signed; do not use it, get it again from its "
                             f"author") from None
    if parse_json(data, MANIFEST) != manifest:
        raise SignatureError(f"{MANIFEST} in {path} changed while it was being loaded; "
                             f"load it again")
    return record["key"]


class signed_files:  # noqa: N801 - used as a context manager, like contextlib's
    """Around the hash checks of a signed model: a changed file is NOT the signed one."""

    def __init__(self, signer: str | None) -> None:
        self.signer = signer

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if self.signer and isinstance(exc, ModelDirectoryError) and \
                not isinstance(exc, SignatureError):
            what = str(exc).split(";")[0]  # names the file; its advice is for unsigned models
            raise SignatureError(f"{what}: this model is signed by key {self.signer} and this "
                                 f"is NOT the model that was signed; do not use it, get it "
                                 f"again from its author") from exc


def load_private_key(path: str | Path) -> Any:
    """An Ed25519 private key from a PEM (PKCS#8) or OpenSSH file.

    An encrypted key's passphrase comes from ``$ENSEMBLE_KEY_PASSPHRASE``, or
    is asked for on a terminal.
    """
    from cryptography.hazmat.primitives import serialization

    path = Path(path).expanduser()
    data = _read_small(path, "private key", 0o077)
    loader = serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data \
        else serialization.load_pem_private_key
    passphrase = os.environ.get(PASSPHRASE_ENV)
    for attempt in range(2):
        try:
            key = loader(data, password=passphrase.encode() if passphrase else None)
            break
        except TypeError:  # encrypted and no passphrase (or one given for a plain key)
            if passphrase is None and attempt == 0 and os.isatty(0):
                import getpass

                passphrase = getpass.getpass(f"passphrase for {path}: ")
                continue
            raise SignatureError(f"{path} is encrypted: set {PASSPHRASE_ENV} or run on a "
                                 f"terminal to type its passphrase") from None
        except ValueError:
            raise SignatureError(f"{path} is not a private key this can read (or the "
                                 f"passphrase is wrong); make one with `ensemble keygen "
                                 f"KEYFILE`") from None
        except Exception as exc:  # UnsupportedAlgorithm
            raise SignatureError(f"{path}: unsupported key ({type(exc).__name__}); use an "
                                 f"Ed25519 key") from None
    return _ed25519(key, str(path))


def generate_key(path: str | Path) -> tuple[Path, Path, str]:
    """Write a new Ed25519 private key (PEM, mode 0600) and ``PATH.pub``; never overwrites.

    Returns the two paths and the key's fingerprint.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private, public = Path(path).expanduser(), Path(f"{path}.pub").expanduser()
    for target in (private, public):
        if os.path.lexists(target):
            raise EnsembleError(f"{target} already exists; refusing to overwrite a key: "
                                f"choose another file name")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
    with os.fdopen(os.open(private, flags, 0o600), "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(pem)
    with os.fdopen(os.open(public, flags, 0o644), "w") as handle:
        handle.write(public_line(key.public_key()) + " ensemble-engine\n")
    return private, public, fingerprint(key.public_key())


def sign_model(path: str | Path, key_path: str | Path) -> str:
    """Sign the model directory ``path`` with the private key at ``key_path``.

    The files are checked against the manifest first (a changed model is
    never signed), under the save lock so no save swaps the directory
    meanwhile; ``signature.json`` is written atomically. Returns the fingerprint.
    """
    path = Path(os.path.abspath(path))  # `sign .`: lock and temporaries beside the model
    key = load_private_key(key_path)
    if not (path / MANIFEST).is_file() or path.is_symlink():
        raise EnsembleError(f"{path} is not a model directory (no {MANIFEST}); sign the "
                            f"directory `ensemble fit` wrote")
    with locked(path, wait_for_readers=True):
        data = read_bytes(path / MANIFEST, MAX_JSON_BYTES)
        try:
            files = validate(parse_json(data, MANIFEST), MANIFEST_SCHEMA, MANIFEST)["files"]
        except ModelDirectoryError as exc:
            raise EnsembleError(f"{str(exc).removesuffix('; refusing to load')}; refusing to "
                                f"sign it") from None
        verify_files(path, files, MANIFEST)
        signer = fingerprint(key.public_key())
        record = {"format": 1, "algorithm": "ed25519", "key": signer,
                  "signature": base64.b64encode(key.sign(DOMAIN + data)).decode()}
        with atomic_write(path / SIGNATURE, tmp_for=path) as handle:
            handle.write(json.dumps(record, indent=2) + "\n")
    return signer


def is_signed(path: str | Path) -> bool:
    """Whether ``path`` holds a signature file (verified or not)."""
    return os.path.lexists(Path(path) / SIGNATURE)


def keys_in(items: Iterable[Any]) -> list[str]:
    """Fingerprints of the public keys in ``items`` (for messages and ``ensemble keygen``)."""
    return [fingerprint(k) for item in items for k in _as_keys(item)[0]]
