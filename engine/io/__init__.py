"""The model directory as a layer of its own, depended on in one direction.

``atomic`` writes files and directories whole under locks; ``integrity``
hashes and checks what is on disk; ``model_dir`` writes and reads a model
directory's parts and manifest; ``state`` saves an estimator's parameters and
fitted attributes without pickle; ``skops`` reads scikit-learn objects safely.

Nothing here imports :class:`engine.Ensemble`: the ensemble hands its parts to
:func:`engine.io.model_dir.write_model` and restores the parts that
:func:`engine.io.model_dir.read_model` returns (as Keras's models import its
``saving`` package, which never imports ``Model``).
"""
