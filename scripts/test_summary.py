#!/usr/bin/env python3
"""Prints meson's test results, summed over one or more testlog.json files,
as one plain line: "N passed, N failed[, N skipped]". Before it, each skipped
test with its reason (the last line it printed), so a skip is never mistaken
for a pass, and each missing log (a run that never finished) as a failure."""
import json
import os
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    if not os.path.exists(path):
        print(f"missing: {path} (that test run did not finish)")
        failed += 1
        continue
    with open(path) as log:
        for line in log:
            if not line.strip():
                continue
            test = json.loads(line)
            result = test["result"]
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
                said = [l for l in (test.get("stdout") or "").splitlines() if l.strip()]
                reason = said[-1].strip() if said else "no reason given"
                print(f"skipped: {test['name']} ({os.path.dirname(os.path.dirname(path))}): {reason}")
            else:
                failed += 1
summary = f"{passed} passed, {failed} failed"
if skipped:
    summary += f", {skipped} skipped"
print(summary)
sys.exit(1 if failed else 0)
