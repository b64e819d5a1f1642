import math

import pytest
import torch

from pedgpt.losses.lm import sequence_mean_nll, token_mean_nll
from pedgpt.losses.preference import dfpo_loss, dpo_loss
from pedgpt.models.logps import selected_token_logps


def _rand(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [-50 * torch.rand(n, generator=g, dtype=torch.float64) for _ in range(4)], 3 * torch.rand(
        n, generator=g, dtype=torch.float64
    )


@pytest.mark.parametrize("beta,mu", [(0.1, 1.0), (0.5, 0.0), (0.05, 0.3), (1.0, 2.0)])
def test_dfpo_matches_independent_formula(beta, mu):
    (pc, pr, rc, rr), nll = _rand(seed=int(beta * 100 + mu * 10))
    loss, m = dfpo_loss(pc, pr, rc, rr, nll, beta=beta, mu=mu)
    expected = (
        sum(
            math.log1p(math.exp(-beta * ((a - c) - (b - d)))) + mu * n
            for a, b, c, d, n in zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(), nll.tolist())
        )
        / 16
    )
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert loss.dtype == torch.float64


def test_policy_equal_reference_gives_ln2_plus_mu_nll():
    (pc, pr, _, _), nll = _rand(seed=3)
    loss, m = dfpo_loss(pc, pr, pc.clone(), pr.clone(), nll, beta=0.3, mu=0.7)
    assert loss.item() == pytest.approx(math.log(2) + 0.7 * nll.mean().item(), rel=1e-12)
    assert m["rewards/margins"].item() == 0 and m["rewards/accuracies"].item() == 0


def test_trl_metric_names():
    (pc, pr, rc, rr), nll = _rand(seed=4)
    _, m = dfpo_loss(pc, pr, rc, rr, nll, beta=0.1, mu=1.0)
    assert {
        "rewards/chosen",
        "rewards/rejected",
        "rewards/accuracies",
        "rewards/margins",
        "logps/chosen",
        "logps/rejected",
        "loss/preference",
        "loss/following",
    } <= set(m)
    assert m["rewards/accuracies"].item() == pytest.approx(((pc - rc) > (pr - rr)).double().mean().item())


def test_gradient_raises_chosen_and_lowers_rejected():
    pc = torch.tensor([-10.0], requires_grad=True)
    pr = torch.tensor([-10.0], requires_grad=True)
    nll = -pc / 5  # the chosen answer's mean NLL falls as its log-prob rises
    loss, _ = dfpo_loss(pc, pr, torch.tensor([-10.0]), torch.tensor([-10.0]), nll, beta=0.1, mu=1.0)
    loss.backward()
    assert pc.grad.item() < 0 < pr.grad.item()


def test_dpo_is_dfpo_with_mu_zero_and_label_smoothing_formula():
    (pc, pr, rc, rr), nll = _rand(seed=5)
    a, _ = dpo_loss(pc, pr, rc, rr, beta=0.2)
    b, _ = dfpo_loss(pc, pr, rc, rr, nll, beta=0.2, mu=0.0)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    eps = 0.1
    z = 0.2 * ((pc - rc) - (pr - rr))
    expected = (-(1 - eps) * torch.log(torch.sigmoid(z)) - eps * torch.log(torch.sigmoid(-z))).mean()
    c, _ = dpo_loss(pc, pr, rc, rr, beta=0.2, label_smoothing=eps)
    assert c.item() == pytest.approx(expected.item(), rel=1e-10)


def test_selected_token_logps_equals_full_log_softmax_and_chunking_changes_nothing():
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(3, 9, 16)
    labels = torch.randint(0, 50, (3, 9))
    labels[0, :4] = -100
    labels[2, 6:] = -100
    full = torch.log_softmax(head(hidden).double(), -1)[:, :-1]
    y = labels[:, 1:]
    ref = torch.where(
        y != -100, full.gather(-1, y.clamp_min(0)[..., None])[..., 0], torch.zeros((), dtype=torch.float64)
    )
    for chunk in (0, 4):
        s, n = selected_token_logps(hidden, head, labels, chunk)
        assert torch.allclose(s.double(), ref.sum(-1), atol=1e-4)
        assert n.tolist() == (y != -100).sum(-1).tolist()


def test_lm_losses():
    s, n = torch.tensor([-6.0, -2.0]), torch.tensor([3, 1])
    assert token_mean_nll(s, n).item() == pytest.approx(2.0)
    assert token_mean_nll(s, n, torch.tensor(8.0)).item() == pytest.approx(1.0)
    assert sequence_mean_nll(s, n).tolist() == [2.0, 2.0]


def test_agrees_with_trl_sigmoid_plus_sft_reduction_on_equal_length_chosen():
    """TRL (1.16, ``DPOTrainer._compute_loss`` with ``loss_type=["sigmoid", "sft"]``, its form of ``rpo_alpha``)
    takes the SFT term as ``-chosen_per_token_logps[chosen_mask].mean()``: the mean over all chosen tokens of
    the batch. That reduction is reproduced here on per-token NLLs; DFPO's per-sequence mean agrees with it
    exactly when every chosen answer has the same length, and differs otherwise (second half)."""
    (pc, pr, rc, rr), _ = _rand(seed=6)
    T = 7
    tok_nll = torch.rand(16, T, dtype=torch.float64)
    trl_nll = tok_nll.sum() / tok_nll.numel()
    ours, _ = dfpo_loss(pc, pr, rc, rr, tok_nll.mean(-1), beta=0.1, mu=0.5)
    trl_style = (-torch.nn.functional.logsigmoid(0.1 * ((pc - rc) - (pr - rr)))).mean() + 0.5 * trl_nll
    assert ours.item() == pytest.approx(trl_style.item(), rel=1e-12)
    lengths = torch.arange(1, 17)  # unequal lengths: DFPO's per-sequence mean and TRL's token mean disagree
    mask = torch.arange(T * 3)[None, :] < lengths[:, None]
    nll = torch.rand(16, T * 3, dtype=torch.float64) * mask
    chosen_nll = sequence_mean_nll(-nll.sum(-1), lengths)  # pedgpt's per-sequence mean-token NLL
    ours, _ = dfpo_loss(pc, pr, rc, rr, chosen_nll, beta=0.1, mu=0.5)
    preference = (-torch.nn.functional.logsigmoid(0.1 * ((pc - rc) - (pr - rr)))).mean()
    assert ours.item() == pytest.approx((preference + 0.5 * (nll.sum(-1) / lengths).mean()).item(), rel=1e-12)
    assert abs(ours.item() - (preference + 0.5 * nll[mask].mean()).item()) > 1e-4
