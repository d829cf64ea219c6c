#!/usr/bin/env bash
# Continue training shapes-tiny on a CUDA machine that has PyTorch but maybe no Node.js,
# then bring the checkpoint home to export it here (export.py needs npm for the package).
#
# On the GPU machine, from the repository root, with the training data carried along
# (make it here first: `npm run data -- --out models/train/data/d300k --n 300000 --seed 2`
# and `--out models/train/data/heldout --n 2000 --seed 999`):
#
#   OUT=/some/dir MINUTES=8 bash models/train/device-train.sh [extra train.py flags]
#
# It resumes from models/train/checkpoints/main.pt (the shipped weights, with the recipe of
# their last sitting: 40 % of examples at t >= 0.97, tasks 35/20/45 %; a fresh optimizer with
# a 100-step warmup) unless FROM names another
# checkpoint, or FROM=scratch starts a new model (MODEL_FLAGS, default the shipped
# architecture); it trains for MINUTES on cuda with a cosine over those minutes, and writes last.pt, log.txt and metrics.jsonl to $OUT.
# Back here: copy last.pt to models/train/runs/NAME/last.pt and run
#   /usr/bin/python3 models/train/export.py --checkpoint models/train/runs/NAME/last.pt
set -euo pipefail
: "${OUT:?set OUT to the folder that receives the checkpoint}"
NAME=${NAME:-device}
MINUTES=${MINUTES:-8}
FROM=${FROM:-models/train/checkpoints/main.pt}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

for d in models/train/data/d300k models/train/data/heldout; do
  [ -f "$d/meta.json" ] || { echo "missing $d: make it with npm run data and carry it along" >&2; exit 2; }
done
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device visible to PyTorch")'

RUN=models/train/runs/$NAME
mkdir -p "$RUN"
if [ "$FROM" = scratch ]; then
  # A new model (MODEL_FLAGS), half of its examples near t = 1 from the first step, so that
  # it learns to read the prompt before it learns to copy visible neighbours (README.md,
  # "Prompt following").
  rm -f "$RUN/last.pt"
  # shellcheck disable=SC2086
  "$PY" models/train/train.py --name "$NAME" --device cuda --minutes "$MINUTES" \
    ${MODEL_FLAGS:---d-model 192 --layers 4 --heads 3 --head-dim 64} \
    --batch 64 --obj-weight 5 --lr 1e-3 --warmup 200 --schedule cosine --horizon-minutes "$MINUTES" \
    --high-t-frac 0.5 --high-t-min 0.97 --eval-minutes 2 --ckpt-minutes 1 --no-export "$@"
else
  cp "$FROM" "$RUN/last.pt"
  ELAPSED=$("$PY" -c "import torch; print(torch.load('$RUN/last.pt', map_location='cpu')['elapsed'] / 60)")
  "$PY" models/train/train.py --name "$NAME" --resume --device cuda --minutes "$MINUTES" \
    --batch 64 --obj-weight 5 --lr 5e-4 --warmup 100 --schedule cosine --high-t-frac 0.4 --high-t-min 0.97 \
    --task-weights t2i:0.35,edit:0.2,answer:0.45 \
    --horizon-start-minutes "$ELAPSED" --horizon-minutes "$("$PY" -c "print($ELAPSED + $MINUTES)")" \
    --eval-minutes 2 --ckpt-minutes 1 --no-export "$@"
fi
cp "$RUN/last.pt" "$RUN/log.txt" "$RUN/metrics.jsonl" "$OUT/"
echo "wrote $OUT/last.pt"
