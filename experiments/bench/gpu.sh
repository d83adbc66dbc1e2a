#!/usr/bin/env bash
# The benchmarks at GPU sizes, one group per call: bash experiments/bench/gpu.sh GROUP OUTDIR
# Groups: env (throughput at 1024-16384 envs), ppo (robojax vs Brax PPO), ppo-cold (its time to
# reward alone, robojax from an empty compile cache only), sac (robojax vs Brax SAC throughput at
# 1024 and 4096 envs), hil (HIL and RLPD on sparse pusher at 1024 envs, HIL_STEPS env steps),
# finetune (ReinFlow and DPPO on detour at 1024 envs, FINETUNE_STEPS env steps), pusht-finetune
# (residual, ReinFlow and DPPO on push-t from U-Net clones at 1024 envs), policy
# (inference and U-Net training vs PyTorch on the same GPU, detour BC training time), diffsim
# (differentiable rollout overhead, ILD vs PPO wall time), pusht (behaviour cloning on push-t: for
# each action noise in PUSHT_NOISES, demos, then each family or run stem in PUSHT_FAMILIES trained
# side by side with its seeds in one program, PUSHT_STEPS grad steps, at most PUSHT_LIMIT s;
# PUSHT_ARGS adds pusht_table.py flags; then the table from the latest checkpoints). Peers run in
# the venv PEER_VENV (default: the one running robojax), which must hold brax + playground (ppo,
# sac) or torch with CUDA (policy).
set -uo pipefail
group=$1 out=$(realpath -m "$2")
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out" && cd "$out"  # not the repo root: the installed robojax, not its source tree
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
peer=${PEER_VENV:-$($py -c 'import sys; print(sys.prefix)')}  # holds bin/python
export BRAX_PEER_VENV=$peer TORCH_PEER_VENV=$peer
bench=$repo/experiments/bench
run() {  # run NAME TIMEOUT CMD...: log to $out/NAME.md, keep going on failure
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.md" | grep -v "^WARNING\|^I0000\|^W0000"
}
case $group in
  env)
    run env_cartpole 150 $py $bench/env_throughput.py --envs cartpole-balance \
      --batches 1024 4096 16384 --json "$out/env_cartpole.json"
    run env_hopper 200 $py $bench/env_throughput.py --envs hopper --batches 16384 \
      --json "$out/env_hopper.json" ;;
  ppo)
    run ppo_a 150 $py $bench/ppo_vs_brax.py --part a --num-envs 4096
    run ppo_b 200 $py $bench/ppo_vs_brax.py --part b --brax-envs 2048 ;;
  ppo-cold)  # (b) alone, robojax from an empty compile cache only
    run ppo_b_cold 170 $py $bench/ppo_vs_brax.py --part b --brax-envs 2048 --cold-only ;;
  sac)  # at most SAC_LIMIT s (about 110 s per env count on an H200)
    run sac_a "${SAC_LIMIT:-300}" $py $bench/sac_vs_brax.py --part a --num-envs 1024 4096 ;;
  hil)  # HIL and RLPD on sparse pusher at 1024 envs, one seed each, at most HIL_LIMIT s
    run hil "${HIL_LIMIT:-300}" $py $repo/experiments/hil/hil_table.py --env pusher --seeds 1 \
      --num-envs 1024 --num-timesteps "${HIL_STEPS:-1000000}" --out "${RUNS:-/tmp/gpu-runs}/hil" ;;
  finetune)  # ReinFlow and DPPO on detour at 1024 envs, one seed each, at most FINETUNE_LIMIT s
    run finetune "${FINETUNE_LIMIT:-300}" $py $repo/experiments/generative/finetune_detour.py \
      --seeds 1 --num-envs 1024 --timesteps "${FINETUNE_STEPS:-2000000}" --algos reinflow dppo \
      --out "${RUNS:-/tmp/gpu-runs}/finetune" ;;
  pusht-finetune)  # residual, ReinFlow and DPPO on push-t from U-Net clones (trained first when
    # $RUNS/clones lacks them) at 1024 envs, one seed each, PUSHT_FT_STEPS env steps, at most
    # PUSHT_FT_LIMIT s each; PUSHT_FT_FLAGS go to `robojax train` (default: the success reward)
    for algo in ${PUSHT_FT_ALGOS:-residual reinflow dppo}; do
      run "pusht_ft_$algo" "${PUSHT_FT_LIMIT:-300}" $py \
        $repo/experiments/generative/finetune_pusht.py --seeds 1 --algo "$algo" \
        --timesteps "${PUSHT_FT_STEPS:-2000000}" --clones "${RUNS:-/tmp/gpu-runs}/clones" \
        --out "${RUNS:-/tmp/gpu-runs}/pusht-ft" -- "--$algo.num-envs" 1024 \
        ${PUSHT_FT_FLAGS:---env-config sparse_reward=True}
    done ;;
  policy)
    run policy 200 $py $bench/policy_latency.py --big-batch 4096 --big-repeats 5
    run detour 150 $py $repo/experiments/generative/detour_table.py --seeds 1 \
      --families gaussian diffusion \
      --out "$out/detour" ;;
  diffsim)
    run diffsim_overhead 150 $py $bench/diffsim_overhead.py --batch 64 256 1024
    run diffsim_vs_ppo 250 $py $bench/diffsim_vs_ppo.py --envs pendulum-swingup \
      --algos ild ppo --steps ild=1000000 ppo=4000000 --out "$out/dvp" ;;
  pusht)
    # per noise level in PUSHT_NOISES: demos, then each run stem's trainings side by side
    for noise in ${PUSHT_NOISES:-0}; do
      runs=${PUSHT_RUNS:-/tmp/pusht-runs}/noise$noise  # checkpoints stay off $out
      table=($py $repo/experiments/generative/pusht_table.py --out "$runs" --vmap-seeds
             --grad-steps "${PUSHT_STEPS:-20000}" --num-evals 8 --action-noise "$noise"
             ${PUSHT_ARGS:-})
      mkdir -p "$runs"
      run "pusht_demos_$noise" 200 "${table[@]}" --collect-only
      for family in ${PUSHT_FAMILIES:-diffusion flow-plain flow-shortcut}; do
        run "pusht_train_${family}_$noise" "${PUSHT_LIMIT:-400}" "${table[@]}" --train-only \
          --families $family &
      done
    done
    wait
    for noise in ${PUSHT_NOISES:-0}; do
      runs=${PUSHT_RUNS:-/tmp/pusht-runs}/noise$noise
      run "pusht_table_$noise" 300 $py $repo/experiments/generative/pusht_table.py \
        --out "$runs" --vmap-seeds --action-noise "$noise" \
        --families ${PUSHT_FAMILIES:-diffusion flow-plain flow-shortcut} &
    done
    wait
    for dir in "${PUSHT_RUNS:-/tmp/pusht-runs}"/noise*/*-seeds*; do
      keep=$out/pusht/$(basename "$(dirname "$dir")")/${dir##*/}
      mkdir -p "$keep" && cp "$dir"/*.csv "$dir"/*.png "$dir"/*.mp4 "$keep/" 2>/dev/null
      cp "$(dirname "$dir")/results.json" "$keep/../" 2>/dev/null
    done ;;
  *) echo "unknown group $group"; exit 2 ;;
esac
