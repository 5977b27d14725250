# Recipe: checkpoint without stopping training: the training loop copies its state into
# staging memory and goes on; a writer process of its own writes the copy with
# checkpoint_files.save_checkpoint (the same files: ckpt-<step>.pt, its .sha256, `latest`,
# rotation). Page: docs/recipes/background-save.md (and .ja.md), which embeds the section
# below; its examples are snippets/recipes/background_save.py. Tests import this file as the
# module background_checkpoint.

# --8<-- [start:background_checkpoint]
import atexit
import copy
import errno
import mmap
import operator
import os
import signal
import socket
import subprocess
import sys
import threading
import weakref
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle

try:
    import fcntl  # the directory's lock (not on Windows: no lock there)
except ImportError:
    fcntl = None

import torch

from checkpoint_files import check_directory, checkpoint_name, read_latest, save_checkpoint

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1")
                     if hasattr(signal, name))
ALIGN = 64  # each staged tensor starts on a cache line


class BackgroundSaveError(RuntimeError):
    """A background save that failed; the message names the file and what to do."""


class _Slot:
    """Where a tensor of the state sits in the staging memory (the state's skeleton holds
    these instead of tensors)."""

    def __init__(self, index):
        self.index = index

    def __reduce__(self):
        return (_Slot, (self.index,))


def _skeleton(state, tensors, seen):
    """`state` with each tensor replaced by a _Slot; the tensors appended to `tensors`. The
    same tensor twice (tied weights: views of one storage with the same shape) is one slot,
    so the file keeps them tied, as torch.save does."""
    if isinstance(state, torch.Tensor):
        if type(state).__module__.startswith("torch.distributed"):  # DTensor, ShardedTensor
            raise TypeError(
                f"BackgroundCheckpointer: a {type(state).__name__} in the state: a sharded "
                "state (FSDP, tensor parallelism) has a part on each rank, and this "
                "checkpointer writes one file from one process. Save it with "
                "torch.distributed.checkpoint.async_save, which writes every rank's part")
        if type(state) is not torch.Tensor:
            raise TypeError(f"BackgroundCheckpointer: a {type(state).__name__} in the state; "
                            "pass state dicts (model.state_dict(), not parameters "
                            "or keep_vars=True), whose tensors are plain torch.Tensor")
        if state.layout != torch.strided or state.is_quantized or state.device.type == "meta":
            raise TypeError(f"BackgroundCheckpointer: a {state.layout} tensor on "
                            f"{state.device} cannot be staged; save it with save_checkpoint")
        key = (state.untyped_storage().data_ptr(), state.storage_offset(), state.dtype,
               tuple(state.shape), state.stride(), state.device)
        if key not in seen:
            seen[key] = len(tensors)
            tensors.append(state)
        return _Slot(seen[key])
    if isinstance(state, dict):
        out = copy.copy(state)  # keeps the type and attributes (OrderedDict, `_metadata`)
        for k, v in state.items():
            out[k] = _skeleton(v, tensors, seen)
        return out
    if isinstance(state, list):
        return [_skeleton(v, tensors, seen) for v in state]
    if type(state) is tuple:
        return tuple(_skeleton(v, tensors, seen) for v in state)
    return state  # plain values travel as they are (pickled)


def _fill(skeleton, staged):
    """The skeleton with its slots replaced by the staged tensors."""
    if isinstance(skeleton, _Slot):
        return staged[skeleton.index]
    if isinstance(skeleton, dict):
        out = copy.copy(skeleton)
        for k, v in skeleton.items():
            out[k] = _fill(v, staged)
        return out
    if isinstance(skeleton, list):
        return [_fill(v, staged) for v in skeleton]
    if type(skeleton) is tuple:
        return tuple(_fill(v, staged) for v in skeleton)
    return skeleton


def _layout(tensors):
    """[(dtype, shape, offset, nbytes)], and the total size: one region per tensor."""
    layout, offset = [], 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        layout.append((t.dtype, tuple(t.shape), offset, nbytes))
        offset += -(-nbytes // ALIGN) * ALIGN
    return layout, max(offset, ALIGN)


def _views(memory, layout):
    """A tensor per region of `memory`; each has a storage of its own (torch.frombuffer at an
    offset), so torch.save writes each region once and exactly as it would the original."""
    out = []
    for dtype, shape, offset, nbytes in layout:
        if nbytes == 0:
            out.append(torch.empty(shape, dtype=dtype))
        else:
            out.append(torch.frombuffer(memory, dtype=torch.uint8, count=nbytes,
                                        offset=offset).view(dtype).view(shape))
    return out


def _shared_memory(size):
    """(fd, mmap) of `size` bytes that another process can map: a memfd (Linux: in memory,
    freed with its last user, not limited by the size of /dev/shm), else an unlinked file."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("checkpoint-staging", os.MFD_CLOEXEC)
    else:
        import tempfile
        fd = os.dup(tempfile.TemporaryFile().fileno())
    os.ftruncate(fd, size)
    # Every page at once (Linux): faster than a page fault per page during the first copy.
    return fd, mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))


class BackgroundCheckpointer:
    """Save checkpoints in a writer process while training goes on.

    `save(state, step)` copies every tensor of `state` into staging memory (allocated at the
    first save, reused by the next ones, allocated again only if the tensors' shapes or
    dtypes change), hands the copy to the writer and returns: the loop is blocked for that
    copy only. The writer, a process of its own, writes it with save_checkpoint: the same
    files (ckpt-<step>.pt, its sha256, `latest`, the last `keep` files), and `latest` moves
    only once the new file is complete and on disk, so checkpoint_files.load_latest reads them.

    One save is in flight at a time: if the previous one is still being written, save()
    first waits for it (that wait is blocked time too). The error of a background save
    (full disk, no permission, the writer killed) is raised by the next save(), wait() or
    close(), and nothing committed before it is lost. Memory: one staging copy of the
    state's tensors (`staging_bytes`: each padded to a multiple of 64 bytes), beside the
    state itself. CUDA tensors are copied into
    pinned (page-locked) staging memory. The writer ignores SIGINT, SIGTERM and SIGUSR1:
    the training process decides when to stop, and close() (also at interpreter exit)
    finishes the save in flight. The writer exits if the training process dies.

    One checkpointer per directory: from its first save to close(), it holds a lock on the
    directory (flock), and the save() of another checkpointer there (another rank, another
    job) raises BackgroundSaveError. A process forked from the training process (a
    DataLoader worker) cannot save with it; its close(), and its exit, leave the training
    process's writer alone.
    """

    def __init__(self, directory, keep=3, checksum=True, log=print, start="spawn"):
        if operator.index(keep) < 1:
            raise ValueError(f"BackgroundCheckpointer: keep must be >= 1, not {keep}")
        if start not in ("spawn", "fork"):
            raise ValueError(f"BackgroundCheckpointer: start must be 'spawn' or 'fork', "
                             f"not {start!r}")
        self.start = start
        check_directory(directory)
        self.directory, self.keep, self.checksum, self.log = directory, keep, checksum, log
        self.staging_bytes = 0
        self.staged = []  # the staging tensors, one per tensor of the state
        self._layout = self._memory = self._pinned = None
        self._writer = self._conn = None
        self._in_flight = None  # the step being written
        self._closed = False
        self._lock = threading.Lock()
        self._pid = os.getpid()  # the training process; a fork of it has another pid
        self._directory_fd = None  # holds the directory's lock
        _LIVE.add(self)
        finalizer = weakref.WeakMethod(self._close_at_exit)
        atexit.register(lambda: finalizer() and finalizer()())

    # -- the training loop's side --------------------------------------------------------

    def save(self, state, step):
        """Copy `state` (a nested dict/list of tensors and plain values) to staging memory
        and return; the writer saves it as ckpt-<step>.pt. Raises, first, the error of the
        previous background save, and waits for it if it is still being written."""
        step = operator.index(step)
        if step < 0:
            raise ValueError(f"BackgroundCheckpointer.save: step must be >= 0, not {step}")
        self._check_process("save")
        with self._lock:
            if self._closed:
                raise BackgroundSaveError(f"{self.directory}: save() after close()")
            self._wait()  # the previous save: its error first
            tensors = []
            skeleton = _skeleton(state, tensors, {})
            self._claim_directory()
            self._stage(tensors)
            self._start_writer()
            self._in_flight = step
            try:
                self._conn.send(("save", step, skeleton))
            except OSError:  # the writer is gone: _wait says how
                self._wait()

    def wait(self):
        """Block until the save in flight is on disk and `latest` names it; return its
        path (None if no save was in flight). Raises that save's error."""
        self._check_process("wait")
        with self._lock:
            return self._wait()

    def close(self):
        """wait(), then stop the writer. Called at interpreter exit if not before. In a
        process forked from the training process it does nothing: the writer is not its."""
        if os.getpid() != self._pid:
            return None
        with self._lock:
            if self._closed:
                return None
            try:
                return self._wait()
            finally:
                self._closed = True
                self._stop_writer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def writer_pid(self):
        return self._writer.pid if self._writer is not None else None

    # -- one training process, one directory ---------------------------------------------

    def _check_process(self, call):
        if os.getpid() != self._pid:
            raise BackgroundSaveError(
                f"{self.directory}: {call}() in process {os.getpid()}, a fork of the training "
                f"process {self._pid} (a DataLoader worker?) that created this "
                "BackgroundCheckpointer: its writer answers the training process only. "
                "Save from the training process")

    def _claim_directory(self):
        """Lock the directory (flock) for this checkpointer, until close(); refuse it if
        another checkpointer holds it."""
        if self._directory_fd is not None or fcntl is None:
            return
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:  # no permission: the writer's save_checkpoint says it, with what to do
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BackgroundSaveError(
                f"{self.directory}: another BackgroundCheckpointer already saves into this "
                f"directory, and this one ({_where()}) may not: two writers in one directory "
                "replace each other's checkpoints, `latest` and rotation. Under DDP every "
                "rank holds the same state: create the checkpointer and save on rank 0 "
                "only. To save a state of each rank, give each rank a directory of its own"
            ) from None
        except OSError:  # a filesystem without flock on directories: no check
            os.close(fd)
            return
        self._directory_fd = fd

    def _release_directory(self):
        if self._directory_fd is not None:
            fcntl.flock(self._directory_fd, fcntl.LOCK_UN)  # for every fork's copy too
            os.close(self._directory_fd)
            self._directory_fd = None

    # -- staging ----------------------------------------------------------------------------

    def _stage(self, tensors):
        layout, size = _layout(tensors)
        if layout != self._layout:
            if self._layout is not None:
                self.log(f"{self.directory}: the state's tensors changed (shapes, dtypes or "
                         f"count): new staging memory of {size / 1e6:.1f} MB replaces the old")
            self._allocate(layout, size, any(t.is_cuda for t in tensors))
        cuda = set()
        with torch.no_grad():
            for staged, t in zip(self.staged, tensors):
                if t.is_cuda:
                    staged.copy_(t, non_blocking=self._pinned is not None)
                    cuda.add(t.device)
                else:
                    staged.copy_(t)
        for device in cuda:  # the copies from the GPU are done before the writer reads them
            torch.cuda.current_stream(device).synchronize()

    def _allocate(self, layout, size, cuda):
        self._free()
        fd, memory = _shared_memory(size)
        whole = torch.frombuffer(memory, dtype=torch.uint8)
        if cuda:  # pinned: the copy from the GPU runs at the link's speed
            error = torch.cuda.cudart().cudaHostRegister(whole.data_ptr(), size, 1)
            if int(error) != 0:
                os.close(fd)
                raise BackgroundSaveError(
                    f"{self.directory}: cannot pin {size / 1e6:.1f} MB of staging memory "
                    f"(cudaHostRegister error {int(error)}): the locked-memory limit "
                    "(ulimit -l) or the free memory is too small")
            self._pinned = whole.data_ptr()
        self._memory, self._whole = memory, whole
        self._layout, self.staging_bytes = layout, size
        self.staged = _views(memory, layout)
        self._staging_fd = fd
        if self._writer is not None and self._writer.poll() is None:
            self._send_memory()

    def _send_memory(self):
        self._conn.send(("memory", self._layout, len(self._memory)))
        send_handle(self._conn, self._staging_fd, self._writer.pid)

    def _free(self):
        if self._pinned is not None:
            torch.cuda.cudart().cudaHostUnregister(self._pinned)
            self._pinned = None
        if self._memory is not None:
            os.close(self._staging_fd)
            self.staged, self._whole, self._memory, self._layout = [], None, None, None

    # -- the writer ---------------------------------------------------------------------------

    def _start_writer(self):
        if self._writer is not None:
            code = self._writer.poll()
            if code is None:
                return
            self.log(f"{self.directory}: the checkpoint writer (pid {self._writer.pid}) had "
                     f"ended ({_how(code)}) with no save in flight; starting a new one")
            self._conn.close()
        if self.start == "fork" and torch.cuda.is_initialized():
            raise BackgroundSaveError(
                f"{self.directory}: start='fork' in a process that has used CUDA: a forked "
                "process cannot use CUDA, and this one has initialized it. Use the default, "
                "start='spawn'")
        ours, theirs = socket.socketpair()
        # The stop signals are held while the writer starts: it inherits them held, ignores
        # them, then lets them through (a signal sent meanwhile is discarded).
        held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            if self.start == "fork":
                self._writer = _Forked(theirs, ours)
            else:
                here = os.path.dirname(os.path.abspath(__file__))
                code = (f"import sys; sys.path[:0] = {[here, *sys.path]!r}; "
                        "import background_checkpoint as b; b._writer_main()")
                self._writer = subprocess.Popen(
                    [sys.executable, "-c", code, str(theirs.fileno()), str(os.getpid())],
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send(("config", self.directory, self.keep, self.checksum))
        self._send_memory()

    def _wait(self):
        if self._in_flight is None:
            return None
        step, self._in_flight = self._in_flight, None
        path = os.path.join(self.directory, checkpoint_name(step))
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                how, pid = _how(self._writer.wait()), self._writer.pid
                self._conn.close()
                self._writer = self._conn = None  # reported here; the next save starts one
                committed = read_latest(self.directory)
                raise BackgroundSaveError(
                    f"{path}: not saved: the checkpoint writer (pid {pid}) ended "
                    f"({how}) while writing it. "
                    + (f"`latest` still names {committed}, complete. " if committed else
                       "There is no committed checkpoint yet. ")
                    + "The next save() starts a new writer; if the writer is killed again, "
                    "look for the out-of-memory killer (dmesg) or what else sends it signals."
                ) from None
            kind, *rest = message
            if kind == "log":
                self.log(rest[0])
            elif kind == "done":
                return rest[0]
            else:
                raise _surface(rest[0], path, step, self.directory)

    def _stop_writer(self):
        if self._writer is not None and self._writer.poll() is None:
            try:
                self._conn.send(("stop",))
            except OSError:
                pass
            self._writer.wait()
        if self._conn is not None:
            self._conn.close()
        self._free()
        self._release_directory()

    def _close_at_exit(self):
        try:
            self.close()
        except Exception as e:  # the interpreter is exiting: say it, there is no one to raise to
            print(f"BackgroundCheckpointer at exit: {e}", file=sys.stderr)


_LIVE = weakref.WeakSet()  # the checkpointers of this process


def _after_fork_in_child():
    """A forked process (a DataLoader worker, the writer) drops its copy of the directory
    locks, so that they end with the training process, not with the last fork."""
    for checkpointer in list(_LIVE):
        if checkpointer._directory_fd is not None:
            os.close(checkpointer._directory_fd)
            checkpointer._directory_fd = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _where():
    """This process, as an error names it: its pid, and its rank under torch.distributed."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return f"rank {dist.get_rank()} of {dist.get_world_size()}, pid {os.getpid()}"
    return f"pid {os.getpid()}"


def _how(code):
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _surface(error, path, step, directory):
    """The writer's error, as the training loop sees it: the same type for OSError (a full
    disk stays DiskFullError), its message naming the file, what is committed, what to do."""
    committed = read_latest(directory)
    where = (f"(raised in the background writer, saving step {step}; `latest` names "
             f"{committed or 'no checkpoint yet'})")
    if isinstance(error, OSError) and error.errno is not None:
        text = str(error.strerror) + (f": {error.filename}" if error.filename else "")
        return type(error)(error.errno, f"{text} {where}")
    return BackgroundSaveError(f"{path}: not saved: {type(error).__name__}: {error} {where}. "
                               "Fix the cause, then save again")


class _Forked:
    """A writer started with os.fork (start='fork'), with the part of Popen's interface used
    here. It runs _writer_loop in the child and leaves with os._exit: never into the
    caller's code, nor its atexit handlers."""

    def __init__(self, theirs, ours):
        parent = os.getpid()
        self.pid, self.returncode = os.fork(), None
        if self.pid == 0:
            code = 1
            try:
                ours.close()
                _writer_loop(Connection(os.dup(theirs.fileno())), parent)
                code = 0
            finally:
                os._exit(code)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def _writer_main():
    """The writer process started with 'spawn' (a new interpreter)."""
    _writer_loop(Connection(int(sys.argv[1])), int(sys.argv[2]))


def _writer_loop(conn, parent):
    """The writer: ignores the stop signals, maps the staging memory, saves each state it
    is sent with save_checkpoint, reports the path or the error; returns when the training
    process closes the connection, and exits at once if the training process dies."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    torch.set_num_threads(1)

    def orphaned():  # the training process died: what it sent is abandoned, as by a kill
        while True:
            if os.getppid() != parent:
                os._exit(70)
            threading.Event().wait(0.1)

    threading.Thread(target=orphaned, daemon=True).start()
    staged, memory = [], None
    while True:
        try:
            kind, *rest = conn.recv()
        except EOFError:
            return
        if kind == "stop":
            return
        if kind == "config":
            directory, keep, checksum = rest
        elif kind == "memory":
            layout, size = rest
            staging_fd = recv_handle(conn)
            staged = []
            memory = mmap.mmap(staging_fd, size)
            os.close(staging_fd)
            staged = _views(memory, layout)
        elif kind == "save":
            step, skeleton = rest
            try:
                path = save_checkpoint(_fill(skeleton, staged), directory, step, keep=keep,
                                       checksum=checksum,
                                       log=lambda m: conn.send(("log", m)))
            except Exception as e:
                try:
                    conn.send(("error", e))
                except Exception:  # an error that does not pickle
                    conn.send(("error", RuntimeError(f"{type(e).__name__}: {e}")))
            else:
                conn.send(("done", path))
# --8<-- [end:background_checkpoint]
