#!/usr/bin/env bash
# qoelab's classifiers vs scikit-learn on one seeded 10,000 x 20 three-class CSV, side by side:
# fit time and held-out accuracy, with ratios (details in bench/classifier_rf.py).
#   ./bench/classifier.sh                 # 5 seeds per configuration
#   ./bench/classifier.sh --seeds 10      # any option of bench/classifier_rf.py
# Installs scikit-learn with pip if it is missing; builds our side with `cargo bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import sklearn' 2>/dev/null || python3 -m pip install --quiet scikit-learn
binary=$(cargo bench -p qoelab-classifier --bench forest --no-run --message-format=json \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "forest" and m.get("executable"):
        print(m["executable"])')
python3 bench/classifier_rf.py --binary "$binary" "$@"
