"""Generation throughput: `LanguageModel.sample` (batched, length-sorted, KV cache) against the naive loop
(`model.generate` one prompt at a time), same model, prompts and sampling settings, in one run.

    python benchmarks/generation_throughput.py                       # packaged SmolLM2-135M-Instruct
    python benchmarks/generation_throughput.py --prompts 64 --repeats 3 --generator path/or/hub-id

New tokens are counted up to each sequence's stop (end-of-text or newline); the median of `--repeats` runs of
each is reported, with the machine. Where the CPU has native bfloat16, zskd samples from a bfloat16 copy of the
weights; the naive loop is then also run on that copy, to show what batching alone gives.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from common import save_results
from zskd.generation import LanguageModel, SamplingConfig
from zskd.methods.generate import prompt_plan
from zskd.report import markdown_table
from zskd.runinfo import machine_description


def new_token_count(lm: LanguageModel, ids: list[int]) -> int:
    """Tokens up to and including the first stop token (what a user gets)."""
    for i, token in enumerate(ids):
        if token in lm.stop_ids:
            return i + 1
    return len(ids)


@torch.inference_mode()
def naive(lm: LanguageModel, prompts: list[str], config: SamplingConfig, seed: int, model=None) -> int:
    """`model.generate` on one prompt at a time (default: the float32 model as loaded); returns the new tokens
    written."""
    torch.manual_seed(seed)
    model = model or lm.model
    tokens = 0
    for prompt in prompts:
        encoded = lm.tokenizer(lm.format_prompt(prompt), return_tensors="pt", add_special_tokens=False)
        out = model.generate(**encoded, do_sample=True, temperature=config.temperature, top_p=config.top_p,
                                top_k=config.top_k, max_new_tokens=config.max_new_tokens,
                                pad_token_id=lm.tokenizer.pad_token_id, eos_token_id=lm.stop_ids)
        tokens += new_token_count(lm, out[0, encoded["input_ids"].shape[1]:].tolist())
    return tokens


def batched(lm: LanguageModel, prompts: list[str], config: SamplingConfig, seed: int) -> int:
    return sum(count for _, count in lm.sample_with_counts(prompts, config, seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="runs/bench/generation_throughput.json")
    args = parser.parse_args()

    lm = LanguageModel.load(args.generator)
    prompts = [p for p, _ in prompt_plan("movie review", ["is negative", "is positive"], args.prompts, seed=0)]
    config = SamplingConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    samplers = {"naive: model.generate, one prompt at a time": naive,
                "naive, on zskd's bfloat16 copy": lambda *a, **k: naive(*a, **k, model=lm.sampling_model()),
                "zskd LanguageModel.sample (batched)": batched}
    if not lm.bf16:
        del samplers["naive, on zskd's bfloat16 copy"]
    results = {}
    for name, run in samplers.items():
        runs = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            tokens = run(lm, prompts, config, seed=repeat)
            runs.append({"seconds": time.perf_counter() - start, "new_tokens": tokens})
        results[name] = {"runs": runs,
                         "median_tokens_per_second": statistics.median(r["new_tokens"] / r["seconds"] for r in runs)}
    base = results["naive: model.generate, one prompt at a time"]["median_tokens_per_second"]
    rows = [[name, args.prompts, statistics.median(r["new_tokens"] for r in res["runs"]),
             round(statistics.median(r["seconds"] for r in res["runs"]), 1), round(res["median_tokens_per_second"], 1),
             f"{res['median_tokens_per_second'] / base:.2f}x"] for name, res in results.items()]
    table = markdown_table(["sampler", "prompts", "new tokens (median)", "median s", "new tokens/s", "speed-up"], rows)
    machine = machine_description()
    print(table)
    print(f"\n{args.generator} ({'bfloat16' if lm.bf16 else 'float32'} in zskd's sampler), batch {args.batch_size}, "
          f"at most {args.max_new_tokens} new tokens, median of {args.repeats} runs; {machine}")
    save_results(args.json, "generation_throughput", machine, args=vars(args), results=results, table=table)


if __name__ == "__main__":
    main()
