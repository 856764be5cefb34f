"""Are `etprof run`'s LLM headline figures the program's as shipped? Side by side with ExecuTorch's
own LLM runner and an independent untraced loop, on the same `.pte`.

    python benchmarks/llm_shipped.py [--pte LLM.pte] [--rounds 7] [--prefill 32] [--decode 31]
        [--work DIR]

Without --pte the zoo's tiny Llama (dq8) is exported into DIR. Each round measures, in an order
that rotates from round to round so that all three meet the machine's drift alike:

- etprof: `etprof run` (one session, 3 measured sequences): its headline pp/tg tokens/s and time
  to first token (shipped: from the untraced sequences, docs/llm.md), and the traced ones;
- runner: `executorch.extension.llm.runner.TextLLMRunner` on a tokenizer built here (one token
  per character, the program's vocabulary size): prefill tokens/s = P / the wall time of
  `prefill(P-token prompt)`; decode tokens/s = (G - 1) / (wall of `generate` with G new tokens
  - wall with 1 new token), both after `reset()` (its own stats count whole milliseconds, too
  coarse for a prefill of about a millisecond);
- loop: the program loaded with ExecuTorch's pybindings without ETDump, `run_method("forward")`
  on a [1, P] prompt at position 0, then G single-token steps, timed by the wall clock.

Prints each round's figures and the medians with the ratios etprof/runner and etprof/loop, the
best rounds likewise (on a busy machine the runner's and the loop's totals include preempted
steps, which etprof's headline sets aside; their best rounds are the unpreempted ones), and the
load average (the figures depend on how busy the machine is). Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

FIRST_CHAR = 0x100  # token i is the character chr(FIRST_CHAR + i): one token per character


def export_llama(work: Path) -> Path:
    from etprof import zoo
    from etprof.zoo.export import STANDARD_VARIANTS, export_model

    return export_model(zoo.parse("llama"), STANDARD_VARIANTS["xnnpack_q8"], work).pte


def build_tokenizer(vocab: int, path: Path) -> Path:
    """A byte-pair tokenizer without merges: token i is one character, so a prompt of n
    characters is n tokens and every id the program can produce decodes."""
    from tokenizers import Tokenizer, models

    Tokenizer(models.BPE(vocab={chr(FIRST_CHAR + i): i for i in range(vocab)}, merges=[])).save(
        str(path)
    )
    return path


def etprof_round(pte: Path, out: Path, prefill: int, decode: int) -> dict[str, float]:
    from etprof import analyzers
    from etprof.record.request import RunRequest
    from etprof.record.runner import run_program
    from etprof.trace.loading import load_trace

    run_program(
        RunRequest(
            pte=pte, out=out, sessions=1, spread_s=0.0, prefill=prefill, decode=decode, sequences=3
        )
    )
    r = analyzers.run("llm", load_trace(out))
    pre, dec = r.phases["prefill"], r.phases["decode"]
    return {
        "pp": pre.headline_tokens_per_s[0],
        "tg": dec.headline_tokens_per_s[0],
        "ttft_ms": r.headline_ttft_ms,
        "pp_traced": pre.mean_tokens_per_s,
        "tg_traced": dec.mean_tokens_per_s,
        "shipped": float(r.shipped),
    }


class Runner:
    def __init__(self, pte: Path, tokenizer: Path, prefill: int, decode: int) -> None:
        from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner

        self.runner = TextLLMRunner(str(pte), str(tokenizer))
        self.prompt = "".join(chr(FIRST_CHAR + 10 + i % 200) for i in range(prefill))
        self.config = GenerationConfig
        self.prefill, self.decode = prefill, decode
        self.generated: list[int] = []

    def _generate(self, new: int) -> float:
        cfg = self.config(
            echo=False,
            max_new_tokens=new,
            temperature=0.0,
            num_bos=0,
            seq_len=self.prefill + self.decode + 1,
        )
        self.runner.reset()
        began = time.perf_counter()
        self.runner.generate(
            self.prompt, cfg, token_callback=lambda _: None, stats_callback=self._stats
        )
        return time.perf_counter() - began

    def _stats(self, stats: Any) -> None:
        self.generated.append(int(stats.num_generated_tokens))

    def round(self) -> dict[str, float]:
        self.runner.reset()
        cfg = self.config(echo=False, temperature=0.0, num_bos=0)
        began = time.perf_counter()
        self.runner.prefill(self.prompt, cfg)
        prefill_s = time.perf_counter() - began
        one = self._generate(1)
        many = self._generate(self.decode)
        steps = self.generated[-1] - 1  # the first token comes from the prefill
        return {
            "pp": self.prefill / prefill_s,
            "tg": steps / (many - one),
            "ttft_ms": 1e3 * one,
            "generated": float(self.generated[-1]),
        }


class Loop:
    def __init__(self, pte: Path, prefill: int, decode: int) -> None:
        import torch
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(1)
        self.torch = torch
        self.module = portable_lib._load_for_executorch(str(pte), enable_etdump=False)
        self.prefill, self.decode = prefill, decode

    def round(self) -> dict[str, float]:
        torch = self.torch
        tokens = torch.randint(0, 200, (1, self.prefill), dtype=torch.long)
        began = time.perf_counter()
        self.module.run_method("forward", (tokens, torch.tensor([0], dtype=torch.long)))
        prefill_s = time.perf_counter() - began
        steps = [
            (
                torch.randint(0, 200, (1, 1), dtype=torch.long),
                torch.tensor([self.prefill + i], dtype=torch.long),
            )
            for i in range(self.decode)
        ]
        began = time.perf_counter()
        for step in steps:
            self.module.run_method("forward", step)
        decode_s = time.perf_counter() - began
        return {
            "pp": self.prefill / prefill_s,
            "tg": self.decode / decode_s,
            "ttft_ms": 1e3 * prefill_s,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pte", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--prefill", type=int, default=32)
    parser.add_argument("--decode", type=int, default=31)
    parser.add_argument("--work", type=Path, default=Path("/tmp/etprof-llm-shipped"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    import executorch.extension.llm.custom_ops.custom_ops  # noqa: F401  (llama:: kernels)

    pte = args.pte or export_llama(args.work)
    from etprof.program.llm import recognise
    from etprof.program.reader import Program

    info, why = recognise(Program.read(pte).shapes)
    if info is None:
        raise SystemExit(f"{pte} is not an LLM program ({why})")
    tokenizer = build_tokenizer(info.vocab_size, args.work / "tokenizer.json")
    sides: dict[str, Any] = {
        "etprof": lambda: etprof_round(pte, args.work / "llm.etdp", args.prefill, args.decode),
        "runner": Runner(pte, tokenizer, args.prefill, args.decode).round,
        "loop": Loop(pte, args.prefill, args.decode).round,
    }
    for name in ("runner", "loop"):  # a first, dropped round: warm-up
        sides[name]()
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(args.rounds):
        order = names[r % 3 :] + names[: r % 3]
        for name in order:
            rows[name].append(sides[name]())
        print(
            f"round {r + 1}: "
            + "; ".join(
                f"{n} pp {rows[n][-1]['pp']:.0f} tg {rows[n][-1]['tg']:.0f}" for n in names
            ),
            flush=True,
        )
    med = {n: {k: statistics.median(x[k] for x in rows[n]) for k in rows[n][0]} for n in names}
    best = {n: {k: max(x[k] for x in rows[n]) for k in ("pp", "tg")} for n in names}
    print(
        f"\nmedians over {args.rounds} rounds (pp{args.prefill}, tg{args.decode}); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'':<34}{'etprof':>10}{'runner':>10}{'loop':>10}{'/runner':>9}{'/loop':>8}")
    for key, label in (
        ("pp", "prefill tokens/s"),
        ("tg", "decode tokens/s"),
        ("ttft_ms", "time to first token ms (*)"),
    ):
        e, rn, lp = med["etprof"][key], med["runner"][key], med["loop"][key]
        print(f"{label:<34}{e:>10.1f}{rn:>10.1f}{lp:>10.1f}{e / rn:>9.2f}{e / lp:>8.2f}")
    for key, label in (
        ("pp", "prefill tokens/s, best round"),
        ("tg", "decode tokens/s, best round"),
    ):
        e, rn, lp = best["etprof"][key], best["runner"][key], best["loop"][key]
        print(f"{label:<34}{e:>10.1f}{rn:>10.1f}{lp:>10.1f}{e / rn:>9.2f}{e / lp:>8.2f}")
    e = med["etprof"]
    print(
        f"{'etprof traced, beside':<34}pp {e['pp_traced']:.1f}  tg {e['tg_traced']:.1f}"
        f"  (headline shipped: {'yes' if e['shipped'] else 'no'})"
    )
    print(
        "(*) runner: generate() of one new token (its prefill, sampling and text decoding "
        "included); etprof and loop: the prefill execute"
    )
    print(
        f"runner generated {med['runner']['generated']:.0f} tokens per generate (EOS may end "
        "it early)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
