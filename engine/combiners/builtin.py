"""Registers the built-in combiners through the same hook a third-party package uses."""

from engine.combiners.mean import MeanCombiner
from engine.combiners.stacking import StackingCombiner
from engine.combiners.vote import VoteCombiner
from engine.hookspecs import hookimpl


@hookimpl
def register_combiners(register):
    for combiner in (MeanCombiner, VoteCombiner, StackingCombiner):
        register(combiner)
