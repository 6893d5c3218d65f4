"""ensemble-engine: plugin-based ensembles of text classifiers.

>>> from engine import Ensemble, load
>>> ens = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking")  # doctest: +SKIP
>>> ens.fit(texts, labels).save("models/tweets")                             # doctest: +SKIP
>>> load("models/tweets").predict(new_texts)                                 # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ensemble-engine")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from engine.combiners.base import Combiner  # noqa: E402
from engine.ensemble import Ensemble  # noqa: E402
from engine.errors import EnsembleError  # noqa: E402
from engine.hookspecs import hookimpl  # noqa: E402
from engine.persistence import load_ensemble as load  # noqa: E402
from engine.protocol import ModelPlugin, ModelPluginProtocol  # noqa: E402
from engine.registry import get_registry, register_plugin  # noqa: E402

__all__ = ["Combiner", "Ensemble", "EnsembleError", "ModelPlugin", "ModelPluginProtocol",
           "__version__", "get_registry", "hookimpl", "load", "register_plugin"]
