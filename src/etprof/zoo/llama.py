"""A tiny Llama from ExecuTorch's own definition (`executorch.examples.models.llama`), exported the
way ExecuTorch's LLM export (`export_llama`) does for XNNPACK: a KV cache held in mutable
buffers, a dynamic prompt length, `forward(tokens, input_pos)` and the constant metadata methods
the LLM runners read (`get_max_seq_len`, `get_vocab_size`, `use_kv_cache`, ...).

Random weights, seeded: profiling cares about shapes and operators, not about the text it would
write. Small enough (2 layers, dim 64, vocabulary 256) to export in about a minute on 2 cores.
"""

from __future__ import annotations

from typing import Any

import torch

from etprof.zoo.recipe import Recipe

SEED = 0
DIM, LAYERS, HEADS, KV_HEADS, HIDDEN = 64, 2, 4, 2, 128
VOCAB = 256
MAX_SEQ_LEN = 64  # also the KV cache's length (max_context_len)
BOS_ID, EOS_ID = 1, 2


def metadata() -> dict[str, Any]:
    """The constant methods, named and valued as ExecuTorch's llama export writes them
    (`_load_llama_model_metadata`, plus the tokenizer's BOS/EOS ids)."""
    return {
        "get_max_seq_len": MAX_SEQ_LEN,
        "get_max_context_len": MAX_SEQ_LEN,
        "get_n_layers": LAYERS,
        "get_vocab_size": VOCAB,
        "use_kv_cache": True,
        "use_sdpa_with_kv_cache": False,
        "enable_dynamic_shape": True,
        "get_bos_id": BOS_ID,
        "get_eos_ids": [EOS_ID],
    }


def tiny_llama() -> Recipe:
    from executorch.examples.models.llama.llama_transformer import construct_transformer
    from executorch.examples.models.llama.model_args import ModelArgs

    args = ModelArgs(
        dim=DIM,
        n_layers=LAYERS,
        n_heads=HEADS,
        n_kv_heads=KV_HEADS,
        hidden_dim=HIDDEN,
        vocab_size=VOCAB,
        max_seq_len=MAX_SEQ_LEN,
        max_context_len=MAX_SEQ_LEN,
        use_kv_cache=True,
        enable_dynamic_shape=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = construct_transformer(args).eval()
    # As export_llama's example inputs with a KV cache and dynamic shapes: a 3-token prompt at
    # position 0; the prompt length may be 1 .. max_seq_len - 1 (the -1: an export limitation
    # ExecuTorch's builder works around the same way).
    tokens = torch.tensor([[2, 3, 4]], dtype=torch.long)
    inputs = (tokens, {"input_pos": torch.tensor([0], dtype=torch.long)})
    dynamic = ({1: torch.export.Dim("token_dim", max=MAX_SEQ_LEN - 1)}, {"input_pos": {0: 1}})
    return Recipe(model, inputs, dynamic_shapes=dynamic, constant_methods=metadata(), llm=True)
