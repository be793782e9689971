#!/usr/bin/env bash
# Evaluates the NixOS modules (nix/tests/eval.nix) and checks what they
# produce: the subcommand, the generated settings with every file handed
# over as a systemd credential, warnings for inline secrets, and the same
# sandbox as packaging/systemd/*.service.
set -euo pipefail
cd "$(dirname "$0")/../.."
nix-instantiate --eval --strict --json nix/tests/eval.nix 2>/dev/null | python3 nix/tests/check_eval.py
