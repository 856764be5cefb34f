"""LLM headline as shipped: `etprof run` runs every sequence on a second load without ETDump too,
and the headline tokens/s and time to first token come from those untraced sequences.

Checked against the raw sidecar timings and the trace's own Method::execute durations, and
against ExecuTorch's own LLM runner (TextLLMRunner, a tokenizer of the program's vocabulary
built with `tokenizers`) on the same `.pte`, within a band wide enough for a busy machine
(benchmarks/llm_shipped.py prints the three side by side).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from etprof.trace.sidecar import TraceMeta, sidecar_path

from conftest import run_cli
from programs import program_copy

P, G, SEQUENCES, SESSIONS = 32, 31, 4, 2


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    pte = program_copy(tmp_path_factory.mktemp("llama_shipped"), "llama", "dq8")
    out = pte.with_suffix(".etdp")
    result = run_cli(
        "run",
        pte,
        "--prefill",
        P,
        "--decode",
        G,
        "--iters",
        SEQUENCES,
        "--sessions",
        SESSIONS,
        "--spread",
        "0",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert "(shipped): " in result.stdout  # the headline says which figures it gives
    doc = json.loads(run_cli("breakdown", out, "-f", "json").stdout)
    return out, doc


@pytest.mark.slow
def test_headline_comes_from_the_untraced_sequences(
    shipped: tuple[Path, dict[str, object]],
) -> None:
    """Recomputed from the sidecar's wall times: a shipped step is its untraced wall time, the
    preempted ones set aside; the traced figure (the ETDump's own execute durations) differs."""
    from etprof.analyzers._outliers import far_out
    from etprof.trace.loading import load_trace

    out, doc = shipped
    meta = TraceMeta.from_json(sidecar_path(out).read_text())
    steps = meta.run.phases[meta.run.warmup :]
    assert len(meta.run.untraced) == SESSIONS
    for u in meta.run.untraced:  # every measured step ran on both loads
        assert len(u.traced_ms) == len(u.untraced_ms) == len(steps) == SEQUENCES * (1 + G)
    trace = load_trace(out)
    execute = trace.measured().of_kind("run_model").groupby("iteration")["duration_ns"].sum()
    per_session = execute.to_numpy().reshape(SESSIONS, -1) / 1e6
    headline = doc["llm_headline"]
    assert isinstance(headline, dict) and headline["source"] == "shipped"
    phases = doc["phases"]
    assert isinstance(phases, dict)
    for name in ("prefill", "decode"):
        pick = np.array([s.phase == name for s in steps])
        tokens = np.array([s.tokens for s in steps])[pick]
        est, walls, calls = [], [], []
        for k, u in enumerate(meta.run.untraced):
            walls.append(np.asarray(u.untraced_ms)[pick])
            est.append(walls[-1])  # a shipped step is its untraced wall time
            calls.append(np.median(np.asarray(u.traced_ms)[pick] - per_session[k][pick]))
        # the call around execute, from the traced side's walls and the ETDump's executes
        assert phases[name]["shipped"]["call_ms"] == pytest.approx(np.mean(calls), rel=1e-9)
        groups = np.repeat(np.arange(SESSIONS), pick.sum())
        kept = ~far_out(np.concatenate(walls), groups if pick.sum() >= 5 else None)
        kept = kept.reshape(SESSIONS, -1)
        rate = np.mean(
            [tokens[kept[k]].sum() / (est[k][kept[k]].sum() / 1e3) for k in range(SESSIONS)]
        )
        assert headline["tokens_per_s"][name] == pytest.approx(rate, rel=1e-9)
        shown = phases[name]["shipped"]["tokens_per_s"]["mean"]
        assert shown == pytest.approx(rate, rel=1e-9)
        traced = phases[name]["tokens_per_s"]["mean"]
        assert traced != pytest.approx(shown, rel=1e-6)  # the traced figure is another one
        assert phases[name]["shipped"]["set_aside"] == int((~kept).sum())
    assert headline["time_to_first_token_ms"] == pytest.approx(
        phases["prefill"]["shipped"]["duration_ms"]["mean"] / SEQUENCES
    )


def _runner_rates(
    pte: Path, vocab: int, tmp: Path, rounds: int = 40
) -> dict[str, tuple[float, float]]:
    """ExecuTorch's TextLLMRunner on `pte`, `rounds` times: per phase (median, best) tokens/s.
    Prefill: P / wall of prefill(); decode: (tokens - 1) / (wall of generate(G + 1 new) - wall
    of generate(1 new)). The median and the best bracket the runner's figure on a busy machine
    (the best: rounds nothing preempted, as etprof's headline sets preempted steps aside); on a
    quiet one they agree."""
    from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner
    from tokenizers import Tokenizer, models

    tokenizer = tmp / "tokenizer.json"
    Tokenizer(models.BPE(vocab={chr(0x100 + i): i for i in range(vocab)}, merges=[])).save(
        str(tokenizer)
    )
    runner = TextLLMRunner(str(pte), str(tokenizer))
    prompt = "".join(chr(0x100 + 10 + i) for i in range(P))
    made: list[int] = []

    def generate(new: int) -> float:
        runner.reset()
        config = GenerationConfig(
            echo=False, max_new_tokens=new, temperature=0.0, num_bos=0, seq_len=P + G + 1
        )
        began = time.perf_counter()
        runner.generate(
            prompt,
            config,
            token_callback=lambda _: None,
            stats_callback=lambda s: made.append(int(s.num_generated_tokens)),
        )
        return time.perf_counter() - began

    pp, tg = [], []
    for _ in range(rounds + 1):  # the first: warm-up
        runner.reset()
        began = time.perf_counter()
        runner.prefill(prompt, GenerationConfig(echo=False, temperature=0.0, num_bos=0))
        pp.append(P / (time.perf_counter() - began))
        one = generate(1)
        many = generate(G + 1)
        assert made[-1] > G // 2  # EOS did not end it early (random weights, greedy)
        tg.append((made[-1] - 1) / (many - one))
    return {
        "prefill": (float(np.median(pp[1:])), max(pp[1:])),
        "decode": (float(np.median(tg[1:])), max(tg[1:])),
    }


@pytest.mark.slow
def test_headline_lies_near_executorchs_own_runner(
    shipped: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    import executorch.extension.llm.custom_ops.custom_ops  # noqa: F401  (llama:: kernels)

    out, doc = shipped
    meta = TraceMeta.from_json(sidecar_path(out).read_text())
    assert meta.program.llm is not None
    runner = _runner_rates(Path(meta.program.path), meta.program.llm.vocab_size, tmp_path)
    headline = doc["llm_headline"]
    assert isinstance(headline, dict)
    ours = headline["tokens_per_s"]
    for phase, (median, best) in runner.items():
        assert 0.7 * median <= ours[phase] <= 1.4 * best, (phase, ours, runner)
