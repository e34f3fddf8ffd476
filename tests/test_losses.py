"""Losses: hand-computed values, agreement with torch where they coincide, extremes, gradients."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlbalance.errors import ParameterError  # noqa: E402
from mlbalance.train.losses import (  # noqa: E402
    LOSS_CLASSES,
    LOSSES,
    AsymmetricLoss,
    DistributionBalancedLoss,
    FocalLoss,
    LogitAdjustedLoss,
    build_loss,
    pos_weights,
)

COUNTS = np.array([500, 40, 3, 1])
N_ROWS = 1000

# small fixed case: 3 rows x 4 labels
Z = np.array([[2.0, -1.0, 0.5, -3.0], [-0.5, 1.5, -2.0, 0.0], [0.3, -0.7, 4.0, -1.2]])
Y = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]], dtype=np.float64)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


def sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def value(name: str, z: np.ndarray = Z, y: np.ndarray = Y, **params: object) -> float:
    loss = build_loss(name, label_counts=COUNTS, n_rows=N_ROWS, **params)
    return float(loss(t(z), t(y)))


# ---------------------------------------------------------------- pos weights
def test_pos_weight_schemes_by_hand() -> None:
    n = np.array([500.0, 40.0, 3.0, 1.0])
    np.testing.assert_allclose(pos_weights(COUNTS, N_ROWS, "inverse"), (1000 - n) / n)
    np.testing.assert_allclose(pos_weights(COUNTS, N_ROWS, "sqrt-inverse"), np.sqrt((1000 - n) / n))
    np.testing.assert_allclose(pos_weights(COUNTS, N_ROWS, "log"), 1 + np.log(1000 / n))
    raw = (1 - 0.99) / (1 - 0.99**n)
    np.testing.assert_allclose(
        pos_weights(COUNTS, N_ROWS, "effective-number", beta=0.99), raw * 4 / raw.sum()
    )
    np.testing.assert_allclose(
        pos_weights(COUNTS, N_ROWS, "inverse", max_weight=50.0), np.minimum((1000 - n) / n, 50)
    )
    assert pos_weights([0, 10], 100, "inverse")[0] == 99.0  # count 0 treated as 1
    assert pos_weights(COUNTS, N_ROWS, "none").tolist() == [1.0] * 4


def test_effective_number_bounded_and_ordered() -> None:
    w = pos_weights([1, 10, 100, 10_000, 1_000_000], 2_000_000, "effective-number")
    assert np.all(np.diff(w) < 0) and np.isfinite(w).all()
    assert w.mean() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheme": "cube"}, "unknown pos-weight scheme"),
        ({"scheme": "inverse", "max_weight": 0}, "max_weight"),
        ({"scheme": "effective-number", "beta": 1.0}, "beta"),
    ],
)
def test_pos_weights_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        pos_weights(COUNTS, N_ROWS, **kwargs)


def test_bad_counts() -> None:
    with pytest.raises(ParameterError, match="exceeds n_rows"):
        pos_weights([5, 20], 10)
    with pytest.raises(ParameterError, match=">= 0"):
        pos_weights([5, -1], 10)
    with pytest.raises(ParameterError, match="1-D"):
        pos_weights([[1, 2]], 10)


# ---------------------------------------------------------------- hand-computed values
def test_bce_by_hand_and_torch() -> None:
    p = sig(Z)
    expected = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).mean()
    assert value("bce") == pytest.approx(expected, rel=1e-12)
    ref = torch.nn.BCEWithLogitsLoss()(t(Z), t(Y))
    assert value("bce") == pytest.approx(float(ref), rel=1e-12)


@pytest.mark.parametrize("scheme", ["inverse", "sqrt-inverse", "log", "effective-number"])
def test_weighted_bce_by_hand_and_torch(scheme: str) -> None:
    w = pos_weights(COUNTS, N_ROWS, scheme, max_weight=100.0)
    p = sig(Z)
    expected = -(w * Y * np.log(p) + (1 - Y) * np.log(1 - p)).mean()
    got = value("weighted-bce", scheme=scheme, max_weight=100.0)
    assert got == pytest.approx(expected, rel=1e-12)
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=t(w))(t(Z), t(Y))
    assert got == pytest.approx(float(ref), rel=1e-12)


@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (0.5, None), (1.0, 0.7)])
def test_focal_by_hand(gamma: float, alpha: float | None) -> None:
    p = sig(Z)
    pt = np.where(Y == 1, p, 1 - p)
    at = 1.0 if alpha is None else np.where(Y == 1, alpha, 1 - alpha)
    expected = (-at * (1 - pt) ** gamma * np.log(pt)).mean()
    assert value("focal", gamma=gamma, alpha=alpha) == pytest.approx(expected, rel=1e-12)


def test_focal_gamma0_is_bce() -> None:
    assert value("focal", gamma=0.0, alpha=None) == pytest.approx(value("bce"), rel=1e-12)
    # alpha=0.5 is half of BCE
    assert value("focal", gamma=0.0, alpha=0.5) == pytest.approx(value("bce") / 2, rel=1e-12)


@pytest.mark.parametrize(
    ("gn", "gp", "clip"), [(4.0, 0.0, 0.05), (4.0, 1.0, 0.05), (2.0, 1.0, 0.0)]
)
def test_asl_by_hand(gn: float, gp: float, clip: float) -> None:
    p = sig(Z)
    pm = np.maximum(p - clip, 0.0)
    lpos = (1 - p) ** gp * np.log(p)
    lneg = pm**gn * np.log(1 - pm)
    expected = (-Y * lpos - (1 - Y) * lneg).mean()
    got = value("asl", gamma_neg=gn, gamma_pos=gp, clip=clip)
    assert got == pytest.approx(expected, rel=1e-10)


def test_asl_defaults_are_the_papers() -> None:
    loss = AsymmetricLoss()
    assert (loss.gamma_neg, loss.gamma_pos, loss.clip) == (4.0, 0.0, 0.05)


def test_asl_gamma0_clip0_is_bce() -> None:
    got = value("asl", gamma_neg=0.0, gamma_pos=0.0, clip=0.0)
    assert got == pytest.approx(value("bce"), rel=1e-12)


def test_asl_clip_zeroes_easy_negatives() -> None:
    # a negative with p < clip contributes exactly 0
    z = np.array([[-5.0]])
    y = np.array([[0.0]])
    loss = AsymmetricLoss(gamma_neg=4.0, clip=0.05)
    assert float(loss(t(z), t(y))) == 0.0


def _db_by_hand(
    z: np.ndarray,
    y: np.ndarray,
    counts: np.ndarray,
    n: int,
    alpha=0.1,
    beta=10.0,
    mu=0.2,
    kappa=0.05,
    lam=2.0,
    gamma=2.0,
) -> float:
    nc = np.maximum(counts.astype(float), 1)
    pc = 1.0 / nc  # P^C up to 1/C
    pi = (y * pc).sum(axis=1, keepdims=True)  # P^I up to 1/C
    with np.errstate(divide="ignore"):
        r = np.where(pi > 0, pc / np.where(pi > 0, pi, 1), np.inf)
    rhat = alpha + 1 / (1 + np.exp(-beta * (r - mu)))
    prior = nc / n
    nu = -kappa * np.log(1 / prior - 1) / lam  # the authors' code: kappa * b_hat / lambda
    zz = z + nu
    p_pos = sig(zz)  # positive term uses z'
    p_neg = sig(lam * zz)  # negative term uses lambda z'
    lpos = -np.log(p_pos) * (1 - p_pos) ** gamma
    lneg = -np.log(1 - p_neg) / lam * p_neg**gamma
    return float((rhat * (y * lpos + (1 - y) * lneg)).mean())


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_db_by_hand(gamma: float) -> None:
    y = Y.copy()
    y[2] = 0  # a row without positives: r -> inf, weight alpha + 1
    expected = _db_by_hand(Z, y, COUNTS, N_ROWS, gamma=gamma)
    assert value("db", y=y, gamma=gamma) == pytest.approx(expected, rel=1e-10)


def test_db_rebalance_weight_by_hand() -> None:
    loss = DistributionBalancedLoss(label_counts=[10, 100, 1000], n_rows=2000, gamma=0.0)
    y = t(np.array([[1.0, 1.0, 0.0]]))
    r = np.array([0.1, 0.01, 0.001]) / 0.11
    expected = 0.1 + 1 / (1 + np.exp(-10 * (r - 0.2)))
    np.testing.assert_allclose(loss.rebalance_weight(y).numpy()[0], expected, rtol=1e-12)


def _la_by_hand(z: np.ndarray, y: np.ndarray, counts: np.ndarray, n: int, tau: float) -> float:
    p = np.maximum(counts.astype(float), 1) / n
    shifted = z + tau * np.log(p / (1 - p))
    q = sig(shifted)
    return float(-(y * np.log(q) + (1 - y) * np.log(1 - q)).mean())


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_logit_adjusted_by_hand_and_torch(tau: float) -> None:
    expected = _la_by_hand(Z, Y, COUNTS, N_ROWS, tau)
    assert value("logit-adjusted", tau=tau) == pytest.approx(expected, rel=1e-12)
    prior = COUNTS / N_ROWS
    shift = tau * np.log(prior / (1 - prior))
    ref = torch.nn.BCEWithLogitsLoss()(t(Z + shift), t(Y))
    assert value("logit-adjusted", tau=tau) == pytest.approx(float(ref), rel=1e-12)
    loss = build_loss("logit-adjusted", label_counts=COUNTS, n_rows=N_ROWS, tau=tau)
    assert float(loss.elementwise(t(Z), t(Y)).mean()) == pytest.approx(expected, rel=1e-12)


def test_logit_adjusted_tau0_is_bce_and_default_tau_is_the_papers() -> None:
    assert value("logit-adjusted", tau=0.0) == pytest.approx(value("bce"), rel=1e-12)
    assert LogitAdjustedLoss(label_counts=COUNTS, n_rows=N_ROWS).tau == 1.0


def test_logit_adjusted_balanced_decision_at_zero_logit() -> None:
    # With tau = 1 and data whose label rates equal the priors (soft targets q = p), the loss is
    # stationary at logit 0 for every label: the raw model learns the balanced decision at 0
    # (score 0.5), for priors from 1e-6 to 0.999999. Plain BCE is stationary at log(p/(1-p)).
    n = 1_000_001
    counts = np.array([1, 10, 1000, 500_000, 999_999, 1_000_000])
    prior = counts / n
    z = torch.zeros(1, counts.size, dtype=torch.float64, requires_grad=True)
    q = t(prior[None, :])
    la = build_loss("logit-adjusted", label_counts=counts, n_rows=n)
    (grad,) = torch.autograd.grad(la(z, q), z)
    np.testing.assert_allclose(grad.numpy() * counts.size, 0.0, atol=1e-12)
    (grad_bce,) = torch.autograd.grad(build_loss("bce", label_counts=counts, n_rows=n)(z, q), z)
    np.testing.assert_allclose(grad_bce.numpy()[0] * counts.size, 0.5 - prior, rtol=1e-9)
    # tau = 2: stationary at -(tau - 1) * log(p / (1 - p)) instead
    la2 = build_loss("logit-adjusted", label_counts=counts, n_rows=n, tau=2.0)
    z2 = t(-np.log(prior / (1 - prior))[None, :]).requires_grad_(True)
    (grad2,) = torch.autograd.grad(la2(z2, q), z2)
    np.testing.assert_allclose(grad2.numpy() * counts.size, 0.0, atol=1e-9)


def test_logit_adjusted_gradient_is_bounded_with_extreme_priors() -> None:
    # frequency ratios of 1 to 10^6 between labels: shifts stay finite (|shift| < 28) and the
    # gradient per element is sigmoid(z + shift) - y, in (-1, 1), for any logit
    n = 1_000_001
    counts = np.array([0, 1, 2, 1000, 500_000, 1_000_000, n])
    loss = build_loss("logit-adjusted", label_counts=counts, n_rows=n)
    shift = loss.logit_shift.numpy()
    assert np.isfinite(shift).all() and np.abs(shift).max() < 28
    vals = torch.tensor([-100.0, -30.0, 0.0, 30.0, 100.0], dtype=torch.float64)
    z = vals.reshape(-1, 1).repeat(2, counts.size).requires_grad_(True)
    y = torch.zeros_like(z)
    y[: vals.numel()] = 1.0
    out = loss(z, y)
    (grad,) = torch.autograd.grad(out, z)
    assert torch.isfinite(out)
    expected = (torch.sigmoid(z.detach() + loss.logit_shift) - y) / z.numel()
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-15)
    assert float(grad.abs().max()) * z.numel() <= 1.0


def test_logit_adjusted_follows_the_module_to_float32() -> None:
    loss = build_loss("logit-adjusted", label_counts=COUNTS, n_rows=N_ROWS).float()
    out = loss(torch.tensor(Z, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32))
    assert out.dtype == torch.float32
    assert float(out) == pytest.approx(value("logit-adjusted"), rel=1e-6)


def test_train_config_offers_every_registered_loss() -> None:
    # the trainer's --loss choices must be the registry's names (one source of loss names)
    from mlbalance.train.config import LOSSES as CONFIG_LOSSES

    assert tuple(CONFIG_LOSSES) == LOSSES


def test_db_lambda_aliases() -> None:
    for key in ("lambda", "lam", "lambda_"):
        loss = build_loss("db", label_counts=COUNTS, n_rows=N_ROWS, **{key: 3.0})
        assert loss.lam == 3.0


# ---------------------------------------------------------------- stability and gradients
ALL_CONFIGS = [
    ("bce", {}),
    ("weighted-bce", {"scheme": "inverse"}),
    ("weighted-bce", {"scheme": "sqrt-inverse", "max_weight": 10.0}),
    ("weighted-bce", {"scheme": "log"}),
    ("weighted-bce", {"scheme": "effective-number"}),
    ("focal", {}),
    ("focal", {"gamma": 0.5, "alpha": None}),
    ("asl", {}),
    ("asl", {"gamma_pos": 1.0, "gamma_neg": 0.5}),
    ("asl", {"clip": 0.0}),
    ("db", {}),
    ("db", {"gamma": 0.0}),
    ("logit-adjusted", {}),
    ("logit-adjusted", {"tau": 2.0}),
]


@pytest.mark.parametrize(("name", "params"), ALL_CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extremes_finite(name: str, params: dict, dtype: torch.dtype) -> None:
    # weights up to 1e6: one positive among 1e6 + 1 rows gives an inverse weight of 1e6
    counts = np.array([1, 2, 1000, 500_000, 1_000_000])
    n_rows = 1_000_001
    loss = build_loss(name, label_counts=counts, n_rows=n_rows, **params)
    vals = torch.tensor([-100.0, -30.0, -1e-3, 0.0, 30.0, 100.0], dtype=dtype)
    z = vals.reshape(-1, 1).repeat(2, 5)  # every value, as positive and as negative
    y = torch.zeros_like(z)
    y[: vals.numel()] = 1.0
    z.requires_grad_(True)
    out = loss(z, y)
    out.backward()
    assert torch.isfinite(out), (name, params, out)
    assert torch.isfinite(z.grad).all(), (name, params)


def test_inverse_weight_reaches_1e6() -> None:
    w = pos_weights([1], 1_000_001, "inverse")
    assert w[0] == pytest.approx(1e6)


@pytest.mark.parametrize(("name", "params"), ALL_CONFIGS)
def test_gradcheck(name: str, params: dict) -> None:
    loss = build_loss(name, label_counts=COUNTS, n_rows=N_ROWS, **params)
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(0, 2, size=(5, 4)), dtype=torch.float64, requires_grad=True)
    y = torch.tensor(rng.integers(0, 2, size=(5, 4)), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: loss(a, y), (z,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(("name", "params"), ALL_CONFIGS)
def test_half_precision_promoted(name: str, params: dict) -> None:
    loss = build_loss(name, label_counts=COUNTS, n_rows=N_ROWS, **params)
    z32 = torch.tensor(Z, dtype=torch.float32)
    y = torch.tensor(Y, dtype=torch.float32)
    out16 = loss(z32.to(torch.bfloat16), y)
    assert out16.dtype == torch.float32
    assert float(out16) == pytest.approx(float(loss(z32, y)), rel=2e-2)


def test_mean_normalisation_is_batch_invariant() -> None:
    # the same rows twice give the same loss (a mean, not a sum)
    for name, params in ALL_CONFIGS:
        a = value(name, **params)
        b = value(name, z=np.vstack([Z, Z]), y=np.vstack([Y, Y]), **params)
        assert a == pytest.approx(b, rel=1e-12), name


# ---------------------------------------------------------------- building
def test_registry_and_builder() -> None:
    assert LOSSES == ("bce", "weighted-bce", "focal", "asl", "db", "logit-adjusted")
    assert tuple(LOSS_CLASSES) == LOSSES
    assert all(LOSS_CLASSES[name].name == name for name in LOSSES)
    loss = build_loss("weighted_bce", label_counts=COUNTS, n_rows=N_ROWS, scheme="log", beta=None)
    assert loss.name == "weighted-bce"
    assert isinstance(build_loss("focal", label_counts=COUNTS, n_rows=N_ROWS), FocalLoss)
    assert isinstance(loss, torch.nn.Module)
    # buffers follow .to()
    assert build_loss("db", label_counts=COUNTS, n_rows=N_ROWS).double().freq_inv.dtype == (
        torch.float64
    )


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("hinge", {}, "unknown loss"),
        ("focal", {"gama": 2}, "does not take parameter"),
        ("bce", {"gamma": 2}, "does not take parameter"),
        ("focal", {"gamma": -1}, "gamma"),
        ("focal", {"alpha": 2}, "alpha"),
        ("asl", {"clip": 1.0}, "clip"),
        ("db", {"lam": 0}, "lambda"),
        ("weighted-bce", {"scheme": "cube"}, "scheme"),
        ("logit-adjusted", {"tau": -1}, "tau"),
        ("logit-adjusted", {"tau": "inf"}, "tau"),
        ("logit-adjusted", {"gamma": 2}, "does not take parameter"),
    ],
)
def test_builder_errors(name: str, params: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        build_loss(name, label_counts=COUNTS, n_rows=N_ROWS, **params)


def test_shape_errors() -> None:
    loss = build_loss("bce", label_counts=COUNTS, n_rows=N_ROWS)
    with pytest.raises(ParameterError, match="must both be"):
        loss(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ParameterError, match="built for 4 labels"):
        build_loss("focal", label_counts=COUNTS, n_rows=N_ROWS)(
            torch.zeros(2, 3), torch.zeros(2, 3)
        )


def test_command_line_strings_are_coerced() -> None:
    loss = build_loss(
        "asl", label_counts=COUNTS, n_rows=N_ROWS, gamma_neg="2", gamma_pos="1", clip="0.1"
    )
    assert (loss.gamma_neg, loss.gamma_pos, loss.clip) == (2.0, 1.0, 0.1)
    focal = build_loss("focal", label_counts=COUNTS, n_rows=N_ROWS, alpha="none")
    assert focal.alpha is None
    wbce = build_loss(
        "weighted-bce", label_counts=COUNTS, n_rows=N_ROWS, scheme="log", max_weight="5"
    )
    assert float(wbce.pos_weight.max()) == 5.0
    with pytest.raises(ParameterError, match="not a number"):
        build_loss("focal", label_counts=COUNTS, n_rows=N_ROWS, gamma="two")


@pytest.mark.parametrize("name", ["bce", "weighted-bce"])
def test_fused_forward_equals_elementwise_formula(name: str) -> None:
    loss = build_loss(
        name,
        label_counts=COUNTS,
        n_rows=N_ROWS,
        **({"scheme": "inverse"} if name == "weighted-bce" else {}),
    )
    z, y = t(Z * 30), t(Y)
    assert float(loss(z, y)) == pytest.approx(float(loss.elementwise(z, y).mean()), rel=1e-9)


def test_asl_detach_focal_same_value_different_gradient() -> None:
    z = t(Z).requires_grad_(True)
    full = build_loss("asl", label_counts=COUNTS, n_rows=N_ROWS, gamma_pos=1.0)
    detached = build_loss(
        "asl", label_counts=COUNTS, n_rows=N_ROWS, gamma_pos=1.0, detach_focal="true"
    )
    assert detached.detach_focal is True
    a = full(z, t(Y))
    (ga,) = torch.autograd.grad(a, z)
    b = detached(z, t(Y))
    (gb,) = torch.autograd.grad(b, z)
    assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-12)
    assert not torch.allclose(ga, gb)
    # by hand: with the weights constant, d/dz of -(1-p)^g log p is -(1-p)^g (1-p) for y=1
    p = sig(Z)
    gamma_neg, clip = 4.0, 0.05
    pm = np.maximum(p - clip, 0)
    g_pos = -((1 - p) ** 1.0) * (1 - p)
    g_neg = pm**gamma_neg * np.where(p - clip > 0, p * (1 - p) / (1 - pm), 0.0)
    expected = (Y * g_pos + (1 - Y) * g_neg) / Z.size
    np.testing.assert_allclose(gb.numpy(), expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_config_round_trips_through_build_loss(name: str) -> None:
    loss = build_loss(name, label_counts=COUNTS, n_rows=N_ROWS)
    cfg = loss.config()
    assert cfg["loss"] == name
    params = {k: v for k, v in cfg.items() if k != "loss"}
    again = build_loss(name, label_counts=COUNTS, n_rows=N_ROWS, **params)
    assert again.config() == cfg
    assert float(again(t(Z), t(Y))) == pytest.approx(float(loss(t(Z), t(Y))), rel=1e-12)
    assert all(f"{k}=" in repr(loss) for k in params)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("name", "params"), ALL_CONFIGS)
def test_cuda_buffers_and_autocast(name: str, params: dict) -> None:
    loss = build_loss(name, label_counts=COUNTS, n_rows=N_ROWS, **params).to("cuda")
    z = torch.tensor(Z, dtype=torch.float32, device="cuda", requires_grad=True)
    y = torch.tensor(Y, dtype=torch.float32, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = loss(z.to(torch.bfloat16), y)
    out.backward()
    cpu = build_loss(name, label_counts=COUNTS, n_rows=N_ROWS, **params)
    assert out.dtype == torch.float32 and torch.isfinite(z.grad).all()
    assert float(out.detach()) == pytest.approx(float(cpu(t(Z).float(), t(Y).float())), rel=2e-2)
