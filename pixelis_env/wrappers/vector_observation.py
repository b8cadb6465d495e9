"""Observations as fixed-size arrays, for policies that cannot read text (SB3).

The text (question, then tool output) becomes a hashed bag-of-words vector; the image
is kept (optionally downscaled). Hashing is deterministic across processes (crc32, not
Python's salted ``hash``), so vector envs and saved policies agree.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

_TOKEN = re.compile(r"[a-z]+|\d+")


def hashed_bag_of_words(text: str, dims: int) -> np.ndarray:
    """L2-normalised counts of words and digit runs hashed into ``dims`` buckets."""
    out = np.zeros(dims, np.float32)
    for token in _TOKEN.findall(text.lower()):
        out[zlib.crc32(token.encode()) % dims] += 1.0
    norm = float(np.linalg.norm(out))
    return out / norm if norm > 0 else out


class VectorObservation(gym.ObservationWrapper):
    """``Dict(image=Box uint8, text=Box float32)`` with the question features kept all episode.

    ``text`` concatenates the features of the question and of the latest tool output, so
    a memoryless policy still knows what was asked.
    """

    def __init__(self, env: gym.Env, text_dims: int = 128, image_size: int | None = 84) -> None:
        super().__init__(env)
        side = image_size or env.observation_space["image"].shape[0]
        self.text_dims, self.image_size = int(text_dims), int(side)
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8),
            "text": spaces.Box(0.0, 1.0, (2 * self.text_dims,), np.float32),
        })
        self._question = np.zeros(self.text_dims, np.float32)

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._question = hashed_bag_of_words(obs["text"], self.text_dims)
        return self.observation(obs), info

    def observation(self, observation: dict[str, Any]) -> dict[str, np.ndarray]:
        image = observation["image"]
        if image.shape[0] != self.image_size:
            image = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        text = np.concatenate([self._question, hashed_bag_of_words(observation["text"], self.text_dims)])
        return {"image": image, "text": text}
