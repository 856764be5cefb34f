#!/bin/sh
# Exports tests/data/el_*.pte: a tiny random-weight Llama (1 layer, dim 32, vocabulary 128,
# 32 positions; no checkpoint: ExecuTorch's default initialisation) with ExecuTorch's OWN LLM
# tooling, `executorch.examples.models.llama.export_llama`, for XNNPACK, as its users export:
#   el_kv_dynamic.pte  KV cache, dynamic prompt length (export_llama's default)
#   el_kv_static.pte   KV cache, --disable_dynamic_shape (one token per execute)
#   el_nokv.pte        no KV cache (forward(tokens) runs the whole sequence)
#   el_kv_sdpa.pte     KV cache, --use_sdpa_with_kv_cache: the custom ops llama::custom_sdpa and
#                      llama::update_cache (their kernels: executorch.extension.llm.custom_ops)
# tests/integration/test_llm.py checks etprof recognises and runs them without any flag. About a minute of
# CPU each. Run from the repository root, in the project's venv (where executorch is installed).
set -e
tmp=$(mktemp -d)
cat > "$tmp/params.json" <<'JSON'
{"dim": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "hidden_dim": 64, "vocab_size": 128, "norm_eps": 1e-5}
JSON
export_one() {
    name=$1; shift
    (cd "$tmp" && nice -n 10 python -m executorch.examples.models.llama.export_llama \
        --model llama3 -p params.json -X --max_seq_length 32 --max_context_length 32 -d fp32 \
        -m '{"get_bos_id": 1, "get_eos_ids": [2]}' -o . -n "el_$name.pte" "$@" \
        > "$name.log" 2>&1) || { tail -20 "$tmp/$name.log"; exit 1; }
    cp "$tmp/el_$name.pte" tests/data/
}
export_one kv_dynamic -kv
export_one kv_static -kv --disable_dynamic_shape
export_one nokv
export_one kv_sdpa -kv --use_sdpa_with_kv_cache
rm -rf "$tmp"
