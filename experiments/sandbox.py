"""Every limit and isolation mechanism of an experiment run, in one place: what the child process may read, write,
reach and start, how long it may run and how much memory its processes may hold together.

`run(argv, work, ...)` starts `argv` (the experiment runner) confined to its scratch folder `work` and returns an
Outcome: its exit code, whether the sandbox stopped it (timeout, memory) and which mechanisms were in force. The
caller (isolation.py) puts the inputs in `work` and reads the predictions from it. Nothing here needs root; the
module uses the standard library only, because on Linux it also runs as the supervisor script
(`python -I -S sandbox.py supervise SPEC`), which must start fast and single-threaded.

On Linux the process tree is

    caller --- supervisor S --- [init I --- runner R --- whatever the experiment starts]

Layers, each used when the kernel allows it and named in `Outcome.mechanisms` (RunResult.sandbox):

- landlock-fs (Landlock, Linux >= 5.13, unprivileged): R restricts itself before it executes the runner, so the
  experiment can read only the Python runtime (sys.prefix, sys.base_prefix, site-packages), the system folders
  (/usr, /lib, /bin, /etc, /proc, /sys, a few /dev nodes), the project's source packages (experiments/*.py file by
  file, experiments/tasks, synthetic_data, expectations) and its own team folder; it can write only its scratch
  folder (inputs, outputs, HOME and TMPDIR are in it). The project root, data/ (warehouse, lake, sealed
  challenges), dagster_home/, other teams' folders, /tmp and the user's home are neither readable nor writable.
  Landlock rules cover whole directories, so experiments/ grants listing only (other teams' file *names* are
  visible, not their content) and its files are allowed one by one. A restriction survives exec and is inherited by
  every descendant; it also denies ptrace of processes outside the sandbox.
- landlock-net (ABI >= 4, Linux 6.7): no TCP bind or connect. landlock-scope (ABI >= 6, Linux 6.12): no abstract
  unix sockets and no signals to processes outside the sandbox (so the experiment cannot kill its supervisor).
- seccomp-sockets (a seccomp filter, x86_64 and aarch64): the experiment cannot create sockets (socket(2), and
  io_uring, which could), so no pathname unix sockets either (D-Bus, X11, ssh-agent, docker: Landlock up to ABI 7
  does not control connect(2) on them) and no UDP; socketpair(2) still works (multiprocessing.Pipe, asyncio).
- userns, netns (user + network namespace, unshare(2) through ctypes): an empty network namespace without even a
  loopback interface, so UDP, raw sockets and abstract unix sockets go nowhere either. Distributions may forbid
  unprivileged user namespaces (Ubuntu >= 23.10 through AppArmor); then these layers are skipped.
- pidns (PID namespace): I is its init. When I ends (the runner has exited, or S kills it at a limit, or S dies:
  I has a parent-death signal) the kernel kills every process left in the namespace, however it daemonised
  (setsid, double fork). Processes inside cannot signal I or see anything outside.
- mountns (mount namespace): a fresh /proc that shows only the sandbox's processes, and empty tmpfs over /tmp,
  /var/tmp, /run and /dev/shm (the scratch folder is bound back in place), which hides the pathname unix sockets
  there (X11, D-Bus session bus, ssh-agent) that Landlock does not yet control.
- subreaper (instead of pidns when namespaces are unavailable): S is a child subreaper, so orphaned and
  daemonised descendants reparent to it; when the run ends S kills and reaps its descendants until none remain.
- tree-memory: S sums the proportional anonymous memory (PSS of anonymous and shared memory, from
  /proc/<pid>/smaps_rollup) of all the sandbox's processes every 50 ms and kills the tree at the limit; the result
  is status "memory". rlimit-data: RLIMIT_DATA per process as a backstop (a single big allocation fails at once
  with MemoryError).
- The timeout is enforced by S (status "timeout"), with a backstop in the caller that kills S's process group.
- Always: own process, a minimal environment (no secrets or ZANDBAK_* settings of the caller), stdin /dev/null,
  no inherited file descriptors except the log.

What is guaranteed where:

- Linux >= 6.12 (x86_64, aarch64) with unprivileged user namespaces (this machine: 6.18, Landlock ABI 7): all of
  the above; tested by tests/test_sandbox.py, as root and as an unprivileged user.
- Linux >= 5.13 without user namespaces (Ubuntu's AppArmor default): landlock-fs, seccomp-sockets, subreaper,
  tree-memory, rlimit-data; TCP is also denied by Landlock from 6.7. /tmp and /run stay visible by name (not
  readable). Before 6.12 an experiment can signal (kill) its supervisor, after which descendants it daemonised are
  no longer collected. tests/test_sandbox.py runs the attacks in this mode too (sandbox.NAMESPACES = False).
- Linux < 5.13: no file system confinement: only sockets (seccomp), lifetime, memory and time limits.
- macOS and other Unix: own process in its own session, killed with its process group at the timeout,
  RLIMIT_DATA (which macOS does not enforce for most allocations). No file system, network or memory-tree
  confinement: a hostile experiment can read the truth. Run untrusted experiments on Linux.
- Windows: own process, killed with its children (taskkill /T) at the timeout; nothing else.

Not limited anywhere: CPU share, disk use of the scratch folder, the number of processes (a fork bomb ends at the
memory or time limit).
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("experiments", "synthetic_data", "expectations")      # what an experiment may import from the project
POLL_S = 0.05
NAMESPACES = True          # False: run as where unprivileged user namespaces are forbidden (tests use it)
BACKSTOP_S = 20.0          # the caller kills the supervisor this long after the time limit, should it hang
ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "COLUMNS", "SYSTEMROOT", "PYTHONHASHSEED", "PYTHONWARNINGS",
            "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONFAULTHANDLER", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS", "RAYON_NUM_THREADS")
ENV_KEEP_PREFIX = ("LC_", "POLARS_")


@dataclass(frozen=True)
class Outcome:
    returncode: int | None      # of the runner (negative: killed by that signal); None when the sandbox stopped it
    stopped: str | None         # "timeout" or "memory" when the sandbox stopped the run, else None
    wall_s: float
    mechanisms: tuple[str, ...] = ()
    peak_mb: float | None = None    # the most memory the processes held together, when measured
    processes: int = 0              # how many processes there were at the peak
    notes: tuple[str, ...] = field(default=())    # why a mechanism was not used


# ------------------------------------------------------------------------------------------------ the caller side

def run(argv: list[str], work: Path, *, readable: list[Path], timeout_s: float, memory_mb: int | None,
        log) -> Outcome:
    """Run `argv` in `work` (its scratch folder) with the strongest confinement this platform allows.

    `readable`: what it may read besides the runtime and the project's packages (the experiment's team folder or
    file). stdout and stderr go to the open binary file `log`."""
    work = Path(work).resolve()
    env = _environment(work)
    if sys.platform.startswith("linux"):
        return _run_supervised(argv, work, env, readable, timeout_s, memory_mb, log)
    return _run_plain(argv, work, env, timeout_s, memory_mb, log)


def available() -> set[str]:
    """The mechanisms a run with a memory limit gets on this machine (runs a no-op through the sandbox)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        with tempfile.TemporaryDirectory(prefix="zandbak-probe-") as tmp, open(os.devnull, "wb") as log:
            out = run([sys.executable, "-c", "pass"], Path(tmp), readable=[], timeout_s=30, memory_mb=512, log=log)
        _AVAILABLE = set(out.mechanisms)
    return set(_AVAILABLE)


_AVAILABLE: set[str] | None = None


def _environment(work: Path) -> dict[str, str]:
    """A minimal environment: locale, PATH and thread settings of the caller; HOME and TMPDIR in the scratch
    folder; the project's packages through a folder of links (works for an editable install and a plain checkout)."""
    env = {k: v for k, v in os.environ.items() if k in ENV_KEEP or k.startswith(ENV_KEEP_PREFIX)}
    for name in ("home", "tmp", "site"):
        (work / name).mkdir(exist_ok=True)
    for pkg in PACKAGES:
        link = work / "site" / pkg
        if (PROJECT_ROOT / pkg).is_dir() and not link.exists():
            link.symlink_to(PROJECT_ROOT / pkg, target_is_directory=True)
    env.update(HOME=str(work / "home"), TMPDIR=str(work / "tmp"), TEMP=str(work / "tmp"), TMP=str(work / "tmp"),
               PYTHONPATH=str(work / "site"), PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1",
               MPLBACKEND="Agg")
    try:
        import site
        if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
            env["PYTHONUSERBASE"] = site.getuserbase()      # packages installed with pip --user keep working
    except (ImportError, AttributeError):
        pass
    return env


def _runtime_paths() -> list[str]:
    """Where the interpreter and its installed packages live (read and execute)."""
    import site
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    try:
        paths.update(site.getsitepackages())
        if site.ENABLE_USER_SITE:
            paths.add(site.getusersitepackages())
    except AttributeError:
        pass
    return sorted(p for p in paths if p and os.path.isdir(p))


def _project_paths(readable: list[Path]) -> tuple[list[str], list[str], list[str]]:
    """(folders to read, files to read, folders to list only) of the project the experiment may import."""
    exp = PROJECT_ROOT / "experiments"
    dirs = [str(PROJECT_ROOT / p) for p in ("synthetic_data", "expectations") if (PROJECT_ROOT / p).is_dir()]
    dirs += [str(exp / "tasks"), str(exp / "__pycache__")]
    files = [str(p) for p in exp.glob("*.py")] + [str(exp / "teams" / "__init__.py")]
    for p in readable:
        (dirs if Path(p).is_dir() else files).append(str(p))
    return dirs, files, [str(exp), str(exp / "teams")]


def _run_supervised(argv, work, env, readable, timeout_s, memory_mb, log) -> Outcome:
    read_dirs, read_files, list_dirs = _project_paths([Path(p).resolve() for p in readable])
    report_r, report_w = os.pipe()
    spec = {"argv": argv, "work": str(work), "env": env, "timeout_s": timeout_s, "memory_mb": memory_mb,
            "runtime": _runtime_paths(), "read_dirs": read_dirs, "read_files": read_files, "list_dirs": list_dirs,
            "report_fd": report_w, "namespaces": NAMESPACES}
    start = time.perf_counter()
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", str(Path(__file__).resolve()), "supervise",
                                 json.dumps(spec)], cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(report_w,))
    finally:
        os.close(report_w)
    try:
        try:
            proc.wait(timeout=timeout_s + BACKSTOP_S)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
        finally:
            _kill_group(proc.pid)
            proc.wait()
        report = _read_all(report_r)
    finally:
        os.close(report_r)
    wall = time.perf_counter() - start
    try:
        r = json.loads(report.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        r = {}
    if hung:
        r["stopped"] = "timeout"
    if not r:     # the supervisor itself failed: say so through the exit code and the log
        return Outcome(returncode=proc.returncode, stopped=None, wall_s=wall, notes=("no supervisor report",))
    return Outcome(returncode=r.get("returncode"), stopped=r.get("stopped"), wall_s=wall,
                   mechanisms=tuple(r.get("mechanisms", ())), peak_mb=r.get("peak_mb"),
                   processes=r.get("processes", 0), notes=tuple(r.get("notes", ())))


def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _run_plain(argv, work, env, timeout_s, memory_mb, log) -> Outcome:
    """macOS, Windows: own process (session), timeout, RLIMIT_DATA where the platform has it."""
    mechanisms, kwargs = [], {}
    if os.name == "posix":
        mechanisms.append("session-kill")
        kwargs["start_new_session"] = True
        if memory_mb:
            mechanisms.append("rlimit-data")
            kwargs["preexec_fn"] = lambda: _limit_data(memory_mb)
    else:
        mechanisms.append("tree-kill")
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, **kwargs)
    stopped = None
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stopped = "timeout"
    finally:
        if os.name == "posix":
            _kill_group(proc.pid)
        elif proc.poll() is None:
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], capture_output=True)
        proc.wait()
    return Outcome(returncode=None if stopped else proc.returncode, stopped=stopped,
                   wall_s=time.perf_counter() - start, mechanisms=tuple(mechanisms))


def _limit_data(memory_mb: int) -> None:
    import resource
    limit = int(memory_mb) * 1024 * 1024
    try:
        # RLIMIT_DATA counts heap and anonymous mappings (Linux >= 4.7) but not the large virtual reservations of
        # thread stacks and allocators that make RLIMIT_AS fail on machines with many cores
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ValueError, OSError):
        pass


# ------------------------------------------------------------------------------------------- Linux system calls

_libc = None

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 24, 38, 36
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18

# Landlock (include/uapi/linux/landlock.h); the system call numbers are the same on every architecture but alpha
# and ia64
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2
READ = FS_READ_FILE | FS_READ_DIR
READ_EXEC = READ | FS_EXECUTE


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return _libc


def _check(rc: int, what: str) -> int:
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return rc


def _prctl(option: int, arg: int = 0) -> None:
    _check(_c().prctl(option, arg, 0, 0, 0), f"prctl({option})")


def _unshare(flags: int) -> None:
    _check(_c().unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_c().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel, 0 when there is none."""
    if not sys.platform.startswith("linux") or platform.machine().lower() in ("alpha", "ia64"):
        return 0
    rc = _c().syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(rc), 0)


def _landlock(abi: int, rules: list[tuple[str, int]]) -> list[str]:
    """Restrict this process (and what it executes and starts) to `rules` (path, access); returns the layers."""
    handled = (1 << 13) - 1
    if abi >= 2:
        handled |= FS_REFER
    if abi >= 3:
        handled |= FS_TRUNCATE
    if abi >= 5:
        handled |= FS_IOCTL_DEV
    attr = _RulesetAttr(handled_access_fs=handled)
    layers = ["landlock-fs"]
    if abi >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP     # no rule for any port: no TCP at all
        layers.append("landlock-net")
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        layers.append("landlock-scope")
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _check(_c().syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                                  ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue          # a path this machine does not have
            try:
                if not os.path.isdir(path):
                    access &= FS_FILE_ONLY
                rule = _PathBeneathAttr(allowed_access=access & handled, parent_fd=fd)
                _check(_c().syscall(SYS_ADD_RULE, ruleset, ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0)),
                       f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _check(_c().syscall(SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return layers


# seccomp: no new sockets at all (socketpair, which multiprocessing.Pipe and asyncio use, still works), no io_uring
# (it can open sockets without the socket system call), no system calls of another ABI (i386 on x86_64, x32)
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}   # audit arch, socket, io_uring


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_no_sockets() -> bool:
    """Install the filter in this process (inherited across exec and fork); False where the architecture is not
    known here. Needs no_new_privs (set before)."""
    arch = _SECCOMP_ARCH.get(platform.machine().lower())
    if not arch:
        return False
    audit_arch, nr_socket, nr_io_uring = arch
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    deny = SECCOMP_RET_ERRNO | errno.EACCES
    prog = [(ld, 0, 0, 4),                      # arch
            (jeq, 1, 0, audit_arch),
            (ret, 0, 0, deny),
            (ld, 0, 0, 0),                      # system call number
            (jge, 3, 0, 0x40000000),            # x32
            (jeq, 2, 0, nr_socket),
            (jeq, 1, 0, nr_io_uring),
            (ret, 0, 0, SECCOMP_RET_ALLOW),
            (ret, 0, 0, deny)]
    filters = (_SockFilter * len(prog))(*[_SockFilter(*f) for f in prog])
    fprog = _SockFprog(len(prog), filters)
    _check(_c().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0), "seccomp")
    return True


# ---------------------------------------------------------------------------------------------- the supervisor

HIDE = ("/tmp", "/var/tmp", "/run", "/dev/shm")


class _Supervisor:
    """S: sets up the namespaces, starts I and R, watches time and memory, ends every process of the run."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.work = spec["work"]
        self.memory_mb = spec["memory_mb"]
        self.report_fd = spec["report_fd"]
        os.set_inheritable(self.report_fd, False)
        self.mechanisms: list[str] = []
        self.notes: list[str] = []
        self.msg_r, self.msg_w = os.pipe()     # I and R (before it executes the runner) tell S what they set up
        self.peak_kb, self.peak_n = 0, 0
        self.own_proc = False                  # /proc shows the sandbox's processes only
        self.hidden: list[str] = []            # folders covered by an empty tmpfs
        self.lines: list[str] = []             # messages of I and R

    # ---------------------------------------------------------------- namespaces

    def _try_namespaces(self) -> int:
        """Enter the strongest namespace set that works here; returns its flags (0: none). Tried in a throwaway
        child first: an unshare that half works (AppArmor) cannot be undone."""
        if not self.spec.get("namespaces", True):
            self.notes.append("namespaces: switched off")
            return 0
        uid, gid = os.getuid(), os.getgid()
        for flags in (CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS,
                      CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID, CLONE_NEWUSER | CLONE_NEWNET):
            pid = os.fork()
            if pid == 0:
                try:
                    self._enter(flags, uid, gid)
                    os._exit(0)
                except BaseException:  # noqa: BLE001
                    os._exit(1)
            if os.waitpid(pid, 0)[1] == 0:
                try:
                    self._enter(flags, uid, gid)
                    return flags
                except OSError as e:
                    self.notes.append(f"namespaces: {e}")
                    return 0
        self.notes.append("namespaces: unprivileged user namespaces are not available")
        return 0

    @staticmethod
    def _enter(flags: int, uid: int, gid: int) -> None:
        _unshare(flags)
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")

    # ---------------------------------------------------------------- the children

    def _say(self, text: str) -> None:
        os.write(self.msg_w, (text + "\n").encode())

    def _mounts(self) -> None:
        """In I (init of the new PID namespace, in the new mount namespace): a fresh /proc, empty tmpfs over the
        shared temporary and runtime folders, with what the runner needs bound back."""
        try:
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            self._say("mount proc")
        except OSError as e:
            self._say(f"note {e}")
            return
        keep = [self.work, *self.spec["runtime"], *self.spec["read_dirs"], *self.spec["read_files"],
                *self.spec["list_dirs"]]
        size = f"size={self.memory_mb or 1024}m,mode=1777"
        for hide in HIDE:
            if os.path.islink(hide) or not os.path.isdir(hide):
                continue
            inside = [p for p in keep if os.path.exists(p)
                      and (os.path.realpath(p) + "/").startswith(os.path.realpath(hide) + "/")]
            fds = [(os.path.realpath(p), os.open(p, os.O_PATH | os.O_CLOEXEC)) for p in inside]
            try:
                _mount("tmpfs", hide, "tmpfs", MS_NOSUID | MS_NODEV, size)
                for target, fd in fds:
                    if os.path.isdir(f"/proc/self/fd/{fd}"):
                        os.makedirs(target, exist_ok=True)
                    else:
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        open(target, "a").close()
                    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
                self.hidden.append(hide)
            except OSError as e:
                self._say(f"note {e}")
            finally:
                for _, fd in fds:
                    os.close(fd)
        if self.hidden:
            self._say("mount tmpfs " + " ".join(self.hidden))

    def _runner(self, caps: bool, private_shm: bool) -> None:
        """In R: limits, then Landlock, then execute the runner. Never returns."""
        try:
            if self.memory_mb:
                _limit_data(self.memory_mb)
                self._say("mech rlimit-data")
            if caps:      # capabilities in our own user namespace must not survive exec (when the caller is root)
                for cap in range(64):
                    if _c().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0:
                        break
            abi = landlock_abi()
            if abi:
                try:
                    for layer in _landlock(abi, self._rules(private_shm)):
                        self._say(f"mech {layer}")
                except OSError as e:
                    self._say(f"note landlock: {e}")
            else:
                self._say("note landlock: not supported by this kernel")
            try:
                _prctl(PR_SET_NO_NEW_PRIVS, 1)
                if _seccomp_no_sockets():
                    self._say("mech seccomp-sockets")
            except OSError as e:
                self._say(f"note seccomp: {e}")
            os.chdir(self.work)
            argv = self.spec["argv"]
            os.closerange(3, 1 << 16)
            os.execve(argv[0], argv, self.spec["env"])
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(2, f"sandbox: cannot start the runner: {e}\n".encode())
            finally:
                os._exit(127)

    def _rules(self, private_shm: bool) -> list[tuple[str, int]]:
        s = self.spec
        everything = (1 << 16) - 1
        rules = [(p, READ_EXEC) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/nix/store")]
        rules += [(p, READ) for p in ("/proc", "/sys")]
        rules += [("/dev/null", FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE)]
        rules += [(p, FS_READ_FILE) for p in ("/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")]
        if private_shm:
            rules.append(("/dev/shm", everything))     # multiprocessing's semaphores; an empty tmpfs of our own
        rules += [(p, READ_EXEC) for p in s["runtime"]]
        rules += [(p, READ) for p in s["read_dirs"]]
        rules += [(p, FS_READ_FILE) for p in s["read_files"]]
        rules += [(p, FS_READ_DIR) for p in s["list_dirs"]]
        rules.append((self.work, everything))
        return rules

    # ---------------------------------------------------------------- watching

    def _processes(self, root: int) -> list[str]:
        """/proc entries of the sandbox's processes: all of /proc when it is our own, else root's descendants."""
        if self.own_proc:
            return [n for n in os.listdir("/proc") if n.isdigit()]
        parent = {}
        for n in os.listdir("/proc"):
            if n.isdigit():
                try:
                    with open(f"/proc/{n}/stat", "rb") as f:
                        stat = f.read()
                    parent[n] = stat[stat.rindex(b")") + 2:].split(None, 2)[1].decode()
                except (OSError, ValueError, IndexError):
                    pass
        children: dict[str, list[str]] = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        out, todo = [], [str(root)]
        while todo:
            pid = todo.pop()
            for c in children.get(pid, ()):
                out.append(c)
                todo.append(c)
        return out

    @staticmethod
    def _memory_kb(pid: str) -> int:
        """Proportional anonymous + shared memory of one process: forked copies are not counted twice."""
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f.read().splitlines()[1:] if b":" in line)
            if b"Pss_Anon" in fields:
                return sum(int(fields.get(k, b"0 kB").split()[0]) for k in (b"Pss_Anon", b"Pss_Shmem"))
            return int(fields[b"Pss"].split()[0])
        except (OSError, KeyError, ValueError):
            pass
        try:     # readable even when the process made itself undumpable
            with open(f"/proc/{pid}/status", "rb") as f:
                st = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
            return sum(int(st.get(k, b"0 kB").split()[0]) for k in (b"RssAnon", b"RssShmem"))
        except (OSError, ValueError):
            return 0

    def _over_limit(self, root: int) -> bool:
        if not self.memory_mb:
            return False
        pids = self._processes(root)
        total = sum(self._memory_kb(p) for p in pids)
        if total > self.peak_kb:
            self.peak_kb, self.peak_n = total, len(pids)
        return total > self.memory_mb * 1024

    def _messages(self) -> list[str]:
        return _read_all(self.msg_r).decode(errors="replace").splitlines()

    # ---------------------------------------------------------------- main

    def main(self) -> int:
        deadline = time.monotonic() + float(self.spec["timeout_s"])
        try:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)     # the caller died: so do we, and with us the namespace
        except OSError:
            pass
        flags = self._try_namespaces()
        if flags:
            self.mechanisms += ["userns", "netns"]
        returncode, stopped, init, runner = None, None, 0, 0
        if flags & CLONE_NEWPID:
            init = os.fork()
            if init == 0:
                self._init(bool(flags & CLONE_NEWNS))
            self.mechanisms.append("pidns")
            init_ended = self._wait_ready(init, deadline)
            root = init
        else:
            try:
                _prctl(PR_SET_CHILD_SUBREAPER, 1)
                self.mechanisms.append("subreaper")
            except OSError as e:
                self.notes.append(f"subreaper: {e}")
            root = os.getpid()
            runner = os.fork()
            if runner == 0:
                try:
                    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                except OSError:
                    pass
                self._runner(caps=bool(flags), private_shm=False)
            init_ended = False
        if self.memory_mb:
            self.mechanisms.append("tree-memory")
        while not init_ended:
            if init:
                init_ended = os.waitpid(init, os.WNOHANG)[0] != 0
                if init_ended:
                    break
            else:
                returncode = self._reap(runner)
                if returncode is not None:
                    break
            if time.monotonic() > deadline:
                stopped = "timeout"
                break
            if self._over_limit(root):
                stopped = "memory"
                break
            time.sleep(POLL_S)
        if init and not init_ended:
            os.kill(init, signal.SIGKILL)     # the kernel ends every process of the namespace with its init
            os.waitpid(init, 0)
        elif not init:
            self._kill_descendants()
        self.lines += _read_all(self.msg_r).decode(errors="replace").splitlines()
        for line in self.lines:
            kind, _, rest = line.partition(" ")
            if kind == "mech":
                self.mechanisms.append(rest)
            elif kind == "mount":
                self.mechanisms.append("mountns")
            elif kind == "note":
                self.notes.append(rest)
            elif kind == "rc" and returncode is None:
                returncode = int(rest)
        report = {"returncode": None if stopped else returncode, "stopped": stopped,
                  "mechanisms": list(dict.fromkeys(self.mechanisms)),
                  "peak_mb": round(self.peak_kb / 1024, 1) if self.memory_mb else None,
                  "processes": self.peak_n, "notes": self.notes}
        os.write(self.report_fd, (json.dumps(report) + "\n").encode())
        return 0

    def _wait_ready(self, init: int, deadline: float) -> bool:
        """Wait until I says "ready" (then /proc is our own, if it says so: S must not count the host's
        processes); True when I ended before that."""
        import select
        buf = b""
        while time.monotonic() < deadline:
            if select.select([self.msg_r], [], [], POLL_S)[0]:
                buf += os.read(self.msg_r, 4096)
                *lines, buf = buf.split(b"\n")
                self.lines += [ln.decode(errors="replace") for ln in lines]
                if "ready" in self.lines:
                    self.own_proc = "mount proc" in self.lines
                    break
            elif os.waitpid(init, os.WNOHANG)[0]:
                return True
        if buf:
            self.lines.append(buf.decode(errors="replace"))
        return False

    def _init(self, mount_ns: bool) -> None:
        """I, PID 1 of the new namespace: mounts, starts R, reaps orphans, ends (and so the namespace) with R."""
        try:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if mount_ns:
                self._mounts()
            runner = os.fork()
            if runner == 0:
                self._runner(caps=True, private_shm="/dev/shm" in self.hidden)
            self._say("ready")
            while True:
                pid, status = os.waitpid(-1, 0)
                if pid == runner:
                    self._say(f"rc {os.waitstatus_to_exitcode(status)}")
                    break
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(2, f"sandbox: init failed: {e}\n".encode())
            except OSError:
                pass
        os._exit(0)

    def _reap(self, runner: int) -> int | None:
        """Reap exited children (the runner, and orphans that reparented to us); the runner's code once it ended."""
        code = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return code if code is not None else -1
            if not pid:
                return code
            if pid == runner:
                code = os.waitstatus_to_exitcode(status)

    def _kill_descendants(self) -> None:
        """Kill and reap until we have no child left: orphans reparent to us (subreaper), so none can hide."""
        me = os.getpid()
        for _ in range(10_000):
            for pid in self._processes(me):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                return
            time.sleep(0.005)


def _supervise(spec_json: str) -> int:
    return _Supervisor(json.loads(spec_json)).main()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "supervise":
        sys.exit(_supervise(sys.argv[2]))
    sys.exit("usage: python sandbox.py supervise SPEC (started by experiments.sandbox.run)")
