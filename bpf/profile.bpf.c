// sikte-tui on-CPU stack sampling and function probes, compiled after syscalls.bpf.c into the
// same object: is_target(), record_stat() and the stats map are that file's.
//
// Compiled by bcc with -D options from tracing/engine/program.py:
//   STACK_ENTRIES    stacks the stack-trace map holds (user and kernel together)
//   SAMPLE_ENTRIES   (pid, tid, user stack, kernel stack) counts the sample map holds
//   PROBE_NR_BASE    pseudo syscall number of function probe 0 (probe i counts as base + i)
//
// Samples: a perf cpu-clock event on every CPU runs on_cpu_sample; samples of traced
// processes are counted in the kernel per (pid, tid, user stack id, kernel stack id), so only
// the distinct stacks and their counts cross to user space. The stack and sample maps come in
// two halves: the kernel fills the one sample_half names while user space reads, then empties,
// the other, so the stack map never fills up with the stacks of a long trace.
//
// Function probes: probe_entry_<i> / probe_return_<i> on a user-space function count its calls
// and latency in the syscall stats map under nr PROBE_NR_BASE + i, so they get the same
// columns, histograms and journal rows as syscalls.
#include <uapi/linux/bpf_perf_event.h>

struct sample_key {
    u32 pid;
    u32 tid;
    s32 user_stack;   // stack id, or get_stackid's negative errno
    s32 kernel_stack;
};

enum sample_slot {
    SAMPLES_TAKEN = 0,    // samples of traced processes
    STACKS_MISSING = 1,   // samples whose user stack could not be read
    STACK_COLLISIONS = 2, // samples with a stack lost to the stack map (-EEXIST, -ENOMEM)
    SAMPLES_LOST = 3,     // samples not counted because the sample map was full
    SAMPLE_SLOTS = 4,
};

BPF_ARRAY(sample_half, u32, 1); // the half the kernel writes: 0 or 1 (user space flips it)
BPF_STACK_TRACE(stack_traces_0, STACK_ENTRIES);
BPF_STACK_TRACE(stack_traces_1, STACK_ENTRIES);
BPF_HASH(samples_0, struct sample_key, u64, SAMPLE_ENTRIES);
BPF_HASH(samples_1, struct sample_key, u64, SAMPLE_ENTRIES);
BPF_PERCPU_ARRAY(sample_counters, u64, SAMPLE_SLOTS);

static __always_inline void sample_count(u32 slot)
{
    u64 *c = sample_counters.lookup(&slot);
    if (c)
        (*c)++;
}

static __always_inline bool stack_lost(int id)
{
    return id == -EEXIST || id == -ENOMEM;
}

// One function per half: bcc rewrites map method calls, so the map cannot be a variable.
static __always_inline u64 *sample_in_0(struct bpf_perf_event_data *ctx, struct sample_key *key,
                                        u64 *zero)
{
    key->user_stack = stack_traces_0.get_stackid(&ctx->regs, BPF_F_USER_STACK);
    key->kernel_stack = stack_traces_0.get_stackid(&ctx->regs, 0);
    return samples_0.lookup_or_try_init(key, zero);
}

static __always_inline u64 *sample_in_1(struct bpf_perf_event_data *ctx, struct sample_key *key,
                                        u64 *zero)
{
    key->user_stack = stack_traces_1.get_stackid(&ctx->regs, BPF_F_USER_STACK);
    key->kernel_stack = stack_traces_1.get_stackid(&ctx->regs, 0);
    return samples_1.lookup_or_try_init(key, zero);
}

int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    if (pid == 0 || !is_target(pid))
        return 0;
    u32 zero_idx = 0;
    u32 *half = sample_half.lookup(&zero_idx);
    struct sample_key key = {.pid = pid, .tid = (u32)pid_tgid};
    u64 zero = 0;
    // A kernel stack of -EFAULT is normal: a sample taken in user mode has none.
    u64 *n = half && *half ? sample_in_1(ctx, &key, &zero) : sample_in_0(ctx, &key, &zero);
    sample_count(SAMPLES_TAKEN);
    if (stack_lost(key.user_stack) || stack_lost(key.kernel_stack))
        sample_count(STACK_COLLISIONS);
    else if (key.user_stack < 0)
        sample_count(STACKS_MISSING);
    if (!n) {
        sample_count(SAMPLES_LOST);
        return 0;
    }
    // The key holds one tid, which runs on one CPU at a time: a single writer.
    (*n)++;
    return 0;
}

// -- function probes ---------------------------------------------------------------------------

#define PROBE_DEPTH 16 // nested (recursive) calls timed per thread and probe; deeper ones count untimed

struct probe_key {
    u32 tid;
    u32 probe;
};

struct probe_calls {
    u32 depth;
    u32 pad;
    u64 ts[PROBE_DEPTH];
};

// LRU: a thread that exits inside a probed function leaves an entry nobody deletes.
BPF_TABLE("lru_hash", struct probe_key, struct probe_calls, probe_inflight, 16384);

static __always_inline int probe_enter(u32 probe)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!is_target(pid_tgid >> 32))
        return 0;
    struct probe_key key = {.tid = (u32)pid_tgid, .probe = probe};
    struct probe_calls *calls = probe_inflight.lookup(&key);
    if (!calls) {
        struct probe_calls zero = {};
        probe_inflight.update(&key, &zero);
        calls = probe_inflight.lookup(&key);
        if (!calls) {
            count(DROP_INFLIGHT);
            return 0;
        }
    }
    u32 depth = calls->depth;
    barrier_var(depth);
    if (depth < PROBE_DEPTH)
        calls->ts[depth] = bpf_ktime_get_ns();
    calls->depth = depth + 1;
    return 0;
}

static __always_inline int probe_return(u32 probe)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    struct probe_key key = {.tid = (u32)pid_tgid, .probe = probe};
    struct probe_calls *calls = probe_inflight.lookup(&key);
    if (!calls || calls->depth == 0)
        return 0; // not traced, or entered before tracing started
    u64 now = bpf_ktime_get_ns();
    u32 depth = calls->depth - 1;
    calls->depth = depth;
    u64 d = 0;
    barrier_var(depth);
    if (depth < PROBE_DEPTH)
        d = now - calls->ts[depth];
    record_stat(pid_tgid >> 32, (u32)pid_tgid, PROBE_NR_BASE + probe, 0, d);
    return 0;
}

#define PROBE_PAIR(i)                                                                         \
    int probe_entry_##i(struct pt_regs *ctx) { return probe_enter(i); }                        \
    int probe_return_##i(struct pt_regs *ctx) { return probe_return(i); }

// MAX_PROBES pairs (tracing/model/probes.py): each attached probe uses its own pair.
PROBE_PAIR(0) PROBE_PAIR(1) PROBE_PAIR(2) PROBE_PAIR(3)
PROBE_PAIR(4) PROBE_PAIR(5) PROBE_PAIR(6) PROBE_PAIR(7)
PROBE_PAIR(8) PROBE_PAIR(9) PROBE_PAIR(10) PROBE_PAIR(11)
PROBE_PAIR(12) PROBE_PAIR(13) PROBE_PAIR(14) PROBE_PAIR(15)
