#!/usr/bin/env python3
"""Runs tests/gdb/gdb_target under gdb with tools/gdb/libasync-gdb.py, live
and on a core file, and checks what async-tasks, async-tree and async-bt
print.  Exit 77 (meson: skipped) where gdb is missing or cannot trace.

usage: check_gdb.py GDB_SCRIPT TARGET_EXE SCRATCH_DIR
"""
import os
import shutil
import subprocess
import sys

script, exe, scratch = sys.argv[1:4]
gdb = shutil.which("gdb")
if not gdb:
    print("SKIP: gdb is not installed (Debian: gdb)")
    sys.exit(77)
os.makedirs(scratch, exist_ok=True)
core = os.path.join(scratch, "gdb_target.core")
if os.path.exists(core):
    os.remove(core)


def run_gdb(args):
    cmd = [gdb, "-batch", "-nx", "-ex", "set debuginfod enabled off",
           "-ex", "source " + script] + args
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=300)
    return p.stdout


live = run_gdb(["-ex", "break dbgt_gdb_ready", "-ex", "run",
                "-ex", "async-tasks", "-ex", "async-tree",
                "-ex", "echo ==bt locker==\\n", "-ex", "async-bt locker",
                "-ex", "echo ==bt member==\\n", "-ex", "async-bt member",
                "-ex", "echo ==after==\\n", "-ex", "bt 1",
                "-ex", "generate-core-file " + core, "-ex", "kill", exe])
for bad in ("ptrace: Operation not permitted", "Couldn't get registers",
            "Cannot insert breakpoint", "not in executable format"):
    if bad in live:
        print(live)
        print("SKIP: gdb cannot trace here (%s)" % bad)
        sys.exit(77)
print(live)

failures = []


def expect(text, needle, what):
    if needle not in text:
        failures.append("%s: missing %r" % (what, needle))


def section(text, start, end):
    i = text.find(start)
    j = text.find(end, i + 1) if i >= 0 else -1
    return text[i:j] if i >= 0 and j >= 0 else ""


expect(live, "6 tasks", "async-tasks")
expect(live, '"main" #1 running', "async-tasks")
expect(live, '"locker" #3 suspended on lock 0x', "async-tasks")
expect(live, '"sleeper" #2 suspended on sleep', "async-tasks")
expect(live, '"awaiter" #4 suspended on task "sleeper" #2', "async-tasks")
expect(live, '"grouper" #5 suspended on group 0x', "async-tasks")
expect(live, '    `-- "member" #6 suspended on sleep', "async-tree")
expect(live, '    `-- "sleeper" #2 suspended on sleep', "async-tree")
bt_locker = section(live, "==bt locker==", "==bt member==")
expect(bt_locker, "dbgt_gdb_lock_here", "async-bt locker")
expect(bt_locker, "async_lock_acquire", "async-bt locker")
bt_member = section(live, "==bt member==", "==after==")
expect(bt_member, "dbgt_gdb_sleep_here", "async-bt member")
# the thread's own registers are back after async-bt
expect(section(live, "==after==", "Saved corefile"), "dbgt_gdb_ready",
       "bt after async-bt")

# On a core file the task list comes from the heap.  (gcore cannot save
# task stacks whose guard pages are madvise(MADV_GUARD_INSTALL) regions, so
# async-bt is only checked live.)
if os.path.exists(core):
    post = run_gdb(["-ex", "async-tasks", "-ex", "async-tree", exe, core])
    print(post)
    expect(post, '"locker" #3 suspended on lock 0x', "core: async-tasks")
    expect(post, '    `-- "member" #6 suspended on sleep', "core: async-tree")
    os.remove(core)
else:
    failures.append("gdb wrote no core file")

for f in failures:
    print("FAIL: " + f)
sys.exit(1 if failures else 0)
