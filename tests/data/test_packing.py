import pickle

import pytest
import torch

from pedgpt.data.packing import DocumentMask, block_causal_mask, collate_packed, pack_greedy, packing_efficiency
from pedgpt.models.attention import model_attention_mask


def test_pack_greedy_fits_and_is_deterministic():
    lengths = [5, 9, 3, 7, 2, 8, 1, 4]
    rows = pack_greedy(lengths, 10)
    assert sorted(i for r in rows for i in r) == list(range(8))
    assert all(sum(lengths[i] for i in r) <= 10 for r in rows)
    assert rows == pack_greedy(lengths, 10)
    assert packing_efficiency(lengths, rows, 10) == pytest.approx(39 / (10 * len(rows)))
    with pytest.raises(ValueError):
        pack_greedy([11], 10)


def test_block_causal_mask_by_hand():
    m = block_causal_mask(torch.tensor([[0, 0, 1, 1, -1]]))[0, 0]
    allowed = (m == 0).int().tolist()
    assert allowed == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]]


@pytest.mark.parametrize("attn", ["sdpa", "eager", "auto"])
def test_packed_logits_equal_unpacked_logits(tiny_llama, attn):
    """sdpa / eager get the dense mask; auto (on CPU: SDPA per document) never builds one."""
    model = tiny_llama(vocab=97)
    model.config._attn_implementation = attn
    g = torch.Generator().manual_seed(1)
    docs = [torch.randint(3, 97, (n,), generator=g).tolist() for n in (7, 12, 5, 9)]
    exs = [{"input_ids": d, "labels": d} for d in docs]
    rows = [[exs[i] for i in r] for r in pack_greedy([len(d) for d in docs], 21)]
    batch = collate_packed(rows, 21, pad_id=0)
    mask = model_attention_mask(model, batch["attention_mask"])
    assert isinstance(mask, torch.Tensor) == (attn != "auto")
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=batch["position_ids"]).logits
        for b, row in enumerate(rows):
            start = 0
            for e in row:
                n = len(e["input_ids"])
                alone = model(input_ids=torch.tensor([e["input_ids"]])).logits[0]
                assert torch.allclose(packed[b, start : start + n], alone, atol=1e-5), (attn, b, start)
                start += n


def test_restarted_position_ids_alone_would_leak(tiny_llama):
    """Guards the reason for the 4D mask: without it, the second document sees the first."""
    model = tiny_llama(vocab=97)
    a, b = [5, 6, 7, 8], [9, 10, 11]
    with torch.no_grad():
        leaky = model(
            input_ids=torch.tensor([a + b]),
            position_ids=torch.tensor([[0, 1, 2, 3, 0, 1, 2]]),
            attention_mask=torch.ones(1, 7, dtype=torch.long),
        ).logits[0, 4:]
        alone = model(input_ids=torch.tensor([b])).logits[0]
    assert not torch.allclose(leaky, alone, atol=1e-4)


def test_labels_never_cross_documents():
    rows = [[{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}, {"input_ids": [4, 5], "labels": [4, 5]}]]
    b = collate_packed(rows, 8, pad_id=0)
    assert b["labels"].tolist() == [[-100, 2, 3, -100, 5]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1]]


def test_collated_packed_batch_holds_no_square_mask():
    """The batch carries document ids and lengths (B·L integers), not a (B, 1, L, L) mask."""
    rows = [
        [{"input_ids": [1] * n, "labels": [1] * n} for n in (40, 30, 50)],
        [{"input_ids": [2] * 64, "labels": [2] * 64}],
    ]
    batch = collate_packed(rows, 128, pad_id=0)
    L = batch["input_ids"].shape[1]
    mask = batch["attention_mask"]
    assert isinstance(mask, DocumentMask) and mask.lengths == ((40, 30, 50), (64,))
    tensors = [v for v in batch.values() if torch.is_tensor(v)] + [mask.doc_ids]
    assert all(t.numel() <= 2 * L for t in tensors), [tuple(t.shape) for t in tensors]
    assert batch["token_mask"].tolist() == [[True] * 120, [True] * 64 + [False] * 56]
    assert mask.dim() == 4  # code that tells padded (2-D) from packed batches by the mask's rank still can


def test_document_mask_dense_form_is_the_block_causal_mask():
    mask = DocumentMask.from_lengths([[2, 2], [3]], 5)
    assert mask.doc_ids.tolist() == [[0, 0, 1, 1, -1], [0, 0, 0, -1, -1]]
    want = block_causal_mask(mask.doc_ids.long())
    assert torch.equal(mask.dense(), want)
    assert torch.equal(mask[1, 0], want[1, 0]) and torch.equal(mask[0], want[0]) and torch.equal(mask[:, 0], want[:, 0])
    assert mask.segments() == [[2, 2, 1], [3, 2]]  # padding is one more segment
    assert DocumentMask.from_lengths([[2]], 4, torch.bfloat16).dense().dtype == torch.bfloat16
    moved = mask.to("cpu")
    assert moved.lengths == mask.lengths and torch.equal(moved.doc_ids, mask.doc_ids)
    assert pickle.loads(pickle.dumps(mask)).lengths == mask.lengths  # DataLoader workers
    with pytest.raises(TypeError):
        iter(mask)
    with pytest.raises(ValueError):
        DocumentMask.from_lengths([[3, 3]], 5)
