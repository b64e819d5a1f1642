"""pedgpt's performance suite: every speed claim measured side by side, in one command.

    python experiments/perf/run.py [--quick] [--threads 2] [--out-dir experiments/perf]

Each comparison warms up, runs interleaved rounds (5 by default) and reports the median and the spread
(min, max) of its per-round ratios, on 2 threads, with the tiny Llama built from ``conf/model/tiny.yaml`` (the
MoE-LoRA comparison uses its own 4-layer, hidden-512 Llama) and the bundled demo data:

    sft_vs_trl                 our SFT label tokens/s ÷ TRL SFTTrainer's            (sft_vs_trl.py)   ≥ 1.0
    dfpo_cached_vs_sft         DFPO step (cached reference) ÷ SFT step, same tokens (dfpo_vs_sft.py)  ≤ 1.10
    dfpo_online_vs_sft         DFPO step (online reference) ÷ SFT step              (dfpo_vs_sft.py)  ≤ 1.45
    moe_vs_lora_r8             MoE-LoRA 1u+3s r=8 step ÷ peft LoRA r=8              (moe_vs_lora.py)  ≤ 1.10
    moe_vs_lora_same_rank      MoE-LoRA 1u+3s r=8 step ÷ peft LoRA r=32             (moe_vs_lora.py)  ≤ 1.00
    moe_vs_lora_*_2048         the same two at hidden 2048 (1 layer)                (moe_vs_lora.py)  ≤ 1.10 / 1.00
    cpu_gemm_fraction_sft_1024 SFT model FLOP/s ÷ this machine's fp32 GEMM FLOP/s   (cpu_efficiency.py) ≥ 0.5
    packing_efficiency         real tokens ÷ (rows × 1024) of the SFT packer        (packing.py)      ≥ 0.97
    batched_generation_speedup one-by-one ÷ batched greedy wall time, same outputs  (generation_speed.py) ≥ 2.5
    block_attention_speedup_4096  packed SFT step, dense-mask ÷ block-sparse attention (block_attention.py) ≥ 1.5
    block_attention_speedup_2048  the same at max_len 2048                             (block_attention.py) reported
    start_rss_ratio_100x       peak RSS of a cached 1-step CPT run, 100× ÷ 1× shared CPT text (token_store.py) ≤ 1.2
    start_seconds_ratio_100x   its wall time, 100× ÷ 1×                                      (token_store.py) ≤ 1.2
    tokenize_speedup           CPT data preparation before the store ÷ building it, 10× (5× quick) (token_store.py) ≥ 3

The full run (no ``--quick``) adds the real data (``$PEDGPT_DATA_DIR`` or ``../shared/data`` next to the
repository, built into a PedCorpus with ``python -m pedgpt.data.build``, or ``--corpus`` for a built one):
``packing_efficiency`` becomes the lower of the demo and PedCorpus values; plus ``demo_wall_seconds``, the wall
time of ``python -m pedgpt.train`` (the four-stage demo, cold cache). The full run also reports TRL ``DPOTrainer``
(RPO term) step times and ours ÷ TRL (sequential, no goal).

It prints a table, writes ``results.json`` and ``results.png`` (each ratio against its goal) to ``--out-dir``
and prints, as its last stdout line, one JSON object with the median ratios (``null`` for a skipped row).
``--smoke`` runs every benchmark at CI size (1 round, a step or two) to prove the suite runs; its numbers
mean nothing. ``--no-trl`` skips the TRL rows (they are skipped anyway when TRL is not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import block_attention  # noqa: E402
import cpu_efficiency  # noqa: E402
import dfpo_vs_sft  # noqa: E402
import generation_speed  # noqa: E402
import moe_vs_lora  # noqa: E402
import packing  # noqa: E402
import sft_vs_trl  # noqa: E402
import token_store  # noqa: E402

# metric → (direction, goal, what it means)
GOALS: dict[str, tuple[str, float, str]] = {
    "sft_vs_trl": (">=", 1.0, "our SFT label tokens/s ÷ TRL SFTTrainer's (same model, data, batch, optimizer)"),
    "dfpo_cached_vs_sft": ("<=", 1.10, "DFPO step (cached reference) ÷ SFT step on the same chosen+rejected rows"),
    "dfpo_online_vs_sft": ("<=", 1.45, "DFPO step (online frozen reference) ÷ SFT step on the same rows"),
    "moe_vs_lora_r8": ("<=", 1.10, "MoE-LoRA 1u+3s r=8 step ÷ peft LoRA r=8 step (hidden 512, noisy_token)"),
    "moe_vs_lora_same_rank": ("<=", 1.00, "MoE-LoRA 1u+3s r=8 step ÷ peft LoRA r=32 step (same total rank, 512)"),
    "moe_vs_lora_r8_2048": ("<=", 1.10, "the same MoE-LoRA ÷ peft LoRA r=8 at hidden 2048 (1 layer)"),
    "moe_vs_lora_same_rank_2048": ("<=", 1.00, "the same MoE-LoRA ÷ peft LoRA r=32 at hidden 2048 (1 layer)"),
    "cpu_gemm_fraction_sft_1024": (">=", 0.5, "SFT model FLOP/s (hidden 1024, seq 1024) ÷ this machine's fp32 GEMM"),
    "packing_efficiency": (">=", 0.97, "real tokens ÷ (rows × 1024), SFT data, no cross-document attention"),
    "batched_generation_speedup": (">=", 2.5, "one-by-one ÷ batched greedy generation time, identical outputs"),
    "block_attention_speedup_4096": (">=", 1.5, "packed SFT step at 4096: dense-mask ÷ block-sparse attention time"),
    "start_rss_ratio_100x": ("<=", 1.2, "peak RSS of a cached 1-step CPT run, 100× ÷ 1× the shared CPT text"),
    "start_seconds_ratio_100x": ("<=", 1.2, "wall time of a cached 1-step CPT run, 100× ÷ 1× the shared CPT text"),
    "tokenize_speedup": (
        ">=",
        3.0,
        "CPT data preparation before the token store ÷ building the store (10×, --quick 5×; 2 procs)",
    ),
}
REPORTED = ("block_attention_speedup_2048",)  # in the last JSON line beside the goals, no goal of their own
BENCH = dict(
    rounds=5,  # DFPO and MoE-LoRA (the issue asks ≥ 5 interleaved rounds of the MoE ratios)
    sft_rounds=5,
    gen_rounds=5,
    block_rounds=5,
    sft_steps=16,
    sft_warmup=2,
    dfpo_steps=10,
    moe_steps=8,
    moe_steps_2048=3,
    cpu_rounds=3,
    cpu_steps=2,
    gen_prompts=32,
    gen_batch=8,
    gen_new_tokens=64,
    trl_dpo_steps=10,
    store_factors=(1, 10, 100),  # start-up runs, first and cached, at these multiples of the shared CPT text
    speedup_factor=10,  # tokenize_speedup's corpus
)
SIZES = {  # benchmark sizes; --smoke only proves the suite runs
    "bench": BENCH,
    # --quick: fewer rounds where the spread is far from the goal (sft_vs_trl 3.3-4.3 for >= 1, generation 5.0-6.4
    # for >= 2.5, block attention 3.0-3.5 for >= 1.5, all measured with 5 rounds); start-ups at 1x and 100x only;
    # tokenize_speedup on 5x (the old path's packing is quadratic, so a smaller corpus gives a lower ratio)
    "quick": {
        **BENCH,
        "sft_rounds": 3,
        "gen_rounds": 3,
        "block_rounds": 3,
        "store_factors": (1, 100),
        "speedup_factor": 5,
    },
    "smoke": dict(
        rounds=1,
        sft_rounds=1,
        gen_rounds=1,
        block_rounds=1,
        sft_steps=1,
        sft_warmup=1,
        dfpo_steps=1,
        moe_steps=1,
        moe_steps_2048=1,
        cpu_rounds=1,
        cpu_steps=1,
        gen_prompts=2,
        gen_batch=2,
        gen_new_tokens=4,
        trl_dpo_steps=1,
        store_factors=(1, 2),
        speedup_factor=2,
    ),
}


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "rounds": len(values),
    }


def repeated(fn: Callable[[], dict], keys: list[str], rounds: int) -> tuple[dict[str, dict], list[dict]]:
    """Call a one-round ``measure`` ``rounds`` times; per key, the median and spread of the per-round values."""
    runs = [fn() for _ in range(rounds)]
    return {k: spread([r[k] for r in runs]) for k in keys}, runs


def trl_installed() -> bool:
    return sft_vs_trl.trl_available()


def bench_sft_vs_trl(z: dict, threads: int) -> dict[str, dict]:
    r = sft_vs_trl.measure(rounds=z["sft_rounds"], steps=z["sft_steps"], warmup=z["sft_warmup"], threads=threads)
    return {
        "sft_vs_trl": {
            "median": r["sft_vs_trl"],
            "min": r["sft_vs_trl_min"],
            "max": r["sft_vs_trl_max"],
            "rounds": r["rounds"],
            "details": r,
        }
    }


def bench_dfpo(z: dict, threads: int) -> dict[str, dict]:
    r = dfpo_vs_sft.measure(rounds=z["rounds"], steps=z["dfpo_steps"], threads=threads)
    return {
        k: {"median": r[k], "min": r[f"{k}_min"], "max": r[f"{k}_max"], "rounds": r["rounds"], "details": r}
        for k in ("dfpo_cached_vs_sft", "dfpo_online_vs_sft")
    }


def bench_dfpo_trl(z: dict, threads: int, ours: dict) -> dict[str, Any]:
    """TRL DPOTrainer + RPO term step times (sequential, after ours) and ours ÷ TRL; reported, no goal."""
    trl = dfpo_vs_sft.measure_trl(steps=z["trl_dpo_steps"], threads=threads)
    out: dict[str, Any] = dict(trl)
    d = ours["dfpo_cached_vs_sft"]["details"]
    if "trl_ms_precomputed_ref" in trl:
        out["ours_cached_vs_trl_precomputed"] = round(d["ms_dfpo_cached"] / trl["trl_ms_precomputed_ref"], 4)
    if "trl_ms_online_ref" in trl:
        out["ours_online_vs_trl_online"] = round(d["ms_dfpo_online"] / trl["trl_ms_online_ref"], 4)
    return out


def isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` run in a fresh, spawned Python process; its result. A row measured there does not depend on what
    the rows before it left in this process: MoE-LoRA ÷ peft LoRA r=32 measured 0.98-1.02 in a fresh process and 1.05-1.09
    in one that had run the DFPO rows first (glibc's malloc adapts its thresholds to earlier frees, and peft's
    per-layer output tensors then take page faults that MoE-LoRA's in-place accumulation does not)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def bench_moe(z: dict, threads: int) -> dict[str, dict]:
    """Both MoE ratios at hidden 512 and 2048: models built once per size, ``rounds`` interleaved rounds each."""
    out: dict[str, dict] = {}
    for hidden, steps, suffix in ((512, z["moe_steps"], ""), (2048, z["moe_steps_2048"], "_2048")):
        warmup = min(moe_vs_lora.WARMUP, steps)
        r = moe_vs_lora.measure(rounds=z["rounds"], steps=steps, threads=threads, hidden=hidden, warmup=warmup)
        for k in ("moe_vs_lora_r8", "moe_vs_lora_same_rank"):
            out[k + suffix] = {**spread(r[f"{k}_rounds"]), "per_round": r[f"{k}_rounds"], "details": r}
    return out


def bench_cpu_efficiency(z: dict, threads: int) -> dict[str, dict]:
    r = cpu_efficiency.measure(rounds=z["cpu_rounds"], steps=z["cpu_steps"], threads=threads)
    key = "cpu_gemm_fraction_sft_1024"
    return {key: {**spread(r[f"{key}_rounds"]), "per_round": r[f"{key}_rounds"], "details": r}}


def bench_generation(z: dict, threads: int) -> dict[str, dict]:
    key = "batched_generation_speedup"
    stats, runs = repeated(
        lambda: generation_speed.measure(
            rounds=1,
            n_prompts=z["gen_prompts"],
            batch_size=z["gen_batch"],
            max_new_tokens=z["gen_new_tokens"],
            threads=threads,
        ),
        [key],
        z["gen_rounds"],
    )
    return {key: {**stats[key], "details": runs}}


def bench_block_attention(z: dict, threads: int) -> dict[str, dict]:
    """Packed SFT step at max_len 2048 and 4096, dense-mask ÷ block-sparse attention (interleaved rounds)."""
    r = block_attention.measure((2048, 4096), rounds=z["block_rounds"], threads=threads)
    out = {}
    for n, d in r["details"].items():
        key = f"block_attention_speedup_{n}"
        out[key] = {"median": d["speedup"], "min": d["speedup_min"], "max": d["speedup_max"], "rounds": d["rounds"]}
        out[key]["details"] = d
    return out


def bench_token_store(z: dict, smoke: bool, threads: int) -> dict[str, dict]:
    """Start-up of a cached run against the corpus size, and the first-run tokenize speedup (shared data only;
    --smoke: 500 texts at 1× and 2×)."""
    r = token_store.measure(z["store_factors"], threads, 2, z["speedup_factor"], 500 if smoke else None)
    if r is None:
        return {}
    one = lambda v: {"median": v, "min": v, "max": v, "rounds": 1, "details": r}  # noqa: E731  (one run each)
    return {
        "start_rss_ratio_100x": one(r["start_rss_ratio"]),
        "start_seconds_ratio_100x": one(r["start_seconds_ratio"]),
        "tokenize_speedup": one(r["tokenize_speedup"]),
    }


def bench_packing(corpus: str | None) -> dict[str, dict]:
    demo = packing.measure(None, 1024)
    values, details = [demo["packing_efficiency"]], [demo]
    if corpus:
        real = packing.measure(corpus, 1024)
        values.append(real["packing_efficiency"])
        details.append(real)
    v = min(values)  # deterministic: one pass, no rounds
    return {"packing_efficiency": {"median": v, "min": v, "max": v, "rounds": 1, "details": details}}


def shared_data_dir() -> str | None:
    d = os.environ.get("PEDGPT_DATA_DIR") or os.path.join(REPO, "..", "shared", "data")
    return os.path.abspath(d) if os.path.isdir(d) else None


def build_corpus(source_dir: str, out_dir: str) -> str:
    cmd = [
        sys.executable,
        "-m",
        "pedgpt.data.build",
        f"source_dir={source_dir}",
        f"out_dir={out_dir}",
        "progress=false",
        f"hydra.run.dir={out_dir}/.hydra_run",
    ]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"corpus build failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    return out_dir


def demo_wall_seconds(workdir: str, threads: int) -> float:
    """Wall time of ``python -m pedgpt.train`` (four-stage demo) with a fresh output dir and a cold cache."""
    env = {**os.environ, "PEDGPT_CACHE_DIR": os.path.join(workdir, "cache"), "OMP_NUM_THREADS": str(threads)}
    cmd = [
        sys.executable,
        "-m",
        "pedgpt.train",
        f"paths.output_root={workdir}/outputs",
        "progress_bar=false",
        f"hydra.run.dir={workdir}/outputs/demo",
    ]
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise RuntimeError(f"python -m pedgpt.train failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    return round(wall, 1)


def machine() -> dict[str, Any]:
    import torch

    model = (
        next(
            (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
            platform.processor(),
        )
        if os.path.exists("/proc/cpuinfo")
        else platform.processor()
    )
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
            ).stdout.strip()
            or None
        )
    except OSError:
        commit = None
    info = {
        "nproc": os.cpu_count(),
        "cpu": model,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": commit,
        "device": "cpu",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for lib in ("transformers", "trl", "peft", "lightning"):
        try:
            info[lib] = __import__(lib).__version__
        except ImportError:
            info[lib] = None
    return info


def passes(name: str, value: float | None) -> bool | None:
    if value is None or name not in GOALS:
        return None
    op, goal, _ = GOALS[name]
    return value >= goal if op == ">=" else value <= goal


def print_table(metrics: dict[str, dict], extra: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="pedgpt performance suite (CPU)")
    for col in ("metric", "median", "min", "max", "rounds", "goal", "ok", "meaning"):
        t.add_column(col, justify="right" if col in ("median", "min", "max", "rounds") else "left")
    for name, (op, goal, meaning) in GOALS.items():
        m = metrics.get(name)
        if m is None:
            t.add_row(name, "skipped", "", "", "", f"{op} {goal}", "", meaning)
            continue
        ok = passes(name, m["median"])
        t.add_row(
            name,
            f"{m['median']:.3f}",
            f"{m['min']:.3f}",
            f"{m['max']:.3f}",
            str(m["rounds"]),
            f"{op} {goal}",
            "[green]yes[/green]" if ok else "[red]NO[/red]",
            meaning,
        )
    for k, v in extra.items():
        t.add_row(k, str(v), "", "", "", "", "", "reported, no goal")
    Console(width=180).print(t)


def plot(metrics: dict[str, dict], path: str) -> None:
    """Bars of value ÷ goal (≥ goals) or goal ÷ value (≤ goals): above 1 meets the goal; whiskers = spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in GOALS if n in metrics]
    score, lo, hi, colors, labels = [], [], [], [], []
    for n in names:
        op, goal, _ = GOALS[n]
        m = metrics[n]
        f = (lambda v, g=goal: v / g) if op == ">=" else (lambda v, g=goal: g / v)
        s, a, b = f(m["median"]), f(m["min"]), f(m["max"])
        score.append(s)
        lo.append(s - min(a, b))
        hi.append(max(a, b) - s)
        colors.append("tab:green" if s >= 1 else "tab:red")
        labels.append(f"{n}\n{m['median']:.3f} (goal {op} {goal})")
    fig, ax = plt.subplots(figsize=(9, 0.7 * len(names) + 1.5))
    ax.barh(range(len(names)), score, xerr=[lo, hi], color=colors, capsize=3)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(names)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("headroom over the goal (value ÷ goal for ≥ goals, goal ÷ value for ≤ goals); > 1 meets it")
    ax.set_title("pedgpt performance suite, CPU, median over rounds (whiskers: min–max)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="demo data (+ the shared CPT text for the token-store rows), no demo wall time, fewer rounds where the spread allows (~9 min on 2 idle cores)",
    )
    ap.add_argument("--smoke", action="store_true", help="CI size: 1 round, a step or two; numbers are meaningless")
    ap.add_argument("--no-trl", action="store_true", help="skip the TRL rows")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", default=None, help="a built PedCorpus directory to reuse (full run)")
    ap.add_argument("--out-dir", default=HERE)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    z = SIZES["smoke" if a.smoke else "quick" if a.quick else "bench"]
    full = not (a.quick or a.smoke)
    use_trl = trl_installed() and not a.no_trl
    t_start = time.perf_counter()
    metrics: dict[str, dict] = {}
    extra: dict[str, Any] = {}
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        seconds[name] = round(time.perf_counter() - t, 1)
        print(f"[{name}] done in {seconds[name]:.0f} s", flush=True)
        return out

    with tempfile.TemporaryDirectory(prefix="pedgpt-perf-") as tmp:
        corpus = None
        if full:
            src = shared_data_dir()
            corpus = a.corpus or (
                timed("corpus_build", lambda: build_corpus(src, os.path.join(tmp, "corpus"))) if src else None
            )
        if use_trl:
            metrics.update(timed("sft_vs_trl", lambda: bench_sft_vs_trl(z, a.threads)))
        metrics.update(timed("dfpo_vs_sft", lambda: bench_dfpo(z, a.threads)))
        if use_trl and full:  # no goal: the full run only
            extra.update(timed("dfpo_vs_trl_dpo", lambda: bench_dfpo_trl(z, a.threads, metrics)))
        metrics.update(timed("moe_vs_lora", lambda: isolated(bench_moe, z, a.threads)))
        metrics.update(timed("cpu_efficiency", lambda: bench_cpu_efficiency(z, a.threads)))
        metrics.update(timed("packing", lambda: bench_packing(corpus)))
        metrics.update(timed("generation", lambda: bench_generation(z, a.threads)))
        metrics.update(timed("block_attention", lambda: bench_block_attention(z, a.threads)))
        metrics.update(timed("token_store", lambda: bench_token_store(z, a.smoke, a.threads)))
        if full:
            extra["demo_wall_seconds"] = timed(
                "demo_wall", lambda: demo_wall_seconds(os.path.join(tmp, "demo"), a.threads)
            )
    summary: dict[str, Any] = {k: (metrics[k]["median"] if k in metrics else None) for k in GOALS}
    summary.update({k: metrics[k]["median"] if k in metrics else None for k in REPORTED})
    if full:
        summary["demo_wall_seconds"] = extra["demo_wall_seconds"]
    results = {
        "mode": "smoke" if a.smoke else ("quick" if a.quick else "full"),
        "summary": summary,
        "goals": {
            k: {"op": op, "goal": g, "meaning": m, "met": passes(k, summary[k])} for k, (op, g, m) in GOALS.items()
        },
        "metrics": metrics,
        "reported": extra,
        "seconds": seconds,
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "threads": a.threads,
        "sizes": z,
        "machine": machine(),
    }
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False, default=str)
    plot(metrics, os.path.join(a.out_dir, "results.png"))
    print_table(metrics, {k: v for k, v in extra.items() if not isinstance(v, dict)})
    print(f"total {results['total_seconds']:.0f} s; results.json and results.png in {a.out_dir}", flush=True)
    print(json.dumps(summary), flush=True)
    return results


if __name__ == "__main__":
    main()
