"""The tanh-squashed Gaussian actor that APG and SHAC train through the simulator: its config
fields, its training env (a differentiable copy of the task) and its deterministic policy."""

import dataclasses

import jax

from robojax import diffsim
from robojax.algos import acting
from robojax.algos.base import RolloutConfig
from robojax.core import normalize
from robojax.core.differentiable import differentiable
from robojax.core.env import Env
from robojax.core.wrappers import wrap_for_training
from robojax.policies.gaussian import GaussianPolicy


@dataclasses.dataclass(frozen=True)
class SquashedActorConfig(RolloutConfig):
    """Fields of a learner that differentiates rollouts of a squashed Gaussian actor."""

    max_grad_norm: float = 1.0
    """Global gradient-norm clipping."""
    reward_scaling: float = 1.0
    """Rewards are multiplied by this before learning."""
    normalize_observations: bool = True
    """Normalize the networks' inputs with running statistics."""
    policy_hidden_sizes: tuple[int, ...] = (64, 64)
    """Actor MLP widths."""
    activation: str = "elu"
    """Hidden nonlinearity."""
    init_log_std: float = -1.0
    """Initial log std of the exploration noise (before the tanh squash)."""
    saturation_cost: float = 0.1
    """Weight of the penalty on the policy mean's pre-tanh magnitude beyond `saturation_bound`
    (where tanh passes almost no gradient); 0 turns it off."""
    saturation_bound: float = 3.0
    """Pre-tanh magnitude the penalty starts at (tanh(3) = 0.995 of the action range)."""
    gradients: diffsim.GradientConfig = diffsim.GradientConfig()
    """Truncation, contact scaling, clipping and remat of the gradient through the physics."""

    def validate(self) -> None:
        super().validate()
        self.gradients.validate()
        diffsim.validate_saturation(self.saturation_cost, self.saturation_bound)


def make_policy(cfg: SquashedActorConfig) -> GaussianPolicy:
    return GaussianPolicy(cfg.policy_hidden_sizes, cfg.activation, cfg.init_log_std)


def make_train_input(cfg: SquashedActorConfig, env: Env) -> Env:
    """The batched, autoresetting training env, differentiable (`core.differentiable`)."""
    return wrap_for_training(differentiable(env), cfg.num_envs,
                             episode_length=cfg.episode_length)


def act(cfg: SquashedActorConfig, state, obs: jax.Array) -> jax.Array:
    """Deterministic action (tanh of the mean): what eval and export run."""
    obs = normalize.observations(cfg, state.obs_stats, obs)
    return diffsim.squashed_action(make_policy(cfg), state.params["policy"], obs, None)


controller, evaluate, program = acting.deterministic_policy(act)
