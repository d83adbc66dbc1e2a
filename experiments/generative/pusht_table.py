"""Success on `push-t` (>= 95% overlap with the target): diffusion and flow U-Nets (and the
Gaussian baseline) cloned from the same scripted-expert demos and their mirror images
(`--no-mirror`: the demos alone), with the mean max overlap. Each k-step U-Net checkpoint is
also evaluated replanning every 4 steps instead of every 8. The 10-step flow rows train a plain
flow (run stem `flow-plain`); the 1-step row needs the shortcut's step-size conditioning and
trains its own (`flow-shortcut`). `--families` takes families or run stems.

    python experiments/generative/pusht_table.py --demos 200 --seeds 3 --grad-steps 5000 \
        --num-evals 1 --families diffusion flow-plain
"""

from _table import Row, parse_args, run
from robojax.policies.flow import FlowPolicy

EVERY_4 = {"n_action_steps": 4}
PLAIN_FLOW = {"flow": FlowPolicy(shortcut=False)}  # k-step rows: no step-size conditioning

ROWS = [
    Row("diffusion (U-Net, sample prediction), DDIM-10", "diffusion", inference_steps=10),
    Row("diffusion, DDIM-10, replanning every 4 steps (same checkpoint)", "diffusion",
        inference_steps=10, eval_chunks=EVERY_4),
    Row("flow (U-Net, sample prediction), 10 Euler steps", "flow", PLAIN_FLOW,
        inference_steps=10, run="flow-plain"),
    Row("flow, 10 Euler steps, replanning every 4 steps (same checkpoint)", "flow", PLAIN_FLOW,
        inference_steps=10, eval_chunks=EVERY_4, run="flow-plain"),
    Row("flow, 20 Euler steps (same checkpoint)", "flow", PLAIN_FLOW, inference_steps=20,
        run="flow-plain"),
    Row("flow with shortcut (step-size conditioned, self-consistency), 1 step", "flow",
        inference_steps=1, run="flow-shortcut"),
    Row("gaussian (MSE)", "gaussian"),
]

if __name__ == "__main__":
    run("push-t", ROWS, parse_args(__doc__, out="runs/pusht-table", demos=200,
                                   grad_steps=8_000, mirror=True),
        {"mean max overlap": "eval/peak/reward/overlap"})
