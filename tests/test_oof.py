"""The ensemble's own out-of-fold probabilities (engine.oof): what distillation and the
label audit learn from, kept exactly across save and load."""

import numpy as np
import pytest

from engine import Ensemble, load
from engine.errors import ModelDirectoryError
from engine.oof import ensemble_oof_proba
from tests.test_hostile_models import rehash


def test_stacking_out_of_fold_output_is_cross_validated_and_survives_a_load(tmp_path,
                                                                           three_class_texts):
    texts, y = three_class_texts
    # random_state=None: folds drawn at load time would differ, so they must be stored
    ens = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking", cv=3).fit(texts, y)
    proba = ensemble_oof_proba(ens)
    assert proba.shape == (len(texts), 3) and np.allclose(proba.sum(axis=1), 1)
    # honest: not the meta-learner's in-sample prediction on the same rows
    assert not np.allclose(proba, ens.combiner_.predict_proba(ens.oof_))
    ens.save(tmp_path / "m")
    assert np.array_equal(ensemble_oof_proba(load(tmp_path / "m")), proba)


def test_a_model_without_stored_combined_output_recomputes_it(tmp_path, binary_texts):
    texts, y = binary_texts
    ens = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking", cv=3,
                   random_state=0).fit(texts, y)
    ens.save(tmp_path / "m")
    oof = dict(np.load(tmp_path / "m" / "oof.npz"))
    del oof["combined"]  # as version 2 wrote it
    np.savez(tmp_path / "m" / "oof.npz", **oof)
    rehash(tmp_path / "m")
    assert np.allclose(ensemble_oof_proba(load(tmp_path / "m")), ensemble_oof_proba(ens))


def test_combined_output_of_the_wrong_shape_is_refused_in_one_line(tmp_path, binary_texts):
    texts, y = binary_texts
    Ensemble({"nb": "tfidf-nb"}, cv=3, random_state=0).fit(texts, y).save(tmp_path / "m")
    oof = dict(np.load(tmp_path / "m" / "oof.npz"))
    oof["combined"] = np.full((3, 2), 7.0)
    np.savez(tmp_path / "m" / "oof.npz", **oof)
    rehash(tmp_path / "m")
    with pytest.raises(ModelDirectoryError, match="combined out-of-fold") as info:
        load(tmp_path / "m")
    assert "\n" not in str(info.value)
