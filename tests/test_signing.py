"""Signed models: who wrote a model, not just whether it changed (engine.io.signing)."""

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from engine import Ensemble, load
from engine.cli import main
from engine.errors import ModelDirectoryError
from engine.io.integrity import sha256_file
from engine.io.signing import SignatureError, generate_key, sign_model


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    author, _, author_fp = generate_key(root / "author.pem")
    stranger, _, _ = generate_key(root / "stranger.pem")
    return {"author": author, "author_pub": root / "author.pem.pub", "author_fp": author_fp,
            "stranger": stranger, "stranger_pub": root / "stranger.pem.pub", "root": root}


@pytest.fixture(scope="module")
def signed_model(tmp_path_factory, small_tweets, keys):
    root = tmp_path_factory.mktemp("signed")
    train = small_tweets.iloc[:300]
    Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking", cv=2,
             random_state=0).fit(train, train["target"]).save(root / "model",
                                                              {"text": "text", "id": "id"})
    shutil.copytree(root / "model", root / "unsigned")
    assert main(["sign", str(root / "model"), "--key", str(keys["author"])]) == 0
    small_tweets.iloc[300:320].to_csv(root / "test.csv", index=False)
    return root


@pytest.fixture
def copy(signed_model, tmp_path):
    shutil.copytree(signed_model / "model", tmp_path / "model")
    return tmp_path / "model"


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    assert main(["keygen", str(tmp_path / "k.pem")]) == 0
    assert stat.S_IMODE(os.stat(tmp_path / "k.pem").st_mode) == 0o600
    assert (tmp_path / "k.pem.pub").read_text().startswith("ssh-ed25519 ")
    before = (tmp_path / "k.pem").read_bytes()
    assert main(["keygen", str(tmp_path / "k.pem")]) == 2
    assert (tmp_path / "k.pem").read_bytes() == before


def test_signed_model_loads_with_its_authors_key_and_says_who_signed(signed_model, keys):
    names = sorted(p.name for p in (signed_model / "model").iterdir())
    assert names == ["combiner", "manifest.json", "members", "oof.npz", "signature.json"]
    assert not [p for p in signed_model.iterdir() if ".tmp-" in p.name]  # written atomically
    model = load(signed_model / "model", verify_with=keys["author_pub"])
    assert model.signer_ == keys["author_fp"]
    # the public key as text, or as a key object, works too
    pub = serialization.load_ssh_public_key(keys["author_pub"].read_bytes())
    assert load(signed_model / "model", verify_with=[pub]).signer_ == keys["author_fp"]


def test_cli_predicts_with_a_required_signature(signed_model, keys, tmp_path):
    out = tmp_path / "p.csv"
    assert main(["predict", str(signed_model / "model"), str(signed_model / "test.csv"), "-o",
                 str(out), "--trusted-keys", str(keys["author_pub"]),
                 "--require-signature", "--cache-features"]) == 0
    assert len(out.read_text().splitlines()) == 21
    for name in ("ENSEMBLE_REQUIRE_SIGNATURE", "ENSEMBLE_TRUSTED_KEYS",
                 "ENSEMBLE_CACHE_PREDICTIONS"):
        assert name not in os.environ  # the flags did not leak into the caller's next call


def rehash(model, relative):
    """What an attacker does after changing a file: make the manifest match again."""
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["files"][relative] = sha256_file(model / relative)
    (model / "manifest.json").write_text(json.dumps(manifest, indent=2))


def flip(path):
    """Change one byte in the middle of ``path``."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def swap_meta_learner(model):
    """The red team's attack: change the stacking meta-learner's file (then rehash it)."""
    victim = max((p for p in (model / "combiner").rglob("*") if p.is_file()),
                 key=lambda p: p.stat().st_size)
    flip(victim)
    return victim.relative_to(model).as_posix()


def test_rehashed_manifest_of_a_signed_model_is_refused(copy, keys):
    relative = swap_meta_learner(copy)
    rehash(copy, relative)
    with pytest.raises(SignatureError, match="NOT the manifest that key .* signed"):
        load(copy, verify_with=keys["author_pub"])


def test_changed_file_of_a_signed_model_is_named_and_not_the_signed_model(copy, keys):
    relative = swap_meta_learner(copy)
    with pytest.raises(SignatureError, match=f"'{relative}'.*NOT the model that was signed"):
        load(copy, verify_with=keys["author_pub"])


def test_unsigned_changed_model_has_changed_since_saved_not_tampered(signed_model, tmp_path):
    model = tmp_path / "unsigned"
    shutil.copytree(signed_model / "unsigned", model)
    flip(model / "oof.npz")
    with pytest.raises(ModelDirectoryError, match="'oof.npz' has changed since it was saved") \
            as raised:
        load(model)
    assert "tamper" not in str(raised.value)


def test_unsigned_model_loads_as_before_unless_a_signature_is_required(signed_model, keys,
                                                                         capsys):
    assert load(signed_model / "unsigned").signer_ is None
    with pytest.raises(SignatureError, match="not signed and a signature is required"):
        load(signed_model / "unsigned", verify_with=keys["author_pub"])  # a key implies it
    with pytest.raises(SignatureError, match="not signed"):
        load(signed_model / "unsigned", require_signature=True)
    argv = ["evaluate", str(signed_model / "unsigned"), "--require-signature",
            "--trusted-keys", str(keys["author_pub"])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not signed" in err and err.count("\n") == 1
    assert main(argv[:3]) == 2  # no keys to trust: said before anything loads
    assert "--trusted-keys FILE" in capsys.readouterr().err


def test_keys_on_the_command_line_refuse_unsigned_models_unless_allowed(signed_model, keys,
                                                                          monkeypatch, capsys):
    unsigned = ["evaluate", str(signed_model / "unsigned")]
    keys_flag = ["--trusted-keys", str(keys["author_pub"])]
    assert main(unsigned + keys_flag) == 2  # as verify_with= does in the API
    err = capsys.readouterr().err
    assert "not signed" in err and "--allow-unsigned" in err and err.count("\n") == 1
    assert main(unsigned + keys_flag + ["--allow-unsigned"]) == 0
    assert main(["evaluate", str(signed_model / "model")] + keys_flag) == 0  # signed: fine
    monkeypatch.setenv("ENSEMBLE_TRUSTED_KEYS", str(keys["author_pub"]))
    assert main(unsigned) == 2  # keys from the environment require a signature too
    assert "not signed" in capsys.readouterr().err
    monkeypatch.setenv("ENSEMBLE_REQUIRE_SIGNATURE", "0")  # unless explicitly off
    assert main(unsigned) == 0
    monkeypatch.delenv("ENSEMBLE_REQUIRE_SIGNATURE")
    monkeypatch.delenv("ENSEMBLE_TRUSTED_KEYS")
    for argv, message in ((["--trusted-keys", ""], "--trusted-keys got an empty path"),
                          (["--allow-unsigned"], "--allow-unsigned goes with --trusted-keys")):
        assert main(unsigned + argv) == 2  # `--trusted-keys "$UNSET"` is not "no check"
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    with pytest.raises(SystemExit):  # argparse: one usage line, then the error
        main(unsigned + ["--require-signature", "--allow-unsigned"])
    assert "not allowed with argument --require-signature" in capsys.readouterr().err


def test_signature_by_an_untrusted_key_is_refused(copy, keys):
    sign_model(copy, keys["stranger"])
    with pytest.raises(SignatureError, match="not among the trusted keys.*add its author"):
        load(copy, verify_with=keys["author_pub"])


@pytest.mark.parametrize("text, reason", [
    ('{"algorithm": "ed25519", "key": "x"}', "is not valid at"),
    ("[" * 100_000 + "]" * 100_000, "nests deeper than"),
    ('{"format": 1, "algorithm": "ed25519", "key": "SHA256:' + "A" * 43
     + '", "signature": "' + "A" * 86 + '==", "run": "os:system"}', "Additional properties"),
    ("\x00" * 10, "not valid JSON"),
])
def test_garbled_signature_file_is_refused_in_one_line(copy, keys, text, reason):
    (copy / "signature.json").write_text(text)
    with pytest.raises(SignatureError, match="not a valid ensemble-engine signature") as info:
        load(copy, verify_with=keys["author_pub"])
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_a_changed_model_is_never_signed(signed_model, keys, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(signed_model / "unsigned", model)
    flip(model / "oof.npz")
    assert main(["sign", str(model), "--key", str(keys["author"])]) == 2
    assert "'oof.npz' has changed" in capsys.readouterr().err
    assert not (model / "signature.json").exists()


def test_recombine_drops_the_signature_and_says_so(signed_model, keys, tmp_path, capsys):
    out = tmp_path / "mean"
    assert main(["recombine", str(signed_model / "model"), "--combiner", "mean", "-o", str(out),
                 "--trusted-keys", str(keys["author_pub"])]) == 0
    assert "not signed" in capsys.readouterr().out and not (out / "signature.json").exists()
    with pytest.raises(SignatureError, match="not signed"):
        load(out, verify_with=keys["author_pub"])
    in_place = tmp_path / "in-place"
    shutil.copytree(signed_model / "model", in_place)
    assert main(["recombine", str(in_place), "--combiner", "mean"]) == 0  # no keys configured
    assert "is a new model, so it is not signed" in capsys.readouterr().out
    assert not (in_place / "signature.json").exists()


def test_openssh_keys_sign_and_verify(copy, tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "id_ed25519").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    os.chmod(tmp_path / "id_ed25519", 0o600)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH)
    (tmp_path / "trusted").write_bytes(b"# our team\n" + line + b" alice@example\n")
    signer = sign_model(copy, tmp_path / "id_ed25519")
    assert load(copy, verify_with=tmp_path / "trusted").signer_ == signer


@pytest.mark.parametrize("content, message", [
    (b"ssh-ed25519 not-base64!\n", "line 1: not a public key"),
    (b"", "no public keys"),
    ("rsa", "use an Ed25519 key|Ed25519 keys"),
    ("private", "holds a private key"),
    ("certificate", "line 1: an OpenSSH certificate"),  # its expiry would go unchecked
])
def test_bad_trusted_keys_are_one_line_errors_that_say_what_to_do(signed_model, tmp_path,
                                                                    capsys, content, message):
    if content == "rsa":
        content = rsa.generate_private_key(65537, 2048).public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    elif content == "private":
        content = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
    elif content == "certificate":
        ca, now = ed25519.Ed25519PrivateKey.generate(), int(time.time())
        cert = (serialization.SSHCertificateBuilder()
                .public_key(ed25519.Ed25519PrivateKey.generate().public_key())
                .type(serialization.SSHCertificateType.USER).valid_principals([b"alice"])
                .valid_after(now - 3600).valid_before(now - 60).sign(ca))  # expired
        content = cert.public_bytes()
    (tmp_path / "trusted").write_bytes(content)
    assert main(["evaluate", str(signed_model / "model"), "--trusted-keys",
                 str(tmp_path / "trusted")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert any(m in err for m in message.split("|")), err


def test_unreadable_or_wrong_type_signing_key_is_a_one_line_error(signed_model, keys, tmp_path,
                                                                    capsys):
    rsa_key = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    (tmp_path / "rsa.pem").write_bytes(rsa_key)
    os.chmod(tmp_path / "rsa.pem", 0o600)
    shutil.copy(keys["author"], tmp_path / "shared.pem")
    os.chmod(tmp_path / "shared.pem", 0o644)
    for key, message in ((tmp_path / "missing.pem", "cannot read private key"),
                         (tmp_path / "rsa.pem", "Ed25519"),
                         (tmp_path / "shared.pem", "others can read it; run chmod 600")):
        assert main(["sign", str(signed_model / "unsigned"), "--key", str(key)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (signed_model / "unsigned" / "signature.json").exists()


def test_a_trusted_keys_file_others_can_change_is_refused(signed_model, keys, tmp_path):
    trusted = tmp_path / "trusted"
    shutil.copy(keys["author_pub"], trusted)
    os.chmod(trusted, 0o666)
    with pytest.raises(SignatureError, match="others can change it; run chmod 644"):
        load(signed_model / "model", verify_with=trusted)


@pytest.mark.parametrize("value", ["on", "ON", " yes ", "1"])
def test_any_on_value_of_the_environment_requires_a_signature(signed_model, keys, value,
                                                              monkeypatch):
    monkeypatch.setenv("ENSEMBLE_REQUIRE_SIGNATURE", value)
    with pytest.raises(SignatureError, match="not signed"):
        load(signed_model / "unsigned")


def test_an_unclear_environment_value_is_an_error_not_off(signed_model, keys, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("ENSEMBLE_REQUIRE_SIGNATURE", "enabled")
    monkeypatch.setenv("ENSEMBLE_TRUSTED_KEYS", str(keys["author_pub"]))
    assert main(["evaluate", str(signed_model / "unsigned")]) == 2
    err = capsys.readouterr().err
    assert "'enabled' is neither on nor off" in err and err.count("\n") == 1


def test_signing_from_inside_the_model_directory_leaves_it_loadable(signed_model, keys,
                                                                    tmp_path, monkeypatch):
    shutil.copytree(signed_model / "unsigned", tmp_path / "m")
    monkeypatch.chdir(tmp_path / "m")
    assert main(["sign", ".", "--key", str(keys["author"])]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock", "m"]
    assert load(tmp_path / "m", verify_with=keys["author_pub"]).signer_ == keys["author_fp"]


def test_serve_with_workers_refuses_an_untrusted_signer_in_one_line(signed_model, keys):
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "serve", str(signed_model / "model"), "--port", "0",
         "--workers", "2", "--trusted-keys", str(keys["stranger_pub"]), "--require-signature"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 2 and "serving" not in done.stdout
    assert "not among the trusted keys" in done.stderr and done.stderr.count("\n") == 1


def test_reused_worker_processes_verify_with_the_callers_policy(signed_model, keys,
                                                                monkeypatch):
    from engine.streaming import predict_chunks

    unsigned, data = signed_model / "unsigned", signed_model / "test.csv"
    monkeypatch.delenv("ENSEMBLE_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("ENSEMBLE_REQUIRE_SIGNATURE", raising=False)
    assert sum(len(p) for _, p in predict_chunks(unsigned, data, {}, 10, n_jobs=2)) == 20
    # the same worker processes, started without keys, are handed this call's policy
    monkeypatch.setenv("ENSEMBLE_TRUSTED_KEYS", str(keys["author_pub"]))
    monkeypatch.setenv("ENSEMBLE_REQUIRE_SIGNATURE", "1")
    with pytest.raises(SignatureError, match="not signed and a signature is required"):
        list(predict_chunks(unsigned, data, {}, 10, n_jobs=2))
    assert sum(len(p) for _, p in predict_chunks(signed_model / "model", data, {}, 10,
                                                 n_jobs=2)) == 20


def test_a_model_signed_after_it_was_loaded_reports_its_signer_when_loaded_again(copy, keys):
    from engine.io.signing import trust_policy
    from engine.streaming import loaded

    (copy / "signature.json").unlink()
    policy = trust_policy(keys["author_pub"], require_signature=False)
    assert loaded(str(copy), (), policy).signer_ is None
    sign_model(copy, keys["author"])  # changes signature.json only, not the manifest
    assert loaded(str(copy), (), policy).signer_ == keys["author_fp"]
    (copy / "signature.json").unlink()
    strict = trust_policy(keys["author_pub"])
    with pytest.raises(SignatureError, match="not signed"):
        loaded(str(copy), (), strict)


def test_deleting_the_signature_does_not_downgrade_environment_keys(signed_model, keys,
                                                                    tmp_path, monkeypatch):
    """Keys in ENSEMBLE_TRUSTED_KEYS: a model signed by an untrusted key is refused, and
    so is the same model with its signature.json deleted (it loaded as unsigned)."""
    model = tmp_path / "m"
    shutil.copytree(signed_model / "model", model)
    monkeypatch.delenv("ENSEMBLE_REQUIRE_SIGNATURE", raising=False)
    monkeypatch.setenv("ENSEMBLE_TRUSTED_KEYS", str(keys["stranger_pub"]))
    with pytest.raises(SignatureError, match="not among the trusted keys"):
        load(model)
    (model / "signature.json").unlink()
    with pytest.raises(SignatureError, match="not signed and a signature is required"):
        load(model)
