from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.testing import make_text_dataset

ROOT = Path(__file__).resolve().parents[1]
TWEETS = ROOT / "examples" / "data" / "disaster-tweets"


@pytest.fixture(scope="session", autouse=True)
def isolated_feature_cache(tmp_path_factory):
    """Tests never touch the user's cache; subprocesses inherit the variable."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ENSEMBLE_CACHE_DIR", str(tmp_path_factory.mktemp("feature-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tweets() -> pd.DataFrame:
    return pd.read_csv(TWEETS / "train.csv")


@pytest.fixture(scope="session")
def small_tweets(tweets) -> pd.DataFrame:
    """600 real tweets: enough to learn something, fast to fit."""
    return tweets.sample(600, random_state=0).reset_index(drop=True)


@pytest.fixture
def binary_texts():
    return make_text_dataset(2, n_per_class=30, seed=1)


@pytest.fixture
def three_class_texts():
    return make_text_dataset(3, n_per_class=30, seed=2)


def codes_to(labels, codes):
    return np.asarray(labels, dtype=object)[codes]


# `make test-fast` (pytest -m "not slow") skips these: whole demos, kill -9 harnesses, other
# processes and servers, TensorFlow training, the docs' code. `make test` and CI run them all.
SLOW_MODULES = {"test_demo", "test_crash_safety", "test_concurrency", "test_scale",
                "test_transformer", "test_tuning", "test_third_party", "test_mlflow",
                "test_model_fuzz", "test_docs", "test_keras_text", "test_sentence_encoder",
                "test_serving", "test_report"}


# ... and the slowest single tests elsewhere (each over 5 s on 2 cores).
SLOW_TESTS = {"test_reused_worker_processes_verify_with_the_callers_policy",
              "test_every_plugin_survives_huge_empty_and_odd_texts",
              "test_fit_shows_a_progress_bar_on_a_terminal_unless_quiet",
              "test_piped_output_gets_a_plain_line_per_fit_instead_of_a_bar",
              "test_sklearn_search_tools_reach_member_parameters", "test_hundreds_of_classes"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rpartition(".")[2] in SLOW_MODULES or \
                item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
