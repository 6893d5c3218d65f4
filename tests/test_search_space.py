"""Search spaces: every built-in plugin declares one, ranges are checked when made, and
check_plugin checks a third-party plugin's."""

import pytest

from engine.constraints import Interval
from engine.errors import ConfigError
from engine.registry import get_registry
from engine.search_space import Categorical, Float, Int, declared_space
from engine.testing import check_plugin
from plugins.tfidf_nb import TfidfNB


def test_every_builtin_plugin_declares_a_valid_search_space():
    plugins = {name: reg.cls for name, reg in get_registry().plugins().items()
               if reg.package == "ensemble-engine"}
    for name, cls in plugins.items():
        assert hasattr(cls, "search_space"), name
        space = declared_space(cls)
        params = cls.__init__.__code__.co_varnames
        assert set(space) <= set(params), name
    for name in ("tfidf-nb", "tfidf-lr", "keras-text", "use", "transformer"):
        assert declared_space(plugins[name]), name
    words, chars = (declared_space(plugins["tfidf-lr"], {"analyzer": a})["ngram_range"]
                    for a in ("word", "char_wb"))
    assert max(n for _, n in chars.choices) > max(n for _, n in words.choices)


def test_check_plugin_checks_a_third_party_search_space():
    class WrongName(TfidfNB):
        name = "wrong-name"

        @classmethod
        def search_space(cls, params=None):
            return {"alhpa": Float(0.1, 1.0)}

    class Rejected(TfidfNB):
        name = "rejected"
        _constraints = {"alpha": [Interval(float, 0, 1)]}

        @classmethod
        def search_space(cls, params=None):
            return {"alpha": Float(0.1, 5.0)}

    class NotASpace(TfidfNB):
        name = "not-a-space"

        @classmethod
        def search_space(cls, params=None):
            return {"alpha": (0.1, 1.0)}

    with pytest.raises(AssertionError, match="'alhpa', which is not a constructor parameter"):
        check_plugin(WrongName, n_classes=(2,))
    with pytest.raises(AssertionError, match="holds 5.0, which the plugin rejects"):
        check_plugin(Rejected, n_classes=(2,))
    with pytest.raises(AssertionError, match="Float, Int or Categorical"):
        check_plugin(NotASpace, n_classes=(2,))


def test_ranges_are_checked_when_made():
    with pytest.raises(ConfigError, match="low > 0"):
        Float(0.0, 1.0, log=True)
    with pytest.raises(ConfigError, match="integers"):
        Int(1, 2.5)
    with pytest.raises(ConfigError, match="non-empty list"):
        Categorical([])
