"""``PolicyAgent``: the agent protocol over any :class:`agents.policy.Policy`.

It keeps the episode's :class:`Context`, asks the policy for one action text per step,
and returns a :class:`Generation` with the text, token ids and log-probs. As a
:class:`agents.base.BatchAgent` it serves every sub-env of a vector env with one
batched ``generate`` call per step.

With auxiliary heads and ``refine=True``, the grounded values of each generated action
(boxes, points, spans) are replaced by the heads' regression from the policy's hidden
states (see :mod:`training.aux_heads`); the log-probs are then re-scored for the
refined text. Refined texts are not samples of the policy: use refinement for
evaluation, not for collecting RL data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.base import Generation
from agents.policy import Context, Policy, start_context


class PolicyAgent:
    """Acts with a policy's ``generate``.

    Args:
        policy: anything implementing :class:`agents.policy.Policy`.
        env: optional; when given, ``Context.meta`` gets the media duration from it
            (otherwise parsed from the reset observation).
        max_new_tokens, temperature, top_p, greedy: sampling parameters.
        seed: base seed; call ``k`` after the last (re)seed samples with ``seed + k``, so a
            rollout is reproducible; :meth:`seed` (called by ``rollout`` per episode)
            restarts the count. ``None`` uses the global torch RNG.
        heads: auxiliary heads with ``refine(text, scored, context)``.
        refine: replace grounded values with the heads' predictions.
    """

    def __init__(self, policy: Policy, env: Any = None, *, max_new_tokens: int = 64, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False, seed: int | None = None, heads: Any = None,
                 refine: bool = False) -> None:
        if refine and heads is None:
            raise ValueError("refine=True needs auxiliary heads (heads=...)")
        self.policy, self.env, self.heads, self.refine = policy, env, heads, refine
        self.sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                         "greedy": greedy}
        self.base_seed = seed
        self._calls = 0
        self.contexts: dict[int, Context] = {}

    # ---------------------------------------------------------------- Agent
    def seed(self, seed: int) -> None:
        """Restart sampling from ``seed`` (per episode, so any worker plays it the same)."""
        self.base_seed, self._calls = int(seed), 0

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.reset_at(0, obs, info)

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Generation:
        return self.act_batch([0], [obs], [info])[0]

    @property
    def context(self) -> Context:
        """The single-env context (what :meth:`act` conditions on)."""
        return self.contexts[0]

    # ----------------------------------------------------------- BatchAgent
    def reset_at(self, index: int, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.contexts[index] = start_context(obs, info, self.env)

    def act_batch(self, indices: Sequence[int], obs: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]]) -> list[Generation]:
        contexts = []
        for index, observation in zip(indices, obs):
            context = self.contexts[index]
            if len(context.turns) == len(context.actions):
                context.observe(observation)
            contexts.append(context)
        seed = None if self.base_seed is None else self.base_seed + self._calls
        self._calls += 1
        samples = self.policy.generate(contexts, seed=seed, **self.sampling)
        generations = []
        for context, sample in zip(contexts, samples):
            generation = Generation(action=sample.text, text=sample.text, logprobs=list(sample.logprobs),
                                    token_ids=list(sample.token_ids))
            if self.refine:
                generation = self._refined(context, sample.text)
            context.act(generation.text)
            generations.append(generation)
        return generations

    def _refined(self, context: Context, text: str) -> Generation:
        import torch

        with torch.no_grad():
            refined = self.heads.refine(text, self.policy.score([context], [text]), context)
            logprobs = [float(v) for v in self.policy.score([context], [refined]).logprobs[0]]
        return Generation(action=refined, text=refined, logprobs=logprobs)
