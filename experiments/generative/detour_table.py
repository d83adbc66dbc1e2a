"""Success on the bimodal `detour` task: every policy family cloned from the same demos.

Collects scripted-expert demonstrations (each passes the wall on a random side), trains each
family by behaviour cloning for several seeds, and evaluates every seed's final EMA policy in
`--episodes` parallel episodes. Prints a markdown table (mean and per-seed success).

    python experiments/generative/detour_table.py --seeds 3 --episodes 512
"""

import dataclasses

from _table import Row, parse_args, run
from robojax.policies.diffusion import DenoiserConfig

from robojax.algos import bc

MLP = DenoiserConfig(network="mlp")
FLOW = bc.FlowPolicy(denoiser=MLP, max_steps=8)
ENERGY = bc.EnergyPolicy(num_negatives=32)
ROWS = [
    Row("gaussian (MSE)", "gaussian"),
    Row("diffusion (sample prediction), DDIM-10", "diffusion",
        {"diffusion": bc.DiffusionPolicy(denoiser=MLP)}, 10),
    Row("flow (sample prediction), 10 Euler steps", "flow", {"flow": FLOW}, 10),
    Row("flow (sample prediction), 1 step", "flow", {"flow": FLOW}, 1),
] + [
    Row(f"energy ({ENERGY.inferred_negatives} inferred counter-examples), best "
        f"{ENERGY.descent_starts} proposals + {steps} descent steps", "energy",
        {"batch_size": 64, "energy": ENERGY}, steps)
    for steps in (2, 8, 32)  # at most: descent stops once the energy has converged
] + [
    Row("energy, as above, best proposal only + 8 descent steps", "energy",
        {"batch_size": 64, "energy": ENERGY}, 8,
        {"energy": dataclasses.replace(ENERGY, descent_starts=1)}),
]

if __name__ == "__main__":
    run("detour", ROWS, parse_args(__doc__, out="runs/detour-table", demos=100,
                                   grad_steps=10_000),
        {"wall-into-wall rate": "eval/reward/collision"})
