"""ensemble-engine: plugin-based ensembles of text classifiers.

>>> from engine import Ensemble, load
>>> ens = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking")  # doctest: +SKIP
>>> ens.fit(texts, labels).save("models/tweets")                             # doctest: +SKIP
>>> load("models/tweets").predict(new_texts)                                 # doctest: +SKIP
"""

import importlib
from typing import Any

from engine.errors import EnsembleError
from engine.hookspecs import hookimpl
from engine.version import __version__

# The rest of the public API loads on first use: scikit-learn, pandas and joblib
# cost a second and a half, and `ensemble --help` needs none of them.
_LAZY = {
    "Combiner": ("engine.combiners.base", "Combiner"),
    "Ensemble": ("engine.ensemble", "Ensemble"),
    "load": ("engine.ensemble", "load_ensemble"),
    "ModelPlugin": ("engine.protocol", "ModelPlugin"),
    "ModelPluginProtocol": ("engine.protocol", "ModelPluginProtocol"),
    "get_registry": ("engine.registry", "get_registry"),
    "register_plugin": ("engine.registry", "register_plugin"),
    "sign_model": ("engine.io.signing", "sign_model"),
    "tune": ("engine.tuning", "tune"),
}

__all__ = ["Combiner", "Ensemble", "EnsembleError", "ModelPlugin", "ModelPluginProtocol",
           "__version__", "get_registry", "hookimpl", "load", "register_plugin", "sign_model",
           "tune"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
