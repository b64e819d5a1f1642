"""A LightningDataModule over pre-encoded examples, with a resumable, epoch-seeded shuffle."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler


class EpochShuffleSampler(Sampler[int]):
    """A permutation of ``range(n)`` drawn from ``(seed, epoch)``; ``start`` skips already-seen indices.

    The order of every epoch is a pure function of the seed and the epoch number, so a resumed run
    rebuilds exactly the order of the interrupted one and continues from the consumed position.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch, self.start = 0, 0

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        idx = self.order(self.epoch)[self.start:]
        self.start = 0
        return iter(idx)

    def __len__(self) -> int:
        return self.n  # the full epoch: the trainer's own counters already include the skipped part

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class ExamplesDataModule(L.LightningDataModule):
    def __init__(self, train: Sequence[Any], val: Sequence[Any], collate: Callable, batch_size: int,
                 val_batch_size: int, seed: int, info: dict | None = None):
        super().__init__()
        if not train:
            raise ValueError("the training set is empty after encoding (see the skip counts)")
        self.train, self.val, self.collate = list(train), list(val), collate
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.sampler = EpochShuffleSampler(len(self.train), seed)
        self.info = info or {}

    @property
    def drop_last(self) -> bool:
        return len(self.train) >= self.batch_size

    def train_dataloader(self) -> DataLoader:
        # its own generator: creating the iterator must not consume the global RNG (bit-exact resume)
        return DataLoader(self.train, batch_size=self.batch_size, sampler=self.sampler, collate_fn=self.collate,
                          drop_last=self.drop_last, generator=torch.Generator().manual_seed(self.sampler.seed))

    # -- exact data position, saved in every checkpoint -----------------------------------------------
    def state_dict(self) -> dict[str, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.fit_loop is None:
            return {}
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        return {"epoch": int(trainer.current_epoch), "batches_consumed": int(progress.processed),
                "dataset_size": len(self.train), "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if not state:
            return
        if state["dataset_size"] != len(self.train) or state["batch_size"] != self.batch_size:
            raise ValueError(f"checkpoint was written for {state['dataset_size']} examples in batches of "
                             f"{state['batch_size']}, this run has {len(self.train)} in batches of {self.batch_size}: "
                             "the data or the batch size changed, so the exact data position cannot be restored")
        per_epoch = len(self.train) // self.batch_size if self.drop_last else -(-len(self.train) // self.batch_size)
        consumed = state["batches_consumed"]
        self.sampler.set_epoch(state["epoch"])
        self.sampler.start = 0 if consumed >= per_epoch else consumed * self.batch_size

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.val_batch_size, shuffle=False, collate_fn=self.collate)
