"""ensemble-engine: plugin-based ensembles of text classifiers.

>>> from engine import Ensemble, load
>>> ens = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking")  # doctest: +SKIP
>>> ens.fit(texts, labels).save("models/tweets")                             # doctest: +SKIP
>>> load("models/tweets").predict(new_texts)                                 # doctest: +SKIP
"""

from engine.combiners.base import Combiner
from engine.ensemble import Ensemble
from engine.ensemble import load_ensemble as load
from engine.errors import EnsembleError
from engine.hookspecs import hookimpl
from engine.protocol import ModelPlugin, ModelPluginProtocol
from engine.registry import get_registry, register_plugin
from engine.version import __version__

__all__ = ["Combiner", "Ensemble", "EnsembleError", "ModelPlugin", "ModelPluginProtocol",
           "__version__", "get_registry", "hookimpl", "load", "register_plugin"]
