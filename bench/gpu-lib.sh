# Sourced by bench/gpu.sh and bench/gpu-recipe.sh (from the repo root): the budget clock and the
# timestamped report of a device run.
#   gpu_start DEFAULT_BUDGET_S FILE...: starts the clock (budget GPU_BUDGET_S, else the default)
#                                       and sends log lines to stdout and each FILE
#   log MSG...                          [hh:mm:ss, seconds since the start] MSG
#   left                                seconds left of the budget
gpu_start() {
  START=$(date +%s)
  BUDGET=${GPU_BUDGET_S:-$1}
  shift
  GPU_LOG_FILES=("$@")
}
log() { echo "[$(date +%T), $(( $(date +%s) - START )) s] $*" | tee -a "${GPU_LOG_FILES[@]}"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
