// sikte-tui syscall tracer: exact per-(pid, tid, syscall) aggregates in maps, selected
// individual events (with their strings, paths, socket addresses and buffers) through a ring
// buffer, per-descriptor I/O totals in a map, process lifecycle events through another ring.
//
// Compiled by bcc with -D options from tracing/engine/program.py:
//   PID_WORDS         words in the target bitmap (pid_max / 64, rounded up)
//   FOLLOW            1: children of traced processes become targets at fork
//   RINGBUF_PAGES     size of the syscall event ring buffer in pages
//   NR_EXECVE, NR_EXECVEAT (and _COMPAT, _X32): numbers whose fields are captured at entry
//   NR_CLONE, NR_CLONE3 (and _COMPAT, _X32): numbers whose flags tell a thread at fork
//   CLONE_THREAD_FLAG the kernel's CLONE_THREAD (generated constants)
//   PROC_FLAG_GONE, PROC_FLAG_THREAD: struct proc_event's flag bits (tracing/engine/maps.py)
//   X32_SYSCALL_BIT   the bit that marks x32 syscall numbers (0: none on this arch)
//   HAVE_HIDDEN, NR_HIDDEN: 1 and a native syscall not counted (uretprobe, made by our own
//                     probes); 0: nothing hidden (a flag, so no real number, syscall(-1)
//                     included, can equal a sentinel)
//   TASK_EXIT_CODE_OFF  offsetof(struct task_struct, exit_code) in the running kernel (from
//                     its BTF), -1: unknown (exit statuses then unknown)
//   TASK_SIGPENDING_OFF offsetof(struct task_struct, pending.signal), -1: unknown
//   PROC_EVENTS_PAGES size of the process event ring buffer in pages
//   HAVE_GROUP_DEAD   sched_process_exit has the group_dead field (newer kernels)
//   USE_TASK_STORAGE  1: keep the in-flight syscall in BPF task storage (5.11+), else a hash
//   HIST_SUB, HIST_SUB_BITS, HIST_PMAX, HIST_BUCKETS: the latency histogram's layout, from
//                     tracing/model/stats.py (the one definition; user space reads the buckets
//                     back with its bucket_bounds): HIST_SUB = 2^HIST_SUB_BITS linear buckets
//                     per power of two, HIST_PMAX the last power of two with its own buckets
//   SEL_*             bits of config.events (tracing/model/selection.py)
//   KIND_*, STATUS_*, FIELD_IO_ARG*, EVF_*, CAP_*: the captured-field format and its bounds
//                     (tracing/model/captures.py); LENPTR_SHIFT: bit LENPTR_SHIFT + i of the
//                     kinds marks a sockaddr argument i whose length is an int* (filled by
//                     the call)
//   EFFECT_*          descriptor effects of a call (tracing/decode/argspec.py)
//   ABI_COMPAT, ABI_X32, ARG_SPEC_ENTRIES: the arg_kinds map's index (abi * 1024 + nr % 1024)
//   FCNTL_DUPFD, FCNTL_DUPFD_CLOEXEC, ERRNO_BADF: values from the C library's headers
//   FD_IO_ENTRIES     size of the per-descriptor I/O map
//   EXIT_ONLY         1 (only with TIMING_OFF, kernel 5.15+, task offsets known): calls are
//                     counted at sys_exit alone, from the number the kernel kept (orig_ax),
//                     exit and exit_group at sched_process_exit; no in-flight slots at all,
//                     and sys_enter is attached only while events are selected (exec's
//                     fields at entry)
//   TASK_TGID_OFF     offsetof(struct task_struct, tgid), TASK_PID_OFF its pid, -1: unknown
//                     (a new thread is then told by its clone flags, kept at entry)
//   NR_FORK, NR_VFORK, NR_EXIT, NR_EXIT_GROUP (and _COMPAT, _X32): -1 where the ABI has none
//   TIMING_MODE       TIMING_EXACT (every call timed), TIMING_SAMPLED (counts and errors
//                     exact, a sample of each thread's calls timed and weighted) or TIMING_OFF
//                     (counts and errors only, no latency); tracing.model.timing.Timing
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

#define TIMING_EXACT 0
#define TIMING_SAMPLED 1
#define TIMING_OFF 2
#ifndef TIMING_MODE
#define TIMING_MODE TIMING_EXACT
#endif
#ifndef EXIT_ONLY
#define EXIT_ONLY 0
#endif
#ifndef TASK_TGID_OFF
#define TASK_TGID_OFF -1
#define TASK_PID_OFF -1
#endif
// sampled: a thread is timed on every call until it makes more than SAMPLE_RATE_HI timed
// calls a second, then on one call in 2^shift (shift growing by one a window, at most
// SAMPLE_SHIFT_MAX) and back down below SAMPLE_RATE_LO; each timed call stands for the calls
// since the previous one (its weight). Decided at timed calls only, over windows of at least
// SAMPLE_WINDOW_NS. An untimed call is timed anyway when SAMPLE_STALE_JIFFIES ticks have passed
// since the last timed one (jiffies: a memory read, no clock; 3 ticks are 3 to 30 ms as HZ
// goes from 1000 to 100), and a timed call slower than SAMPLE_SLOW_NS puts the thread back
// on every call: slow or rare calls are all timed.
#define SAMPLE_RATE_HI 4096ULL
#define SAMPLE_RATE_LO 1024ULL
#define SAMPLE_SHIFT_MAX 10
#define SAMPLE_WINDOW_NS 10000000ULL
#define SAMPLE_STALE_JIFFIES 3
#define SAMPLE_SLOW_NS 100000ULL
// struct inflight.nr: a call entered without a clock read (ts is then the thread's last known
// time, or 1: only the in-flight view reads it, and a call in flight has ts != 0). Above the
// ABI bits; user space masks it off (split_nr).
#define NR_UNTIMED (1ULL << 40)

struct stat_key {
    u32 pid;
    u32 tid;
    u32 nr;  // x32: the number without X32_SYSCALL_BIT (the ABI says x32)
    u32 abi; // 0 native, ABI_COMPAT, ABI_X32: the ABI the call was made in
};

struct stat_val {
    u64 count;
    u64 errors;
    u64 total_ns;
    u64 min_ns;
    u64 max_ns;
    u32 hist[HIST_BUCKETS];
};

struct inflight {
    u64 ts;
    u64 nr; // the syscall number as in stat_key (bits 0..31), its ABI in bits 32..33
    u64 clone_flags; // clone, clone3: the flags asked for (set at their entry only)
#if TIMING_MODE == TIMING_SAMPLED
    // The thread's sampling state (user space reads the three fields above only).
    u64 win_ts;    // start of the rate window (a timed call's exit)
    u64 timed_j;   // jiffies at the last timed call's entry
    u32 win_calls; // calls entered since win_ts
    u32 since;     // calls entered since the last timed one, this one included
    u32 skip;      // calls still to pass untimed
    u32 shift;     // timed: one call in 2^shift
#endif
};

// The fixed head of every ring buffer record; data_len bytes of captured fields follow it.
struct sys_event {
    u64 ts;
    u32 pid;
    u32 tid;
    u64 nr;
    s64 ret;
    u64 duration_ns;
    u64 args[6];
    u8 abi;       // 0 native, ABI_COMPAT (i386 on x86_64), ABI_X32
    u8 flags;     // EVF_SELECTED: the user's selection keeps it, else bookkeeping only
    u16 data_len; // bytes of fields after this header
    u32 fd_path;  // written by user space (the name of args[0]'s descriptor); 0 here
};

enum proc_kind { PROC_FORK = 1, PROC_EXEC = 2, PROC_EXIT = 3, PROC_RENAME = 4 };

struct proc_event {
    u64 ts;
    u32 kind;
    u32 pid;        // the process (tgid) the event is about; rename: 0 when not known
    u32 tid;        // fork: the new task; exec, exit: the task itself; rename: the renamed
    u32 ppid;       // fork: the parent process
    s32 status;     // exit: the task's exit_code, a wait(2)-style status; else -1
    u32 flags;      // exit: PROC_FLAG_GONE, the whole process is gone; fork: PROC_FLAG_THREAD
    char comm[16];  // rename: the new name
    char filename[128];
};

// What user space asks for, switched at run time (tracing.model.selection.EventSelection).
struct config {
    u32 events;  // SEL_* bits; 0: no events
    u32 files;   // 1: keep descriptor bookkeeping records and per-descriptor I/O
    u64 slow_ns;
    u64 sample_n;
};

// Per syscall and ABI: the kind of each argument (4 bits each, arg i at bit 4i; the engine's
// marks above them, see LENPTR_SHIFT) and its descriptor effects, from the kernel's
// tracepoint formats (filled by user space at load).
struct arg_spec {
    u32 kinds;
    u32 effects;
};

// A descriptor of a process, and the I/O done through it since it was opened (or traced).
struct fd_key {
    u32 pid;
    s32 fd;
};

struct fd_io_val {
    u64 calls;
    u64 reads;
    u64 bytes_read;
    u64 writes;
    u64 bytes_written;
    u64 io_ns;
};

#define FIELD_HDR 8
#define ARGV_BYTES (CAP_ARGV_MAX * (CAP_STR_MAX + 1))
// Room behind the data: a field is written at an offset masked below CAP_DATA_MAX, so the
// verifier sees every write in bounds, whatever the offset.
#define SCRATCH_DATA (CAP_DATA_MAX + 2 * CAP_PATH_MAX)

// A record being built (one per CPU): sent with ringbuf_output, which takes a variable size
// (ringbuf_reserve would need the largest size for every record).
struct scratch {
    struct sys_event e;
    u8 data[SCRATCH_DATA];
    u64 busy; // taken by a program on this CPU (not sent)
};

// execve's fields and arguments, captured at entry (a successful exec replaces the memory
// they point to) and sent with the call's record at exit.
struct exec_capture {
    u64 args[6];
    u32 abi;
    u32 len;
    u8 data[SCRATCH_DATA];
    u64 busy; // exec_scratch's: taken by a program on this CPU
};

// Drop and fault counters, one slot per cause, per CPU so counting never contends.
enum drop_slot {
    DROP_EVENTS = 0,      // selected syscall events the ring buffer had no room for
    DROP_STATS_FULL = 1,  // aggregates lost because the stats map was full
    DROP_PROC_EVENTS = 2, // process events lost
    DROP_INFLIGHT = 3,    // in-flight slots that could not be created
    EVENTS_SENT = 4,      // selected syscall events submitted (for drop accounting)
    DROP_FD_EVENTS = 5,   // descriptor bookkeeping lost: records or fd_io entries
    DROP_SLOTS = 6,
};

BPF_ARRAY(targets, u64, PID_WORDS);
BPF_F_TABLE("hash", struct stat_key, struct stat_val, stats, STATS_ENTRIES, BPF_F_NO_PREALLOC);
// A zeroed value to create stats entries from: struct stat_val is too big for the BPF stack.
BPF_ARRAY(stat_zero, struct stat_val, 1);
BPF_PERCPU_ARRAY(counters, u64, DROP_SLOTS);
BPF_PERCPU_ARRAY(sample_tick, u64, 1);
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
// Sized for storms (thousands of threads at once, a thousand processes a second, four
// events each, across the engine's longest tick); what still does not fit is counted.
BPF_RINGBUF_OUTPUT(proc_events, PROC_EVENTS_PAGES);
// A launched command's pid until the entry of its first exec (0: none): its calls before
// that are the launcher's, not counted (SyscallProgram.set_target at_exec).
BPF_ARRAY(exec_armed, u32, 1);
BPF_ARRAY(config, struct config, 1);
BPF_ARRAY(arg_kinds, struct arg_spec, ARG_SPEC_ENTRIES);
BPF_F_TABLE("hash", struct fd_key, struct fd_io_val, fd_io, FD_IO_ENTRIES, BPF_F_NO_PREALLOC);
// Two per CPU: the syscall tracepoints may run preemptible, and a program preempted while it
// builds a record must not find it rewritten by another task's program on the same CPU.
#define SCRATCH_SLOTS 2
BPF_PERCPU_ARRAY(scratch, struct scratch, SCRATCH_SLOTS);
BPF_PERCPU_ARRAY(exec_scratch, struct exec_capture, 1);
// Keyed by the task (its address): a thread that execs takes its process's id, so neither
// its old tid nor the new one finds it at exit; the task itself stays.
BPF_F_TABLE("hash", u64, struct exec_capture, exec_args, 1024, BPF_F_NO_PREALLOC);

#if EXIT_ONLY
// No in-flight slots: nothing is carried from a call's entry to its exit, but for two calls
// whose exit does not say what they were, marked on the task (rare paths only): rt_sigreturn
// restores the registers, orig_ax with them (-1), and the frames a thread's handlers were
// given say which call it was (signal_deliver); a successful exec returns as the new
// program's execve (the kernel sets orig_ax so for the new ABI), so sched_prepare_exec writes
// down the call as it was made.
struct task_marks {
    u64 rt;       // bit i: the frame at depth i is an rt frame (i386: SA_SIGINFO handlers)
    u32 depth;    // handlers entered and not yet returned from (a handler that longjmps out
                  // leaves one: the thread's next -1 exit is then counted as a sigreturn)
    u32 pad;
    u64 exec_key; // the exec in flight: its number | ABI << 32 | 1 << 63; 0: none
};
BPF_TASK_STORAGE(task_marks, struct task_marks);
#elif USE_TASK_STORAGE
BPF_TASK_STORAGE(inflight_store, struct inflight);
#else
BPF_HASH(inflight_store, u32, struct inflight, 65536);
#endif

static __always_inline void count(u32 slot)
{
    u64 *c = counters.lookup(&slot);
    if (c)
        (*c)++;
}

static __always_inline u64 *target_word(u32 pid)
{
    u32 idx = pid >> 6;
    return targets.lookup(&idx);
}

static __always_inline bool is_target(u32 pid)
{
    u64 *w = target_word(pid);
    return w && (*w & (1ULL << (pid & 63)));
}

static __always_inline void set_target(u32 pid, bool on)
{
    u64 *w = target_word(pid);
    if (!w)
        return;
    if (on)
        __sync_fetch_and_or(w, 1ULL << (pid & 63));
    else
        __sync_fetch_and_and(w, ~(1ULL << (pid & 63)));
}

#if !EXIT_ONLY
static __always_inline struct inflight *inflight_get(u32 tid, bool create)
{
#if USE_TASK_STORAGE
    struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
    return inflight_store.task_storage_get(task, 0,
                                           create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
#else
    if (create) {
        struct inflight zero = {};
        inflight_store.update(&tid, &zero);
    }
    return inflight_store.lookup(&tid);
#endif
}

static __always_inline void inflight_clear(u32 tid, struct inflight *f)
{
#if USE_TASK_STORAGE
    f->ts = 0;
#else
    inflight_store.delete(&tid);
#endif
}
#endif

// Keeps the compiler from checking one copy of a value and indexing with another, which the
// verifier cannot follow.
#define barrier_var(var) asm volatile("" : "+r"(var))

static __always_inline u64 hist_bucket(u64 d)
{
    if (d < HIST_SUB)
        return d;
    u32 p = bpf_log2l(d) - 1; // floor(log2(d)), >= HIST_SUB_BITS here
    if (p > HIST_PMAX)
        return HIST_BUCKETS - 1;
    return HIST_SUB * (p - HIST_SUB_BITS) + (d >> (p - HIST_SUB_BITS));
}

// The numbers below are compared as the key has them: x32's without X32_SYSCALL_BIT (the
// tables may give them with it). A number means a call in one ABI only: i386's exit is
// x86_64's write, i386's execve x86_64's munmap.
#define X32_NR(nr) ((u32)((nr) & ~(u64)X32_SYSCALL_BIT))

static __always_inline bool is_exec_nr(u32 nr, u32 abi)
{
    if (abi == ABI_COMPAT)
        return nr == (u32)NR_EXECVE_COMPAT || nr == (u32)NR_EXECVEAT_COMPAT;
    if (abi == ABI_X32)
        return nr == X32_NR(NR_EXECVE_X32) || nr == X32_NR(NR_EXECVEAT_X32);
    return nr == (u32)NR_EXECVE || nr == (u32)NR_EXECVEAT;
}

static __always_inline bool is_clone_nr(u32 nr, u32 abi)
{
    if (abi == ABI_COMPAT)
        return nr == (u32)NR_CLONE_COMPAT || nr == (u32)NR_CLONE3_COMPAT;
    if (abi == ABI_X32)
        return nr == X32_NR(NR_CLONE_X32) || nr == X32_NR(NR_CLONE3_X32);
    return nr == (u32)NR_CLONE || nr == (u32)NR_CLONE3;
}

// A call that returns twice, 0 in the new task: clone, clone3, fork, vfork.
static __always_inline bool is_forking_nr(u32 nr, u32 abi)
{
    if (is_clone_nr(nr, abi))
        return true;
    if (abi == ABI_COMPAT)
        return nr == (u32)NR_FORK_COMPAT || nr == (u32)NR_VFORK_COMPAT;
    if (abi == ABI_X32)
        return nr == X32_NR(NR_FORK_X32) || nr == X32_NR(NR_VFORK_X32);
    return nr == (u32)NR_FORK || nr == (u32)NR_VFORK;
}

static __always_inline bool is_exit_nr(u32 nr, u32 abi)
{
    if (abi == ABI_COMPAT)
        return nr == (u32)NR_EXIT_COMPAT || nr == (u32)NR_EXIT_GROUP_COMPAT;
    if (abi == ABI_X32)
        return nr == X32_NR(NR_EXIT_X32) || nr == X32_NR(NR_EXIT_GROUP_X32);
    return nr == (u32)NR_EXIT || nr == (u32)NR_EXIT_GROUP;
}

// The number as the call was made (records carry it so): x32's with its bit again.
static __always_inline u64 raw_nr(u32 nr, u32 abi)
{
    return abi == ABI_X32 ? (u64)nr | X32_SYSCALL_BIT : nr;
}

static __always_inline struct config *get_config(void)
{
    u32 zero = 0;
    return config.lookup(&zero);
}

// -- ABI and arguments ------------------------------------------------------------------------

// An x32 call carries X32_SYSCALL_BIT in its (non-negative) number; syscall(-1), whose int
// has every bit set, is no x32 call (the kernel's do_syscall_x32 does not take it either).
static __always_inline bool x32_nr(u64 nr)
{
    return X32_SYSCALL_BIT && (nr & X32_SYSCALL_BIT) && !(nr & 0x80000000ULL);
}

// The ABI of the call: 32-bit code (an i386 process) enters with the 32-bit user code segment,
// x32 calls carry their bit in the number. One helper call, made at every entry.
static __always_inline u32 call_abi(struct pt_regs *regs, u64 nr)
{
#if defined(__x86_64__)
    if (x32_nr(nr))
        return ABI_X32;
    u16 cs = 0;
    bpf_probe_read_kernel(&cs, sizeof(cs), &regs->cs);
    return cs == 0x23 ? ABI_COMPAT : 0; // __USER32_CS
#elif defined(__aarch64__)
    u64 pstate = 0;
    bpf_probe_read_kernel(&pstate, sizeof(pstate), &regs->pstate);
    return (pstate & 0x10) ? ABI_COMPAT : 0; // PSR_MODE32_BIT: an AArch32 task
#else
    return 0;
#endif
}

static __always_inline u64 read_reg(void *reg, bool compat)
{
    u64 v = 0;
    bpf_probe_read_kernel(&v, compat ? 4 : 8, reg);
    return v;
}

static __always_inline void read_args(struct pt_regs *regs, u32 abi, u64 *args)
{
#if defined(__x86_64__)
    if (abi == ABI_COMPAT) { // i386: ebx, ecx, edx, esi, edi, ebp
        args[0] = read_reg(&regs->bx, true);
        args[1] = read_reg(&regs->cx, true);
        args[2] = read_reg(&regs->dx, true);
        args[3] = read_reg(&regs->si, true);
        args[4] = read_reg(&regs->di, true);
        args[5] = read_reg(&regs->bp, true);
        return;
    }
    args[0] = read_reg(&regs->di, false);
    args[1] = read_reg(&regs->si, false);
    args[2] = read_reg(&regs->dx, false);
    args[3] = read_reg(&regs->r10, false);
    args[4] = read_reg(&regs->r8, false);
    args[5] = read_reg(&regs->r9, false);
#elif defined(__aarch64__)
    // x0 holds the return value by now; the kernel keeps the first argument in orig_x0.
    // AArch32 tasks pass theirs in r0..r5, the same registers.
    bpf_probe_read_kernel(&args[0], 8, &regs->orig_x0);
    bpf_probe_read_kernel(&args[1], 40, &regs->regs[1]);
#endif
}

static __always_inline u64 read_arg0(struct pt_regs *regs, u32 abi)
{
#if defined(__x86_64__)
    return abi == ABI_COMPAT ? read_reg(&regs->bx, true) : read_reg(&regs->di, false);
#elif defined(__aarch64__)
    return read_reg(&regs->orig_x0, false);
#else
    return 0;
#endif
}

// The registers that hold a call's arguments, read with one helper call instead of one per
// register (at every exit when events or files are on, so it counts). The ABI is the one
// sys_enter saw (after a successful exec the registers are the new program's).
#if defined(__x86_64__)
struct call_regs { // struct pt_regs from bp through di, in its order
    u64 bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
};

static __always_inline void load_call_regs(struct pt_regs *regs, struct call_regs *r)
{
    if (bpf_probe_read_kernel(r, sizeof(*r), &regs->bp) != 0)
        __builtin_memset(r, 0, sizeof(*r));
}

static __always_inline u64 regs_arg0(struct call_regs *r, struct pt_regs *regs, u32 abi)
{
    return abi == ABI_COMPAT ? (u32)r->bx : r->di;
}

static __always_inline void regs_args(struct call_regs *r, struct pt_regs *regs, u32 abi,
                                      u64 *args)
{
    if (abi == ABI_COMPAT) { // i386: ebx, ecx, edx, esi, edi, ebp
        args[0] = (u32)r->bx;
        args[1] = (u32)r->cx;
        args[2] = (u32)r->dx;
        args[3] = (u32)r->si;
        args[4] = (u32)r->di;
        args[5] = (u32)r->bp;
        return;
    }
    args[0] = r->di;
    args[1] = r->si;
    args[2] = r->dx;
    args[3] = r->r10;
    args[4] = r->r8;
    args[5] = r->r9;
}
#else
struct call_regs {
    u64 unused;
};

static __always_inline void load_call_regs(struct pt_regs *regs, struct call_regs *r) {}

static __always_inline u64 regs_arg0(struct call_regs *r, struct pt_regs *regs, u32 abi)
{
    return read_arg0(regs, abi);
}

static __always_inline void regs_args(struct call_regs *r, struct pt_regs *regs, u32 abi,
                                      u64 *args)
{
    read_args(regs, abi, args);
}
#endif

static __always_inline struct arg_spec *arg_spec_of(u32 abi, u64 nr)
{
    u32 idx = ((abi & 3) << 10) | (nr & 1023);
    return arg_kinds.lookup(&idx);
}

static __always_inline u32 kind_of(u32 kinds, u32 i)
{
    return (kinds >> (4 * i)) & 0xf;
}

// -- captured fields --------------------------------------------------------------------------
// Each helper writes one field at data[pos] and returns the new end. A field that would take
// the record to CAP_DATA_MAX is left out (so a length masked with CAP_DATA_MAX - 1 is exact).

static __always_inline void put_hdr(u8 *at, u32 arg, u32 kind, u32 status, u32 len)
{
    *(u64 *)at = (u64)arg | ((u64)kind << 8) | ((u64)status << 16) | ((u64)len << 32);
}

// A NUL-terminated string of at most `bound` bytes (the NUL not kept).
static __always_inline u32 put_str(u8 *data, u32 pos, u32 arg, u32 kind, u64 uptr, u32 bound)
{
    if (pos >= CAP_DATA_MAX - FIELD_HDR - bound)
        return pos;
    barrier_var(pos); // the mask must stay: the verifier needs it, whatever the check above
    pos &= CAP_DATA_MAX - 1;
    u8 *at = data + pos;
    // Two bytes past the bound: a string of exactly `bound` bytes reads whole (with its NUL),
    // a longer one fills the buffer.
    long n = bpf_probe_read_user_str(at + FIELD_HDR, bound + 2, (void *)uptr);
    u32 len = 0, status = STATUS_OK;
    if (n <= 0)
        status = STATUS_FAULT;
    else if (n > bound + 1) {
        len = bound;
        status = STATUS_TRUNCATED;
    } else
        len = n - 1;
    put_hdr(at, arg, kind, status, len);
    return pos + FIELD_HDR + len;
}

// `want` bytes of user memory, at most `bound`.
static __always_inline u32 put_mem(u8 *data, u32 pos, u32 arg, u32 kind, u64 uptr, u64 want,
                                   u32 bound)
{
    if (pos >= CAP_DATA_MAX - FIELD_HDR - bound)
        return pos;
    barrier_var(pos); // the mask must stay: the verifier needs it, whatever the check above
    pos &= CAP_DATA_MAX - 1;
    u8 *at = data + pos;
    u32 status = STATUS_OK;
    u64 len = bound;
    if (want <= bound)
        len = want;
    else
        status = STATUS_TRUNCATED;
    barrier_var(len);
    if (len > bound)
        return pos;
    if (len && bpf_probe_read_user(at + FIELD_HDR, len, (void *)uptr) != 0) {
        len = 0;
        status = STATUS_FAULT;
    }
    put_hdr(at, arg, kind, status, len);
    return pos + FIELD_HDR + len;
}

// An argument vector: up to CAP_ARGV_MAX strings, each followed by its NUL.
static __always_inline u32 put_argv(u8 *data, u32 pos, u32 arg, u64 uptr, bool compat)
{
    if (pos >= CAP_DATA_MAX - FIELD_HDR - ARGV_BYTES)
        return pos;
    barrier_var(pos); // the mask must stay: the verifier needs it, whatever the check above
    pos &= CAP_DATA_MAX - 1;
    u8 *at = data + pos;
    u64 w = 0;
    u32 status = STATUS_OK;
    u32 step = compat ? 4 : 8;
    u64 p = 0;
    int i;
#pragma unroll
    for (i = 0; i < CAP_ARGV_MAX; i++) {
        p = 0;
        if (bpf_probe_read_user(&p, step, (void *)(uptr + i * step)) != 0) {
            if (i == 0)
                status = STATUS_FAULT;
            break;
        }
        if (!p)
            break;
        u64 off = FIELD_HDR + w;
        barrier_var(off);
        if (off > FIELD_HDR + ARGV_BYTES - (CAP_STR_MAX + 1))
            break;
        long n = bpf_probe_read_user_str(at + off, CAP_STR_MAX + 2, (void *)p);
        if (n <= 0) {
            status = STATUS_FAULT;
            break;
        }
        u64 got = n;
        if (got > CAP_STR_MAX + 1) { // longer than the bound: keep the bound and a NUL
            u64 cut = off + CAP_STR_MAX;
            barrier_var(cut);
            if (cut < FIELD_HDR + ARGV_BYTES)
                at[cut] = 0;
            got = CAP_STR_MAX + 1;
            status = STATUS_TRUNCATED;
        }
        w += got;
    }
    if (i == CAP_ARGV_MAX) { // every slot used: more arguments follow unless a NULL does
        p = 0;
        bpf_probe_read_user(&p, step, (void *)(uptr + CAP_ARGV_MAX * step));
        if (p)
            status = STATUS_TRUNCATED;
    }
    put_hdr(at, arg, KIND_ARGV, status, w);
    return pos + FIELD_HDR + w;
}

// The number of pointers before the NULL that ends a vector (execve's envp: strace shows the
// count, `/* 30 vars */`), 4 bytes each for an i386 process. At most CAP_COUNT_MAX: one more
// pointer that is not NULL makes it STATUS_TRUNCATED. A pointer that cannot be read ends the
// count with STATUS_FAULT (at 0: the vector itself is unreadable). A NULL vector: no field.
static __always_inline u32 put_count(u8 *data, u32 pos, u32 arg, u64 uptr, bool compat)
{
    if (!uptr || pos >= CAP_DATA_MAX - FIELD_HDR - 4)
        return pos;
    barrier_var(pos); // the mask must stay: the verifier needs it, whatever the check above
    pos &= CAP_DATA_MAX - 1;
    u8 *at = data + pos;
    u64 step = compat ? 4 : 8;
    u64 p = 0;
    long err = 0;
    // One exit per pass (a failed read zeroes p): the verifier keeps a pending state for each
    // and refuses more than 8192. The count is stored as it goes: were n read after the loop,
    // the verifier would tell each pass's exit apart by it and walk the rest of the program
    // once for each.
    for (u32 n = 0; n <= CAP_COUNT_MAX; n++) {
        *(u32 *)(at + FIELD_HDR) = n;
        p = 0;
        err = bpf_probe_read_user(&p, step, (void *)(uptr + n * step));
        if (!p)
            break;
    }
    u32 status = err ? STATUS_FAULT : (p ? STATUS_TRUNCATED : STATUS_OK);
    put_hdr(at, arg, KIND_COUNT, status, 4);
    return pos + FIELD_HDR + 4;
}

// A descriptor's I/O totals, handed over in the record of the call that ends its meaning.
static __always_inline u32 put_io(u8 *data, u32 pos, u32 arg, s32 fd, struct fd_io_val *v)
{
    if (pos >= CAP_DATA_MAX - FIELD_HDR - 56)
        return pos;
    barrier_var(pos); // the mask must stay: the verifier needs it, whatever the check above
    pos &= CAP_DATA_MAX - 1;
    u8 *at = data + pos;
    put_hdr(at, arg, KIND_IO, STATUS_OK, 56);
    *(u64 *)(at + FIELD_HDR) = (u32)fd;
    *(u64 *)(at + FIELD_HDR + 8) = v->calls;
    *(u64 *)(at + FIELD_HDR + 16) = v->reads;
    *(u64 *)(at + FIELD_HDR + 24) = v->bytes_read;
    *(u64 *)(at + FIELD_HDR + 32) = v->writes;
    *(u64 *)(at + FIELD_HDR + 40) = v->bytes_written;
    *(u64 *)(at + FIELD_HDR + 48) = v->io_ns;
    return pos + FIELD_HDR + 56;
}

// The fields the argument kinds ask for, read at exit (execve's come from its entry).
static __always_inline void capture_args(struct scratch *s, u32 kinds, u32 effects, s64 ret)
{
    int i;
#pragma unroll
    for (i = 0; i < 6; i++) {
        u32 kind = kind_of(kinds, i);
        if (!kind)
            continue;
        u32 pos = s->e.data_len; // re-read: every pass starts from the same verifier state
        u64 p = s->e.args[i];
        switch (kind) {
        case KIND_STR:
            pos = put_str(s->data, pos, i, KIND_STR, p, CAP_STR_MAX);
            break;
        case KIND_PATH:
            pos = put_str(s->data, pos, i, KIND_PATH, p, CAP_PATH_MAX - 1);
            break;
        case KIND_SOCKADDR:
            if (i < 5) {
                u64 want = s->e.args[i + 1];
                if (kinds & (1u << (LENPTR_SHIFT + i))) { // int *: the call wrote it back
                    s32 written = 0;
                    if (ret < 0 || bpf_probe_read_user(&written, 4, (void *)want) != 0)
                        break;
                    want = written < 0 ? 0 : written;
                }
                pos = put_mem(s->data, pos, i, KIND_SOCKADDR, p, want, CAP_SOCKADDR_MAX);
            }
            break;
        case KIND_BUF:
            if (i == 1 && (effects & EFFECT_BUF_ARG1)) {
                u64 want = s->e.args[2];
                if (effects & EFFECT_BUF_AT_EXIT)
                    want = ret > 0 ? ret : 0;
                if (want)
                    pos = put_mem(s->data, pos, i, KIND_BUF, p, want, CAP_BUF_MAX);
            }
            break;
        case KIND_FDPAIR:
            if (ret == 0)
                pos = put_mem(s->data, pos, i, KIND_FDPAIR, p, 8, 8);
            break;
        }
        s->e.data_len = pos;
    }
}

// -- per-descriptor I/O -----------------------------------------------------------------------

static __always_inline void account_io(u32 pid, u64 fd_arg, u32 effects, s64 ret, u64 d)
{
    // Only the calls that move data are counted: the others on a descriptor (fstatat on a
    // directory, fcntl, fstat) are frequent (tar makes three fstatat per file) and would pay a
    // map update each for a figure no view shows.
    if (!(effects & (EFFECT_IO_READ | EFFECT_IO_WRITE)))
        return;
    s32 fd = (s32)fd_arg;
    if (fd < 0 || ret == -ERRNO_BADF) // AT_FDCWD, or no such descriptor: nothing to count
        return;
    struct fd_key key = {.pid = pid, .fd = fd};
    struct fd_io_val *v = fd_io.lookup(&key);
    if (!v) {
        struct fd_io_val zero = {};
        fd_io.insert(&key, &zero); // another thread may have made it meanwhile: look again
        v = fd_io.lookup(&key);
        if (!v) {
            count(DROP_FD_EVENTS);
            return;
        }
    }
    // Threads share descriptors: atomic adds.
    __sync_fetch_and_add(&v->calls, 1);
    __sync_fetch_and_add(&v->io_ns, d);
    if (ret < 0)
        return;
    if (effects & EFFECT_IO_READ) {
        __sync_fetch_and_add(&v->reads, 1);
        __sync_fetch_and_add(&v->bytes_read, ret);
    } else {
        __sync_fetch_and_add(&v->writes, 1);
        __sync_fetch_and_add(&v->bytes_written, ret);
    }
}

// The totals of a descriptor number that stops meaning its file go into the record.
static __always_inline bool handover(struct scratch *s, u32 pid, u64 fd_arg, u32 slot)
{
    struct fd_key key = {.pid = pid, .fd = (s32)fd_arg};
    if (key.fd < 0)
        return false;
    struct fd_io_val *v = fd_io.lookup(&key);
    if (!v)
        return false;
    s->e.data_len = put_io(s->data, s->e.data_len, slot, key.fd, v);
    fd_io.delete(&key);
    return true;
}

static __always_inline void handover_pair(struct scratch *s, u32 pid, u32 kinds)
{
    u32 at = 6;
#pragma unroll
    for (u32 i = 0; i < 6; i++)
        if (kind_of(kinds, i) == KIND_FDPAIR)
            at = i;
    if (at > 5)
        return;
    s32 fds[2] = {-1, -1};
    if (bpf_probe_read_user(fds, sizeof(fds), (void *)s->e.args[at]) != 0)
        return;
    handover(s, pid, (u32)fds[0], FIELD_IO_ARG);
    handover(s, pid, (u32)fds[1], FIELD_IO_ARG2);
}

#define BOOK_EFFECTS (EFFECT_OPENS | EFFECT_FD_RET | EFFECT_FD_CLOSE | EFFECT_FD_CLOSE_RANGE | \
                      EFFECT_FD_DUP_TO | EFFECT_FD_PAIR | EFFECT_FD_FCNTL | \
                      EFFECT_NAMES_SOCKET | EFFECT_EXEC)

// Hands over what the call ends; true when user space's descriptor table needs the record:
// every open (failed ones are counted per path), and the others when they succeed.
static __always_inline bool bookkeeping(struct scratch *s, u32 pid, u32 effects, u32 kinds,
                                        s64 ret)
{
    bool sent = false;
    if (effects & EFFECT_FD_CLOSE) // the number is free whatever close returns
        sent = handover(s, pid, s->e.args[0], FIELD_IO_ARG);
    if (effects & EFFECT_OPENS)
        sent = true;
    bool ok = ret >= 0;
    bool dupfd = false;
    if (effects & EFFECT_FD_FCNTL) {
        u32 cmd = s->e.args[1];
        dupfd = cmd == FCNTL_DUPFD || cmd == FCNTL_DUPFD_CLOEXEC;
    }
    if (ok && ((effects & EFFECT_FD_RET) || dupfd)) // a stale entry (exec, close_range) ends
        handover(s, pid, ret, FIELD_IO_ARG);
    if (ok && (effects & EFFECT_FD_DUP_TO) && (s32)s->e.args[0] != (s32)s->e.args[1])
        handover(s, pid, s->e.args[1], FIELD_IO_ARG);
    if (ok && (effects & EFFECT_FD_PAIR))
        handover_pair(s, pid, kinds);
    if (ok && ((effects & (BOOK_EFFECTS & ~EFFECT_FD_FCNTL)) || dupfd))
        sent = true;
    return sent;
}

// -- records ----------------------------------------------------------------------------------

static __always_inline struct scratch *scratch_take(void)
{
#pragma unroll
    for (u32 i = 0; i < SCRATCH_SLOTS; i++) {
        u32 slot = i;
        struct scratch *s = scratch.lookup(&slot);
        if (s && __sync_val_compare_and_swap(&s->busy, 0, 1) == 0)
            return s;
    }
    return 0;
}

static __always_inline bool selected(struct config *cfg, s64 ret, u64 d)
{
    u32 ev = cfg->events;
    if (!ev)
        return false;
    if (ev & SEL_ALL)
        return true;
    if ((ev & SEL_FAILED) && ret < 0 && ret >= -4095)
        return true;
    if ((ev & SEL_SLOW) && d >= cfg->slow_ns)
        return true;
    u64 n = cfg->sample_n;
    if ((ev & SEL_SAMPLE) && n) {
        u32 zero = 0;
        u64 *tick = sample_tick.lookup(&zero);
        if (tick && ((*tick)++ % n) == 0)
            return true;
    }
    return false;
}

static __always_inline void start_record(struct scratch *s, u32 pid, u32 tid, u64 nr, s64 ret,
                                         u64 d, u64 now, u32 abi)
{
    s->e.ts = now ? now : bpf_ktime_get_ns(); // 0: an untimed call, read for its record only
    s->e.flags = now ? 0 : EVF_UNTIMED; // (its duration, 0, is no time)
    s->e.pid = pid;
    s->e.tid = tid;
    s->e.nr = nr;
    s->e.ret = ret;
    s->e.duration_ns = d;
    s->e.abi = abi;
    s->e.data_len = 0;
    s->e.fd_path = 0;
}

// A record that could not be sent: counted as what it was for.
static __always_inline void send_failed(u32 flags, bool book)
{
    if (flags & EVF_SELECTED)
        count(DROP_EVENTS);
    if (book)
        count(DROP_FD_EVENTS);
}

static __always_inline void send_record(struct scratch *s, u32 flags, bool book)
{
    u64 len = s->e.data_len & (CAP_DATA_MAX - 1);
    s->e.flags |= flags;
    if (events.ringbuf_output(s, sizeof(struct sys_event) + len, 0) != 0) {
        send_failed(flags, book);
        return;
    }
    if (flags & EVF_SELECTED)
        count(EVENTS_SENT);
}

// execve, execveat at entry: the path and arguments, while the caller's memory is there.
static __always_inline void exec_entry(struct pt_regs *regs, u32 nr, u32 abi)
{
    struct config *cfg = get_config();
    if (!cfg || !(cfg->events | cfg->files))
        return;
    struct arg_spec *spec = arg_spec_of(abi, nr);
    u32 zero = 0;
    struct exec_capture *x = exec_scratch.lookup(&zero);
    if (!spec || !x || __sync_val_compare_and_swap(&x->busy, 0, 1) != 0)
        return; // (taken: the record goes without its fields)
    x->abi = abi;
    read_args(regs, abi, x->args);
    u32 kinds = spec->kinds, count_at = 0;
    u64 envp = 0;
    // The environment is counted first, its argument taken by value and its index only written
    // down: the verifier walks the count's loop once per state it arrives with, and the path's
    // and arguments' indexes (chosen below) or an index it had to follow would multiply them.
#pragma unroll
    for (int i = 5; i >= 0; i--) {
        if (kind_of(kinds, i) == KIND_COUNT) {
            count_at = i;
            envp = x->args[i];
        }
    }
    u32 pos = put_count(x->data, 0, count_at, envp, abi == ABI_COMPAT);
    // The kinds are taken apart again below: the compiler would otherwise keep the six it took
    // apart above, each narrowed by the test for KIND_COUNT, and the verifier would walk the
    // count's loop for every combination.
    barrier_var(kinds);
    u32 path_at = 6, argv_at = 6;
#pragma unroll
    for (u32 i = 0; i < 6; i++) {
        if (kind_of(kinds, i) == KIND_PATH && path_at == 6)
            path_at = i;
        if (kind_of(kinds, i) == KIND_ARGV && argv_at == 6)
            argv_at = i;
    }
    if (path_at < 6)
        pos = put_str(x->data, pos, path_at, KIND_PATH, x->args[path_at], CAP_PATH_MAX - 1);
    if (argv_at < 6)
        pos = put_argv(x->data, pos, argv_at, x->args[argv_at], abi == ABI_COMPAT);
    x->len = pos;
    u64 key = bpf_get_current_task();
    exec_args.update(&key, x);
    x->busy = 0;
}

// execve, execveat at exit, with what their entry captured; false when it captured nothing.
static __always_inline bool exec_exit(struct config *cfg, u32 pid, u32 tid, u32 nr, s64 ret,
                                      u64 d, u64 now, u32 flags)
{
    u64 key = bpf_get_current_task();
    struct exec_capture *x = exec_args.lookup(&key);
    if (!x)
        return false;
    u32 abi = x->abi;
    struct arg_spec *spec = arg_spec_of(abi, nr);
    bool book = cfg->files && ret >= 0 && spec && (spec->effects & EFFECT_EXEC);
    struct scratch *s = (flags || book) ? scratch_take() : 0;
    if (s) {
        start_record(s, pid, tid, raw_nr(nr, abi), ret, d, now, abi);
        // Its arguments as they were at entry: after a successful exec the registers are the
        // new program's.
        __builtin_memcpy(s->e.args, x->args, sizeof(s->e.args));
        u64 len = x->len & (CAP_DATA_MAX - 1);
        if (len && bpf_probe_read_kernel(s->data, len, x->data) != 0)
            len = 0;
        s->e.data_len = len;
        send_record(s, flags | EVF_AT_ENTRY, book);
        s->busy = 0;
    } else if (flags || book) {
        send_failed(flags, book);
    }
    exec_args.delete(&key);
    return true;
}

// After the aggregates: the record of a call the selection keeps or the descriptor table
// needs, and the per-descriptor I/O. Only runs when events or files are on.
static __always_inline void after_call(struct config *cfg, struct pt_regs *regs, u32 pid,
                                       u32 tid, u32 nr, u32 abi, s64 ret, u64 d, u64 now)
{
    u32 flags = selected(cfg, ret, d) ? EVF_SELECTED : 0;
    if (is_exec_nr(nr, abi) && exec_exit(cfg, pid, tid, nr, ret, d, now, flags))
        return;
    u32 files = cfg->files;
    if (!flags && !files)
        return;
    struct call_regs cr;
    load_call_regs(regs, &cr);
    struct arg_spec *spec = arg_spec_of(abi, nr);
    u32 kinds = 0, effects = 0;
    if (spec) {
        kinds = spec->kinds;
        effects = spec->effects;
    }
    if (files && (effects & EFFECT_FD_ARG0) && !(effects & EFFECT_FD_CLOSE))
        account_io(pid, regs_arg0(&cr, regs, abi), effects, ret, d);
    bool book_call = files && (effects & BOOK_EFFECTS);
    if (!flags && !book_call)
        return;
    struct scratch *s = scratch_take();
    if (!s) {
        send_failed(flags, book_call);
        return;
    }
    start_record(s, pid, tid, raw_nr(nr, abi), ret, d, now, abi);
    regs_args(&cr, regs, abi, s->e.args);
    bool book = book_call && bookkeeping(s, pid, effects, kinds, ret);
    if (flags || book) {
        capture_args(s, kinds, effects, ret);
        send_record(s, flags, book);
    }
    s->busy = 0;
}

// A call that ended its task (exit, exit_group) never returns: its record, if kept, is sent
// from sched_process_exit with what is known there.
static __always_inline void exit_record(u32 pid, u32 tid, u64 nr_abi, u64 d, u64 now)
{
    struct config *cfg = get_config();
    if (!cfg || !selected(cfg, 0, d))
        return;
    struct scratch *s = scratch_take();
    if (!s) {
        send_failed(EVF_SELECTED, false);
        return;
    }
    u32 abi = (nr_abi >> 32) & 3;
    start_record(s, pid, tid, raw_nr((u32)nr_abi, abi), 0, d, now, abi);
    __builtin_memset(s->e.args, 0, sizeof(s->e.args));
    send_record(s, EVF_SELECTED, false);
    s->busy = 0;
}

#if TASK_TGID_OFF < 0 && !EXIT_ONLY
// clone's flags are its first argument; clone3's the first u64 of the struct clone_args it
// points to (user memory: a bad pointer fails the call, which then forks nothing). A number
// that is clone in another ABI only (i386 clone is x86_64 getpgid) forks nothing either.
static __always_inline void clone_entry(struct inflight *f, struct pt_regs *regs, u32 nr,
                                        u32 abi)
{
    u64 arg0 = read_arg0(regs, abi);
    bool v3 = abi == ABI_COMPAT ? nr == (u32)NR_CLONE3_COMPAT
                                : (abi == ABI_X32 ? nr == X32_NR(NR_CLONE3_X32)
                                                  : nr == (u32)NR_CLONE3);
    f->clone_flags = arg0;
    if (v3 && bpf_probe_read_user(&f->clone_flags, sizeof(f->clone_flags), (void *)arg0) != 0)
        f->clone_flags = 0;
}
#endif

// A launched command armed by SyscallProgram.set_target(at_exec): true while its calls are
// still the launcher's (until the entry of its first exec, which disarms it and counts).
static __always_inline bool before_exec(u32 pid, u32 nr, u32 abi)
{
    u32 zero = 0;
    u32 *armed = exec_armed.lookup(&zero);
    if (!armed || *armed != pid)
        return false;
    if (!is_exec_nr(nr, abi))
        return true;
    *armed = 0;
    return false;
}

// The aggregate key's number and ABI of the call the kernel dispatches as `id`: x32's number
// without its bit (the ABI says x32); any other, syscall(-1) included, as the 32 bits the
// kernel dispatches on. False for the syscall our own uretprobes make on each probed return:
// not the target's doing, so not counted.
static __always_inline bool call_key(struct pt_regs *regs, u64 id, u32 *nr, u32 *abi)
{
    *abi = call_abi(regs, id);
    *nr = *abi == ABI_X32 ? X32_NR(id) : (u32)id;
#if HAVE_HIDDEN
    if (*nr == (u32)NR_HIDDEN && *abi == 0)
        return false;
#endif
    return true;
}

#if !EXIT_ONLY
// The entry's clock (the in-flight slot's ts is never 0 for a call in flight).
static __always_inline void start_timing(struct inflight *f)
{
#if TIMING_MODE == TIMING_EXACT
    f->ts = bpf_ktime_get_ns();
#elif TIMING_MODE == TIMING_OFF
    f->ts = 1; // in flight, time unknown (no clock is read)
    f->nr |= NR_UNTIMED;
#else
    f->since++;
    f->win_calls++;
    u64 j = bpf_jiffies64();
    if (f->skip && j - f->timed_j < SAMPLE_STALE_JIFFIES) {
        f->skip--;
        // The in-flight view's start: the last timed call's (earlier than this call's).
        f->ts = f->win_ts ? f->win_ts : 1;
        f->nr |= NR_UNTIMED;
        return;
    }
    f->ts = bpf_ktime_get_ns();
    f->timed_j = j;
#endif
}

#if TIMING_MODE == TIMING_SAMPLED
// At a timed call's exit: how many calls it stands for, and how many of the thread's next
// calls go untimed (the rate is decided over windows of at least SAMPLE_WINDOW_NS).
static __always_inline u32 sample_decide(struct inflight *f, u64 now, u64 d)
{
    u32 weight = f->since ? f->since : 1;
    f->since = 0;
    u32 shift = f->shift;
    u64 el = now - f->win_ts;
    if (!f->win_ts) {
        f->win_ts = now;
        f->win_calls = 0;
    } else if (el >= SAMPLE_WINDOW_NS) {
        if (el > 1000000000000ULL) // keeps the products below from overflowing
            el = 1000000000000ULL;
        u64 calls = (u64)f->win_calls * 1000000000ULL;
        if (shift < SAMPLE_SHIFT_MAX && calls > (SAMPLE_RATE_HI << shift) * el)
            shift++;
        else if (shift > 0 && calls < (SAMPLE_RATE_LO << shift) * el)
            shift--;
        f->win_ts = now;
        f->win_calls = 0;
    }
    if (d >= SAMPLE_SLOW_NS)
        shift = 0;
    shift &= 15;
    f->shift = shift;
    f->skip = (1U << shift) - 1;
    return weight;
}
#endif

// The weight of the call in flight at its end (0: not timed, counts and errors only), and its
// time d from the entry to now. Exact: every call weighs 1.
static __always_inline u32 end_timing(struct inflight *f, u64 now, u64 *d)
{
#if TIMING_MODE == TIMING_EXACT
    *d = now - f->ts;
    return 1;
#elif TIMING_MODE == TIMING_OFF
    *d = 0;
    return 0;
#else
    if (f->nr & NR_UNTIMED) {
        *d = 0;
        return 0;
    }
    *d = now - f->ts;
    return sample_decide(f, now, *d);
#endif
}
#endif

#if EXIT_ONLY
// Attached only while events are selected (SyscallProgram.set_selection): an exec's path and
// arguments are in the caller's memory at entry only. The launched command's first exec
// is disarmed at its exit, where it is counted.
RAW_TRACEPOINT_PROBE(sys_enter)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (!is_target(pid))
        return 0;
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    u32 nr, abi;
    if (call_key(regs, ctx->args[1], &nr, &abi) && is_exec_nr(nr, abi))
        exec_entry(regs, nr, abi);
    return 0;
}
#else
RAW_TRACEPOINT_PROBE(sys_enter)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    if (!is_target(pid))
        return 0;
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    u32 nr, abi;
    if (!call_key(regs, ctx->args[1], &nr, &abi) || before_exec(pid, nr, abi))
        return 0;
    struct inflight *f = inflight_get((u32)pid_tgid, true);
    if (!f) {
        count(DROP_INFLIGHT);
        return 0;
    }
    f->nr = nr | ((u64)abi << 32);
    start_timing(f);
    // exit and exit_group need nothing here: the status is the task's exit_code at its exit.
    if (is_exec_nr(nr, abi)) {
        exec_entry(regs, nr, abi);
    }
#if TASK_TGID_OFF < 0
    else if (is_clone_nr(nr, abi)) {
        clone_entry(f, regs, nr, abi);
    }
#endif
    return 0;
}
#endif

// A task being killed (SIGKILL pending: a fatal signal, exit_group or exec of another
// thread) leaves a blocked call with a restart code that is never seen by user space: not a
// failure of the call. Read only for those codes.
static __always_inline bool being_killed(void)
{
#if TASK_SIGPENDING_OFF >= 0
    u64 word = 0;
    void *task = (void *)bpf_get_current_task();
    bpf_probe_read_kernel(&word, sizeof(word), task + TASK_SIGPENDING_OFF);
    return word & (1ULL << (9 - 1)); // SIGKILL, sigset_t bit sig - 1
#else
    return false;
#endif
}

static __always_inline bool failed(s64 ret)
{
    if (ret >= 0 || ret < -4095)
        return false;
    // -ERESTARTSYS .. -ERESTART_RESTARTBLOCK (512..516) and -EPROBE_DEFER (517)
    if (ret <= -512 && ret >= -517)
        return !being_killed();
    return true;
}

static __always_inline void add_stat(struct stat_val *v, s64 ret, u64 d, u32 weight)
{
    // One task runs one syscall at a time and each key holds one tid, so the key has a single
    // writer: plain increments are exact, no atomics needed.
#if TIMING_MODE == TIMING_EXACT
    // The first call sets the minimum, whatever its time: 0 is a real one (a call whose entry
    // was not seen, see unseen_call), so 0 cannot mean unset.
    if (d < v->min_ns || v->count == 0)
        v->min_ns = d;
    v->count++;
    if (failed(ret))
        v->errors++;
    v->total_ns += d;
    if (d > v->max_ns)
        v->max_ns = d;
    u64 b = hist_bucket(d);
    barrier_var(b);
    if (b < HIST_BUCKETS)
        v->hist[b]++;
#else
    // sampled: a timed call adds its time and bucket times the calls it stands for, so
    // totals stay monotonic; the histogram's sum is then not the count (user space re-reads
    // changed entries once instead of comparing them). off: weight is always 0.
    if (weight) {
        // The histogram is empty until the first timed call: the minimum is unset until then.
        if (d < v->min_ns || v->max_ns == 0 && v->min_ns == 0 && v->total_ns == 0)
            v->min_ns = d;
        v->total_ns += d * weight;
        if (d > v->max_ns)
            v->max_ns = d;
        u64 b = hist_bucket(d);
        barrier_var(b);
        if (b < HIST_BUCKETS)
            v->hist[b] += weight;
    }
    if (failed(ret))
        v->errors++;
    v->count++;
#endif
}

static __always_inline void record_stat_w(u32 pid, u32 tid, u64 nr_abi, s64 ret, u64 d,
                                          u32 weight)
{
    struct stat_key key = {.pid = pid, .tid = tid, .nr = (u32)nr_abi, .abi = (nr_abi >> 32) & 3};
    struct stat_val *v = stats.lookup(&key);
    if (!v) {
        u32 zero_idx = 0;
        struct stat_val *zero = stat_zero.lookup(&zero_idx);
        if (!zero)
            return;
        if (stats.update(&key, zero) != 0)
            count(DROP_STATS_FULL);
        v = stats.lookup(&key);
    }
    if (v)
        add_stat(v, ret, d, weight);
}

// A call timed in full (profile.bpf.c's function probes): a weight of one, none when off.
static __always_inline void record_stat(u32 pid, u32 tid, u64 nr_abi, s64 ret, u64 d)
{
    record_stat_w(pid, tid, nr_abi, ret, TIMING_MODE == TIMING_OFF ? 0 : d,
                  TIMING_MODE == TIMING_OFF ? 0 : 1);
}

#if USE_TASK_STORAGE || EXIT_ONLY
// The call's number at its exit, as the kernel gave it to sys_enter: x86_64's orig_ax (with
// the x32 bit; an i386 call's, zero-extended), arm64's syscallno (an int, sign-extended).
static __always_inline u64 exit_call_id(struct pt_regs *regs)
{
    u64 id = ~0ULL;
#if defined(__x86_64__)
    bpf_probe_read_kernel(&id, sizeof(id), &regs->orig_ax);
#elif defined(__aarch64__)
    s32 no = -1;
    bpf_probe_read_kernel(&no, sizeof(no), &regs->syscallno);
    id = (u64)(s64)no;
#endif
    return id;
}
#endif

#if USE_TASK_STORAGE && !EXIT_ONLY

// A call that returns in a traced thread (it has a slot: its earlier calls were seen entering)
// with none in flight was entered without our sys_enter: the kernel runs seccomp before that
// tracepoint, so a call a filter refuses (SECCOMP_RET_ERRNO, as Docker's default profile and
// systemd's SystemCallFilter= do; RET_TRAP; RET_KILL_PROCESS, whose exit still runs before the
// SIGSYS kills) only exits. strace sees and counts those calls; so do we, with their number
// and ABI read here as sys_enter reads them, and a time of 0 (the filter's time, and for
// SECCOMP_RET_USER_NOTIF the supervisor's, is not measured). Leaves out: a pid no longer (or
// not yet) a target; a launched command before its exec (never a slot then anyway); the
// kernel's "no call" number -1 (a ptrace tracer skipped the call, or our own uretprobe
// syscall, which sets it before returning), so a refused syscall(-1) is not counted either.
// A thread without a slot (its first exit since tracing began, a call entered before; a new
// task's return from fork) is never counted here: the in-flight view shows the former.
// Known gap: a thread retargeted during a call (traced, untraced, traced again) has that one
// call counted with time 0. Cost: only this branch, rare; the common path is unchanged.
static __always_inline bool unseen_call(struct pt_regs *regs, u32 pid, u64 *nr_abi)
{
    if (!is_target(pid))
        return false;
    u32 zero = 0;
    u32 *armed = exec_armed.lookup(&zero);
    if (armed && *armed == pid)
        return false;
    u64 id = exit_call_id(regs);
    u32 nr, abi;
    if ((u32)id == 0xffffffffU || !call_key(regs, id, &nr, &abi))
        return false;
    *nr_abi = nr | ((u64)abi << 32);
    return true;
}
#endif

#if EXIT_ONLY
// A handler is about to run with a frame on the thread's stack: its return is a sigreturn.
TRACEPOINT_PROBE(signal, signal_deliver)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (args->sa_handler <= 1 || !is_target(pid)) // SIG_DFL, SIG_IGN: no frame
        return 0;
    struct task_marks *f = task_marks.task_storage_get(bpf_get_current_task_btf(), 0,
                                                     BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!f)
        return 0;
    u32 depth = f->depth;
    if (depth < 64) {
        if (args->sa_flags & SA_SIGINFO_FLAG)
            f->rt |= 1ULL << depth;
        else
            f->rt &= ~(1ULL << depth);
    }
    f->depth = depth + 1;
    return 0;
}

// An exit with the "no call" number -1 (in the ABI of the registers it returns to): the
// return from a handler when the thread has a frame (rt_sigreturn, or an i386 handler's
// sigreturn without SA_SIGINFO), else a call a ptrace tracer skipped or syscall(-1), counted
// as the number -1 like sys_enter counts it. (x32 processes' rt_sigreturn is counted as the
// native one: their registers do not say x32 once restored.)
static __always_inline bool sigreturn_key(u32 abi, u32 *nr, u32 *abi_out)
{
    *abi_out = abi;
    *nr = 0xffffffffU;
    struct task_marks *f = task_marks.task_storage_get(bpf_get_current_task_btf(), 0, 0);
    if (!f || !f->depth)
        return true;
    u32 depth = f->depth - 1;
    f->depth = depth;
    bool rt = depth >= 64 || ((f->rt >> (depth & 63)) & 1);
    if (abi == ABI_COMPAT)
        *nr = rt ? (u32)NR_RT_SIGRETURN_COMPAT : (u32)NR_SIGRETURN_COMPAT;
    else
        *nr = (u32)NR_RT_SIGRETURN;
    return true;
}

// The key of the call whose registers these are, as call_key gives it at entry; false for our
// uretprobe's. x86_64: orig_ax, ip and cs in one read. -1: see sigreturn_key (only at
// sys_exit: a task ending holds -1 when a signal ended it).
static __always_inline bool exit_key(struct pt_regs *regs, bool sigreturn, u32 *nr, u32 *abi)
{
#if defined(__x86_64__)
    struct {
        u64 orig_ax;
        u64 ip;
        u64 cs;
    } r = {};
    bpf_probe_read_kernel(&r, sizeof(r), &regs->orig_ax);
    u64 id = r.orig_ax;
    if ((u32)id == 0xffffffffU)
        return sigreturn && sigreturn_key(r.cs == 0x23 ? ABI_COMPAT : 0, nr, abi);
    *abi = x32_nr(id) ? ABI_X32 : ((u16)r.cs == 0x23 ? ABI_COMPAT : 0);
    *nr = *abi == ABI_X32 ? X32_NR(id) : (u32)id;
#if HAVE_HIDDEN
    if (*nr == (u32)NR_HIDDEN && *abi == 0)
        return false;
#endif
    return true;
#else
    u64 id = exit_call_id(regs);
    if ((u32)id == 0xffffffffU)
        return sigreturn && sigreturn_key(call_abi(regs, 0), nr, abi);
    return call_key(regs, id, nr, abi);
#endif
}

// A successful exec returns as an execve of the new program's ABI (the kernel sets its
// registers so: a 64-bit shell's execve of an i386 program ends as i386's execve): the call as
// it was made is the one sched_prepare_exec wrote down.
static __always_inline void exec_caller_key(u32 *nr, u32 *abi)
{
    struct task_marks *f = task_marks.task_storage_get(bpf_get_current_task_btf(), 0, 0);
    if (!f || !f->exec_key)
        return;
    *nr = (u32)f->exec_key;
    *abi = (f->exec_key >> 32) & 3;
    f->exec_key = 0;
}

// The exec is past its point of no return, before the new program's ABI is set: its key as
// sys_enter would have taken it.
TRACEPOINT_PROBE(sched, sched_prepare_exec)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (!is_target(pid))
        return 0;
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    u32 nr, abi;
    if (!regs || !exit_key(regs, false, &nr, &abi))
        return 0;
    struct task_marks *f = task_marks.task_storage_get(bpf_get_current_task_btf(), 0,
                                                       BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (f)
        f->exec_key = nr | ((u64)abi << 32) | (1ULL << 63);
    return 0;
}

// The number and ABI of the call that ends (from what the kernel kept of its entry), or false
// when it is not counted: the kernel's "no call" -1 (a ptrace tracer skipped it, or our own
// uretprobe syscall), our uretprobe's number, a launched command's calls before its first
// exec (whose exit disarms it, and counts), and a new task's return from fork (0 from clone,
// clone3, fork or vfork: the parent's call, counted in the parent). A call refused by seccomp
// before sys_enter is counted, as strace counts it; so is a call in flight when tracing began.
static __always_inline bool ending_call(struct pt_regs *regs, u32 pid, s64 ret, u64 *nr_abi)
{
    u32 nr, abi;
    if (!exit_key(regs, true, &nr, &abi))
        return false;
    if (ret == 0 && is_exec_nr(nr, abi))
        exec_caller_key(&nr, &abi);
    if (ret == 0 && is_forking_nr(nr, abi))
        return false;
    u32 zero = 0;
    u32 *armed = exec_armed.lookup(&zero);
    if (armed && *armed == pid) {
        if (!is_exec_nr(nr, abi))
            return false;
        *armed = 0;
    }
    *nr_abi = nr | ((u64)abi << 32);
    return true;
}

// --timing off: one tracepoint's work. Nothing is timed, so nothing needs the entry.
RAW_TRACEPOINT_PROBE(sys_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    if (!is_target(pid))
        return 0;
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    s64 ret = ctx->args[1];
    u64 nr_abi;
    if (!ending_call(regs, pid, ret, &nr_abi))
        return 0;
    u32 tid = (u32)pid_tgid;
    record_stat_w(pid, tid, nr_abi, ret, 0, 0);
    struct config *cfg = get_config();
    if (cfg && (cfg->events | cfg->files))
        after_call(cfg, regs, pid, tid, (u32)nr_abi, (nr_abi >> 32) & 3, ret, 0, 0);
    return 0;
}
#else
RAW_TRACEPOINT_PROBE(sys_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    u32 pid = pid_tgid >> 32;
    // Every process on the machine takes this path: the target bitmap (one array word) is
    // cheaper than asking task storage, and leaves the others at that. A call in flight when
    // its process stopped being a target is not counted.
    if (!is_target(pid))
        return 0;
    struct inflight *f = inflight_get(tid, false);
    if (!f)
        return 0; // its first call since tracing began (entered before)
    u64 now = 0, d = 0, nr_abi = 0;
    u32 weight = 1;
    if (f->ts) {
#if TIMING_MODE == TIMING_EXACT
        now = bpf_ktime_get_ns();
#elif TIMING_MODE == TIMING_SAMPLED
        if (!(f->nr & NR_UNTIMED))
            now = bpf_ktime_get_ns();
#endif
        weight = end_timing(f, now, &d);
        nr_abi = f->nr;
        inflight_clear(tid, f);
    } else {
#if USE_TASK_STORAGE
        if (!unseen_call((struct pt_regs *)ctx->args[0], pid, &nr_abi))
            return 0;
#if TIMING_MODE == TIMING_OFF
        weight = 0;
#endif
#else
        // The hash fallback deletes a thread's slot after each call, so a call entered
        // without sys_enter (refused by seccomp) cannot be told from one entered before
        // tracing began: neither is counted (this branch is not taken).
        return 0;
#endif
    }
    s64 ret = ctx->args[1];
    record_stat_w(pid, tid, nr_abi, ret, d, weight);
    struct config *cfg = get_config();
    if (cfg && (cfg->events | cfg->files))
        after_call(cfg, (struct pt_regs *)ctx->args[0], pid, tid, (u32)nr_abi,
                   (nr_abi >> 32) & 3, ret, d, now);
    return 0;
}
#endif

#if EXIT_ONLY
// A task that ends inside exit or exit_group (which never return): that call counts here. The
// task's user registers still hold the call's number (orig_ax); a task ended by a signal
// holds -1 there (an interrupt's frame) or the number of a call that returned (counted at its
// exit). x86_64: the return value is still -ENOSYS, as the entry set it (a call that returned,
// refused by seccomp, holds its result).
static __always_inline void exit_call_at_exit(u32 pid, u32 tid)
{
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    if (!regs)
        return;
    u32 nr, abi;
    if (!exit_key(regs, false, &nr, &abi) || !is_exit_nr(nr, abi))
        return;
#if defined(__x86_64__)
    s64 ax = 0;
    bpf_probe_read_kernel(&ax, sizeof(ax), &regs->ax);
    if (ax != -38) // -ENOSYS
        return;
#endif
    u32 zero = 0;
    u32 *armed = exec_armed.lookup(&zero);
    if (armed && *armed == pid)
        return; // the launcher's exit before its exec
    u64 nr_abi = nr | ((u64)abi << 32);
    record_stat_w(pid, tid, nr_abi, 0, 0, 0);
    exit_record(pid, tid, nr_abi, 0, 0);
}
#endif

static __always_inline struct proc_event *proc_event_new(u32 kind, u32 pid, u32 tid)
{
    struct proc_event *e = proc_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count(DROP_PROC_EVENTS);
        return 0;
    }
    e->ts = bpf_ktime_get_ns();
    e->kind = kind;
    e->pid = pid;
    e->tid = tid;
    e->ppid = 0;
    e->status = -1;
    e->flags = 0;
    e->filename[0] = 0;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    return e;
}

#if TASK_TGID_OFF >= 0
// The raw tracepoint: its arguments are the two tasks, and the new one's tgid says whether it
// is a thread (CLONE_THREAD puts it in its parent's group), whatever call made it.
RAW_TRACEPOINT_PROBE(sched_process_fork)
{
    u32 parent = bpf_get_current_pid_tgid() >> 32;
    if (!is_target(parent))
        return 0;
    void *task = (void *)ctx->args[1];
    u32 child = 0, tgid = 0;
    bpf_probe_read_kernel(&child, sizeof(child), task + TASK_PID_OFF);
    bpf_probe_read_kernel(&tgid, sizeof(tgid), task + TASK_TGID_OFF);
    if (FOLLOW)
        set_target(child, true); // (a thread's bit: see below)
    struct proc_event *e = proc_event_new(PROC_FORK, parent, child);
    if (!e)
        return 0;
    e->ppid = parent;
    if (tgid == parent)
        e->flags = PROC_FLAG_THREAD;
    proc_events.ringbuf_submit(e, 0);
    return 0;
}
#else
TRACEPOINT_PROBE(sched, sched_process_fork)
{
    u32 parent = bpf_get_current_pid_tgid() >> 32;
    if (!is_target(parent))
        return 0;
    u32 child = args->child_pid;
    // child_pid is a task id: for a new thread it is not a process id, and setting its bit is
    // harmless (threads are filtered by their process's bit); sched_process_exit clears it.
    if (FOLLOW)
        set_target(child, true);
    // This runs in the parent, inside the call that forked: fork, vfork, clone or clone3
    // (the kernel's own workers, io_uring's and vhost's, are made without this event). Only
    // clone and clone3 make threads; a call entered before tracing began is not known and
    // is taken for a process (a table copied too many, never one missing).
    struct inflight *f = inflight_get((u32)bpf_get_current_pid_tgid(), false);
    bool thread = f && f->ts && is_clone_nr((u32)f->nr, (f->nr >> 32) & 3) &&
                  (f->clone_flags & CLONE_THREAD_FLAG);
    struct proc_event *e = proc_event_new(PROC_FORK, parent, child);
    if (!e)
        return 0;
    e->ppid = parent;
    if (thread)
        e->flags = PROC_FLAG_THREAD;
    proc_events.ringbuf_submit(e, 0);
    return 0;
}
#endif

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    if (!is_target(pid))
        return 0;
    struct proc_event *e = proc_event_new(PROC_EXEC, pid, (u32)pid_tgid);
    if (!e)
        return 0;
    bpf_probe_read_kernel_str(&e->filename, sizeof(e->filename),
                              (void *)args + (args->data_loc_filename & 0xFFFF));
    proc_events.ringbuf_submit(e, 0);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    u32 tid = (u32)pid_tgid;
    if (!is_target(pid))
        return 0;
#if HAVE_GROUP_DEAD
    bool process_gone = args->group_dead;
#else
    bool process_gone = pid == tid;
#endif
    if (tid != pid)
        set_target(tid, false); // the bit a traced thread's creation set
    u64 task = bpf_get_current_task();
#if EXIT_ONLY
    exit_call_at_exit(pid, tid);
#else
    // A syscall that never returns (exit, exit_group) still counts, timed up to the exit.
    struct inflight *f = inflight_get(tid, false);
    if (f && f->ts) {
        u64 now = bpf_ktime_get_ns(); // (a process exit: rare enough to read the clock)
        u64 d = 0;
        u32 weight = 1;
#if TIMING_MODE == TIMING_EXACT
        d = now - f->ts;
#else
        weight = end_timing(f, now, &d);
#endif
        record_stat_w(pid, tid, f->nr, 0, d, weight);
        exit_record(pid, tid, f->nr, d, weight ? now : 0);
        inflight_clear(tid, f);
    }
#endif
    exec_args.delete(&task); // an exec that never returned
    if (process_gone)
        set_target(pid, false);
    u32 zero = 0;
    u32 *armed = exec_armed.lookup(&zero);
    if (armed && *armed == pid) // ended before its exec: the number may be reused
        *armed = 0;
    struct proc_event *e = proc_event_new(PROC_EXIT, pid, tid);
    if (!e)
        return 0;
#if TASK_EXIT_CODE_OFF >= 0
    // Set by do_exit before this tracepoint: exit_group's code << 8, or the fatal signal (the
    // group's exit code: the signal that killed it, not the SIGKILL each thread then takes),
    // with 0x80 for a core dump.
    s32 code = -1;
    if (bpf_probe_read_kernel(&code, sizeof(code), (void *)task + TASK_EXIT_CODE_OFF) == 0)
        e->status = code;
#endif
    e->flags = process_gone ? PROC_FLAG_GONE : 0;
    proc_events.ringbuf_submit(e, 0);
    return 0;
}

// A target task's new name (prctl PR_SET_NAME, a write to /proc/.../comm, exec): pid is the
// renamed task's process when the task renames itself, else 0 (another task renamed it).
TRACEPOINT_PROBE(task, task_rename)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = args->pid;
    bool self = tid == (u32)pid_tgid;
    u32 pid = self ? pid_tgid >> 32 : 0;
    // Another task's: its bit is set when it was made while traced (tid == pid for a process).
    if (!is_target(self ? pid : tid))
        return 0;
    struct proc_event *e = proc_event_new(PROC_RENAME, pid, tid);
    if (!e)
        return 0;
    bpf_probe_read_kernel(&e->comm, sizeof(e->comm), args->newcomm);
    e->comm[sizeof(e->comm) - 1] = 0;
    proc_events.ringbuf_submit(e, 0);
    return 0;
}
