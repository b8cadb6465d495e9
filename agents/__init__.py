"""Agents for Pixelis envs: the protocol, random and oracle agents and the rollout
(torch-free), and lazily imported torch-based ones (``VLMAgent``, ``SB3Agent``, the tiny VLM)."""

from __future__ import annotations

import importlib
from typing import Any

from agents.base import Agent, AgentPool, BatchAgent, Generation
from agents.oracle import OracleAgent
from agents.random_agent import RandomAgent
from agents.rollout import make_vector_env, rollout, summarize

_LAZY = {
    "VLMAgent": "agents.vlm", "VLMPolicy": "agents.vlm", "SamplingConfig": "agents.vlm",
    "SB3Agent": "agents.sb3", "sb3_env": "agents.sb3",
    "build_tiny_vlm": "agents.tiny_vlm", "save_tiny_vlm": "agents.tiny_vlm",
}

__all__ = ["Agent", "AgentPool", "BatchAgent", "Generation", "OracleAgent", "RandomAgent", "SB3Agent",
           "SamplingConfig", "VLMAgent", "VLMPolicy", "build_tiny_vlm", "make_vector_env", "rollout", "save_tiny_vlm",
           "sb3_env", "summarize"]


def __getattr__(name: str) -> Any:
    """Import the torch-based agents on first use, so ``import agents`` stays light."""
    if name not in _LAZY:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
