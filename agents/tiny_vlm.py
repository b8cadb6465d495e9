"""A tiny Qwen2-VL, its tokenizer and processor, built offline from configs.

For tests and CPU experiments: the model is random-initialised, but its vocabulary
covers the whole pixel-tool grammar (tool, argument and choice names, JSON punctuation,
coordinate bins ``"0.00"``..``"1.00"`` as single tokens, digits, letters, the system
prompt's words), and the ``Fuse`` decoder concatenates tokens verbatim, so text the
model generates decodes to exact JSON. :func:`save_tiny_vlm` writes a directory that
:meth:`agents.vlm.VLMAgent.from_pretrained` loads the way it loads a real checkpoint.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agents.chat import IMAGE_PLACEHOLDER, system_prompt
from pixelis_env.actions import BUILTIN_ACTIONS, Action, ChoiceArg
from pixelis_env.errors import PixelisError

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>", "<unk>")
ACTION_TOKENS = ("<tool_call>", "</tool_call>", "<answer>", "</answer>")
"""Added as ordinary tokens so that decoding keeps them."""
COORD_BINS = tuple(f"{i / 100:.2f}" for i in range(101))
EXTRA_WORDS = ("user", "assistant", "system", "what", "how", "many", "which", "where", "is", "are", "the", "of",
               "colour", "color", "red", "green", "blue", "yellow", "square", "object", "image", "video", "frame",
               "frames", "zoomed", "shown", "px", "fps", "answered", "error", "Options", "Question")
PRE_TOKENIZE = r'[01]\.\d\d|"[a-z_]+"|[A-Za-z]+|\d|\s|[^\sA-Za-z\d]'
"""Pre-tokens: coordinate bins, quoted JSON keys, words, single digits, single characters."""
PATCH = 28
"""Qwen2-VL image side granularity (patch 14 x spatial merge 2)."""
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def grammar_words(action_types: Iterable[type[Action]] = BUILTIN_ACTIONS) -> list[str]:
    """Every word and quoted JSON key that the tool grammar and its system prompt use."""
    types = list(action_types)
    names = {"name", "arguments"} | {t.name for t in types}
    for t in types:
        for key, f in t.arguments().items():
            names.add(key)
            if isinstance(f.metadata["arg"], ChoiceArg):
                names.update(f.metadata["arg"].choices)
    words = set(re.findall(r"[A-Za-z]+", system_prompt(types) + IMAGE_PLACEHOLDER))
    words |= {w for name in names for w in re.findall(r"[A-Za-z]+", name)}
    return sorted(words | {f'"{n}"' for n in names})


def vocabulary(extra_words: Iterable[str] = ()) -> list[str]:
    """The tokens in id order: specials, coordinate bins, characters, then words."""
    chars = [*string.digits, *string.ascii_letters, *string.punctuation, " ", "\n", "\t"]
    tokens = [*SPECIAL_TOKENS, *COORD_BINS, *chars]
    seen = set(tokens) | set(ACTION_TOKENS)
    for word in [*grammar_words(), *EXTRA_WORDS, *extra_words]:
        if word not in seen:
            seen.add(word)
            tokens.append(word)
    return tokens


def build_tokenizer(extra_words: Iterable[str] = ()) -> Any:
    """A word-level fast tokenizer over :func:`vocabulary` with an exact (Fuse) decoder."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(vocabulary(extra_words))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(PRE_TOKENIZE), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<|endoftext|>",
                                        eos_token="<|im_end|>", additional_special_tokens=list(SPECIAL_TOKENS[1:7]),
                                        chat_template=CHAT_TEMPLATE)
    tokenizer.add_tokens(list(ACTION_TOKENS))
    return tokenizer


def build_processor(image_size: int = 56, extra_words: Iterable[str] = ()) -> Any:
    """A Qwen2-VL processor that resizes every image to ``image_size`` squared pixels."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    if image_size < PATCH or image_size % PATCH:
        raise PixelisError(f"image_size must be a positive multiple of {PATCH}, got {image_size}")
    pixels = image_size * image_size
    return Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=pixels, max_pixels=pixels),
                            tokenizer=build_tokenizer(extra_words), video_processor=Qwen2VLVideoProcessor(),
                            chat_template=CHAT_TEMPLATE)


def build_tiny_vlm(seed: int = 0, hidden: int = 64, layers: int = 2, heads: int = 4, vision_depth: int = 1,
                   vision_dim: int = 32, image_size: int = 56, extra_words: Iterable[str] = ()) -> tuple[Any, Any]:
    """A random-initialised Qwen2-VL (fp32, eval mode) and its processor.

    The defaults give about 0.3M parameters and 4 vision tokens per image.
    """
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    head_dim = hidden // heads
    if hidden % heads or head_dim % 2 or head_dim < 12:
        raise PixelisError(f"hidden ({hidden}) / heads ({heads}) must be an even head size >= 12")
    processor = build_processor(image_size, extra_words)
    tokenizer = processor.tokenizer
    token = tokenizer.convert_tokens_to_ids
    third = head_dim // 6
    config = Qwen2VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": hidden, "intermediate_size": 4 * hidden,
                     "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
                     "max_position_embeddings": 4096,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                         "mrope_section": [head_dim // 2 - 2 * third, third, third]},
                     "bos_token_id": token("<|im_start|>"), "eos_token_id": token("<|im_end|>"),
                     "pad_token_id": token("<|endoftext|>")},
        vision_config={"depth": vision_depth, "embed_dim": vision_dim, "hidden_size": hidden, "num_heads": 4,
                       "mlp_ratio": 4, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "in_channels": 3},
        image_token_id=token("<|image_pad|>"), video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"), vision_end_token_id=token("<|vision_end|>"),
        tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = token("<|im_end|>")
    model.generation_config.pad_token_id = token("<|endoftext|>")
    return model.eval(), processor


def save_tiny_vlm(path: str | os.PathLike, seed: int = 0, **kwargs: Any) -> Path:
    """Build a tiny VLM (see :func:`build_tiny_vlm` for ``kwargs``) and save it as a checkpoint directory."""
    model, processor = build_tiny_vlm(seed=seed, **kwargs)
    path = Path(path)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def tiny_vlm_policy(max_prompt_tokens: int = 2048, **kwargs: Any) -> Any:
    """A tiny VLM behind the training loops' :class:`~agents.policy.Policy` interface.

    The factory the trainers name (``--policy agents.tiny_vlm:tiny_vlm_policy``); ``kwargs``
    go to :func:`build_tiny_vlm`, so a checkpoint's spec rebuilds the same architecture.
    """
    from agents.vlm import VLMPolicy
    from pixelis_env.tools import registered_tools

    model, processor = build_tiny_vlm(**kwargs)
    action_types = [spec.action_type for spec in registered_tools().values()]
    return VLMPolicy(model.train(), processor, action_types, max_prompt_tokens=max_prompt_tokens)
