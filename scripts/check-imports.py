#!/usr/bin/env python3
"""Checks that every module a target imports is one Package.swift declares for it (a target or a
product dependency), or one of the toolchain's: a module found only through another target's
dependencies builds today and breaks when that other target changes.

    scripts/check-imports.py         (scripts/test.sh runs it before the build)

It reads `swift package describe --type json` and each target's Swift sources, and prints each
undeclared import with its file and line; the exit status is 1 if there is any.
"""
import json
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
TOOLCHAIN = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Dispatch", "Synchronization", "Glibc", "Musl",
             "Darwin", "Testing", "XCTest", "_Concurrency", "Swift"}
IMPORT = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:struct|class|enum|protocol|func|var|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)")


def main():
    description = json.loads(subprocess.run(
        ["swift", "package", "describe", "--type", "json"], cwd=root, check=True, capture_output=True, text=True
    ).stdout)
    undeclared = []
    for target in description["targets"]:
        if target.get("module_type") != "SwiftTarget":
            continue
        declared = set(target.get("target_dependencies", [])) | set(target.get("product_dependencies", []))
        declared.add(target["c99name"])
        for source in target.get("sources", []):
            path = root / target["path"] / source
            in_string = False  # inside a multi-line string literal (text, not code)
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if line.count('"""') % 2 == 1:
                    in_string = not in_string
                    continue
                match = None if in_string else IMPORT.match(line)
                if match and match.group(1) not in declared | TOOLCHAIN:
                    undeclared.append(f"{path.relative_to(root)}:{number}: {match.group(1)} (target {target['name']})")
    if undeclared:
        print("check-imports: these modules are imported but not declared as the target's dependencies in Package.swift:", file=sys.stderr)
        for entry in undeclared:
            print(f"  {entry}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
