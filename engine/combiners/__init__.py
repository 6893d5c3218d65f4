"""Combiners turn the members' class probabilities into one prediction."""

from engine.combiners.base import Combiner
from engine.combiners.mean import MeanCombiner
from engine.combiners.stacking import StackingCombiner
from engine.combiners.vote import VoteCombiner

__all__ = ["Combiner", "MeanCombiner", "StackingCombiner", "VoteCombiner"]
