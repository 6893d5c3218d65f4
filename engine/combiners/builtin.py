"""Registers the built-in combiners through the same hook a third-party package uses."""

from engine.combiners.cascade import CascadeCombiner
from engine.combiners.mean import MeanCombiner
from engine.combiners.selection import SelectionCombiner
from engine.combiners.stacking import StackingCombiner
from engine.combiners.vote import VoteCombiner
from engine.hookspecs import hookimpl


@hookimpl
def register_combiners(register):
    for combiner in (MeanCombiner, VoteCombiner, StackingCombiner, SelectionCombiner,
                     CascadeCombiner):
        register(combiner)
