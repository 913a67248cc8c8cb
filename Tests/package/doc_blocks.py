#!/usr/bin/env python3
"""Prints the ```sh blocks of a Markdown file's section, as written.

    doc_blocks.py FILE HEADING [INDEX]

HEADING is a heading's text without its #s; the section ends at the next
heading of its level or above. With INDEX, only that block (0-based)."""
import re, sys

path, heading = sys.argv[1], sys.argv[2]
index = int(sys.argv[3]) if len(sys.argv) > 3 else None
lines = open(path).read().split("\n")
blocks, level, block = [], None, None
for line in lines:
    match = re.match(r"^(#+)\s+(.*)$", line) if block is None else None
    if match:
        if level is not None and len(match.group(1)) <= level:
            break
        if match.group(2).strip() == heading:
            level = len(match.group(1))
        continue
    if level is None:
        continue
    if block is None and line.strip() == "```sh":
        block = []
    elif block is not None and line.strip() == "```":
        blocks.append("\n".join(block))
        block = None
    elif block is not None:
        block.append(line)
if level is None:
    sys.exit(f"{path}: no heading {heading!r}")
if not blocks:
    sys.exit(f"{path}: no sh block under {heading!r}")
print(blocks[index] if index is not None else "\n".join(blocks))
