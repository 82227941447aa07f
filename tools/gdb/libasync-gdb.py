# libasync's gdb extension: the tasks of every loop of a live process or a
# core file, their await tree, and the backtrace of a suspended task.
#
#   (gdb) source /usr/local/share/libasync/gdb/libasync-gdb.py
#   (gdb) async-tasks            every loop and its tasks
#   (gdb) async-tree             the await tree (group children under owners)
#   (gdb) async-bt TASK          backtrace of a task: its id ("3"), name
#                                ("worker") or address ("0x5555...")
#
# Needs the library's debug information (the default debugoptimized build
# has it): the commands read struct async_loop / struct async_task through
# gdb's types.  Loops are found through the library's list of loops
# (async__debug_loops), so a loop that is not running is listed too.  A
# suspended task's registers are in the frame async__ctx_switch left below
# its saved stack pointer (src/arch/<cpu>/switch.S); for the time of one
# `bt`, async-bt installs an unwinder that makes them the caller of the
# thread's innermost frame, so the task's frames follow frame #0 (no
# register is written: this works on core files as well).
# docs/guide-debugging.md has a worked session.

import gdb
from gdb.unwinder import Unwinder, register_unwinder


class FrameId:
    """A frame id for create_unwind_info (gdb < 14 has no class for it)."""

    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc

STATES = {0: "new", 1: "ready", 2: "running", 3: "suspended"}


def _list_nodes(head, container_type, member):
    """Yields container pointers of an intrusive async__list."""
    off = int(gdb.parse_and_eval(
        "(unsigned long)&((%s *)0)->%s" % (container_type, member)))
    ptr = gdb.lookup_type(container_type).pointer()
    charp = gdb.lookup_type("char").pointer()
    node = head["next"]
    end = int(head.address)
    guard = 0
    while int(node) != end and guard < 1000000:
        yield (node.cast(charp) - off).cast(ptr)
        node = node["next"]
        guard += 1


def loops():
    try:
        head = gdb.parse_and_eval("async__debug_loops")
    except gdb.error:
        raise gdb.GdbError("libasync: no async__debug_loops symbol "
                           "(program not linked with libasync, or no "
                           "debug information)")
    return list(_list_nodes(head, "struct async_loop", "all_link"))


def tasks(loop):
    return list(_list_nodes(loop["tasks"], "struct async_task", "link"))


def task_id(t):
    return int(t["coro"]["id"])


def task_name(t):
    name = t["coro"]["name"]
    if int(name) != 0:
        return name.string()
    return "Task-%d" % task_id(t)


def coro_state(t):
    return str(t["coro"]["state"])


def task_state(t):
    if coro_state(t) == "ASYNC__CORO_RUNNING":
        return "running"
    if not bool(t["started"]):
        return "new"
    if bool(t["queued"]):
        return "ready"
    if bool(t["parked"]):
        return "suspended"
    return "running"


def wait_kind(t):
    """("lock", object address) of a suspended task, or (None, 0)."""
    if task_state(t) != "suspended":
        return None, 0
    k = int(t["wait_kind"])
    try:
        name = str(gdb.Value(k).cast(gdb.lookup_type("enum async_wait_kind")))
        name = name.replace("ASYNC_WAIT_", "").lower().replace("_", "-")
    except gdb.error:
        name = str(k)
    obj = int(t["wait_obj"])
    if name == "future":
        fut = gdb.Value(obj).cast(
            gdb.lookup_type("struct async_future").pointer())
        if bool(fut["is_task"]):
            name = "task"
    return name, obj


def task_line(t):
    kind, obj = wait_kind(t)
    s = '"%s" #%d %s' % (task_name(t), task_id(t), task_state(t))
    if kind == "nothing":
        s += " on nothing"
    elif kind in ("fd-read", "fd-write"):
        s += " on %s %d" % (kind, obj)
    elif kind == "sleep":
        s += " on sleep"
    elif kind == "task":
        w = gdb.Value(obj).cast(gdb.lookup_type("struct async_task").pointer())
        s += ' on task "%s" #%d' % (task_name(w), task_id(w))
    elif kind is not None:
        s += " on %s 0x%x" % (kind, obj)
    if bool(t["cancel_requested"]) and str(t["fut"]["state"]) == "ASYNC__PENDING":
        s += ", cancelling"
    s += "  (struct async_task *) 0x%x" % int(t)
    return s


def awaited(t):
    """Addresses of the tasks t waits for (await, gather)."""
    kind, obj = wait_kind(t)
    out = []
    if kind == "task":
        out.append(obj)
    elif kind == "gather":
        ws = gdb.Value(obj).cast(
            gdb.lookup_type("struct async__wait_set").pointer())
        for i in range(int(ws["n"])):
            f = ws["futs"][i]
            if bool(f["is_task"]) and str(f["state"]) == "ASYNC__PENDING":
                out.append(int(f))
    return out


class AsyncTasks(gdb.Command):
    """List every libasync loop and its unfinished tasks."""

    def __init__(self):
        super().__init__("async-tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        for loop in loops():
            ts = tasks(loop)
            gdb.write("loop 0x%x: %d task%s\n" % (int(loop), len(ts),
                                                  "" if len(ts) == 1 else "s"))
            for t in ts:
                gdb.write("  " + task_line(t) + "\n")


class AsyncTree(gdb.Command):
    """Print the await tree of every libasync loop."""

    def __init__(self):
        super().__init__("async-tree", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        for loop in loops():
            ts = tasks(loop)
            by_addr = {int(t): t for t in ts}
            parent = {}
            for t in ts:                      # groups first: they win
                p = int(t["parent"])
                if p in by_addr and p != int(t):
                    parent[int(t)] = p
            for t in ts:
                for c in awaited(t):
                    if c in by_addr and c not in parent and c != int(t):
                        parent[c] = int(t)
            kids = {}
            for t in ts:
                if int(t) in parent:
                    kids.setdefault(parent[int(t)], []).append(t)
            gdb.write("loop 0x%x: %d tasks\n" % (int(loop), len(ts)))
            seen = set()

            def show(root):
                stack = [(root, 0)]
                seen.add(int(root))
                while stack:
                    t, depth = stack.pop()
                    gdb.write("%s%s%s\n" % ("    " * depth,
                                            "`-- " if depth else "",
                                            task_line(t)))
                    for c in reversed(kids.get(int(t), [])):
                        if int(c) not in seen:
                            seen.add(int(c))
                            stack.append((c, depth + 1))

            for t in ts:
                if int(t) not in parent and int(t) not in seen:
                    show(t)
            for t in ts:
                if int(t) not in seen:
                    gdb.write("(await cycle)\n")
                    show(t)


def find_task(arg):
    arg = arg.strip()
    if not arg:
        raise gdb.GdbError("usage: async-bt TASK (id, name or address)")
    for loop in loops():
        for t in tasks(loop):
            if (arg == str(task_id(t)) or arg == task_name(t) or
                    (arg.startswith("0x") and int(arg, 16) == int(t))):
                return t
    raise gdb.GdbError("libasync: no task %s" % arg)


def saved_registers(t):
    """The registers a suspended task resumes with, from its switch frame."""
    sp = int(t["coro"]["sp"])
    fp = int(gdb.parse_and_eval("async__debug_fp_control"))
    inf = gdb.selected_inferior()

    def word(addr):
        return int.from_bytes(bytes(inf.read_memory(addr, 8)), "little")

    arch = gdb.selected_frame().architecture().name()
    if "x86-64" in arch or "x86_64" in arch:
        b = sp + 8 * fp
        regs = {"r15": word(b), "r14": word(b + 8), "r13": word(b + 16),
                "r12": word(b + 24), "rbx": word(b + 32),
                "rbp": word(b + 40), "rip": word(b + 48), "rsp": b + 56}
    elif "aarch64" in arch:
        regs = {"x%d" % (19 + i): word(sp + 8 * i) for i in range(10)}
        regs["x29"] = word(sp + 80)
        regs["x30"] = word(sp + 88)
        regs["pc"] = regs["x30"]
        regs["sp"] = sp + (176 if fp else 160)
    else:
        raise gdb.GdbError("libasync: async-bt does not know " + arch)
    return regs


class TaskUnwinder(Unwinder):
    """While async-bt runs: the caller of the thread's innermost frame is the
    suspended task's resume point, with the task's saved registers.  No
    register of the thread is written, so this works on core files too."""

    def __init__(self):
        super().__init__("libasync-task")
        self.regs = None

    def __call__(self, pending_frame):
        if self.regs is None or pending_frame.level() != 0:
            return None
        pc_name = "rip" if "rip" in self.regs else "pc"
        sp_name = "rsp" if "rsp" in self.regs else "sp"
        sp = pending_frame.read_register(sp_name)
        pc = pending_frame.read_register(pc_name)
        info = pending_frame.create_unwind_info(FrameId(sp, pc))
        for r, v in self.regs.items():
            if r == "x30" and "pc" in self.regs:
                continue
            typ = pending_frame.read_register(r).type
            info.add_saved_register(r, gdb.Value(v).cast(typ))
        return info


task_unwinder = TaskUnwinder()


class AsyncBt(gdb.Command):
    """Backtrace of a libasync task: async-bt ID|NAME|ADDRESS.

    Frame #0 is the thread's current frame; the task's own frames follow,
    from its suspension point down to its coroutine trampoline."""

    def __init__(self):
        super().__init__("async-bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        t = find_task(arg)
        state = task_state(t)
        gdb.write(task_line(t) + "\n")
        if coro_state(t) == "ASYNC__CORO_RUNNING":
            gdb.write("(the running task: its stack is the thread's; "
                      "use bt)\n")
            return
        if coro_state(t) != "ASYNC__CORO_SUSPENDED":
            gdb.write("(%s: no stack yet)\n" % state)
            return
        task_unwinder.regs = saved_registers(t)
        gdb.invalidate_cached_frames()
        try:
            gdb.write("(#0 is the thread's current frame; the task's "
                      "stack starts at #1)\n")
            gdb.execute("bt", from_tty)
        finally:
            task_unwinder.regs = None
            gdb.invalidate_cached_frames()


register_unwinder(None, task_unwinder, replace=True)
AsyncTasks()
AsyncTree()
AsyncBt()
