#!/usr/bin/env python3
"""The PyTorch reference for marl's learner: one PPO minibatch update on random data of MPE
simple_spread shapes (observation 18, global state 54, 5 actions), timed on the CPU. It is kept
fixed so that "as fast as PyTorch" means the same thing on every machine and at every commit;
change it only together with `marl bench update` (src/bench.rs), which runs the same workloads
through marl's own learner and prints the same line format.

One update = forward, categorical log-prob and entropy, clipped surrogate, value loss, backward,
global-norm gradient clip, Adam step:

arch plain : actor 18-64-64-5 and critic 54-64-64-1, tanh, no LayerNorm, 0.5*MSE value loss
             (coefficient 0.5), one Adam (lr 2.5e-4) over both, clip 0.5 (JaxMARL's IPPO, CleanRL)
arch mappo : on-policy's MAPPO MLP: input LayerNorm, each hidden layer Linear->tanh->LayerNorm,
             clipped Huber(10) value loss, separate actor and critic Adam (lr 7e-4), clip 10 per
             network
arch rnn   : JaxMARL's recurrent MAPPO (baselines/MAPPO/mappo_rnn_mpe.py): actor 18 -> Dense128 relu ->
             GRU128 -> Dense128 relu -> 5, critic 54 -> the same -> 1, trained on sequences of --seq
             steps (batch / seq of them; 25 = one MPE episode, so no reset inside a sequence) from a
             stored initial hidden state; clipped 0.5*MSE value loss, separate Adam (lr 2e-3), clip 0.5
             per network. torch.nn.GRU is PyTorch's fastest CPU path for this.

  python3 bench/torch_ppo_update.py --arch plain --batch 4800 --threads 1
  -> torch_update arch=plain batch=4800 threads=1 median_ms=7.71 min_ms=7.52 reps=9

median_ms is the median over --reps repetitions of the mean time per update. Needs torch and
numpy (the PyPI wheel). scripts/bench-update.sh installs them into .venv-torch, then runs this
script and `marl bench update` alternately (A B A B ...) on the same core with one thread each,
and prints each side's median of medians and their ratio: the machine is shared and noisy, so
only alternated medians are compared. README.md, "Performance", has the measured table.
"""
import argparse, statistics, time
import torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--arch", choices=["plain", "mappo", "rnn"], default="plain")
ap.add_argument("--seq", type=int, default=25, help="sequence length for --arch rnn")
ap.add_argument("--batch", type=int, default=4800)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--reps", type=int, default=9)
a = ap.parse_args()
torch.set_num_threads(a.threads)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass
torch.manual_seed(0)


def mlp(i, o, ln):
    if not ln:
        return nn.Sequential(nn.Linear(i, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, o))
    return nn.Sequential(nn.LayerNorm(i), nn.Linear(i, 64), nn.Tanh(), nn.LayerNorm(64),
                         nn.Linear(64, 64), nn.Tanh(), nn.LayerNorm(64), nn.Linear(64, o))


class Rnn(nn.Module):
    """Dense -> relu -> GRU -> Dense -> relu -> head, over [seq, n, in] from a given hidden state."""

    def __init__(self, i, o, h=128):
        super().__init__()
        self.inp, self.gru = nn.Linear(i, h), nn.GRU(h, h)
        self.mid, self.head = nn.Linear(h, h), nn.Linear(h, o)

    def forward(self, x, h0):
        y, _ = self.gru(F.relu(self.inp(x)), h0)
        return self.head(F.relu(self.mid(y)))


ln = a.arch == "mappo"
rnn = a.arch == "rnn"
if rnn:
    assert a.batch % a.seq == 0, "--batch must be a multiple of --seq"
    actor, critic = Rnn(18, 5), Rnn(54, 1)
else:
    actor, critic = mlp(18, 5, ln), mlp(54, 1, ln)
if rnn or ln:
    lr = 2e-3 if rnn else 7e-4
    opts = [torch.optim.Adam(actor.parameters(), lr=lr, eps=1e-5), torch.optim.Adam(critic.parameters(), lr=lr, eps=1e-5)]
else:
    opts = [torch.optim.Adam(list(actor.parameters()) + list(critic.parameters()), lr=2.5e-4, eps=1e-5)]

b = a.batch
obs, cobs = torch.rand(b, 18) * 2 - 1, torch.rand(b, 54) * 2 - 1
act = torch.randint(0, 5, (b, 1))
old_logp, adv, ret, old_v = -1.6 + 0.1 * torch.rand(b), torch.randn(b), torch.randn(b), torch.randn(b)


n_seq = b // a.seq
sobs, scobs = obs.view(a.seq, n_seq, 18), cobs.view(a.seq, n_seq, 54)
h_actor, h_critic = torch.randn(1, n_seq, 128) * 0.1, torch.randn(1, n_seq, 128) * 0.1


def update_rnn():
    for o in opts:
        o.zero_grad(set_to_none=True)
    logp_all = F.log_softmax(actor(sobs, h_actor).reshape(b, 5), -1)
    logp = logp_all.gather(1, act).squeeze(1)
    entropy = -(logp_all.exp() * logp_all).sum(1).mean()
    ratio = (logp - old_logp).exp()
    pg = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
    (pg - 0.01 * entropy).backward()
    v = critic(scobs, h_critic).reshape(b)
    v_clip = old_v + (v - old_v).clamp(-0.2, 0.2)
    vloss = 0.5 * torch.max((v - ret).pow(2), (v_clip - ret).pow(2)).mean()
    vloss.backward()
    nn.utils.clip_grad_norm_(actor.parameters(), 0.5)
    nn.utils.clip_grad_norm_(critic.parameters(), 0.5)
    for o in opts:
        o.step()


def update():
    if rnn:
        return update_rnn()
    for o in opts:
        o.zero_grad(set_to_none=True)
    logp_all = F.log_softmax(actor(obs), -1)
    logp = logp_all.gather(1, act).squeeze(1)
    entropy = -(logp_all.exp() * logp_all).sum(1).mean()
    ratio = (logp - old_logp).exp()
    pg = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
    v = critic(cobs).squeeze(1)
    if ln:
        v_clip = old_v + (v - old_v).clamp(-0.2, 0.2)
        vloss = torch.max(F.huber_loss(v, ret, delta=10.0, reduction="none"),
                          F.huber_loss(v_clip, ret, delta=10.0, reduction="none")).mean()
        (pg - 0.01 * entropy + vloss).backward()
        nn.utils.clip_grad_norm_(actor.parameters(), 10.0)
        nn.utils.clip_grad_norm_(critic.parameters(), 10.0)
    else:
        vloss = 0.5 * (v - ret).pow(2).mean()
        (pg + 0.5 * vloss - 0.01 * entropy).backward()
        nn.utils.clip_grad_norm_(list(actor.parameters()) + list(critic.parameters()), 0.5)
    for o in opts:
        o.step()


iters = max(5, 60000 // b)
for _ in range(iters):
    update()
per = []
for _ in range(a.reps):
    t = time.perf_counter()
    for _ in range(iters):
        update()
    per.append((time.perf_counter() - t) * 1e3 / iters)
print(f"torch_update arch={a.arch}{f' seq={a.seq}' if rnn else ''} batch={b} threads={a.threads} median_ms={statistics.median(per):.2f} "
      f"min_ms={min(per):.2f} reps={a.reps}")
