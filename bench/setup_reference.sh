#!/usr/bin/env bash
# Set up the benchmark's reference: d2l==1.0.3 from PyPI in its own virtual environment.
#
#   bash bench/setup_reference.sh        (`make bench` runs it; it does nothing when up to date)
#
# Creates, under $BENCH_DIR (default .bench/, git-ignored):
#   ref-venv/           d2l==1.0.3 installed with --no-deps, plus what d2l/torch.py imports
#                       (bench/ref-requirements.txt, constrained to the book's requirements.txt
#                       so that shared packages have the same versions), and a .pth file putting
#                       bench/ref_stubs (a stand-in torchvision) on its sys.path.
#   data/timemachine.txt  a link to $D2L_DATA_DIR/timemachine.txt, checked against d2l's SHA-1.
#                       d2l 1.0.3 reads it from '../data' relative to the working directory, so
#                       the reference runs in work/ and never downloads anything.
#   jupyter/kernels/    two kernel specs, bench-ours (.venv) and bench-ref (ref-venv): the
#                       "plot on" runs execute a notebook in a real Jupyter kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_DIR=${BENCH_DIR:-.bench}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
VENV=$BENCH_DIR/ref-venv
STAMP=$VENV/.bench-stamp
SHA1=090b5e7e70c295757f55df93cb0a180b9691891a

# The data: the exact file d2l downloads, from the local data folder.
DATA=${D2L_DATA_DIR:-}
if [[ -z "$DATA" && -f ../shared/data/timemachine.txt ]]; then DATA=$(cd ../shared/data && pwd); fi
if [[ -z "$DATA" || ! -f "$DATA/timemachine.txt" ]]; then
    echo "setup_reference: set D2L_DATA_DIR to a folder holding timemachine.txt" >&2
    exit 1
fi
got=$(sha1sum "$DATA/timemachine.txt" | cut -d' ' -f1)
if [[ "$got" != "$SHA1" ]]; then
    echo "setup_reference: $DATA/timemachine.txt has SHA-1 $got, d2l expects $SHA1" >&2
    exit 1
fi
mkdir -p "$BENCH_DIR/data" "$BENCH_DIR/work"
ln -sfn "$DATA/timemachine.txt" "$BENCH_DIR/data/timemachine.txt"

# The kernels (written every time: cheap, and they hold absolute paths).
write_kernel() {  # name, python, display name
    mkdir -p "$BENCH_DIR/jupyter/kernels/$1"
    cat > "$BENCH_DIR/jupyter/kernels/$1/kernel.json" <<EOF
{"argv": ["$2", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "$3", "language": "python", "metadata": {"debugger": false}}
EOF
}
write_kernel bench-ours "$ROOT/.venv/bin/python" "bench: this book (.venv)"
write_kernel bench-ref "$VENV/bin/python" "bench: d2l 1.0.3 (ref-venv)"

# The environment, rebuilt when its requirements change.
if [[ -f "$STAMP" && "$STAMP" -nt bench/ref-requirements.txt && "$STAMP" -nt requirements.txt ]]; then
    exit 0
fi
echo "setup_reference: creating $VENV (d2l==1.0.3 and what it imports)"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -c requirements.txt -r bench/ref-requirements.txt
"$VENV/bin/python" -m pip install -q --no-deps d2l==1.0.3
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT/bench/ref_stubs" > "$site/bench_ref_stubs.pth"
# The reference must import as is (its own torchvision import included).
"$VENV/bin/python" -c 'from d2l import torch as d2l; import torch, torchvision; print("setup_reference: d2l", d2l.__name__, "torch", torch.__version__, "torchvision", torchvision.__version__)'
touch "$STAMP"
