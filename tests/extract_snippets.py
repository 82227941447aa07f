#!/usr/bin/env python3
"""Concatenates the ```c blocks of a Markdown file into one C file.

Used by tests/meson.build so that every code block in docs/guide.md is
compiled (and run, through the driver appended with --main) by the suite.
"""
import sys


def main():
    src, out = sys.argv[1], sys.argv[2]
    driver = sys.argv[3] if len(sys.argv) > 3 else None
    parts = ['/* Generated from %s by tests/extract_snippets.py. */\n' % src,
             '#include <stdint.h>\n#include <stdio.h>\n#include <async.h>\n',
             '#pragma GCC diagnostic ignored "-Wunused-function"\n']
    block = None
    with open(src, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            if block is None and line.strip() == '```c':
                block = ['#line %d "%s"\n' % (lineno + 1, src)]
            elif block is not None and line.strip() == '```':
                parts.extend(block)
                block = None
            elif block is not None:
                block.append(line)
    if block is not None:
        sys.exit('%s: unterminated code block' % src)
    if driver:
        with open(driver, encoding='utf-8') as f:
            parts.append(f.read())
    with open(out, 'w', encoding='utf-8') as f:
        f.writelines(parts)


if __name__ == '__main__':
    main()
