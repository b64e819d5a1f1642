"""A LightningDataModule over pre-encoded examples, with a resumable, epoch-seeded shuffle.

Training batches are **windows**: the ``accumulate`` micro-batches one optimizer step consumes, collated
separately (each padded to its own longest row) and handed to ``training_step`` as a list. One training batch is
then one optimizer step: Lightning's step, validation and checkpoint counters, the data position saved in
checkpoints and the logged ``train/loss`` all count optimizer steps. An epoch's tail — fewer micro-batches than
``accumulate`` — steps alone as a shorter window (its loss normalised by its own token or pair count, which is
exactly one batch of that size); it never joins the next epoch's first window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler


class EpochShuffleSampler(Sampler[int]):
    """A permutation of ``range(n)`` drawn from ``(seed, epoch)``; ``start`` skips already-seen indices.

    The order of every epoch is a pure function of the seed and the epoch number, so a resumed run
    rebuilds exactly the order of the interrupted one and continues from the consumed position.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        """This rank's share (every ``world_size``-th index) of the epoch's order, from ``start``."""
        order = self.order(self.epoch)
        order = order[: len(order) - len(order) % self.world_size]
        idx = order[self.start * self.world_size + self.rank :: self.world_size]
        self.start = 0
        return iter(idx)

    def __len__(self) -> int:
        # the full epoch: the trainer's own counters already include the skipped part
        return self.n // self.world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class WindowBatchSampler(Sampler[list[int]]):
    """Indices of one optimizer step at a time: ``accumulate`` micro-batches of ``batch_size`` from ``sampler``
    (the last micro-batch of an epoch dropped when ``drop_last``), flattened; the last window of an epoch may
    hold fewer micro-batches."""

    def __init__(self, sampler: Sampler[int], batch_size: int, accumulate: int, drop_last: bool) -> None:
        self.sampler, self.batch_size, self.accumulate, self.drop_last = sampler, batch_size, accumulate, drop_last

    def _micro_batches(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        window: list[int] = []
        micro: list[int] = []
        filled = 0
        for i in self.sampler:
            micro.append(i)
            if len(micro) == self.batch_size:
                window += micro
                micro, filled = [], filled + 1
                if filled == self.accumulate:
                    yield window
                    window, filled = [], 0
        if micro and not self.drop_last:
            window += micro
        if window:
            yield window

    def __len__(self) -> int:
        return -(-self._micro_batches() // self.accumulate)


class WindowCollate:
    """A window's examples → the list of its collated micro-batches (chunks of ``batch_size``)."""

    def __init__(self, collate: Callable, batch_size: int) -> None:
        self.collate, self.batch_size = collate, batch_size

    def __call__(self, examples: Sequence[Any]) -> list[dict]:
        return [self.collate(examples[i : i + self.batch_size]) for i in range(0, len(examples), self.batch_size)]


class ExamplesDataModule(L.LightningDataModule):
    def __init__(
        self,
        train: Sequence[Any],
        val: Sequence[Any],
        collate: Callable,
        batch_size: int,
        val_batch_size: int,
        seed: int,
        info: dict | None = None,
        max_len: int | None = None,
        accumulate: int = 1,
    ):
        super().__init__()
        if not len(train):
            raise ValueError("the training set is empty after encoding (see the skip counts)")
        # kept as given: a token store's examples are memory-mapped, and each rank reads only its share
        self.train, self.val, self.collate = train, val, collate
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.sampler = EpochShuffleSampler(len(self.train), seed)
        self.info = info or {}
        self.max_len = max_len
        self.accumulate = max(1, int(accumulate))

    @property
    def drop_last(self) -> bool:
        return len(self.sampler) >= self.batch_size

    def setup(self, stage: str) -> None:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:  # data parallel: each rank reads its share of one global order
            self.sampler.rank, self.sampler.world_size = trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        # its own generator: creating the iterator must not consume the global RNG (bit-exact resume)
        windows = WindowBatchSampler(self.sampler, self.batch_size, self.accumulate, self.drop_last)
        return DataLoader(
            self.train,
            batch_sampler=windows,
            collate_fn=WindowCollate(self.collate, self.batch_size),
            generator=torch.Generator().manual_seed(self.sampler.seed),
        )

    # -- exact data position, saved in every checkpoint -----------------------------------------------
    def state_dict(self) -> dict[str, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.fit_loop is None:
            return {}
        windows = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
        return {
            "epoch": int(trainer.current_epoch),
            "samples_consumed": windows * self.accumulate * self.batch_size * trainer.world_size,
            "dataset_size": len(self.train),
            "data_key": self.info.get("token_store", ""),  # the token store the position refers to
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore the data position; the number of processes may differ from the saving run."""
        if not state:
            return
        saved_key, key = state.get("data_key", ""), self.info.get("token_store", "")
        if saved_key and key and saved_key != key:
            raise ValueError(
                f"checkpoint was written for the examples of token store {saved_key}, this run has {key} (the data, "
                "tokenizer, template or encoding settings changed), so the exact data position cannot be restored"
            )
        if state["dataset_size"] != len(self.train):
            raise ValueError(
                f"checkpoint was written for {state['dataset_size']} training examples, this run has "
                f"{len(self.train)}: the data changed, so the exact data position cannot be restored"
            )
        ws = self.sampler.world_size
        consumed = state["samples_consumed"]
        if consumed % ws:
            raise ValueError(f"cannot resume {consumed} consumed samples evenly on {ws} processes")
        per_rank = consumed // ws
        n = len(self.sampler)
        per_epoch = (n // self.batch_size if self.drop_last else -(-n // self.batch_size)) * self.batch_size
        self.sampler.set_epoch(state["epoch"])
        self.sampler.start = 0 if per_rank >= min(per_epoch, n) else per_rank

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.val_batch_size, shuffle=False, collate_fn=self.collate)
