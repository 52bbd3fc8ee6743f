#!/usr/bin/env python3
"""Writes tests/corpus/<detector>/cases.jsonl from the generators beside this file."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gen_common import write  # noqa: E402
import gen_code_exec  # noqa: E402
import gen_pii  # noqa: E402
import gen_secrets  # noqa: E402
import gen_tool_poisoning  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

for name, module in [("secrets", gen_secrets), ("pii", gen_pii), ("code-exec", gen_code_exec),
                     ("tool-poisoning", gen_tool_poisoning)]:
    os.makedirs(os.path.join(HERE, name), exist_ok=True)
    cases = module.cases()
    write(os.path.join(HERE, name, "cases.jsonl"), cases)
    print(f"{name}: {len(cases)} cases ({sum(1 for c in cases if c['expect'])} with findings)")
