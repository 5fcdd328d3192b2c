"""Training acceptance: a VSN MLP fits a 2D field sparsely; conversion error falls with T."""

import pytest
import torch

from spiking import ActivityMonitor, build_mlp, conversion_errors, convert_relu_mlp


@pytest.fixture
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 OpenMP threads stall badly on a shared 2-core box
    yield
    torch.set_num_threads(old)


def grid_problem(n=24):
    """sin(πx) sin(πy) on an n×n grid of [-1, 1]²."""
    g = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    X, Y = torch.meshgrid(g, g, indexing="ij")
    x = torch.stack([X.ravel(), Y.ravel()], dim=1)
    y = (torch.sin(torch.pi * x[:, 0]) * torch.sin(torch.pi * x[:, 1]))[:, None]
    return x.float(), y.float()


def fit(net, x, y, steps, lr):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        opt.step()
        sched.step()


def test_vsn_mlp_fits_2d_field_with_sparse_activity(one_thread):
    x, y = grid_problem()
    net = build_mlp(2, 1, [64, 64], neuron="vsn", activation="tanh", num_steps=2, beta=1.0,
                    threshold=0.02, surrogate="arctan", bounds=[[-1, -1], [1, 1]], seed=0)
    fit(net, x, y, steps=2000, lr=3e-3)
    with torch.no_grad(), ActivityMonitor(net) as mon:
        pred = net(x)
    rel_l2 = float((pred - y).norm() / y.norm())
    activity = mon.mean_activity()
    print(f"VSN fit: rel L2 = {rel_l2:.4f}, activity = {activity:.3f}, "
          f"per layer = {mon.activity()}")
    assert rel_l2 < 0.02
    assert 0.05 < activity < 0.60
    per_point = mon.per_point()
    assert per_point.shape == (x.shape[0],) and float(per_point.max()) <= 1.0


def test_conversion_error_decreases_with_time_steps(one_thread):
    x, y = grid_problem()
    ann = build_mlp(2, 1, [32, 32], neuron="ann", activation="relu", seed=0)
    fit(ann, x, y, steps=600, lr=3e-3)
    snn = convert_relu_mlp(ann, x, percentile=99.9)
    errs = conversion_errors(ann, snn, x, steps=(8, 32, 128), target=y)
    vs_ann = [e.rel_l2_vs_ann for e in errs]
    print("conversion rel L2 vs ANN for T = 8, 32, 128:", vs_ann,
          "vs target:", [e.rel_l2_vs_target for e in errs])
    assert vs_ann[0] > vs_ann[1] > vs_ann[2]
    assert vs_ann[2] < 0.5 * vs_ann[1] and vs_ann[2] < 0.06
    # max-normalisation (Diehl 2015) converges as well, and v_init = 0 is worse at small T
    snn_max = convert_relu_mlp(ann, x, percentile="max", v_init=0.0)
    errs_max = [e.rel_l2_vs_ann for e in conversion_errors(ann, snn_max, x, steps=(8, 32, 128))]
    assert errs_max[0] > errs_max[1] > errs_max[2]
    with pytest.raises(ValueError, match="ReLU ANN"):
        convert_relu_mlp(build_mlp(2, 1, [4], neuron="ann", activation="tanh"), x)
