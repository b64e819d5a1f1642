"""Tokenize once, read everywhere: start-up seconds and peak RSS of a training process against the corpus size,
and the first-run tokenization speed against the path it replaced.

    python experiments/perf/token_store.py [--factors 1 10 100] [--threads 2] [--speedup-factor 10]

The corpus: the shared CPT text (``../shared/data/c_pretrain/*.jsonl`` or ``$PEDGPT_DATA_DIR``), its ``text``
fields written as a PedCorpus (``cpt/train.jsonl`` repeated ``factor`` times, ``cpt/dev.jsonl`` its first 200
texts once, the demo's instructions as ``sft/``, sealed with a manifest). Every run starts from one fixed tiny
export (``init_from``, the demo's tokenizer), so that only the data changes.

Start-up: ``python -m pedgpt.train pipeline=[cpt]`` for one optimizer step and one validation batch (startup
validation, manifest check, token store, model load, the step, the export), in a fresh process; its wall time
and peak RSS (the process's ``VmHWM``, polled). ``first``: the cache is empty, so the run tokenizes;
``cached``: the same command again, ``CACHED_RUNS`` times after ``os.sync()`` (the build's gigabyte of dirty pages
would otherwise be written back during the first cached run), the median seconds and RSS reported and every run
kept. About 9 of a cached start's 12 seconds are Python imports; what grows with the corpus is the manifest's line
count and opening the Arrow files (≈ 0.2 s at 100×). Goals: cached seconds and RSS at 100× within 1.2× of 1×.

``tokenize_speedup``: in one process, the CPT data preparation the pipeline did before the token store (mix,
one tokenizer call per document, first-fit packing by linear scan over the rows: ``legacy_*`` below, kept
here as the reference) ÷ building the store (same mix, batched ``Dataset.map`` over ``num_proc`` processes,
Arrow on disk, the packing index by a max-tree), on the 10× corpus (``--speedup-factor``; the suite's ``--quick`` uses 5×); the two produce the same examples and rows
(asserted). Goal ≥ 3.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))  # helpers.compose: the composed config, as the CLI sees it

from helpers import compose  # noqa: E402
from pedgpt.data.corpus.demo import build_demo_corpus  # noqa: E402
from pedgpt.data.corpus.manifest import write_manifest  # noqa: E402
from pedgpt.data.schema import PretrainText, to_dict  # noqa: E402
from pedgpt.data.token_store import StoredExamples, open_store  # noqa: E402
from pedgpt.models.tokenizer import load_tokenizer, use_template  # noqa: E402
from pedgpt.stages.cpt import CPT  # noqa: E402
from pedgpt.stages.examples import store_material  # noqa: E402
from pedgpt.training.init_export import prepare_initial_export  # noqa: E402

DEV_TEXTS = 200
CACHED_RUNS = 3


def shared_texts() -> list[str] | None:
    d = os.environ.get("PEDGPT_DATA_DIR") or os.path.join(REPO, "..", "shared", "data")
    files = sorted(glob.glob(os.path.join(d, "c_pretrain", "*.jsonl")))
    if not files:
        return None
    texts = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            texts += [t for line in f if line.strip() and (t := json.loads(line).get("text")) and t.strip()]
    return texts


def scaled_corpus(out: str, texts: list[str], factor: int) -> str:
    """A sealed PedCorpus whose CPT training text is ``texts`` repeated ``factor`` times."""
    demo = build_demo_corpus(seed=0)
    for sub in ("cpt", "sft"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    block = "".join(
        json.dumps(to_dict(PretrainText(t, "c_pretrain", split="train")), ensure_ascii=False) + "\n" for t in texts
    )
    with open(os.path.join(out, "cpt", "train.jsonl"), "w", encoding="utf-8") as f:
        for _ in range(factor):
            f.write(block)
    with open(os.path.join(out, "cpt", "dev.jsonl"), "w", encoding="utf-8") as f:
        for t in texts[:DEV_TEXTS]:
            f.write(json.dumps(to_dict(PretrainText(t, "c_pretrain", split="dev")), ensure_ascii=False) + "\n")
    for split in ("train", "dev"):
        with open(os.path.join(out, "sft", f"{split}.jsonl"), "w", encoding="utf-8") as f:
            for r in demo["sft"]:
                if (r.split or "train") == split:
                    f.write(json.dumps(to_dict(r), ensure_ascii=False) + "\n")
    write_manifest(out, {"benchmark": f"c_pretrain x{factor}"})
    return out


def fixed_init(workdir: str) -> str:
    """One tiny export every run starts from (the demo's tokenizer, the tiny model)."""
    cfg = compose([f"paths.cache_dir={workdir}/init_cache"])
    return prepare_initial_export(cfg, os.path.join(workdir, "init_run"))


def peak_rss_mb(pid: int, proc: subprocess.Popen) -> float:
    """The process's own peak RSS (``VmHWM``, reset by ``exec``), polled until it exits. ``ru_maxrss`` from
    ``wait4`` would not do: it keeps the forking parent's RSS, which the child inherits until its ``exec``."""
    peak = 0.0
    while proc.poll() is None:
        try:
            with open(f"/proc/{pid}/status") as f:
                hwm = next(ln for ln in f if ln.startswith("VmHWM:"))
            peak = max(peak, int(hwm.split()[1]) / 1024)
        except (OSError, StopIteration, ValueError):
            pass
        time.sleep(0.05)
    return round(peak, 1)


def start_up(root: str, init: str, cache: str, run_dir: str, threads: int) -> dict[str, Any]:
    """Wall seconds and peak RSS (MiB) of a one-step CPT run in a fresh process."""
    cmd = [
        sys.executable,
        "-m",
        "pedgpt.train",
        "pipeline=[cpt]",
        f"data.root={root}",
        f"init_from={init}",
        f"paths.cache_dir={cache}",
        "trainer.max_steps=1",
        "trainer.limit_val_batches=1",
        "gen.enabled=false",
        "progress_bar=false",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile("w+") as log:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        rss = peak_rss_mb(p.pid, p)
        seconds = time.perf_counter() - t
        log.seek(0)
        out = log.read()
    if p.returncode:
        raise RuntimeError(f"start-up run failed: {out.strip().splitlines()[-3:]}")
    line = next((ln for ln in out.splitlines() if ln.startswith("token store")), "")
    store = line.split(":")[1].split("(")[0].strip()
    return {"seconds": round(seconds, 2), "rss_mb": rss, "store": store}


# --- the path the token store replaced (the reference of tokenize_speedup) -----------------------------
def legacy_encode(texts: list[str], tokenizer: Any, max_len: int) -> list[dict]:
    """One tokenizer call per document, Python lists (``encode_texts`` before the store)."""
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    out = []
    for text in texts:
        ids = bos + tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        for i in range(0, len(ids), max_len):
            chunk = ids[i : i + max_len]
            if len(chunk) > 1:
                out.append({"input_ids": chunk, "labels": list(chunk)})
    return out


def legacy_pack(lengths: list[int], max_len: int) -> list[list[int]]:
    """First-fit decreasing by a linear scan over the open rows (``pack_greedy`` before the store)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = lengths[i]
        for r, space in enumerate(free):
            if n <= space:
                rows[r].append(i)
                free[r] -= n
                break
        else:
            rows.append([i])
            free.append(max_len - n)
    return rows


def tokenize_speedup(root: str, init: str, cache: str, num_proc: int) -> dict[str, Any]:
    cfg = compose([f"data.root={root}", f"init_from={init}", f"paths.cache_dir={cache}", f"data.num_proc={num_proc}"])
    stage = CPT(cfg)
    tok = use_template(load_tokenizer(init), cfg.model.template)
    max_len = int(stage.st.max_len)
    t = time.perf_counter()
    enc = stage.encoding(tok)  # reading and mixing: the same in both paths
    legacy = {s: legacy_encode(list(enc.items[s]), tok, max_len) for s in ("train", "dev")}
    legacy_rows = legacy_pack([len(e["input_ids"]) for e in legacy["train"]], max_len)
    legacy_s = time.perf_counter() - t
    t = time.perf_counter()
    store = open_store(
        cache, "cpt", store_material(stage, tok), lambda: stage.encoding(tok), num_proc, max_len, say=lambda s: None
    )
    store_s = time.perf_counter() - t
    stored = StoredExamples(store.split("train"), store.key, labels_from_inputs=True)
    rows = store.rows("train")
    assert store.status == "built" and rows is not None
    assert len(stored) == len(legacy["train"]) and stored[len(stored) // 2] == legacy["train"][len(stored) // 2]
    assert rows["docs"] == legacy_rows, "the store's packing index differs from first-fit decreasing"
    return {
        "tokenize_speedup": round(legacy_s / store_s, 3),
        "legacy_seconds": round(legacy_s, 2),
        "store_seconds": round(store_s, 2),
        "num_proc": num_proc,
        "documents": len(enc.items["train"]),
        "examples": len(stored),
        "rows": len(rows),
    }


def measure(
    factors: tuple[int, ...] = (1, 10, 100),
    threads: int = 2,
    num_proc: int = 2,
    speedup_factor: int = 10,
    limit_texts: int | None = None,
) -> dict[str, Any] | None:
    """Start-up runs at each factor (first and cached) and the tokenize speedup at ``speedup_factor``; None
    without the shared data. ``limit_texts``: only that many texts (the suite's ``--smoke``)."""
    texts = shared_texts()
    if texts is None:
        return None
    texts = texts[:limit_texts] if limit_texts else texts
    with tempfile.TemporaryDirectory(prefix="pedgpt-store-") as tmp:
        init = fixed_init(tmp)
        runs: dict[int, dict[str, Any]] = {}
        speed: dict[str, Any] = {}
        for k in sorted({*factors, speedup_factor}):
            root = scaled_corpus(os.path.join(tmp, f"corpus{k}"), texts, k)
            if k in factors:
                cache = os.path.join(tmp, f"cache{k}")
                first = start_up(root, init, cache, os.path.join(tmp, f"run{k}a"), threads)
                os.sync()
                again = [
                    start_up(root, init, cache, os.path.join(tmp, f"run{k}b{i}"), threads) for i in range(CACHED_RUNS)
                ]
                assert first["store"] == "built" and {r["store"] for r in again} == {"cached"}, (first, again)
                cached = {
                    "seconds": round(statistics.median(r["seconds"] for r in again), 2),
                    "rss_mb": round(statistics.median(r["rss_mb"] for r in again), 1),
                    "store": "cached",
                    "runs": again,
                }
                runs[k] = {
                    "first": first,
                    "cached": cached,
                    "corpus_mb": round(os.path.getsize(os.path.join(root, "cpt", "train.jsonl")) / 2**20, 1),
                }
            if k == speedup_factor:
                speed = {**tokenize_speedup(root, init, os.path.join(tmp, "speed_cache"), num_proc), "factor": k}
            shutil.rmtree(root)
        lo, hi = runs[min(factors)]["cached"], runs[max(factors)]["cached"]
        out = {
            "start_rss_ratio": round(hi["rss_mb"] / lo["rss_mb"], 3),
            "start_seconds_ratio": round(hi["seconds"] / lo["seconds"], 3),
            "factors": list(factors),
            "texts": len(texts),
            "runs": runs,
            **speed,
        }
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--num-proc", type=int, default=2)
    ap.add_argument("--speedup-factor", type=int, default=10, help="the corpus multiple tokenize_speedup runs on")
    a = ap.parse_args()
    print(json.dumps(measure(tuple(a.factors), a.threads, a.num_proc, a.speedup_factor), indent=1))


if __name__ == "__main__":
    main()
