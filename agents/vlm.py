"""Hugging Face vision-language models as a :class:`~agents.policy.Policy`, and the agent
that plays any policy through the env's text surface.

:class:`VLMPolicy` wraps an image-text-to-text model and its processor (Qwen2-VL and
Qwen2.5-VL; other processors that take ``{"type": "image"}`` chat content use the same
calls). It implements ``generate``/``score`` like the compact policy, so the SFT, RFT
and TTRL loops train either. Log-probs are the model's own (temperature 1), whatever
the sampling temperature, as in :mod:`agents.compact`.

:class:`VLMAgent` keeps the episode's :class:`~agents.policy.Context`, asks the policy
for one action text per step and returns it as a :class:`Generation`; the env parses
it, and a reply that does not parse becomes an error observation like any malformed
action.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from agents.base import Generation
from agents.chat import ContextStore, chat_messages, system_prompt
from agents.policy import Context, Policy, Sample, Scored, token_grounded, token_roles
from pixelis_env.actions import Action
from pixelis_env.errors import PixelisError

VISION_TOKENS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
"""Model config attributes naming the tokens that stand for pixels."""


class VLMPolicy(torch.nn.Module):
    """An image-text-to-text model and its processor, as a :class:`~agents.policy.Policy`.

    Args:
        model: a ``transformers`` model with ``generate`` (e.g. Qwen2-VL).
        processor: its processor (chat template, tokenizer, image processor).
        action_types: the env's tools (``env.unwrapped.actions.action_types``), for the system prompt.
        max_prompt_tokens: prompts longer than this lose their oldest images (each replaced
            by a text placeholder) until they fit or only the latest view is left; set it to
            the model's context minus the reply length.
    """

    def __init__(self, model: Any, processor: Any, action_types: Sequence[type[Action]],
                 max_prompt_tokens: int = 8192) -> None:
        super().__init__()
        if max_prompt_tokens < 1:
            raise PixelisError(f"max_prompt_tokens must be >= 1, got {max_prompt_tokens}")
        self.model, self.processor = model, processor
        self.action_types = tuple(action_types)
        self.system = system_prompt(self.action_types)
        self.max_prompt_tokens = int(max_prompt_tokens)
        self.hidden_size = int(model.config.get_text_config().hidden_size)
        self.tokenizer = processor.tokenizer
        self.vision_token_ids = [getattr(model.config, name) for name in VISION_TOKENS
                                 if getattr(model.config, name, None) is not None]

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, action_types: Sequence[type[Action]],
                        max_prompt_tokens: int = 8192, dtype: Any = "auto", device_map: Any = None,
                        **model_kwargs: Any) -> VLMPolicy:
        """Load a local checkpoint directory (no hub access), e.g. ``dtype=torch.bfloat16, device_map="cuda"``."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, dtype=dtype,
                                                            device_map=device_map, **model_kwargs)
        return cls(model.eval(), processor, action_types, max_prompt_tokens)

    # ------------------------------------------------------------- Policy API
    @torch.no_grad()
    def generate(self, contexts: Sequence[Context], max_new_tokens: int = 64, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False, seed: int | None = None) -> list[Sample]:
        """One action text per context; ``token_ids``/``logprobs`` end with eos when the model stopped.

        ``seed`` makes sampling reproducible (context ``i`` uses ``seed + i``) without
        touching the global torch RNG; without it the global RNG is used.
        """
        if max_new_tokens < 1 or temperature <= 0 or not 0 < top_p <= 1:
            raise PixelisError("need max_new_tokens >= 1, temperature > 0 and 0 < top_p <= 1 "
                               "(use greedy=True for argmax)")
        kwargs = self._generate_kwargs(max_new_tokens, temperature, top_p, greedy)
        samples = []
        for row, context in enumerate(contexts):
            inputs = self.prompt_inputs(context)
            with self._rng(None if seed is None else seed + row):
                out = self.model.generate(**inputs, **kwargs)
            ids = out.sequences[0, inputs["input_ids"].shape[1]:]
            logprobs = _gather(torch.stack(out.logits, dim=1)[0], ids)
            samples.append(Sample(text=self.tokenizer.decode(ids, skip_special_tokens=True),
                                  token_ids=ids.tolist(), logprobs=logprobs.tolist()))
        return samples

    def score(self, contexts: Sequence[Context], texts: Sequence[str]) -> Scored:
        """Teacher-forced per-token log-probs of ``texts``, each followed by eos.

        Per text of ``n`` tokens: ``logprobs`` and ``roles`` ``[n + 1]`` (the last is
        eos), ``hidden`` ``[n + 1, D]`` where ``hidden[i]`` is the final-layer state
        after reading token ``i`` (the one that predicts token ``i + 1``), and
        ``grounded`` the token index of each box/point/span's opening ``[``.
        """
        if len(contexts) != len(texts):
            raise PixelisError(f"got {len(contexts)} contexts for {len(texts)} texts")
        scored = Scored(logprobs=[], roles=[], hidden=[], grounded=[])
        for context, text in zip(contexts, texts):
            encoding = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = [*encoding["input_ids"], self.tokenizer.eos_token_id]
            logprobs, hidden = self._forward(context, ids)
            scored.logprobs.append(logprobs)
            scored.hidden.append(hidden)
            scored.roles.append(torch.tensor([*token_roles(text, encoding["offset_mapping"]), 0]))
            scored.grounded.append(token_grounded(text, encoding["offset_mapping"]))
        return scored

    def token_logprobs(self, context: Context, token_ids: Sequence[int]) -> torch.Tensor:
        """Log-probs of exactly these tokens after ``context`` (e.g. a :class:`Sample`'s
        ``token_ids``: re-tokenising its text may split it differently from how it was sampled)."""
        return self._forward(context, token_ids)[0]

    # --------------------------------------------------------------- encoding
    def prompt_inputs(self, context: Context) -> Any:
        """Model inputs for ``context``, its oldest images dropped until ``max_prompt_tokens`` fit."""
        for drop in range(max(len(context.turns), 1)):
            inputs = self._encode(context, drop)
            if inputs["input_ids"].shape[1] <= self.max_prompt_tokens:
                break
        return inputs

    def _encode(self, context: Context, drop_images: int) -> Any:
        messages, images = chat_messages(context, self.system, drop_images)
        prompt = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(text=[prompt], images=images or None, return_tensors="pt")
        return inputs.to(self.model.device, dtype=self.model.dtype)

    def _forward(self, context: Context, token_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs of ``token_ids`` after ``context`` and the hidden states after reading each."""
        if len(token_ids) == 0:
            raise PixelisError("nothing to score: the completion has no tokens")
        inputs = self.prompt_inputs(context)
        prompt_length = inputs["input_ids"].shape[1]
        ids = torch.as_tensor(list(token_ids), dtype=torch.long, device=inputs["input_ids"].device)
        out = self.model(**_append_tokens(inputs, ids), output_hidden_states=True)
        logits = out.logits[0, prompt_length - 1: -1]
        return _gather(logits, ids), out.hidden_states[-1][0, prompt_length:]

    def _generate_kwargs(self, max_new_tokens: int, temperature: float, top_p: float, greedy: bool
                         ) -> dict[str, Any]:
        """Every sampling knob explicit, so a checkpoint's own defaults (top_k, repetition
        penalty) cannot change what is sampled. Vision tokens are never generated: fed
        back, they would stand for images that are not there."""
        kwargs = {"do_sample": not greedy, "repetition_penalty": 1.0, "max_new_tokens": max_new_tokens,
                  "eos_token_id": self.tokenizer.eos_token_id, "pad_token_id": self.tokenizer.pad_token_id,
                  "suppress_tokens": self.vision_token_ids, "output_logits": True, "return_dict_in_generate": True}
        if not greedy:
            kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
        return kwargs

    @contextmanager
    def _rng(self, seed: int | None) -> Iterator[None]:
        """Seed sampling without disturbing the global torch RNG (``None``: use it as is)."""
        if seed is None:
            yield
            return
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield


def pretrained_policy(path: str, max_prompt_tokens: int = 8192, dtype: str = "auto",
                      device_map: str | None = None) -> VLMPolicy:
    """A local checkpoint directory as a trainable policy over every registered tool.

    The factory the trainers name for real runs (``--policy agents.vlm:pretrained_policy
    --policy-kwargs '{"path": "/models/Qwen2.5-VL-7B-Instruct", "dtype": "bfloat16"}'``);
    a checkpoint's spec rebuilds it from the same directory before loading the trained weights.
    """
    from pixelis_env.tools import registered_tools

    if not os.path.isdir(path):
        raise PixelisError(f"{path!r} is not a local checkpoint directory (nothing is downloaded from a hub)")
    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    policy = VLMPolicy.from_pretrained(path, [spec.action_type for spec in registered_tools().values()],
                                       max_prompt_tokens=max_prompt_tokens, dtype=torch_dtype, device_map=device_map)
    return policy.train()


def _gather(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return logits.float().log_softmax(-1).gather(-1, ids[:, None].to(logits.device))[:, 0]


def _append_tokens(inputs: Any, ids: torch.Tensor) -> Any:
    """Model inputs for the prompt followed by the text tokens ``ids``."""
    ones = torch.ones_like(ids)[None]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], ids[None]], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], ones], dim=1)
    if "mm_token_type_ids" in inputs:  # 0 marks text tokens
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], 0 * ones], dim=1)
    return inputs


@dataclass
class SamplingConfig:
    """How a :class:`VLMAgent` asks its policy for actions."""

    temperature: float = 1.0
    """Softmax temperature when sampling."""
    top_p: float = 1.0
    """Nucleus sampling mass (1 keeps every token)."""
    do_sample: bool = True
    """Sample (True) or decode greedily (False)."""
    max_new_tokens: int = 128
    """Tokens generated per step at most; a reply cut here usually fails to parse."""

    def __post_init__(self) -> None:
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or self.max_new_tokens < 1:
            raise PixelisError(f"need temperature > 0, 0 < top_p <= 1 and max_new_tokens >= 1, got "
                               f"{self.temperature}, {self.top_p}, {self.max_new_tokens}")


class VLMAgent:
    """Plays any :class:`~agents.policy.Policy` (a :class:`VLMPolicy`, the compact policy) in a Pixelis env.

    Each step's :class:`Generation` carries the text, its token ids and log-probs, and
    ``prompt_ref`` naming the context in :attr:`store` (:meth:`context` fetches it back).
    With a seed, episode ``k`` of :func:`agents.rollout.rollout` samples the same
    actions whichever agent instance plays it (the rollout calls :meth:`seed`).
    """

    def __init__(self, policy: Policy, sampling: SamplingConfig | None = None, seed: int = 0,
                 store: ContextStore | None = None) -> None:
        self.policy = policy
        self.sampling = sampling or SamplingConfig()
        self.store = store if store is not None else ContextStore()
        self.seed(seed)
        self._context = Context()

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, action_types: Sequence[type[Action]],
                        sampling: SamplingConfig | None = None, seed: int = 0, **policy_kwargs: Any) -> VLMAgent:
        """An agent on a local checkpoint (see :meth:`VLMPolicy.from_pretrained` for ``policy_kwargs``)."""
        return cls(VLMPolicy.from_pretrained(path, action_types, **policy_kwargs), sampling, seed)

    def seed(self, seed: int) -> None:
        """Restart the per-step sampling seeds from ``seed``."""
        self._seed, self._steps = int(seed), 0

    def spawn(self, seed: int) -> VLMAgent:
        """Another agent on the same policy and store (one per sub-env of a vector env)."""
        return VLMAgent(self.policy, self.sampling, seed, self.store)

    # ---------------------------------------------------------- agent protocol
    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        """Start a new episode; the question arrives with the first :meth:`act`."""
        self._context = Context()

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Generation:
        self._context.observe(obs)
        s = self.sampling
        step_seed = (self._seed * 1_000_003 + self._steps) % 2**62
        self._steps += 1
        (sample,) = self.policy.generate([self._context], max_new_tokens=s.max_new_tokens, temperature=s.temperature,
                                         top_p=s.top_p, greedy=not s.do_sample, seed=step_seed)
        ref = self.store.add(self._context)
        self._context.act(sample.text)
        return Generation(action=sample.text, text=sample.text, logprobs=list(sample.logprobs), prompt_ref=ref,
                          token_ids=list(sample.token_ids))

    # ---------------------------------------------------------------- scoring
    def context(self, ref: str) -> Context:
        """The context a generation's ``prompt_ref`` names."""
        return self.store[ref]

    def score(self, context: Context | str, text: str) -> list[float]:
        """Per-token log-probs of ``text`` (then eos) after a context or its ``prompt_ref``."""
        if isinstance(context, str):
            context = self.context(context)
        with torch.no_grad():
            return self.policy.score([context], [text]).logprobs[0].tolist()
