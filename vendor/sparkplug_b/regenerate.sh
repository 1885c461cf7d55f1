#!/usr/bin/env bash
# Regenerates plantwire/sparkplug/sparkplug_b_pb2.py and .pyi from the vendored, unedited
# sparkplug_b.proto. Needs only python3 (3.11+) and the package index; does not use ./dev.
#   vendor/sparkplug_b/regenerate.sh
# If you change GRPCIO_TOOLS, change the `protobuf` pin in pyproject.toml to the same major and a
# version not older than the "Protobuf Python Version" line of the generated file.
set -euo pipefail
GRPCIO_TOOLS=1.85.1
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../plantwire/sparkplug"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "grpcio-tools==$GRPCIO_TOOLS"
cp "$here/sparkplug_b.proto" "$tmp/"
"$tmp/venv/bin/python" -m grpc_tools.protoc -I"$tmp" --python_out="$tmp" --pyi_out="$tmp" "$tmp/sparkplug_b.proto"
header="# GENERATED from vendor/sparkplug_b/sparkplug_b.proto (Eclipse Tahu, EPL-2.0) by protoc from
# grpcio-tools==$GRPCIO_TOOLS. Do not edit: run vendor/sparkplug_b/regenerate.sh instead."
for ext in py pyi; do
    { echo "$header"; cat "$tmp/sparkplug_b_pb2.$ext"; } > "$out/sparkplug_b_pb2.$ext"
done
echo "regenerated $out/sparkplug_b_pb2.py and .pyi"
