"""PyTorch reference for policy_latency.py: Diffusion Policy's ConditionalUnet1D (same sizes as
robojax's), DDPM / DDIM / Euler sampling loops, an energy MLP with descent and DFO inference,
and a diffusion training step. Prints one JSON object. Runs in the torch peer venv."""

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half) / max(half - 1, 1))
        angles = t[:, None] * freqs[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Conv1dBlock(nn.Module):
    def __init__(self, cin, cout, k, groups):
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2),
                                   nn.GroupNorm(groups, cout), nn.Mish())

    def forward(self, x):
        return self.block(x)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, cond_dim, k, groups):
        super().__init__()
        self.blocks = nn.ModuleList([Conv1dBlock(cin, cout, k, groups),
                                     Conv1dBlock(cout, cout, k, groups)])
        self.cond = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * cout))
        self.residual = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()
        self.cout = cout

    def forward(self, x, cond):
        out = self.blocks[0](x)
        scale, bias = self.cond(cond)[:, :, None].chunk(2, dim=1)
        return self.blocks[1](scale * out + bias) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    def __init__(self, action_dim, cond_dim, down_dims=(64, 128, 256), k=5, groups=8,
                 time_dim=64, n_times=1):
        super().__init__()
        self.time = nn.Sequential(SinusoidalPosEmb(time_dim), nn.Linear(time_dim, time_dim * 4),
                                  nn.Mish(), nn.Linear(time_dim * 4, time_dim))
        self.n_times, self.time_dim = n_times, time_dim
        self.time_mix = nn.Sequential(nn.Linear(time_dim * n_times, time_dim * 4), nn.Mish(),
                                      nn.Linear(time_dim * 4, time_dim))
        c = time_dim + cond_dim
        dims = [action_dim, *down_dims]
        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            last = i == len(down_dims) - 1
            down = nn.Conv1d(b, b, 3, 2, 1) if not last else nn.Identity()
            self.down.append(nn.ModuleList([ResBlock(a, b, c, k, groups),
                                            ResBlock(b, b, c, k, groups), down]))
        mid = down_dims[-1]
        self.mid = nn.ModuleList([ResBlock(mid, mid, c, k, groups),
                                  ResBlock(mid, mid, c, k, groups)])
        self.up = nn.ModuleList()
        for a, b in reversed(list(zip(down_dims[:-1], down_dims[1:], strict=True))):
            self.up.append(nn.ModuleList([ResBlock(2 * b, a, c, k, groups),
                                          ResBlock(a, a, c, k, groups),
                                          nn.ConvTranspose1d(a, a, 4, 2, 1)]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], k, groups),
                                   nn.Conv1d(down_dims[0], action_dim, 1))

    def forward(self, x, times, cond):  # x (B, H, A), times (B, n), cond (B, C)
        emb = self.time(times.reshape(-1)).reshape(x.shape[0], -1)
        emb = self.time_mix(emb)
        cond = torch.cat([emb, cond], dim=-1)
        x = x.transpose(1, 2)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for res in self.mid:
            x = res(x, cond)
        for res1, res2, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, cond), cond))
        return self.final(x).transpose(1, 2)


def cosine_alphas_cumprod(n):
    f = lambda t: np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
    t = np.arange(n)
    return torch.tensor(np.cumprod(1 - np.minimum(1 - f((t + 1) / n) / f(t / n), 0.999)),
                        dtype=torch.float32)


@torch.inference_mode()
def diffusion_sample(net, cond, shape, steps, sampler, T=100):
    ab_all = cosine_alphas_cumprod(T)
    ratio = T // steps
    x = torch.randn(shape)
    for t in range(steps - 1, -1, -1):
        t = t * ratio
        ab = ab_all[t]
        ab_prev = ab_all[t - ratio] if t - ratio >= 0 else torch.tensor(1.0)
        eps = net(x, torch.full((shape[0], 1), float(t)), cond)
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        if sampler == "ddim":
            x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        else:
            alpha = ab / ab_prev
            mean = (ab_prev.sqrt() * (1 - alpha) * x0 + alpha.sqrt() * (1 - ab_prev) * x) / (1 - ab)
            std = ((1 - ab_prev) / (1 - ab) * (1 - alpha)).clamp(min=1e-20).sqrt()
            x = mean + (std * torch.randn(shape) if t > 0 else 0)
    return x.clamp(-1, 1)


@torch.inference_mode()
def flow_sample(net, cond, shape, steps):
    x = torch.randn(shape)
    dt = 1.0 / steps
    for i in range(steps):
        times = torch.tensor([[i * dt * 1000, dt * 1000]]).expand(shape[0], 2)
        x = x + dt * net(x, times, cond)
    return x.clamp(-1, 1)


class EnergyMLP(nn.Module):
    def __init__(self, cond_dim, act_size, hidden=(256, 256, 256)):
        super().__init__()
        layers, d = [], cond_dim + act_size
        for h in hidden:
            layers += [nn.Linear(d, h), nn.Mish()]
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, cond, a):
        return self.net(torch.cat([cond, a], dim=-1))[..., 0]


def energy_descent(model, cond, shape, steps, proposals=256, starts=8, step_size=0.1):
    b, h, a = shape
    with torch.no_grad():
        x = torch.rand(b, proposals, h * a) * 2 - 1
        e = model(cond[:, None].expand(b, proposals, cond.shape[-1]), x)
        x = torch.gather(x, 1, e.topk(starts, -1, largest=False).indices[..., None]
                         .expand(-1, -1, h * a))
    c = cond[:, None].expand(b, starts, cond.shape[-1])
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        grad, = torch.autograd.grad(model(c, x).sum(), x)
        x = (x - step_size * grad).clamp(-1, 1)
    with torch.no_grad():
        x = x[torch.arange(b), model(c, x).argmin(-1)]
    return x.reshape(shape)


@torch.inference_mode()
def energy_dfo(model, cond, shape, rounds=3, proposals=256, noise=0.33):
    b, h, a = shape
    x = torch.rand(b, proposals, h * a) * 2 - 1
    c = cond[:, None].expand(b, proposals, cond.shape[-1])
    e = model(c, x)
    for r in range(rounds):
        idx = torch.multinomial(F.softmax(-e, -1), proposals, replacement=True)
        x = torch.gather(x, 1, idx[..., None].expand(-1, -1, h * a))
        x = (x + noise * 0.5 ** r * torch.randn_like(x)).clamp(-1, 1)
        e = model(c, x)
    return x[torch.arange(b), e.argmin(-1)].reshape(shape)


def timed(fn, repeats):
    sync = torch.cuda.synchronize if torch.get_default_device().type == "cuda" else lambda: None
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    cfg = json.loads(parser.parse_args().config)
    torch.manual_seed(0)
    torch.set_num_threads(cfg["threads"])
    torch.set_default_device(cfg.get("device", "cpu"))
    horizon, act, cond_dim = cfg["horizon"], cfg["action_dim"], cfg["cond_dim"]
    unet = ConditionalUnet1D(act, cond_dim, tuple(cfg["down_dims"])).eval()
    flow_net = ConditionalUnet1D(act, cond_dim, tuple(cfg["down_dims"]), n_times=2).eval()
    energy = EnergyMLP(cond_dim, horizon * act).eval()
    methods = {
        "DDPM-100": lambda c, s: diffusion_sample(unet, c, s, 100, "ddpm"),
        "DDIM-10": lambda c, s: diffusion_sample(unet, c, s, 10, "ddim"),
        "flow-10": lambda c, s: flow_sample(flow_net, c, s, 10),
        "flow-1": lambda c, s: flow_sample(flow_net, c, s, 1),
        "energy descent-2": lambda c, s: energy_descent(energy, c, s, 2),
        "energy DFO": lambda c, s: energy_dfo(energy, c, s),
    }
    out = {"latency": {}, "throughput": {}}
    for name, fn in methods.items():
        if name not in cfg["methods"]:
            continue
        out["latency"][name] = timed(
            lambda fn=fn: fn(torch.zeros(1, cond_dim), (1, horizon, act)), cfg["repeats"])
        t = timed(lambda fn=fn, b=cfg["big_batch"]: fn(torch.zeros(b, cond_dim), (b, horizon, act)),
                  cfg["big_repeats"])
        out["throughput"][name] = cfg["big_batch"] / float(np.median(t))
    # Training: one DDPM gradient step of the U-Net at the training batch size.
    train_net = ConditionalUnet1D(act, cond_dim, tuple(cfg["down_dims"]))
    opt = torch.optim.AdamW(train_net.parameters(), lr=1e-4)
    ab_all = cosine_alphas_cumprod(100)
    bs = cfg["train_batch"]
    actions, cond = torch.rand(bs, horizon, act) * 2 - 1, torch.randn(bs, cond_dim)

    def train_step():
        t = torch.randint(0, 100, (bs,))
        noise = torch.randn_like(actions)
        ab = ab_all[t][:, None, None]
        pred = train_net(ab.sqrt() * actions + (1 - ab).sqrt() * noise, t[:, None].float(), cond)
        loss = F.mse_loss(pred, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()

    times = timed(train_step, cfg["train_repeats"])
    out["train_steps_per_s"] = 1.0 / float(np.median(times))
    out["torch"] = torch.__version__
    out["device"] = str(torch.get_default_device())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
