"""The generation callback: every N validation runs, answers fixed prompts and logs val/gen/<key> (+ W&B table)."""

import lightning as L
import torch

from pedgpt.data.schema import Message
from pedgpt.inference.generation import GenerationSettings
from pedgpt.metrics import KEYS
from pedgpt.training.generation_callback import GenerationSamples, SamplePrompt, demo_prompts

PROMPTS = [
    SamplePrompt("medkqa", [Message("user", "手足口病怎么预防？")], "勤洗手，避免去人多的地方。"),
    SamplePrompt("trerecom", [Message("user", "宝宝发烧怎么处理？")], "先物理降温，体温高时遵医嘱用退热药。"),
    SamplePrompt("evidiag", [Message("user", "孩子咳嗽伴发热，可能是什么？")]),
]


class TinyLM(L.LightningModule):
    def __init__(self, model, vocab):
        super().__init__()
        self.lm, self.vocab = model.train(), vocab

    def training_step(self, batch, batch_idx):
        return self.lm(input_ids=batch, labels=batch).loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.lm(input_ids=batch, labels=batch).loss)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def fit(tmp_path, callback, tiny_llama, tiny_tokenizer, loggers=False, steps=4):
    model = TinyLM(tiny_llama(vocab=len(tiny_tokenizer)), len(tiny_tokenizer))
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


def test_generates_every_n_validation_runs_and_logs_metrics(tmp_path, tiny_llama, tiny_tokenizer):
    cb = GenerationSamples(tiny_tokenizer, PROMPTS, every_n_val=2, settings=GenerationSettings(max_new_tokens=4))
    calls = []
    orig = cb._log_scores
    cb._log_scores = lambda *a: calls.append(1) or orig(*a)
    trainer, model = fit(tmp_path, cb, tiny_llama, tiny_tokenizer)
    assert cb.val_runs == 4 and len(calls) == 2  # sanity check excluded; runs 2 and 4
    assert {f"val/gen/{k}" for k in KEYS} <= set(trainer.callback_metrics)
    assert [s["task"] for s in cb.last_samples] == ["medkqa", "trerecom", "evidiag"]
    assert "gleu" in cb.last_samples[0] and "gleu" not in cb.last_samples[2]  # no reference, not scored
    assert model.lm.training  # mode restored after generating


def test_logs_wandb_table_offline(tmp_path, tiny_llama, tiny_tokenizer, monkeypatch):
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(project="pedgpt-test", mode="offline", save_dir=str(tmp_path))
    cb = GenerationSamples(tiny_tokenizer, PROMPTS[:1], every_n_val=1, settings=GenerationSettings(max_new_tokens=3))
    try:
        fit(tmp_path, cb, tiny_llama, tiny_tokenizer, loggers=[logger], steps=1)
    finally:
        import wandb

        wandb.finish()
    tables = list(tmp_path.rglob("*.table.json"))
    assert tables and "手足口病怎么预防" in tables[0].read_text(encoding="utf-8")


def test_demo_prompts_cover_pediatric_tasks():
    prompts = demo_prompts(per_task=1)
    assert [p.task for p in prompts] == ["medkqa", "evidiag", "trerecom"]
    assert all(p.reference and p.messages[-1].role == "user" for p in prompts)
