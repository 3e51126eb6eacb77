#!/usr/bin/env python3
"""Records rware 2.0.0's collision resolution on random crowded floors, for a differential test
of marl's (envs/src/grid/warehouse/moves.rs) against networkx itself.

    .venv/bin/python scripts/make_rware_move_cases.py --out envs/tests/fixtures/rware_moves.json

Each case: a floor `w x h`, robots on distinct cells each wanting its own cell or a neighbour
(clamped at the border, as FORWARD is), and which robots rware commits, computed with rware's
own code (a networkx DiGraph, weakly_connected_components, find_cycle, dag_longest_path). Only
cases where a tie decides the outcome are kept: two or more equally deep predecessors on a
longest path, where the component's node order matters (CPython's set order or the graph's
insertion order); half of them with several ties on one path.
"""
import argparse
import json
import random

import networkx as nx


def rware_moves(robots):
    """rware's Warehouse.step, the graph part: which robots commit."""
    G = nx.DiGraph()
    at = {}
    for i, (x, y, tx, ty) in enumerate(robots):
        G.add_edge((x, y), (tx, ty))
        at[(x, y)] = i
    committed = set()
    for comp in [G.subgraph(c).copy() for c in nx.weakly_connected_components(G)]:
        try:
            cycle = nx.algorithms.find_cycle(comp)
            if len(cycle) == 2:
                continue
            for edge in cycle:
                if edge[0] in at:
                    committed.add(at[edge[0]])
        except nx.NetworkXNoCycle:
            for node in nx.algorithms.dag_longest_path(comp):
                if node in at:
                    committed.add(at[node])
    return [int(i in committed) for i in range(len(robots))]


def tie_points(robots):
    """How many nodes on longest paths have two or more equally deep predecessors."""
    succ = {(x, y): (tx, ty) for x, y, tx, ty in robots}
    pred = {}
    for (x, y), t in succ.items():
        if t != (x, y):
            pred.setdefault(t, []).append((x, y))

    def height(v):
        return max((height(p) + 1 for p in pred.get(v, [])), default=0)

    ties = 0
    for sink in {t for t in succ.values() if t not in succ}:
        v = sink
        while pred.get(v):
            hs = [(height(p), p) for p in pred[v]]
            best = max(h for h, _ in hs)
            tied = [p for h, p in hs if h == best]
            ties += len(tied) > 1
            v = tied[0]
    return ties


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--cases", type=int, default=800)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    cases, double = [], 0
    while len(cases) < args.cases:
        w, h = rng.choice([(10, 11), (10, 20), (16, 29), (5, 4), (7, 3)])
        n = rng.randint(3, min(16, w * h))
        cells = rng.sample([(x, y) for x in range(w) for y in range(h)], n)
        robots = []
        for x, y in cells:
            d = rng.randrange(6)
            tx, ty = [(x, y), (x, y), (x, max(0, y - 1)), (x, min(h - 1, y + 1)),
                      (max(0, x - 1), y), (min(w - 1, x + 1), y)][d]
            robots.append((x, y, tx, ty))
        ties = tie_points(robots)
        # Half the cases with one tie on a path, half with several (rarer, and where an
        # implementation that re-ranks the component at each tie goes wrong).
        if ties == 0 or (ties == 1 and len(cases) - double >= args.cases // 2) or (
                ties >= 2 and double >= args.cases - args.cases // 2):
            continue
        double += ties >= 2
        cases.append({"w": w, "h": h, "robots": [list(r) for r in robots],
                      "moves": rware_moves(robots)})
    with open(args.out, "w") as f:
        json.dump({"format": "marl-rware-move-cases-v1", "networkx": nx.__version__,
                   "cases": cases}, f, separators=(",", ":"))
    print(f"{len(cases)} cases, {double} with two or more ties on one path")


if __name__ == "__main__":
    main()
