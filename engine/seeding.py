"""The one seeding rule: a seed goes to every ``random_state`` that has none of its own."""

from __future__ import annotations

from typing import Any


def seeded(estimator: Any, random_state: int | None, *, deep: bool = False) -> Any:
    """Set ``random_state`` on ``estimator`` where it is None; returns ``estimator``.

    With ``deep``, nested ``<step>__random_state`` parameters (a Pipeline's
    steps, a meta-estimator's parts) get it too. A seed the user chose is kept.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> pipe = make_pipeline(LogisticRegression(random_state=7), LogisticRegression())
    >>> seeded(pipe, 0, deep=True).get_params()["logisticregression-2__random_state"]
    0
    >>> pipe.get_params()["logisticregression-1__random_state"]
    7
    """
    if random_state is None:
        return estimator
    params = estimator.get_params(deep=deep)
    missing = {key: random_state for key, value in params.items()
               if (key == "random_state" or key.endswith("__random_state")) and value is None}
    if missing:
        estimator.set_params(**missing)
    return estimator
