"""Success on `push-t` (>= 95% overlap with the target): diffusion and flow U-Nets (and the
Gaussian baseline) cloned from the same scripted-expert demos, with the mean max overlap.

    python experiments/generative/pusht_table.py --demos 200 --seeds 1 --grad-steps 8000
"""

from _table import Row, parse_args, run

ROWS = [
    Row("diffusion (U-Net, sample prediction), DDIM-10", "diffusion", inference_steps=10),
    Row("flow (U-Net, sample prediction), 10 Euler steps", "flow", inference_steps=10),
    Row("flow (U-Net, sample prediction), 1 step", "flow", inference_steps=1),
    Row("gaussian (MSE)", "gaussian"),
]

if __name__ == "__main__":
    run("push-t", ROWS, parse_args(__doc__, out="runs/pusht-table", demos=200,
                                   grad_steps=8_000),
        {"mean max overlap": "eval/peak/reward/overlap"})
