#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript and, on standalone
# clusters, spark.worker.resource.gpu.discoveryScript): prints the GPUs this host's executors may
# use as Spark's resource JSON, e.g. {"name": "gpu", "addresses": ["0","1","2","3"]}.
# The addresses are nvidia-smi indices; spark-sft remaps them through CUDA_VISIBLE_DEVICES when it is set.
set -euo pipefail
if ! command -v nvidia-smi >/dev/null; then
  echo "get-gpus-resources.sh: nvidia-smi not found; is this a GPU host with the NVIDIA driver?" >&2
  exit 1
fi
ids=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed -e 's/^ *//' -e 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${ids}]}"
