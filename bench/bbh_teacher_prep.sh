#!/usr/bin/env bash
# The teacher folders of the BBH study (docs/bbh_study.md): code-davinci-002's real CoTs imported as the teacher's
# D+ and D- (training split) with its test-split CoTs as the teacher row, then
#   runs/bbh_teacher/smollm2[_full]   D- rectified and D+ corrupted by SmolLM2-135M-Instruct behind `transformers
#                                     serve` (OpenAI-compatible, loopback), within a retry budget
#   runs/bbh_teacher/scripted[_full]  the same by the lab's scripted teacher, on the BBH tasks its solver parses
#
#   bench/bbh_teacher_prep.sh [cpu|full]     (default cpu: the questions of configs/bbh_study_cpu.yaml)
#
# Environment: COTDISTILL_DATA (default ../shared/data), PORT (8000), BUDGET (3 attempts per item), MAX_TOKENS
# (384), COTDISTILL (the command; default `python -m cotdistill`). Rerunning resumes: finished stages are skipped
# and every teacher answer is cached. The server is stopped when the script ends, however it ends.
set -euo pipefail

SCALE=${1:-cpu}
export COTDISTILL_DATA=${COTDISTILL_DATA:-../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PORT=${PORT:-8000}
BUDGET=${BUDGET:-3}
MAX_TOKENS=${MAX_TOKENS:-384}
read -r -a CLI <<< "${COTDISTILL:-python -m cotdistill}"
CODEX="$COTDISTILL_DATA/bbh/codex-cot"
# the BBH tasks the lab solver parses (tests/lab/test_real_bbh.py)
SCRIPTED_TASKS=boolean_expressions,dyck_languages,multistep_arithmetic_two,navigate,object_counting,tracking_shuffled_objects_three_objects,tracking_shuffled_objects_five_objects,tracking_shuffled_objects_seven_objects,web_of_lies,word_sorting

case "$SCALE" in
  cpu)  # must match configs/bbh_study_cpu.yaml's data section
        TASKS=(--subtasks navigate,boolean_expressions,tracking_shuffled_objects_three_objects,object_counting
               --limit-per-task 8)
        SCRIPTED=("${TASKS[@]}")
        SUFFIX="" ;;
  full) TASKS=()
        SCRIPTED=(--subtasks "$SCRIPTED_TASKS")
        SUFFIX="_full" ;;
  *)    echo "usage: $0 [cpu|full]" >&2; exit 2 ;;
esac
SMOL=runs/bbh_teacher/smollm2$SUFFIX
SCRIPT=runs/bbh_teacher/scripted$SUFFIX

# 1. Codex's CoTs: every official question matched and graded; train -> D+/D-, test -> the teacher row
for dir in "$SMOL" "$SCRIPT"; do
  [ -f "$dir/test_rationales.jsonl" ] || \
    "${CLI[@]}" import "$CODEX" --model code-davinci-002 --run-dir "$dir" --test-split test
done

# 2. SmolLM2 as a live teacher: rectify D-, corrupt D+ (contrastive prompt with the rectified pairs), pair
"${CLI[@]}" serve-teacher smollm2-135m-instruct --port "$PORT" > "runs/bbh_teacher/server$SUFFIX.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT HUP  # a signal ends the script through its EXIT trap, which stops the server
for _ in $(seq 1 180); do  # the first start converts the GGUF model once (about a minute)
  curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "the teacher server exited; see runs/bbh_teacher/server$SUFFIX.log" >&2; exit 1; }
  sleep 2
done
"${CLI[@]}" teach --base-url "http://127.0.0.1:$PORT/v1" --model smollm2-135m-instruct --data bbh "${TASKS[@]}" \
  --stages rectify,corrupt,pair --rectify-budget "$BUDGET" --corrupt-budget "$BUDGET" --max-tokens "$MAX_TOKENS" \
  --concurrency 8 --timeout 600 --run-dir "$SMOL"
kill "$SERVER" 2>/dev/null || true

# 3. The scripted alternative on the tasks its solver parses (no server, seconds)
"${CLI[@]}" teach --backend scripted --data bbh "${SCRIPTED[@]}" --stages rectify,corrupt,pair \
  --rectify-budget "$BUDGET" --corrupt-budget "$BUDGET" --run-dir "$SCRIPT"

# 4. What succeeded within the budget, and a few pairs with their key tokens
for dir in "$SMOL" "$SCRIPT"; do
  echo "== $dir"
  python3 - "$dir" <<'PY'
import json, sys
report = json.load(open(f"{sys.argv[1]}/teach_report.json"))
for stage in ("grade", "rectify", "corrupt", "pair"):
    r = report[stage]
    print(f"{stage}: succeeded {r['succeeded']}, failed {r['failed']}, retried {r['retried']}")
PY
  "${CLI[@]}" show pairs "$dir/pairs.jsonl" --limit 2 --no-color --html "$dir/pairs.html" | head -60
done
