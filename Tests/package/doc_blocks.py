#!/usr/bin/env python3
"""Prints the ```sh blocks of a Markdown file's section, as written.

    doc_blocks.py [--lang LANG] FILE HEADING [INDEX]

HEADING is a heading's text without its #s; the section ends at the next
heading of its level or above. With INDEX, only that block (0-based).
--lang picks blocks of another language (```ini, ```nginx) instead."""
import re, sys

args = sys.argv[1:]
lang = "sh"
if args[:1] == ["--lang"]:
    lang, args = args[1], args[2:]
path, heading = args[0], args[1]
index = int(args[2]) if len(args) > 2 else None
lines = open(path).read().split("\n")
blocks, level, block, fenced = [], None, None, False
for line in lines:
    if line.startswith("```"):
        # Every fence opens or closes a block, of any language; the wanted
        # ones, in the section, are kept. A "# ..." line in a block is no heading.
        fenced = not fenced
        if fenced and level is not None and line.strip() == "```" + lang:
            block = []
        elif not fenced and block is not None:
            blocks.append("\n".join(block))
            block = None
        continue
    if block is not None:
        block.append(line)
        continue
    match = re.match(r"^(#+)\s+(.*)$", line) if not fenced else None
    if match:
        if level is not None and len(match.group(1)) <= level:
            break
        if match.group(2).strip() == heading:
            level = len(match.group(1))
if level is None:
    sys.exit(f"{path}: no heading {heading!r}")
if not blocks:
    sys.exit(f"{path}: no {lang} block under {heading!r}")
print(blocks[index] if index is not None else "\n".join(blocks))
