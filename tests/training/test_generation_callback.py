"""Generation scores while training: every N validations the callback answers fixed held-out prompts, logs
val/gen/<task>/<metric> and val/gen/<metric> computed by the pedgpt.metrics torchmetrics classes, and writes the
samples (gen_samples.jsonl, W&B table); the prompt set is a fixed, seeded draw per task."""

import json

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger

from pedgpt.data.corpus.demo import build_demo_corpus
from pedgpt.data.prompts import SamplePrompt, held_out_prompts
from pedgpt.data.schema import Message
from pedgpt.data.templates import get_template
from pedgpt.inference.generation import GenerationSettings
from pedgpt.metrics import ChineseGenerationMetrics
from pedgpt.training.generation_callback import GEN_KEYS, SAMPLES_FILE, GenerationScores

PROMPTS = [
    SamplePrompt("medkqa", [Message("user", "手足口病怎么预防？")], "勤洗手，避免去人多的地方。"),
    SamplePrompt("trerecom", [Message("user", "宝宝发烧怎么处理？")], "先物理降温，体温高时遵医嘱用退热药。"),
    SamplePrompt("evidiag", [Message("user", "孩子咳嗽伴发热，可能是什么？")]),
]


class TinyLM(L.LightningModule):
    def __init__(self, model):
        super().__init__()
        self.lm = model.train()

    def training_step(self, batch, batch_idx):
        return self.lm(input_ids=batch, labels=batch).loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.lm(input_ids=batch, labels=batch).loss)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def fit(tmp_path, callback, tiny_llama, tiny_tokenizer, loggers=False, steps=4):
    model = TinyLM(tiny_llama(vocab=len(tiny_tokenizer)))
    data = torch.utils.data.DataLoader(torch.randint(3, len(tiny_tokenizer), (8, 12)), batch_size=2)
    trainer = L.Trainer(
        max_steps=steps,
        val_check_interval=1,
        check_val_every_n_epoch=None,
        limit_val_batches=1,
        num_sanity_val_steps=1,
        logger=loggers,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, data, data)
    return trainer, model


def callback(tok, prompts=PROMPTS, every=2, out_dir=None, tokens=4):
    return GenerationScores(
        tok,
        get_template("human_assistant"),
        prompts,
        every_n_val=every,
        settings=GenerationSettings(max_new_tokens=tokens),
        out_dir=out_dir,
    )


def test_scores_every_n_validations_per_task_and_overall(tmp_path, tiny_llama, tiny_tokenizer):
    cb = callback(tiny_tokenizer, out_dir=str(tmp_path))
    trainer, model = fit(tmp_path, cb, tiny_llama, tiny_tokenizer, loggers=[CSVLogger(str(tmp_path))])
    assert cb.val_runs == 4  # the sanity check is not counted
    logged = set(trainer.callback_metrics)
    assert {f"val/gen/{k}" for k in GEN_KEYS} <= logged
    assert {f"val/gen/medkqa/{k}" for k in GEN_KEYS} | {f"val/gen/trerecom/{k}" for k in GEN_KEYS} <= logged
    assert not any(k.startswith("val/gen/evidiag") for k in logged)  # no reference: answered, not scored
    # the overall scores are the pedgpt metric over the last answers (an independent recomputation)
    last = {s["task"]: s for s in cb.last_samples}
    ref = ChineseGenerationMetrics()
    ref.update(
        [last[t]["prediction"] for t in ("medkqa", "trerecom")], [last[t]["reference"] for t in ("medkqa", "trerecom")]
    )
    for k, v in ref.compute().items():
        if k in GEN_KEYS:
            assert cb.last_scores["overall"][k] == float(v)
    rows = [json.loads(line) for line in (tmp_path / SAMPLES_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 2, 2, 4, 4, 4] and {r["task"] for r in rows} == {
        "medkqa",
        "trerecom",
        "evidiag",
    }
    assert model.lm.training  # mode restored after generating


def test_final_validation_always_scores(tmp_path, tiny_llama, tiny_tokenizer):
    cb = callback(tiny_tokenizer, every=10)
    trainer, model = fit(tmp_path, cb, tiny_llama, tiny_tokenizer, steps=2)
    assert cb.last_scores is None
    cb.force_next = True
    trainer.validate(model, torch.utils.data.DataLoader(torch.randint(3, 50, (2, 12)), batch_size=2), verbose=False)
    assert cb.last_scores is not None and cb.last_scores["step"] == 2 and cb.last_scores["seconds_total"] > 0


def test_logs_the_samples_table_to_wandb_offline(tmp_path, tiny_llama, tiny_tokenizer, monkeypatch):
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(project="pedgpt-test", mode="offline", save_dir=str(tmp_path))
    try:
        fit(
            tmp_path,
            callback(tiny_tokenizer, PROMPTS[:1], every=1, tokens=3),
            tiny_llama,
            tiny_tokenizer,
            loggers=[logger],
            steps=1,
        )
    finally:
        wandb.finish()
    tables = list(tmp_path.rglob("*.table.json"))
    assert tables and "手足口病怎么预防" in tables[0].read_text(encoding="utf-8")


def test_held_out_prompts_are_a_fixed_seeded_draw_per_task():
    dev = [r for r in build_demo_corpus()["sft"] if r.split == "dev"]
    a, b = held_out_prompts(dev, 2, seed=3), held_out_prompts(dev, 2, seed=3)
    assert a == b and [p.task for p in a] == ["medkqa"] * 2 + ["evidiag"] * 2 + ["trerecom"] * 2
    assert held_out_prompts(dev, 2, seed=4) != a
    assert all(p.reference and p.messages[-1].role == "user" for p in a)
