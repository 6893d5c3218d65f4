"""The label audit (engine.label_audit): confident learning on the ensemble's out-of-fold
probabilities, conflicting duplicates, test leakage, drop_label_issues and `ensemble audit`."""

import numpy as np
import pandas as pd
import pytest

from engine import Ensemble, load
from engine.cli import main
from engine.errors import ConfigError, DataError
from engine.label_audit import (
    confident_joint,
    flag_mislabelled,
    joint_estimate,
    near_test_duplicates,
    normalise_text,
)
from engine.testing import make_text_dataset
from tests.helpers import write_config

NB_LR = {"nb": "tfidf-nb", "lr": "tfidf-lr"}


def flipped(n_classes, fraction=0.1, n_per_class=100, seed=3):
    """Learnable texts with ``fraction`` of the labels flipped to another class at random."""
    texts, y = make_text_dataset(n_classes, n_per_class=n_per_class, seed=seed)
    rng = np.random.default_rng(seed)
    flip = rng.choice(len(y), int(fraction * len(y)), replace=False)
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, n_classes, len(flip))) % n_classes
    return texts, y, noisy, np.sort(flip)


def precision_recall(found, truth):
    found, truth = set(map(int, found)), set(map(int, truth))
    hits = len(found & truth)
    return hits / max(len(found), 1), hits / len(truth)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_flipped_labels_are_found_with_high_precision_and_recall(n_classes):
    texts, _, noisy, flips = flipped(n_classes)
    ens = Ensemble(NB_LR, combiner="stacking", cv=5, random_state=0).fit(texts, noisy)
    table = ens.label_issues(texts)
    found = table.loc[table["reason"].str.contains("likely mislabelled"), "row"]
    precision, recall = precision_recall(found, flips)
    assert precision >= 0.9 and recall >= 0.8, (precision, recall)
    # ranked: the listed rows come most-likely-wrong first, scores in [0, 1]
    assert table["score"].is_monotonic_decreasing and table["score"].between(0, 1).all()
    # the suggested label is the true one for the flipped rows it found
    _, truth, _, _ = flipped(n_classes)
    rows = table["row"].to_numpy()
    assert (table["suggested"].to_numpy() == truth[rows])[np.isin(rows, flips)].mean() >= 0.9


def test_clean_labels_give_few_issues():
    texts, y = make_text_dataset(3, n_per_class=100, seed=3)
    ens = Ensemble(NB_LR, combiner="stacking", cv=5, random_state=0).fit(texts, y)
    assert len(ens.label_issues(texts)) <= 3


def test_confident_joint_thresholds_and_noise_rate_pruning_by_hand():
    # class 0 rows: self-confidence .9 .8 .3 (mean .667); class 1: .8 .9 .7 (mean .8)
    p = np.array([[.9, .1], [.8, .2], [.3, .7], [.2, .8], [.1, .9], [.3, .7]])
    codes = np.array([0, 0, 0, 1, 1, 1])
    C, confident = confident_joint(p, codes)
    # row 2 (labelled 0, p1 .7 < t1 .8) counts nowhere; row 5 (labelled 1, p1 .7 < .8,
    # p0 .3 < .667) neither
    assert confident.tolist() == [0, 0, -1, 1, 1, -1]
    assert C.tolist() == [[2, 0], [0, 2]]
    assert np.allclose(joint_estimate(C, codes), [[.5, 0], [0, .5]])
    assert not flag_mislabelled(p, codes).any()  # no confident off-diagonal: nothing pruned
    p[2] = [.1, .9]  # now confidently class 1
    p[5] = [.55, .45]  # most probably 0, but below class 0's threshold (.6): not confident
    assert flag_mislabelled(p, codes).tolist() == [False, False, True, False, False, False]
    assert flag_mislabelled(p, codes, "argmax").tolist() == [False, False, True, False, False,
                                                             True]


def test_every_method_flags_only_disputed_rows_and_keeps_each_class():
    texts, _, noisy, flips = flipped(3, fraction=0.2)
    ens = Ensemble(NB_LR, combiner="stacking", cv=3, random_state=0).fit(texts, noisy)
    for method in ("prune_by_noise_rate", "prune_by_class", "both", "confident_joint",
                   "argmax"):
        table = ens.label_issues(method=method)
        assert precision_recall(table["row"], flips)[0] >= 0.8, method
    with pytest.raises(ConfigError, match="method must be one of"):
        ens.label_issues(method="magic")
    p = np.tile([[.1, .9]], (6, 1))
    assert flag_mislabelled(p, np.array([0, 0, 0, 1, 1, 1]), "argmax", keep_per_class=2).sum() \
        == 1


def test_normalised_and_exact_duplicates_with_conflicting_labels():
    texts, y = make_text_dataset(2, n_per_class=40, seed=1)
    texts, y = list(texts), list(y)
    fire, calm = texts[y.index(1)], texts[y.index(0)]
    texts += [fire, "  " + fire.upper() + " http://t.co/AbC12 ", fire.replace(" ", " &amp; ", 1),
              calm, calm]
    y += [0, 0, 1, 1, 1]  # the fire text labelled 0 twice (exact and normalised); calm as 1
    ens = Ensemble(NB_LR, combiner="stacking", cv=3, random_state=0).fit(texts, y)
    table = ens.label_issues(texts)
    dup = table[table["reason"].str.contains("conflicting duplicate")]
    n = len(texts)
    # the ensemble calls the fire group 1: its 0-labelled rows are listed, with the group
    assert {n - 5, n - 4} <= set(dup["row"])
    assert (dup.set_index("row").loc[[n - 5, n - 4], "suggested"] == 1).all()
    assert dup.set_index("row").loc[n - 5, "detail"].startswith("duplicate group")
    assert "exact" in dup.set_index("row").loc[n - 5, "detail"]
    fire_group = dup.set_index("row").loc[n - 5, "duplicate_group"]
    assert dup.set_index("row").loc[n - 4, "duplicate_group"] == fire_group
    assert n - 3 not in set(dup["row"])  # labelled 1, as the group: not disputed
    assert set(dup["row"]) & {n - 2, n - 1, y.index(0)} == {n - 2, n - 1}
    assert table.attrs["counts"]["conflicting duplicate"] == len(dup)
    assert normalise_text("A&amp;amp;B\n\twww.x.org  c") == "a&b c"


def test_test_leakage_is_listed_without_calling_the_label_wrong():
    texts, y = make_text_dataset(2, n_per_class=40, seed=1)
    test = pd.DataFrame({"text": ["nothing alike here at all", texts[5].upper() + " http://x.co",
                                  texts[9].replace(" ", ", ", 1) + "!"]})
    ens = Ensemble(NB_LR, cv=3, random_state=0).fit(pd.DataFrame({"text": texts}), y)
    table = ens.label_issues(pd.DataFrame({"text": texts}), test=test).set_index("row")
    leaked = table[table["reason"].str.contains("near-duplicate in test")]
    assert {5, 9} <= set(leaked.index)
    assert "test row 1, similarity 1.00" in leaked.loc[5, "detail"]
    assert leaked.loc[5, "suggested"] == leaked.loc[5, "given"]  # the label is fine
    match, similarity = near_test_duplicates(["a b c d"], ["x y", "a b c d e"], threshold=0.5)
    assert match.tolist() == [1] and 0.5 < similarity[0] < 1
    with pytest.raises(DataError, match="column 'text' not found") as info:
        ens.label_issues(pd.DataFrame({"text": texts}), test=pd.DataFrame({"tweet": ["x"]}))
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="needs the training texts"):
        ens.label_issues(test=test)


@pytest.mark.parametrize("labels", [["cat", "dog", "eel"], [10, 20, 30], [False, True]],
                         ids=["str", "int", "bool"])
def test_labels_keep_their_type(labels):
    texts, _, noisy, flips = flipped(len(labels))
    y = np.array(labels, dtype=object)[noisy].tolist()
    ens = Ensemble(NB_LR, cv=3, random_state=0).fit(texts, y)
    frame = pd.DataFrame({"text": texts, "id": [f"t{i}" for i in range(len(texts))]})
    table = ens.label_issues(frame, y)
    assert len(table) and set(table["given"]) | set(table["suggested"]) <= set(labels)
    assert all(type(v) is type(labels[0]) for v in table["given"].tolist())
    assert table["id"].tolist() == [f"t{r}" for r in table["row"]]
    assert table["text"].tolist() == [texts[r] for r in table["row"]]


def test_drop_label_issues_refits_without_the_flagged_rows_and_survives_a_load(tmp_path):
    texts, truth, noisy, flips = flipped(3)
    plain = Ensemble(NB_LR, combiner="stacking", cv=5, random_state=0).fit(texts, noisy)
    flagged = plain.label_issues(texts)["row"].to_numpy()
    ens = Ensemble(NB_LR, combiner="stacking", cv=5, random_state=0,
                   drop_label_issues=True).fit(texts, noisy)
    record = ens.training_["label_issues"]
    assert record["dropped"] == len(flagged) == (~ens.kept_).sum()
    assert record["by_reason"]["likely mislabelled"] == len(flagged)
    assert record["kept"] == len(texts) - len(flagged)
    assert np.array_equal(np.flatnonzero(~ens.kept_), np.sort(flagged))
    # the members were fitted on the kept rows only: the same as fitting them there directly
    direct = Ensemble({"lr": "tfidf-lr"}, cv=5, random_state=0).fit(
        [t for t, k in zip(texts, ens.kept_, strict=True) if k], noisy[ens.kept_])
    assert np.allclose(ens.members_["lr"].predict_proba(texts[:20]),
                       direct.members_["lr"].predict_proba(texts[:20]))
    # and the combiner on the kept rows' out-of-fold probabilities (all rows kept in oof_)
    assert ens.oof_.shape[1] == len(texts)
    ens.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.manifest_["training"]["label_issues"] == record
    assert np.array_equal(loaded.kept_, ens.kept_)
    assert np.array_equal(loaded.predict_proba(texts[:30]), ens.predict_proba(texts[:30]))
    pd.testing.assert_frame_equal(loaded.label_issues(texts), ens.label_issues(texts))
    # recombining keeps the dropped rows out of the new combiner
    again = loaded.recombine("mean")
    assert np.array_equal(again.kept_, ens.kept_)
    assert again.scores_["ensemble"]["accuracy"] > plain.scores_["ensemble"]["accuracy"]


def test_a_loaded_model_audits_only_its_own_training_data(tmp_path):
    texts, _, noisy, _ = flipped(2, n_per_class=40)
    Ensemble(NB_LR, cv=3, random_state=0).fit(texts, noisy).save(tmp_path / "m")
    model = load(tmp_path / "m")
    assert len(model.label_issues()) == len(model.label_issues(texts, noisy))
    for X, y in ((texts[::-1], None), (texts, 1 - noisy), (texts[:-1], None)):
        with pytest.raises(DataError, match="fitted on") as info:
            model.label_issues(X, y)
        assert "\n" not in str(info.value)


def test_a_model_without_out_of_fold_probabilities_is_a_one_line_error():
    texts, y = make_text_dataset(2, n_per_class=20)
    ens = Ensemble(NB_LR, cv=3, random_state=0).fit(texts, y)
    ens.oof_ = np.zeros((2, 0, 2))  # what a distilled student holds
    with pytest.raises(ConfigError, match="cannot audit the labels: this model has no "
                                          "out-of-fold") as info:
        ens.label_issues()
    assert "\n" not in str(info.value)


@pytest.fixture
def noisy_csv(tmp_path):
    texts, _, noisy, flips = flipped(2, n_per_class=60)
    texts[0] = "=HYPERLINK(\"http://evil\") " + texts[0]
    frame = pd.DataFrame({"id": range(100, 100 + len(texts)), "text": texts, "target": noisy})
    frame = pd.concat([frame, frame.iloc[[3]].assign(target=1 - frame.target[3], id=999)],
                      ignore_index=True)  # a conflicting duplicate
    frame.to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"id": [1, 2], "text": [texts[7], "unrelated words entirely"]}).to_csv(
        tmp_path / "test.csv", index=False)
    return tmp_path / "train.csv", flips


def test_cli_audit_of_a_model_and_of_a_config(tmp_path, noisy_csv, capsys):
    train, flips = noisy_csv
    config = write_config(tmp_path / "c.toml", train)
    assert main(["fit", str(config), "-o", str(tmp_path / "m"), "-q"]) == 0
    capsys.readouterr()
    out = tmp_path / "issues.csv"
    assert main(["audit", str(tmp_path / "m"), "--data", str(train), "--test",
                 str(tmp_path / "test.csv"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["row", "id", "text", "given"]
    assert "likely mislabelled" in printed and "conflicting duplicate 1" in printed
    assert "near-duplicate in test" in printed and "row " in printed
    assert precision_recall(table.loc[table.reason.str.contains("mislabelled"), "row"],
                            flips)[1] >= 0.8
    assert table.loc[table["row"] == 7, "reason"].str.contains("near-duplicate").all()
    leading = table.loc[table["row"] == 0, "text"]
    assert leading.empty or leading.iloc[0].startswith("'=HYPERLINK")  # CSV-safe
    assert main(["audit", str(config), "-o", str(tmp_path / "again.csv"), "-q"]) == 0
    again = pd.read_csv(tmp_path / "again.csv")
    assert set(again["row"]) == set(table.loc[~table.reason.str.fullmatch(
        "near-duplicate in test"), "row"])
    # without --data: the stored labels alone
    assert main(["audit", str(tmp_path / "m"), "-o", str(tmp_path / "bare.csv")]) == 0
    assert "pass --data" in capsys.readouterr().out


def test_cli_fit_drop_label_issues_records_the_rows(tmp_path, noisy_csv, capsys):
    train, _ = noisy_csv
    config = write_config(tmp_path / "c.toml", train, ensemble={"drop_label_issues": True})
    assert main(["fit", str(config), "-o", str(tmp_path / "m"), "-q"]) == 0
    assert "dropped " in capsys.readouterr().out
    assert load(tmp_path / "m").manifest_["training"]["label_issues"]["dropped"] > 0
    plain = write_config(tmp_path / "p.toml", train)
    assert main(["fit", str(plain), "-o", str(tmp_path / "p"), "-q", "--drop-label-issues"]) == 0
    assert load(tmp_path / "p").training_["label_issues"] == \
        load(tmp_path / "m").training_["label_issues"]


def test_cli_audit_errors_are_one_line(tmp_path, noisy_csv, capsys):
    train, _ = noisy_csv
    config = write_config(tmp_path / "c.toml", train)
    assert main(["fit", str(config), "-o", str(tmp_path / "m"), "-q"]) == 0
    pd.DataFrame({"tweet": ["a"]}).to_csv(tmp_path / "bad_test.csv", index=False)
    single = pd.read_csv(train).assign(target=1)
    single.to_csv(tmp_path / "single.csv", index=False)
    other = pd.read_csv(train).iloc[:-2]
    other.to_csv(tmp_path / "other.csv", index=False)
    capsys.readouterr()
    cases = [
        (["audit", str(tmp_path / "m"), "--data", str(train), "--test",
          str(tmp_path / "bad_test.csv")], "column 'text' not found in bad_test.csv"),
        (["audit", str(write_config(tmp_path / "s.toml", tmp_path / "single.csv"))],
         "need at least two classes"),
        (["audit", str(tmp_path / "m"), "--data", str(tmp_path / "other.csv")],
         "fitted on"),
        (["audit", str(tmp_path / "m"), "--test", str(tmp_path / "bad_test.csv")],
         "column 'text' not found in bad_test.csv"),
        (["audit", str(tmp_path / "m"), "--test", str(train)], "--test needs the training data"),
        (["audit", str(config), "--test", str(tmp_path / "bad_test.csv")],  # before the fit
         "column 'text' not found in bad_test.csv"),
    ]
    for argv, message in cases:
        assert main([*argv, "-o", str(tmp_path / "x.csv")]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_audit_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: ensemble audit" in out and "--test" in out and "--data" in out


def test_report_lists_the_most_likely_wrong_labels_escaped(tmp_path, noisy_csv, capsys):
    from engine.report import build_report

    train, flips = noisy_csv
    frame = pd.read_csv(train)
    frame.loc[flips[0], "text"] = "<script>alert(1)</script> " + frame.loc[flips[0], "text"]
    ens = Ensemble(NB_LR, combiner="stacking", cv=3, random_state=0).fit(frame, frame.target)
    issues = ens.label_issues(frame, frame.target)
    html = build_report(ens, frame.iloc[:40], frame.target[:40], issues=issues)
    section = html[html.index("<h2>Most likely wrong training labels"):]
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in section
    assert f"{len(issues)} of {len(frame)} training rows listed" in section
    assert "<th>given</th><th>suggested</th><th>score</th>" in section
    # the report command adds it when given the training CSV
    ens.save(tmp_path / "m", {"text": "text", "label": "target", "id": "id"})
    frame.to_csv(tmp_path / "hostile.csv", index=False)
    assert main(["report", str(tmp_path / "m"), str(train), "--train",
                 str(tmp_path / "hostile.csv"), "-o", str(tmp_path / "r.html")]) == 0
    assert "Most likely wrong training labels" in (tmp_path / "r.html").read_text()
