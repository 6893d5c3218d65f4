"""The feature cache is private to its user, keyed, and `cache clear` deletes only its own."""

import hashlib
import os
import stat

import numpy as np
import pytest

from engine.cli import main
from engine.encoder import Encoder
from engine.features import CacheError, FeatureCache, _key


class Lengths(Encoder):
    name, dim, identity = "lengths-test", 2, "lengths-test:1"

    def _encode(self, texts):
        return [[len(t), 1.0] for t in texts]


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


def test_cache_folders_are_0700_and_files_0600(cache_dir):
    FeatureCache(cache_dir).encode(Lengths(), ["a tweet", "another"])
    paths = [cache_dir, *cache_dir.rglob("*")]
    assert {mode(p) for p in paths if p.is_dir()} == {0o700}
    assert {mode(p) for p in paths if p.is_file()} == {0o600}
    names = {p.name for p in cache_dir.rglob("*")}
    assert hashlib.sha256(b"a tweet").hexdigest() not in names  # names are keyed hashes
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith(
        "Signature: 8a477f597d28d172789f06886806bc55")


def test_a_cache_others_may_write_to_is_refused(cache_dir):
    cache_dir.mkdir(mode=0o700)
    os.chmod(cache_dir, 0o777)  # e.g. ENSEMBLE_CACHE_DIR=/tmp/shared
    with pytest.raises(CacheError, match="writable by other users.*chmod 700"):
        FeatureCache(cache_dir).encode(Lengths(), ["x"])
    assert list(cache_dir.iterdir()) == []  # nothing written there


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="making a folder someone else's needs root")
def test_a_cache_someone_else_owns_is_refused(cache_dir):
    cache_dir.mkdir(mode=0o700)
    os.chown(cache_dir, 12345, 12345)
    with pytest.raises(CacheError, match="belongs to another user"):
        FeatureCache(cache_dir).encode(Lengths(), ["x"])


def test_a_planted_entry_is_recomputed_not_returned(cache_dir):
    cache = FeatureCache(cache_dir)
    text = "Forest fire near La Ronge Sask. Canada"
    truth = cache.encode(Lengths(), [text])
    entry = next(cache._entries())
    # what the red team did: a chosen vector with the checksum anyone can compute
    forged = np.array([-1e6, 1e6], dtype=np.float32).tobytes()
    for digest in (hashlib.blake2b(forged, digest_size=16).digest(),
                   hashlib.blake2b(forged, digest_size=32).digest()):
        entry.write_bytes(forged + digest)
        FeatureCache.forget()
        assert np.array_equal(FeatureCache(cache_dir).encode(Lengths(), [text]), truth)


def test_a_fifo_planted_as_an_entry_is_recomputed_not_waited_for(cache_dir):
    cache = FeatureCache(cache_dir)
    text = "Forest fire near La Ronge Sask. Canada"
    truth = cache.encode(Lengths(), [text])
    entry = next(cache._entries())
    entry.unlink()
    os.mkfifo(entry)  # a read would wait forever for a writer
    FeatureCache.forget()
    assert np.array_equal(FeatureCache(cache_dir).encode(Lengths(), [text]), truth)


def test_a_fifo_planted_as_the_key_is_refused_in_one_line(cache_dir):
    FeatureCache(cache_dir).encode(Lengths(), ["a text"])
    key = next(p for p in cache_dir.iterdir() if p.is_file() and p.stat().st_size == 32)
    key.unlink()
    os.mkfifo(key)
    FeatureCache.forget()
    with pytest.raises(CacheError, match="not a private 32-byte file"):
        FeatureCache(cache_dir).encode(Lengths(), ["another text"])


def test_a_valid_entry_moved_to_another_texts_name_is_not_used(cache_dir):
    cache = FeatureCache(cache_dir)
    cache.encode(Lengths(), ["short", "a much longer text"])
    entries = {p.name: p for p in cache._entries()}
    short, long_ = (entries[_key(t, cache._open())] for t in ("short", "a much longer text"))
    short.write_bytes(long_.read_bytes())  # valid bytes, MAC and all, under another name
    FeatureCache.forget()
    assert FeatureCache(cache_dir).encode(Lengths(), ["short"])[0, 0] == 5


def test_cache_clear_refuses_a_folder_it_did_not_create(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "my-files"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    (folder / "0123456789abcdef").mkdir()  # even one named like a cache folder
    monkeypatch.setenv("ENSEMBLE_CACHE_DIR", str(folder))
    assert main(["cache", "clear"]) == 2
    err = capsys.readouterr().err
    assert "has no CACHEDIR.TAG of ensemble-engine's" in err and "deleting nothing" in err
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert (folder / "0123456789abcdef").is_dir()
    # using it as a cache does not tag it: it still held the user's files
    folder.chmod(0o700)
    FeatureCache(folder).encode(Lengths(), ["one"])
    assert not (folder / "CACHEDIR.TAG").exists()
    assert main(["cache", "clear"]) == 2 and "deleting nothing" in capsys.readouterr().err
    # another tool's cache tag is not ours: its files stay too
    (folder / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n"
                                         "# created by some other tool\n")
    entry = folder / "0123456789abcdef" / "ab" / ("0" * 64)
    entry.parent.mkdir()
    entry.write_bytes(b"someone else's")
    assert main(["cache", "clear"]) == 2
    assert "deleting nothing" in capsys.readouterr().err and entry.exists()


def test_cache_clear_deletes_only_its_own_entries(cache_dir, monkeypatch, capsys):
    FeatureCache(cache_dir).encode(Lengths(), ["one", "two", "three"])
    (cache_dir / "notes.txt").write_text("mine")
    entry_folder = next(p for p in cache_dir.iterdir() if p.is_dir())
    (entry_folder / "keep.txt").write_text("also mine")
    monkeypatch.setenv("ENSEMBLE_CACHE_DIR", str(cache_dir))
    assert main(["cache", "clear"]) == 0
    assert "removed 3 cached embeddings" in capsys.readouterr().out
    assert (cache_dir / "notes.txt").read_text() == "mine"
    assert (entry_folder / "keep.txt").read_text() == "also mine"
    assert FeatureCache(cache_dir).info()["entries"] == 0
