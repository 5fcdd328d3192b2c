#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter (DOLFINx 0.11 wheels need it).
# Order: $PYTHON if set; python3.12/3.13/3.14 on PATH; python3; pyenv-installed ones.
# pyenv shims are on PATH even when the version is not selected, so every
# candidate is *run* to prove it works, not just found.
set -u

ok() {  # ok CMD -> prints its real executable if it runs and is >= 3.12
  "$@" -c 'import sys; assert sys.version_info >= (3, 12); print(sys.executable)' 2>/dev/null
}

if [ -n "${PYTHON:-}" ]; then
  ok "$PYTHON" && exit 0
  echo "find-python: \$PYTHON=$PYTHON is not a working Python >= 3.12" >&2
  exit 1
fi
for cand in python3.12 python3.13 python3.14 python3; do
  command -v "$cand" >/dev/null 2>&1 && ok "$cand" && exit 0
done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for v in $(ls "$root/versions" 2>/dev/null | grep -E '^3\.(1[2-9])(\.[0-9]+)?$' | sort -V); do
    ok "$root/versions/$v/bin/python3" && exit 0
  done
fi
echo "find-python: no Python >= 3.12 found (tried \$PYTHON, python3.12/3.13/3.14, python3, pyenv versions)." >&2
echo "find-python: install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12" >&2
exit 1
