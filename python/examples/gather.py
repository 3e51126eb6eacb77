"""A small cooperative environment written to marl's seed `MultiAgentEnv` interface, in plain
Python (no numpy needed): `n_agents` agents on a `size` x `size` grid must all reach a goal cell.

Each step every agent gets the same reward: minus the mean Manhattan distance of the agents to
the goal, divided by the grid size, plus 1 when all of them stand on it (which ends the episode).
Random play scores about -12.6 per agent and episode on the default 5x5 grid with 2 agents (it
rarely gathers within 20 steps); walking straight to the goal scores about 0.

    marl train configs/python_gather.toml
"""

import random

MOVES = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]  # stay, left, right, down, up


class Discrete:
    """The action space of one agent (marl reads `.n`)."""

    def __init__(self, n):
        self.n = n


class Box:
    """The observation space of one agent (marl checks `.shape` against the observations)."""

    def __init__(self, dim):
        self.shape = (dim,)


class GatherEnv:
    def __init__(self, size=5, n_agents=2, max_steps=20):
        self.size, self.n_agents, self.max_steps = size, n_agents, max_steps
        self.action_space = [Discrete(len(MOVES)) for _ in range(n_agents)]
        self.observation_space = [Box(2 + 2 * n_agents) for _ in range(n_agents)]
        self.pos, self.goal, self.t = [], (0, 0), 0

    def _obs(self):
        s = float(self.size - 1)
        out = []
        for i in range(self.n_agents):
            x, y = self.pos[i]
            o = [(self.goal[0] - x) / s, (self.goal[1] - y) / s]
            for j in range(self.n_agents):
                o += [self.pos[j][0] / s, self.pos[j][1] / s]
            out.append(o)
        return out

    def reset(self):
        # No seed argument (the seed interface): marl seeds `random` in the worker instead.
        r = lambda: (random.randrange(self.size), random.randrange(self.size))
        self.goal = r()
        self.pos = [r() for _ in range(self.n_agents)]
        self.t = 0
        return self._obs(), {}

    def step(self, actions):
        for i, a in enumerate(actions):
            dx, dy = MOVES[int(a[0])]
            x, y = self.pos[i]
            self.pos[i] = (min(max(x + dx, 0), self.size - 1), min(max(y + dy, 0), self.size - 1))
        self.t += 1
        dist = [abs(x - self.goal[0]) + abs(y - self.goal[1]) for x, y in self.pos]
        done = all(d == 0 for d in dist)
        reward = -sum(dist) / len(dist) / self.size + (1.0 if done else 0.0)
        truncated = self.t >= self.max_steps and not done
        return self._obs(), [reward] * self.n_agents, [done] * self.n_agents, truncated, {}


def make_env(**kwargs):
    return GatherEnv(**kwargs)
