"""The three training loops run on a tiny Qwen2-VL through the same Policy interface,
and a checkpoint flows SFT -> RFT -> TTRL."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.common import load_modules  # noqa: E402
from training.rft import RFTConfig  # noqa: E402
from training.rft import main as rft_main  # noqa: E402
from training.sft import SFTConfig  # noqa: E402
from training.sft import main as sft_main  # noqa: E402
from training.ttrl import TTRLConfig  # noqa: E402
from training.ttrl import main as ttrl_main  # noqa: E402

ENV = {"num_tasks": 12}


@pytest.mark.slow
def test_sft_rft_ttrl_with_the_tiny_vlm(tmp_path):
    torch.set_num_threads(1)
    sft = sft_main(SFTConfig(env_ids=["Pixelis-Count-v0"], env_kwargs=ENV, train_tasks=8, eval_tasks=2,
                             eval_episodes=1, policy="agents.tiny_vlm:tiny_vlm_policy",
                             policy_kwargs={"image_size": 56}, steps=3, batch_size=4, out=str(tmp_path / "sft"),
                             progress=False, threads=1))
    modules = load_modules(sft["checkpoint"])
    assert type(modules["policy"]).__name__ == "VLMPolicy" and "aux" in modules
    rft = rft_main(RFTConfig(env_id="Pixelis-Count-v0", env_kwargs=ENV, train_tasks=4, eval_tasks=0,
                             eval_episodes=0, init=sft["checkpoint"], iterations=1, tasks_per_iteration=1,
                             group_size=2, max_new_tokens=24, out=str(tmp_path / "rft"), progress=False, threads=1))
    assert rft["step"] == 1 and {"terms/curiosity", "terms/coherence", "terms/efficiency", "kl"} <= rft.keys()
    ttrl = ttrl_main(TTRLConfig(env_id="Pixelis-Count-v0", env_kwargs={**ENV, "split": "test"}, tasks=1, samples=2,
                                init=rft["checkpoint"], max_new_tokens=24, text_embedding="hash",
                                out=str(tmp_path / "ttrl"), progress=False, threads=1))
    assert ttrl["checkpoint"].endswith("step-00000001") and ttrl["rollbacks"] == 0
