#!/usr/bin/env bash
# The intense Hypothesis profile (500 examples per property) over every test file that uses Hypothesis, one pytest
# process per file (a file's failures do not stop the others), one thread per process; a line per file in the log.
#   bash tools/intense_profile.sh [LOG]        (default build/intense_profile.log; hours on a 2-core machine)
# The same properties as `MINIGEN_HYPOTHESIS_PROFILE=intense python -m pytest -q`, split so that a long run can be
# watched, resumed (files already logged as passed are skipped) and spread over several machines.
set -u
cd "$(dirname "$0")/.."
LOG=${1:-build/intense_profile.log}
mkdir -p "$(dirname "$LOG")"
export MINIGEN_HYPOTHESIS_PROFILE=intense OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
status=0
for f in $(grep -l -E '^from hypothesis|^import hypothesis|@given' tests/test_*.py); do
  if grep -q "^$f rc=0 " "$LOG" 2>/dev/null; then continue; fi
  s=$(date +%s)
  python -m pytest -q -p no:cacheprovider "$f" > "$LOG.$(basename "$f" .py).out" 2>&1
  rc=$?
  [ $rc -ne 0 ] && status=1
  echo "$f rc=$rc $(( $(date +%s) - s ))s $(tail -1 "$LOG.$(basename "$f" .py).out")" >> "$LOG"
done
exit $status
