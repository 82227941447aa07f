#!/usr/bin/env python3
"""check_snippets.py GUIDE.md SOURCE.c: every ```c block of the guide must
appear verbatim in the source file, which is compiled and run, so the
guide's code cannot drift from code that works."""
import re
import sys

guide, source = (open(p, encoding='utf-8').read() for p in sys.argv[1:3])
blocks = re.findall(r'```c\n(.*?)```', guide, re.S)
missing = [b for b in blocks if b not in source]
for b in missing:
    print('not in %s:\n%s' % (sys.argv[2], b), file=sys.stderr)
print('%d snippets, %d missing' % (len(blocks), len(missing)))
sys.exit(1 if missing or not blocks else 0)
