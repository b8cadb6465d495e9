"""Agents for Pixelis envs: the protocol, random and oracle agents (torch-free), and
lazily imported torch-based ones."""

from __future__ import annotations

from agents.base import Agent, Generation
from agents.oracle import OracleAgent
from agents.random_agent import RandomAgent

__all__ = ["Agent", "Generation", "OracleAgent", "RandomAgent"]
