"""Wrappers: action/observation adapters and (issue 6) reward wrappers."""

from __future__ import annotations

from pixelis_env.wrappers.coherence import CoherenceReward
from pixelis_env.wrappers.curiosity import CuriosityReward, ObservationFeatures
from pixelis_env.wrappers.efficiency import EfficiencyReward
from pixelis_env.wrappers.flat_action import FlatActionWrapper
from pixelis_env.wrappers.reward_stack import apply_reward_wrappers, default_reward_stack
from pixelis_env.wrappers.reward_term import RewardTerm, StepView
from pixelis_env.wrappers.vector_observation import VectorObservation, hashed_bag_of_words

__all__ = ["FlatActionWrapper", "VectorObservation", "hashed_bag_of_words"]
__all__ += ["CoherenceReward", "CuriosityReward", "EfficiencyReward", "ObservationFeatures", "RewardTerm", "StepView",
            "apply_reward_wrappers", "default_reward_stack"]
