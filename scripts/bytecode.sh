# Sourced by scripts/local.sh and scripts/test.sh: cache bytecode, pytest's assertion-rewritten
# modules included, under .opsverify/pycache. With PYTHONDONTWRITEBYTECODE set (as in many CI images)
# pytest rewrites and compiles every module of every installed pytest plugin anew in each run, 1-2 s
# of every pytest start here.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$(pwd)/.opsverify/pycache"
