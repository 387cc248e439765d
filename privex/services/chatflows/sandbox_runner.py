"""The other side of the code sandbox: a script the server starts as ``python -I -S sandbox_runner.py`` in a process
of its own. It imports only the standard library (and pyseccomp from the file path it is given), contains itself, then
runs the user's code. See sandbox.py for the contract; this file never runs inside the server process.

Order matters, each step needs the privilege the next one gives up:
1. read the request (code, inputs, limits) from stdin, completely, before anything else;
2. new mount, network, IPC and UTS namespaces (root only): the process gets a network with no interface at all;
3. a fresh root: a size-bounded tmpfs holding read-only bind mounts of the interpreter and the system libraries it
   loads, ``/dev/null`` and ``/dev/urandom``, and a writable ``/tmp`` that is the working folder; then chroot into it.
   The server's files (instance folder, source, secrets) are not in that tree at all;
4. resource limits (CPU, address space, file size, open files, processes, no core dumps);
5. drop to the unprivileged user (65534, "nobody") with no supplementary groups;
6. a seccomp allow-list: the system calls pure Python needs; sockets, new processes or threads, exec, ptrace, mount,
   namespaces, chroot ... fail with an error code;
7. run ``main(**inputs)`` and write one JSON object to the saved stdout: ``{"ok": true, "result": {...}}`` or
   ``{"ok": false, "error": "..."}`` or ``{"ok": false, "unavailable": "..."}`` (containment failed before any user
   code ran).
"""

import ctypes
import errno
import importlib.util
import io
import json
import os
import resource
import sys
import traceback

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x04000000, 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
NOBODY = 65534
# Distinct error codes so the runner can say what was refused without guessing from tracebacks.
NETWORK_ERRNO, PROCESS_ERRNO = errno.ENETUNREACH, errno.EAGAIN

ALLOWED_SYSCALLS = (
    "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close", "fstat", "newfstatat", "stat",
    "lstat", "statx", "fstatfs", "statfs", "openat", "open", "access", "faccessat", "faccessat2", "readlink",
    "readlinkat", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "ftruncate", "truncate", "fsync", "fdatasync", "fchmod", "chmod",
    "fchmodat", "utimensat", "fcntl", "dup", "dup2", "dup3", "ioctl", "mmap", "munmap", "mprotect", "mremap",
    "madvise", "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "futex", "getrandom",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep", "sched_yield",
    "sched_getaffinity", "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "getresuid", "getresgid", "getpgrp", "getsid", "uname", "sysinfo", "times", "getrusage", "getrlimit",
    "umask", "poll", "ppoll", "select", "pselect6", "exit", "exit_group", "arch_prctl",
    "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "membarrier", "restart_syscall",
)
NETWORK_SYSCALLS = ("socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg",
                    "sendmmsg", "recvfrom", "recvmsg", "recvmmsg", "getsockopt", "setsockopt", "shutdown")
PROCESS_SYSCALLS = ("fork", "vfork", "clone")


def unavailable(out, reason):
    out.write(json.dumps({"ok": False, "unavailable": reason}))
    out.flush()
    os._exit(0)


class ContainmentError(RuntimeError):
    pass


def libc_call(libc, name, *args):
    if getattr(libc, name)(*args) != 0:
        raise ContainmentError(f"{name} failed: {os.strerror(ctypes.get_errno())}")


def isolate(libc, request):
    """Steps 2 and 3: namespaces and the fresh root. Raises ContainmentError (or OSError) when the machine does not
    allow it."""
    libc_call(libc, "unshare", CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    libc_call(libc, "mount", b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    root = request["root"]
    size = int(request["limits"]["disk_mb"])
    libc_call(libc, "mount", b"tmpfs", root.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
              f"size={size}m,mode=755".encode())
    for source in request["read_only"]:
        target = root + source
        if os.path.islink(source):  # /lib -> usr/lib on merged-/usr systems: the same link inside
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(source), target)
            continue
        if not os.path.exists(source):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(source):
            os.makedirs(target, exist_ok=True)
        else:
            open(target, "w").close()
        libc_call(libc, "mount", source.encode(), target.encode(), None, MS_BIND | MS_REC, None)
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID
        if not source.startswith("/dev/"):
            flags |= MS_NODEV
        libc_call(libc, "mount", None, target.encode(), None, flags, None)
    os.makedirs(root + "/tmp")
    os.chown(root + "/tmp", NOBODY, NOBODY)
    os.chmod(root + "/tmp", 0o700)
    os.chroot(root)
    os.chdir("/tmp")


def limit(limits):
    """Step 4. The hard CPU limit is one second above the soft one: SIGXCPU first, SIGKILL if it is ignored."""
    cpu = int(limits["cpu_seconds"])
    memory = int(limits["memory_mb"]) * 1024 * 1024
    for which, value in ((resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, (memory, memory)),
                         (resource.RLIMIT_FSIZE, (int(limits["file_mb"]) * 1024 * 1024,) * 2),
                         (resource.RLIMIT_NOFILE, (64, 64)), (resource.RLIMIT_NPROC, (0, 0)),
                         (resource.RLIMIT_CORE, (0, 0))):
        resource.setrlimit(which, value)


def drop_privileges():
    """Step 5: nobody, no groups. Only when running as root (otherwise there is nothing to drop)."""
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    if os.getuid() != NOBODY or os.geteuid() != NOBODY:
        raise ContainmentError("could not become the unprivileged user")


def seccomp_filter(pyseccomp):
    """Step 6: an allow-list. Anything not listed fails with EPERM; networking and new processes with their own
    codes (a thread is a new task too: clone3 answers ENOSYS so glibc falls back to clone, which is refused)."""
    sf = pyseccomp.SyscallFilter(pyseccomp.ERRNO(errno.EPERM))
    for name in ALLOWED_SYSCALLS:
        try:
            sf.add_rule(pyseccomp.ALLOW, name)
        except (OSError, ValueError, RuntimeError):
            pass  # not a system call on this architecture
    for name in NETWORK_SYSCALLS:
        try:
            sf.add_rule(pyseccomp.ERRNO(NETWORK_ERRNO), name)
        except (OSError, ValueError, RuntimeError):
            pass
    for name in PROCESS_SYSCALLS:
        sf.add_rule(pyseccomp.ERRNO(PROCESS_ERRNO), name)
    sf.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    # Signals and resource limits of itself only: other sandboxes run as the same user at the same time.
    pid = os.getpid()
    sf.add_rule(pyseccomp.ALLOW, "kill", pyseccomp.Arg(0, pyseccomp.EQ, pid))
    sf.add_rule(pyseccomp.ALLOW, "tgkill", pyseccomp.Arg(0, pyseccomp.EQ, pid))
    sf.add_rule(pyseccomp.ALLOW, "prlimit64", pyseccomp.Arg(0, pyseccomp.EQ, 0))
    sf.add_rule(pyseccomp.ALLOW, "prlimit64", pyseccomp.Arg(0, pyseccomp.EQ, pid))
    return sf


def load_pyseccomp(path):
    spec = importlib.util.spec_from_file_location("pyseccomp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chain(error):
    """The error and what caused it, as far as it goes (urllib wraps the socket's error in ``reason``)."""
    seen = []
    while isinstance(error, BaseException) and error not in seen and len(seen) < 10:
        seen.append(error)
        error = error.__cause__ or error.__context__ or getattr(error, "reason", None)
    return seen


class MissingMain(LookupError):
    pass


def describe(error, limits):
    """The user's exception in one line, with the line of their code it came from."""
    if isinstance(error, MemoryError):
        return f"the code used more than {limits['memory_mb']} MB of memory"
    if any(isinstance(e, OSError) and (e.errno == NETWORK_ERRNO or type(e).__name__ == "gaierror")
           for e in chain(error)):
        return "network access is not allowed in code nodes"  # a socket, or a name lookup (no resolver inside)
    if isinstance(error, OSError) and error.errno == PROCESS_ERRNO:
        return "starting processes or threads is not allowed in code nodes"
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        return f"the code wrote a file larger than {limits['file_mb']} MB"
    frames = traceback.extract_tb(error.__traceback__)
    line = next((f.lineno for f in reversed(frames) if f.filename == "<code>"), None)
    where = f" (line {line})" if line else ""
    if isinstance(error, MissingMain):
        return str(error)
    if isinstance(error, RecursionError):
        return f"the code recursed too deeply{where}"
    starting = any(f.filename.endswith(("subprocess.py", "threading.py")) or "multiprocessing" in f.filename
                   for f in frames)
    if starting and isinstance(error, (OSError, RuntimeError)):
        return f"starting processes or threads is not allowed in code nodes{where}"
    if isinstance(error, PermissionError) and error.filename is None:
        return f"the sandbox does not allow that operation{where}"
    text = traceback.format_exception_only(type(error), error)[-1].strip()
    return f"{text}{where}"


def run_user_code(request, out):
    code, inputs, limits = request["source"], request["inputs"], request["limits"]
    sys.stdout = io.StringIO()  # print() in user code must not corrupt the result
    try:
        compiled = compile(code, "<code>", "exec")
        scope = {"__name__": "__sandbox__", "__builtins__": __builtins__}
        exec(compiled, scope)  # noqa: S102 - this process is the sandbox
        main = scope.get("main")
        if not callable(main):
            raise MissingMain("the code must define a function main(**inputs) that returns a dict")
        result = main(**inputs)
    except SystemExit:
        answer = {"ok": False, "error": "the code called exit() instead of returning a dict"}
    except BaseException as error:  # noqa: BLE001 - every failure of user code is reported, never raised
        message = describe(error, limits)
        answer = {"ok": False, "error": message if len(message) <= 1000 else message[:1000] + " …"}
    else:
        answer = {"ok": True, "result": result}
        if not isinstance(result, dict):
            answer = {"ok": False, "error": f"main() must return a dict, not {type(result).__name__}"}
    try:
        text = json.dumps(answer, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        text = json.dumps({"ok": False, "error": f"main() returned something that is not JSON: {error}"})
    out.write(text)
    out.flush()


def main():
    request = json.loads(sys.stdin.buffer.read())
    out = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    unsafe = bool(request.get("unsafe"))
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        pyseccomp = load_pyseccomp(request["seccomp_module"]) if request.get("seccomp_module") else None
    except Exception as error:  # noqa: BLE001 - whatever stops it loading, the answer is the same: no seccomp
        pyseccomp = None
        if not unsafe:
            unavailable(out, f"libseccomp cannot be loaded ({error})")
    if pyseccomp is None and not unsafe:
        unavailable(out, "the seccomp library (pyseccomp + libseccomp) is not installed")
    as_root = os.geteuid() == 0
    if not as_root and not unsafe:
        unavailable(out, "the server does not run as root, so the sandbox cannot isolate code in namespaces and "
                         "run it as an unprivileged user")
    # Each layer on its own: in the operator's unsafe mode a layer that fails is skipped, the others still hold.
    steps = [(lambda: isolate(libc, request)) if as_root else (lambda: os.chdir(request["root"])),
             lambda: limit(request["limits"])]
    if as_root:
        steps.append(drop_privileges)
    if pyseccomp is not None:
        steps.append(lambda: seccomp_filter(pyseccomp).load())
    for step in steps:
        try:
            step()
        except (OSError, ValueError, RuntimeError) as error:
            if not unsafe:
                unavailable(out, f"containment failed: {error}")
            if os.getcwd() != "/tmp":
                os.chdir(request["root"])
    run_user_code(request, out)


if __name__ == "__main__":
    main()
