"""Shapes on odd-but-valid grids, seeded determinism, building blocks, overfitting one batch."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from closure.models import (
    DynamicsLossWeights,
    LatentClosureModel,
    LatentDynamics,
    PARCv2,
    PerceptualLoss,
    Tokenizer,
    UNet,
    VAELossWeights,
    dynamics_losses,
    meso_substeps,
    state_norm,
    vae_losses,
)
from closure.models.parc import PARCIntegrator, laplacian, upwind_advection
from closure.models.vae import edge_weight, kl_loss, load_feature_net
from closure.normalization import CHANNELS
from closure.training.synthetic import synthetic_fields

C = len(CHANNELS)

# Tiny models are fastest on one thread, and two threads stall badly when another process
# holds a core (measured: 6 ms vs 2.3 s per tiny VAE step).
torch.set_num_threads(1)

GRIDS = [(8, 8), (24, 40), (16, 56), (40, 24)]


def _latent_model(seed=0, base=4, substeps=1, residual=True):
    torch.manual_seed(seed)
    return LatentClosureModel(Tokenizer(base_channels=base),
                              LatentDynamics(base_channels=base, reps=1, residual=residual),
                              substeps)


@pytest.mark.parametrize("hw", GRIDS)
def test_tokenizer_shapes(hw):
    tok = Tokenizer(base_channels=4)
    x = torch.rand(2, C, *hw)
    recon, mean, logvar = tok(x)
    assert recon.shape == x.shape
    assert mean.shape == logvar.shape == (2, 4 * C, hw[0] // 8, hw[1] // 8)
    assert tok.decode(mean).shape == x.shape


@pytest.mark.parametrize("hw", [(12, 16), (16, 20), (4, 8)])
def test_tokenizer_rejects_invalid_grid(hw):
    with pytest.raises(ValueError, match="multiple of 8"):
        Tokenizer(base_channels=4).encode(torch.rand(1, C, *hw))


def test_tokenizer_rejects_wrong_channels():
    with pytest.raises(ValueError, match=rf"\(B, {C}, H, W\)"):
        Tokenizer(base_channels=4).encode(torch.rand(1, 2, 8, 8))


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (2, 7), (5, 3)])
def test_unet_any_size(hw):
    net = UNet(4, 6, base=4, depth=2, reps=1)
    assert net(torch.rand(2, 4, *hw)).shape == (2, 6, *hw)


@pytest.mark.parametrize("hw", GRIDS)
def test_latent_model_shapes(hw):
    model = _latent_model(substeps=2)
    y, m, v = model(torch.rand(2, C, *hw), 3, sample=True)
    assert y.shape == (2, 4, C, *hw)
    assert m.shape == v.shape == (2, 4, 4 * C, hw[0] // 8, hw[1] // 8)


@pytest.mark.parametrize("hw", [(8, 8), (24, 40)])
def test_parc_shapes(hw):
    model = PARCv2(base_channels=4, features=8, correction=True, integrator="rk4")
    assert model(torch.rand(2, C, *hw), 2).shape == (2, 3, C, *hw)


def test_seeded_determinism():
    x = torch.rand(2, C, 24, 40)
    a, b = _latent_model(seed=3).eval(), _latent_model(seed=3).eval()
    ya = a(x, 2, sample=True, generator=torch.Generator().manual_seed(7))[0]
    yb = b(x, 2, sample=True, generator=torch.Generator().manual_seed(7))[0]
    assert torch.equal(ya, yb)
    yc = b(x, 2, sample=True, generator=torch.Generator().manual_seed(8))[0]
    assert not torch.equal(ya, yc)
    torch.manual_seed(1)
    p1 = PARCv2(base_channels=4, features=8)
    torch.manual_seed(1)
    p2 = PARCv2(base_channels=4, features=8)
    assert torch.equal(p1(x, 2), p2(x, 2))


def test_coupled_nets_start_as_identity_and_meso_freezing():
    model = _latent_model().eval()
    m, v = torch.randn(2, 4 * C, 3, 5), torch.randn(2, 4 * C, 3, 5)
    cm, cv = model.dynamics.coupled_step(m, v)
    assert torch.equal(cm, m) and torch.equal(cv, v)
    meso = LatentClosureModel.meso_from_micro(model, 2)
    assert meso.substeps == 2 and model.substeps == 1
    assert not any(p.requires_grad for p in meso.tokenizer.parameters())
    assert not any(p.requires_grad for p in meso.dynamics.decoupled_mean.parameters())
    assert not any(p.requires_grad for p in meso.dynamics.decoupled_logvar.parameters())
    assert all(p.requires_grad for p in meso.dynamics.coupled_mean.parameters())
    assert all(p.requires_grad for p in model.parameters())  # the micro model is untouched
    # k micro steps per meso step: the meso rollout equals the micro rollout at every k-th step
    x = torch.rand(1, C, 16, 24)
    _, mm, _ = model(x, 4)
    _, ms, _ = meso.eval()(x, 2)
    assert torch.allclose(ms[:, 1], mm[:, 2]) and torch.allclose(ms[:, 2], mm[:, 4])


def test_meso_substeps():
    assert meso_substeps(0.395e-9, 0.172e-9) == 2
    assert meso_substeps(2 * 0.172e-9, 0.172e-9) == 2
    assert meso_substeps(3 * 1.1e-10, 1.1e-10) == 3
    with pytest.raises(ValueError, match="shorter"):
        meso_substeps(1e-10, 2e-10)


def test_vae_loss_terms():
    m, v = torch.zeros(2, 4, 1, 1), torch.zeros(2, 4, 1, 1)
    assert kl_loss(m, v).item() == 0.0
    assert kl_loss(m + 1.0, v).item() == pytest.approx(2.0)  # 0.5 * 4 channels * 1^2
    x = torch.zeros(1, 1, 4, 4)
    x[..., 2:] = 1.0
    w = edge_weight(x)
    assert w.min() >= 0 and w.max() <= 1
    assert w[0, 0, 0, 1] > 0.99 and w[0, 0, 0, 3] == 0  # the jump is weighted, flat parts not
    vae = Tokenizer(base_channels=4).vaes["T"]
    t = vae_losses(vae, torch.rand(2, 1, 8, 8), VAELossWeights())
    assert set(t) == {"recon", "kl", "edge", "total"}
    with pytest.raises(ValueError, match="feature network"):
        vae_losses(vae, torch.rand(2, 1, 8, 8), VAELossWeights(perceptual=1.0))


def test_perceptual_term_is_pluggable():
    feat = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
    loss = PerceptualLoss(feat)
    assert not any(p.requires_grad for p in loss.parameters())
    vae = Tokenizer(base_channels=4).vaes["P"]
    t = vae_losses(vae, torch.rand(2, 1, 8, 8), VAELossWeights(perceptual=0.5), loss)
    assert t["perceptual"] > 0
    assert isinstance(load_feature_net("torch.nn:Identity"), nn.Identity)
    with pytest.raises(ValueError, match="package.module:factory"):
        load_feature_net("torch.nn.Identity")


def test_parc_operators_by_hand():
    y, x = torch.meshgrid(torch.arange(6.0), torch.arange(7.0), indexing="ij")
    phi = (2.0 * x + 3.0 * y)[None, None]
    u = torch.zeros(1, 2, 6, 7)
    u[:, 0], u[:, 1] = 0.5, -1.0
    adv = upwind_advection(phi, u)
    assert torch.allclose(adv[..., 1:-1, 1:-1], torch.tensor(0.5 * 2.0 - 1.0 * 3.0))
    q = (x**2 + y**2)[None, None]
    assert torch.allclose(laplacian(q)[..., 1:-1, 1:-1], torch.tensor(4.0))
    assert torch.equal(upwind_advection(torch.ones(1, 1, 5, 5), u[:, :, :5, :5]),
                       torch.zeros(1, 1, 5, 5))

    class Decay(nn.Module):
        def forward(self, z):
            return -z

    z = torch.ones(1, 1, 2, 2)
    for method, factor in (("euler", 0.5**2), ("heun", (1 - 0.5 + 0.125) ** 2)):
        out = PARCIntegrator(method, substeps=2)(Decay(), z)
        assert torch.allclose(out, z * factor)
    h = 0.25
    rk4 = PARCIntegrator("rk4", substeps=4)(Decay(), z)
    assert torch.allclose(rk4, z * (1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24) ** 4)
    assert torch.allclose(rk4, z * torch.exp(torch.tensor(-1.0)), atol=1e-4)


def test_dynamics_losses_and_state_norm():
    z = torch.zeros(2, 4, 3, 5)
    z[:, 0] = 3.0
    z[:, 1] = 4.0
    assert torch.allclose(state_norm(z), torch.full((2, 1, 1, 1), 5.0))
    m = torch.randn(2, 3, 12, 2, 2)
    f = torch.rand(2, 2, 3, 16, 16)
    w = DynamicsLossWeights()
    t = dynamics_losses(m, m, m, m, f, f, 3, w)
    assert t["total"].item() == 0.0
    t = dynamics_losses(m, m, m, m, f + 0.1, f, 3, w)
    assert t["multi_step"].item() == pytest.approx(2 * 3 * 0.01, rel=1e-4)
    with pytest.raises(ValueError, match="horizon 2"):
        dynamics_losses(m, m, m, m, f[:, :1], f[:, :1], 3, w)


def test_hot_token_weight_scales_only_hot_t_tokens():
    m = torch.zeros(1, 2, 12, 2, 2)
    target = m.clone()
    target[:, 1, :4] = 1.0           # T latents (field 0) off by 1 on every token
    target[:, 1, 4:8] = 1.0          # P latents too
    hot = torch.zeros(1, 1, 1, 2, 2)
    hot[..., 0, 1] = 1.0             # one hot token of four
    f = torch.zeros(1, 1, 3, 16, 16)
    plain = dynamics_losses(m, m, target, m, f, f, 3, DynamicsLossWeights())
    same = dynamics_losses(m, m, target, m, f, f, 3, DynamicsLossWeights(hotspot_tokens=0.0),
                           hot_tokens=hot)
    w = dynamics_losses(m, m, target, m, f, f, 3, DynamicsLossWeights(hotspot_tokens=9.0),
                        hot_tokens=hot)
    assert same["consistency_mean"].item() == plain["consistency_mean"].item()
    # state norm of the T and P targets is 2, so each element's normalized error is 1/4;
    # the weighted T term is 1/4 * (3 * 1 + 1 * 10) / 4
    assert plain["consistency_mean"].item() == pytest.approx(0.5, rel=1e-6)
    assert w["consistency_mean"].item() == pytest.approx(13 / 16 + 0.25, rel=1e-6)
    # with the T field at index 1 the weight moves to the P latents (also off by 1): same value
    w1 = dynamics_losses(m, m, target, m, f, f, 3, DynamicsLossWeights(hotspot_tokens=9.0),
                         hot_tokens=hot, t_field=1)
    assert w1["consistency_mean"].item() == pytest.approx(13 / 16 + 0.25, rel=1e-6)


def _overfit(model, loss_of, steps, lr):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr,
                           betas=(0.5, 0.99))
    first = None
    for _ in range(steps):
        loss = loss_of()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, loss_of().item()


def _batch():
    """(2 samples, 3 frames, 3 fields, 16, 16): shock + collapsing pore + hot spot."""
    return torch.from_numpy(synthetic_fields(2, 3, 16, 16, seed=0))


def test_overfit_one_batch_vae():
    torch.manual_seed(0)
    vae = Tokenizer(base_channels=4).vaes["T"]
    x = _batch()[:, :, 0].reshape(-1, 1, 16, 16)
    w = VAELossWeights(kl=1e-4)
    first, last = _overfit(vae, lambda: vae_losses(vae, x, w)["total"], 80, 3e-3)
    assert last < 0.35 * first


def test_overfit_one_batch_latent_dynamics():
    model = _latent_model(base=4)
    model.tokenizer.requires_grad_(False)
    x = _batch()
    with torch.no_grad():
        m, v = model.encode(x.flatten(0, 1))
    m, v = m.unflatten(0, (2, 3)), v.unflatten(0, (2, 3))
    model.train()

    def loss():
        pm, pv = model.dynamics.rollout(m[:, 0], v[:, 0], 2)
        pf = model.decode_trajectory(pm[:, 1:], pv[:, 1:])
        return dynamics_losses(pm, pv, m, v, pf, x[:, 1:], 3, DynamicsLossWeights())["total"]

    first, last = _overfit(model, loss, 60, 3e-3)
    assert last < 0.5 * first


def test_overfit_one_batch_parc():
    torch.manual_seed(0)
    model = PARCv2(base_channels=4, features=8, depth=2)
    x = _batch()
    first, last = _overfit(model, lambda: (model(x[:, 0], 2)[:, 1:] - x[:, 1:]).square().mean(),
                           60, 3e-3)
    assert last < 0.5 * first


def test_vae_decode_runs_from_its_plan_and_keeps_the_state_dict():
    """The plan is derived from the modules (no new parameters or buffers): the default VAE's
    decode, features and state_dict keys are those of the layout it always had."""
    from closure.models.vae import FieldVAE

    vae = FieldVAE(4).eval()
    plan = vae.decoder_plan()
    assert [b.upsample for b in plan.blocks] == [True, True, True, False]
    assert [len(b.units) for b in plan.blocks] == [2, 1, 1, 1]
    assert plan.input_slope == 0.2 and all(u.slope == 0.2 for b in plan.blocks for u in b.units)
    assert plan.dec_in is vae.dec_in and plan.dec_out is vae.dec_out
    assert not any("slope" in k for k in vae.state_dict())
    z = torch.randn(2, 4, 2, 3)
    with torch.no_grad():
        h = F.leaky_relu(vae.dec_in(z), 0.2)
        for i, block in enumerate(vae.dec):
            if i < 3:
                h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = block(h)
        assert torch.equal(vae.decode_features(z), h)
        assert torch.equal(vae.decode(z), vae.dec_out(h))
