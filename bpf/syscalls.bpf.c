// sikte-tui syscall tracer: exact per-(pid, tid, syscall) aggregates in maps, selected
// individual events through a ring buffer, process lifecycle events through another.
//
// Compiled by bcc with -D options from tracing/engine/program.py:
//   PID_WORDS         words in the target bitmap (pid_max / 64, rounded up)
//   FOLLOW            1: children of traced processes become targets at fork
//   EV_ALL, EV_FAILED 1: send every event / every failed syscall
//   EV_SLOW_NS        >0: send syscalls slower than this
//   EV_SAMPLE_N       >0: send 1 in N syscalls (per CPU)
//   RINGBUF_PAGES     size of the syscall event ring buffer in pages
//   NR_EXIT, NR_EXIT_GROUP, NR_EXIT_COMPAT, NR_EXIT_GROUP_COMPAT: numbers that end a task
//   NR_HIDDEN        a syscall not counted (uretprobe, made by our own probes), or -1
//   HAVE_GROUP_DEAD   sched_process_exit has the group_dead field (newer kernels)
//   USE_TASK_STORAGE  1: keep the in-flight syscall in BPF task storage (5.11+), else a hash
//   HIST_SUB, HIST_SUB_BITS, HIST_PMAX, HIST_BUCKETS: the latency histogram's layout, from
//                     tracing/model/stats.py (the one definition; user space reads the buckets
//                     back with its bucket_bounds): HIST_SUB = 2^HIST_SUB_BITS linear buckets
//                     per power of two, HIST_PMAX the last power of two with its own buckets
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

struct stat_key {
    u32 pid;
    u32 tid;
    u32 nr;
    u32 pad;
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
    u64 nr;
};

struct sys_event {
    u64 ts;
    u32 pid;
    u32 tid;
    u64 nr;
    s64 ret;
    u64 duration_ns;
    u64 args[6];
};

enum proc_kind { PROC_FORK = 1, PROC_EXEC = 2, PROC_EXIT = 3 };

struct proc_event {
    u64 ts;
    u32 kind;
    u32 pid;        // the process (tgid) the event is about
    u32 tid;        // fork: the new task; exec, exit: the task itself
    u32 ppid;       // fork: the parent process
    s32 status;     // exit: wait(2)-style status when known, else -1
    u32 flags;      // exit: 1 when the whole process is gone
    char comm[16];
    char filename[128];
};

// Drop and fault counters, one slot per cause, per CPU so counting never contends.
enum drop_slot {
    DROP_EVENTS = 0,      // syscall events the ring buffer had no room for
    DROP_STATS_FULL = 1,  // aggregates lost because the stats map was full
    DROP_PROC_EVENTS = 2, // process events lost
    DROP_INFLIGHT = 3,    // in-flight slots that could not be created
    EVENTS_SENT = 4,      // syscall events submitted (for drop accounting)
    DROP_SLOTS = 5,
};

BPF_ARRAY(targets, u64, PID_WORDS);
BPF_F_TABLE("hash", struct stat_key, struct stat_val, stats, STATS_ENTRIES, BPF_F_NO_PREALLOC);
BPF_HASH(exit_status, u32, s32, 16384);
// A zeroed value to create stats entries from: struct stat_val is too big for the BPF stack.
BPF_ARRAY(stat_zero, struct stat_val, 1);
BPF_PERCPU_ARRAY(counters, u64, DROP_SLOTS);
BPF_PERCPU_ARRAY(sample_tick, u64, 1);
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
BPF_RINGBUF_OUTPUT(proc_events, 64);

#if USE_TASK_STORAGE
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

static __always_inline void remember_exit_status(u32 pid, u64 nr, u64 code)
{
    if (nr != NR_EXIT_GROUP && nr != NR_EXIT && nr != NR_EXIT_GROUP_COMPAT &&
        nr != NR_EXIT_COMPAT)
        return;
    s32 status = (code & 0xff) << 8;
    exit_status.update(&pid, &status);
}

RAW_TRACEPOINT_PROBE(sys_enter)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    if (!is_target(pid))
        return 0;
    u64 nr = ctx->args[1];
    // The syscall our own uretprobes make on each probed return (NR_HIDDEN): not the
    // target's doing, so not counted.
    if (nr == (u64)NR_HIDDEN)
        return 0;
    struct inflight *f = inflight_get((u32)pid_tgid, true);
    if (!f) {
        count(DROP_INFLIGHT);
        return 0;
    }
    f->nr = nr;
    f->ts = bpf_ktime_get_ns();
    if (nr == NR_EXIT_GROUP || nr == NR_EXIT || nr == NR_EXIT_GROUP_COMPAT ||
        nr == NR_EXIT_COMPAT) {
        struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
        u64 code = 0;
#if defined(__x86_64__)
        bpf_probe_read_kernel(&code, sizeof(code), &regs->di);
#elif defined(__aarch64__)
        bpf_probe_read_kernel(&code, sizeof(code), &regs->regs[0]);
#endif
        remember_exit_status(pid, nr, code);
    }
    return 0;
}

static __always_inline bool selected(s64 ret, u64 d)
{
    if (EV_ALL)
        return true;
    if (EV_FAILED && ret < 0 && ret >= -4095)
        return true;
    if (EV_SLOW_NS && d >= EV_SLOW_NS)
        return true;
    if (EV_SAMPLE_N) {
        u32 zero = 0;
        u64 *tick = sample_tick.lookup(&zero);
        if (tick && ((*tick)++ % EV_SAMPLE_N) == 0)
            return true;
    }
    return false;
}

static __always_inline void read_args(struct pt_regs *regs, u64 *args)
{
#if defined(__x86_64__)
    bpf_probe_read_kernel(&args[0], 8, &regs->di);
    bpf_probe_read_kernel(&args[1], 8, &regs->si);
    bpf_probe_read_kernel(&args[2], 8, &regs->dx);
    bpf_probe_read_kernel(&args[3], 8, &regs->r10);
    bpf_probe_read_kernel(&args[4], 8, &regs->r8);
    bpf_probe_read_kernel(&args[5], 8, &regs->r9);
#elif defined(__aarch64__)
    // x0 holds the return value by now; the kernel keeps the first argument in orig_x0.
    bpf_probe_read_kernel(&args[0], 8, &regs->orig_x0);
    bpf_probe_read_kernel(&args[1], 40, &regs->regs[1]);
#endif
}

static __always_inline void send_event(u32 pid, u32 tid, u64 nr, s64 ret, u64 d, u64 now,
                                       struct pt_regs *regs)
{
    struct sys_event *e = events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count(DROP_EVENTS);
        return;
    }
    e->ts = now;
    e->pid = pid;
    e->tid = tid;
    e->nr = nr;
    e->ret = ret;
    e->duration_ns = d;
    if (regs)
        read_args(regs, e->args);
    else
        __builtin_memset(e->args, 0, sizeof(e->args));
    events.ringbuf_submit(e, 0);
    count(EVENTS_SENT);
}

static __always_inline void add_stat(struct stat_val *v, s64 ret, u64 d)
{
    // One task runs one syscall at a time and each key holds one tid, so the key has a single
    // writer: plain increments are exact, no atomics needed.
    v->count++;
    if (ret < 0 && ret >= -4095)
        v->errors++;
    v->total_ns += d;
    if (d < v->min_ns || v->min_ns == 0)
        v->min_ns = d;
    if (d > v->max_ns)
        v->max_ns = d;
    u64 b = hist_bucket(d);
    barrier_var(b);
    if (b < HIST_BUCKETS)
        v->hist[b]++;
}

static __always_inline void record_stat(u32 pid, u32 tid, u64 nr, s64 ret, u64 d)
{
    struct stat_key key = {.pid = pid, .tid = tid, .nr = nr};
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
        add_stat(v, ret, d);
}

RAW_TRACEPOINT_PROBE(sys_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct inflight *f = inflight_get(tid, false);
    if (!f || !f->ts)
        return 0; // not traced, or entered before tracing started
    u64 now = bpf_ktime_get_ns();
    u64 d = now - f->ts;
    u64 nr = f->nr;
    inflight_clear(tid, f);
    s64 ret = ctx->args[1];
    u32 pid = pid_tgid >> 32;
    record_stat(pid, tid, nr, ret, d);
    if (selected(ret, d))
        send_event(pid, tid, nr, ret, d, now, (struct pt_regs *)ctx->args[0]);
    return 0;
}

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
    struct proc_event *e = proc_event_new(PROC_FORK, parent, child);
    if (!e)
        return 0;
    e->ppid = parent;
    proc_events.ringbuf_submit(e, 0);
    return 0;
}

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
    // A syscall that never returns (exit, exit_group) still counts, timed up to the exit.
    struct inflight *f = inflight_get(tid, false);
    if (f && f->ts) {
        u64 now = bpf_ktime_get_ns();
        u64 d = now - f->ts;
        record_stat(pid, tid, f->nr, 0, d);
        if (selected(0, d))
            send_event(pid, tid, f->nr, 0, d, now, 0);
        inflight_clear(tid, f);
    }
    struct proc_event *e = proc_event_new(PROC_EXIT, pid, tid);
    if (process_gone) {
        set_target(pid, false);
        s32 *status = exit_status.lookup(&pid);
        if (e && status)
            e->status = *status;
        exit_status.delete(&pid);
    }
    if (!e)
        return 0;
    e->flags = process_gone;
    proc_events.ringbuf_submit(e, 0);
    return 0;
}

// A fatal signal with the default action ends the process: remember it as its exit status.
TRACEPOINT_PROBE(signal, signal_deliver)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (!is_target(pid) || args->sa_handler != 0)
        return 0;
    int sig = args->sig;
    // Signals whose default action is to terminate (SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP,
    // SIGTTIN, SIGTTOU, SIGURG, SIGWINCH are not).
    u64 fatal = 0xffffffffULL & ~((1ULL << 17) | (1ULL << 18) | (1ULL << 19) | (1ULL << 20) |
                                  (1ULL << 21) | (1ULL << 22) | (1ULL << 23) | (1ULL << 28) | 1ULL);
    if (sig <= 0 || sig >= 64 || (sig < 32 && !(fatal & (1ULL << sig))))
        return 0;
    s32 status = sig & 0x7f;
    exit_status.update(&pid, &status);
    return 0;
}
