"""Loss terms against direct float64 evaluations of the paper's equations."""

import math

import pytest
import torch

from mrife.kernels import gather_rows, supervised_contrastive
from mrife.kernels.reference import supcon_term_by_term
from mrife.labels import IGNORE
from mrife.losses import LossWeights, joint_loss, reconstruction_loss, sfce_loss


def eq5_direct(pos, neg, tau):
    """Eq. (5) with the corrected indicator, summed over anchors (Eq. 4), by plain loops."""
    p = [x / x.norm() for x in pos.double()]
    n = [x / x.norm() for x in neg.double()]
    N = len(p)
    total = 0.0
    for i in range(N):
        neg_sum = sum(math.exp(float(p[i] @ nk) / tau) for nk in n)
        li = 0.0
        for j in range(N):
            if i != j:
                e = math.exp(float(p[i] @ p[j]) / tau)
                li += math.log(e / (e + neg_sum))
        total += -li / N
    return total


@pytest.mark.parametrize("N, M, C, tau", [(2, 1, 3, 0.07), (5, 7, 16, 0.07), (9, 4, 33, 0.5), (3, 12, 8, 1.0)])
def test_supcon_matches_eq5(N, M, C, tau):
    g = torch.Generator().manual_seed(N * 100 + M)
    pos, neg = torch.randn(N, C, generator=g), torch.randn(M, C, generator=g)
    got = supervised_contrastive(pos.double(), neg.double(), tau).item()
    assert got == pytest.approx(eq5_direct(pos, neg, tau), rel=1e-10), "float64 value differs from Eq. (5)"
    got32 = supervised_contrastive(pos, neg, tau).item()
    assert got32 == pytest.approx(eq5_direct(pos, neg, tau), rel=1e-4, abs=1e-6), "float32 value differs from Eq. (5)"


def test_supcon_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: supervised_contrastive(a, b, 0.2), (pos, neg))


@pytest.mark.parametrize("N, M", [(0, 5), (1, 5), (4, 0), (0, 0)])
def test_supcon_zero_cases(N, M):
    pos = torch.randn(N, 8, requires_grad=True)
    neg = torch.randn(M, 8, requires_grad=True)
    loss = supervised_contrastive(pos, neg)
    loss.backward()
    assert loss.item() == 0.0, f"N={N}, M={M} should give 0, got {loss.item()}"
    for t in (pos, neg):
        assert t.grad is not None and torch.count_nonzero(t.grad) == 0 and not t.grad.isnan().any()


def test_supcon_stable_at_small_temperature():
    pos, neg = torch.randn(6, 8), torch.randn(6, 8)
    assert torch.isfinite(supervised_contrastive(pos, neg, temperature=1e-3))


def test_reconstruction_loss_eq2_eq3():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    idx = torch.tensor([0, 4, 9 + 2])  # two points of image 0, one of image 1
    direct = ((s[0, :, 0, 0] - t[0, :, 0, 0]) ** 2).sum() + ((s[0, :, 1, 1] - t[0, :, 1, 1]) ** 2).sum()
    direct = direct / (2 * 4) + ((s[1, :, 0, 2] - t[1, :, 0, 2]) ** 2).mean()
    assert reconstruction_loss(s, t, idx).item() == pytest.approx(direct.item(), rel=1e-6)


def test_reconstruction_loss_no_gradient_into_teacher_and_empty():
    s = torch.randn(1, 2, 2, 2, requires_grad=True)
    t = torch.randn(1, 2, 2, 2, requires_grad=True)
    reconstruction_loss(s, t, torch.tensor([1])).backward()
    assert t.grad is None and s.grad.abs().sum() > 0
    assert reconstruction_loss(s, t, torch.tensor([], dtype=torch.long)).item() == 0.0


def test_gather_rows_layout():
    feat = torch.arange(2 * 3 * 2 * 2.0).view(2, 3, 2, 2)
    rows = gather_rows(feat, torch.tensor([5]))  # image 1, row 0, col 1
    assert torch.equal(rows[0], feat[1, :, 0, 1])


def two_cross_terms():
    """A pair of 4 x 4 maps, 3 masked edge points in image 0 and 2 in image 1 (as many
    background points), and L_cons_1, L_cons_2 computed row by row from the reference."""
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 6, 4, 4, generator=g), torch.randn(2, 6, 4, 4, generator=g)
    idx_pos = torch.tensor([1, 2, 3, 16 + 5, 16 + 6])
    idx_neg = torch.tensor([10, 11, 12, 16 + 13, 16 + 14])
    rows = lambda f, i: gather_rows(f, torch.tensor(i))
    l1 = supervised_contrastive(torch.cat([rows(s, [1, 2, 3]), rows(t, [21, 22])]),
                                torch.cat([rows(s, [10, 11, 12]), rows(t, [29, 30])]))
    l2 = supervised_contrastive(torch.cat([rows(s, [21, 22]), rows(t, [1, 2, 3])]),
                                torch.cat([rows(s, [29, 30]), rows(t, [10, 11, 12])]))
    return s, t, idx_pos, idx_neg, l1, l2


def test_sfce_is_the_two_cross_terms():
    s, t, idx_pos, idx_neg, l1, l2 = two_cross_terms()
    got = sfce_loss(s, t, idx_pos, idx_neg)
    assert got.item() == pytest.approx((l1 + l2).item(), rel=1e-5), "SFCE is not L_cons_1 + L_cons_2"


def test_joint_loss_terms_and_weights():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 2, 8, 8, generator=g)
    target = torch.randint(0, 2, (2, 8, 8), generator=g)
    s, t = torch.randn(2, 4, 1, 1, generator=g), torch.randn(2, 4, 1, 1, generator=g)
    ip, ineg = torch.tensor([0]), torch.tensor([1])
    out = joint_loss(logits, target, s, t, ip, ineg, LossWeights(2.0, 0.5, 3.0))
    expected = 2.0 * out["reconst"] + 0.5 * out["cons"] + 3.0 * out["ce"]
    assert out["loss"].item() == pytest.approx(expected.item())
    assert out["reconst"].item() > 0
    seg_only = joint_loss(logits, target)
    assert seg_only["loss"].item() == pytest.approx(seg_only["ce"].item())


def test_a_direction_without_student_blocks_is_zero_in_value_and_gradient():
    g = torch.Generator().manual_seed(4)
    s = torch.randn(2, 6, 4, 4, generator=g, requires_grad=True)
    t = torch.randn(2, 6, 4, 4, generator=g)
    # Image 1 has masked blocks, image 0 none (a landslide-free tile): the direction
    # 0 -> 1 would hold teacher rows of image 1 alone.
    idx_pos, idx_neg = torch.tensor([16 + 1, 16 + 2, 16 + 3]), torch.tensor([16 + 9, 16 + 10, 16 + 11])
    got = sfce_loss(s, t, idx_pos, idx_neg)
    rows = lambda f, i: gather_rows(f, torch.tensor(i))
    only_1_to_0 = supervised_contrastive(rows(s, [17, 18, 19]), rows(s, [25, 26, 27]))
    assert got.item() == pytest.approx(only_1_to_0.item(), rel=1e-6), "the 0 -> 1 direction must add nothing"
    got.backward()
    assert s.grad[0].abs().sum() == 0, "image 0 has no masked block: no gradient may reach it"
    none = sfce_loss(s, t, idx_pos[:0], idx_neg[:0])
    assert none.item() == 0.0, f"a batch without masked blocks has SFCE 0, got {none.item()}"


def test_sfce_mean_reduction_divides_each_direction_by_its_anchors():
    s, t, idx_pos, idx_neg, l1, l2 = two_cross_terms()
    got = sfce_loss(s, t, idx_pos, idx_neg, reduction="mean")
    assert got.item() == pytest.approx((l1 / 5 + l2 / 5).item(), rel=1e-5), "each direction has 5 anchors"
    with pytest.raises(ValueError, match="loss.sfce_reduction"):
        sfce_loss(s, t, idx_pos, idx_neg, reduction="median")


def test_padding_counts_in_no_loss():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(1, 2, 8, 8, generator=g)
    target = torch.randint(0, 2, (1, 8, 8), generator=g)
    padded = target.clone()
    padded[:, 6:] = IGNORE  # the last two rows are padding
    crop = joint_loss(logits[..., :6, :], target[:, :6])["ce"]
    assert joint_loss(logits, padded)["ce"].item() == pytest.approx(crop.item(), rel=1e-6), (
        "a padded tile must have the cross-entropy of its unpadded crop")


def test_supervised_contrastive_is_eq5_read_term_by_term():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)
    literal = supcon_term_by_term(pos, neg, 0.07)
    assert literal == pytest.approx(float(supervised_contrastive(pos, neg, 0.07)), rel=1e-12), \
        "the vectorized loss must equal Eqs. (4)-(5) summed term by term"
    misprint = supcon_term_by_term(pos, neg, 0.07, indicator=lambda i, j: i == j)
    assert misprint != pytest.approx(literal, rel=1e-3), "the paper's literal indicator gives another value"
