// sikte-tui TCP connection lifecycles, compiled after syscalls.bpf.c into the same object:
// is_target() (the traced processes, children followed at fork) is that file's.
//
// One tracepoint, sock:inet_sock_set_state, sees every TCP state change (no kprobes needed).
// Many changes run in softirq context, where the current task is whoever was interrupted,
// not the socket's owner. So the owner (pid, tid, comm, cgroup id) is remembered per socket
// at a change that runs in the owner's own syscall, as bcc's tcplife does:
//   outbound: CLOSE -> SYN_SENT, in connect();
//   inbound:  the listener's CLOSE -> LISTEN, in listen(), remembered by (family, local port,
//             local address); an accepted socket is born LISTEN -> SYN_RECV (softirq) as a
//             clone of the listener and takes the owner of the traced listener on its local
//             address and port, or else on the wildcard address and its port.
// Sockets that exist before the trace (a server attached by --pid) are told by user space
// (tracing/net/tcp_attach.py, from sock_diag): their listeners go into tcp_listeners with
// sk = 0 and their socket cookie; their connections into tcp_seeded by cookie. A state change
// of a socket not in tcp_conns looks its cookie up there (only once user space has seeded
// some) and, found, moves it to tcp_conns: from then on it is followed like any other.
// Every later change of a remembered socket goes to the tcp_events ring buffer with that
// owner; CLOSE ends the connection and forgets the socket. Each event carries everything
// (owner, direction, start time) so user space can make sense of it even if earlier events
// of the socket were dropped.
//
// Compiled by bcc with (optional) -D options:
//   TCP_RINGBUF_PAGES  size of the tcp_events ring buffer in pages (default 256: 1 MiB)
//   TCP_SOCKETS        connections remembered at once (LRU: the oldest idle one goes first)
//   TCP_LISTENERS      listening sockets remembered at once (LRU)
//   TCP_SEEDED         connections found at attach, waiting for their first change (LRU)
//
// tcp_config[0] holds offsetof(struct sock, sk_err), written by tracing/net/tcp_monitor.py from
// the running kernel's BTF: the kernel headers bcc compiles against may be another version's,
// with another struct layout, so offsetof() here could read the wrong field. 0: unknown.
// tcp_config[1] holds offsetof(struct sock, __sk_common.skc_cookie), likewise (0: unknown), and
// tcp_config[2] is 1 once user space has seeded sockets found at attach.
#include <net/tcp_states.h>

#ifndef TCP_RINGBUF_PAGES
#define TCP_RINGBUF_PAGES 256
#endif
#ifndef TCP_SOCKETS
#define TCP_SOCKETS 65536
#endif
#ifndef TCP_LISTENERS
#define TCP_LISTENERS 4096
#endif
#ifndef TCP_SEEDED
#define TCP_SEEDED 65536
#endif

#define SIKTE_AF_INET 2
#define SIKTE_AF_INET6 10
#define SIKTE_IPPROTO_TCP 6

enum tcp_direction { TCP_OUTBOUND = 1, TCP_INBOUND = 2 };
enum tcp_config_slot { TCP_CFG_SK_ERR = 0, TCP_CFG_COOKIE = 1, TCP_CFG_SEEDED = 2, TCP_CFG_SLOTS = 3 };

enum tcp_slot {
    TCP_DROPS = 0,       // events the ring buffer had no room for (Drops.tcp_events)
    TCP_SENT = 1,        // events submitted
    TCP_SLOTS = 2,
};

struct tcp_owner {
    u64 cgroup_id;
    u32 pid;
    u32 tid;
    char comm[16];
};

struct tcp_conn {
    struct tcp_owner owner;
    u64 start_ts;
    u32 direction;
    u32 pad;
    u64 cookie;    // the socket cookie of one found at attach (0: followed from its start)
};

// A listener by what its accepted sockets share with it: family, local port and address (all
// zero for a wildcard listener), so listeners on other addresses of the same port differ.
struct tcp_listen_key {
    u32 family;
    u32 port;     // host order
    u8 addr[16];  // AF_INET: the first 4 bytes
};

struct tcp_listener {
    struct tcp_owner owner;
    u64 sk;     // the listening socket, so only its own close forgets it (0: found at attach)
    u64 cookie; // found at attach: its socket cookie, which then tells its close apart
};

// Mirrored by _TcpEventC in tracing/net/tcp_monitor.py: keep the two in step.
struct tcp_event {
    u64 ts;
    u64 sk;          // the socket's address: the connection's id while it lives
    u64 start_ts;
    u64 cgroup_id;
    u32 pid;
    u32 tid;
    char comm[16];
    s32 oldstate;
    s32 newstate;
    s32 sk_err;      // at CLOSE: the socket's error (ECONNREFUSED...), 0: none, -1: unknown
    u16 family;      // AF_INET or AF_INET6
    u16 sport;       // host order
    u16 dport;
    u8 direction;    // enum tcp_direction
    u8 pad;
    u8 saddr[16];    // AF_INET: the first 4 bytes
    u8 daddr[16];
    u32 pad2;
    u64 cookie;      // the socket cookie of a connection found at attach, else 0
};

BPF_TABLE("lru_hash", u64, struct tcp_conn, tcp_conns, TCP_SOCKETS);
BPF_TABLE("lru_hash", struct tcp_listen_key, struct tcp_listener, tcp_listeners, TCP_LISTENERS);
BPF_TABLE("lru_hash", u64, struct tcp_conn, tcp_seeded, TCP_SEEDED);
BPF_ARRAY(tcp_config, u32, TCP_CFG_SLOTS);
BPF_PERCPU_ARRAY(tcp_counters, u64, TCP_SLOTS);
BPF_RINGBUF_OUTPUT(tcp_events, TCP_RINGBUF_PAGES);

static __always_inline void tcp_count(u32 slot)
{
    u64 *c = tcp_counters.lookup(&slot);
    if (c)
        (*c)++;
}

// The current task as a socket's owner: only meaningful in process context.
static __always_inline void tcp_owner_now(struct tcp_owner *o, u64 pid_tgid)
{
    o->pid = pid_tgid >> 32;
    o->tid = (u32)pid_tgid;
    o->cgroup_id = bpf_get_current_cgroup_id();
    bpf_get_current_comm(&o->comm, sizeof(o->comm));
}

static __always_inline u32 tcp_config_get(u32 slot)
{
    u32 *v = tcp_config.lookup(&slot);
    return v ? *v : 0;
}

// The socket's cookie (0: none made yet, or the offset is unknown). sock_diag made one for
// every socket it reported at attach, so those found then have theirs.
static __always_inline u64 tcp_sock_cookie(u64 sk)
{
    u32 offset = tcp_config_get(TCP_CFG_COOKIE);
    u64 cookie = 0;
    if (!offset || bpf_probe_read_kernel(&cookie, sizeof(cookie), (const char *)sk + offset) != 0)
        return 0;
    return cookie;
}

// A socket not followed yet that user space found at attach: followed from now on.
static __always_inline struct tcp_conn *tcp_adopt(u64 sk)
{
    if (!tcp_config_get(TCP_CFG_SEEDED))
        return 0;
    u64 cookie = tcp_sock_cookie(sk);
    if (!cookie)
        return 0;
    struct tcp_conn *seeded = tcp_seeded.lookup(&cookie);
    if (!seeded)
        return 0;
    // Followed to its close even if its owner is no longer traced, as one followed from its
    // start is.
    struct tcp_conn c = *seeded;
    tcp_seeded.delete(&cookie);
    tcp_conns.update(&sk, &c);
    return tcp_conns.lookup(&sk);
}

static __always_inline s32 tcp_sock_error(u64 sk)
{
    u32 zero = TCP_CFG_SK_ERR;
    u32 *offset = tcp_config.lookup(&zero);
    if (!offset || !*offset)
        return -1;
    s32 err = 0;
    if (bpf_probe_read_kernel(&err, sizeof(err), (const char *)sk + *offset) != 0)
        return -1;
    return err;
}

// listen(): remember who listens on this address and port, if traced.
static __always_inline void tcp_listen_start(u64 sk, struct tcp_listen_key *key)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!is_target(pid_tgid >> 32))
        return;
    struct tcp_listener l = {.sk = sk};
    tcp_owner_now(&l.owner, pid_tgid);
    tcp_listeners.update(key, &l);
}

static __always_inline void tcp_listen_end(u64 sk, struct tcp_listen_key *key)
{
    struct tcp_listener *l = tcp_listeners.lookup(key);
    if (!l)
        return;
    // One found at attach is known by its cookie (its address was never seen).
    if (l->sk == sk || (!l->sk && l->cookie && l->cookie == tcp_sock_cookie(sk)))
        tcp_listeners.delete(key);
}

// connect(): a traced process's outbound connection starts.
static __always_inline void tcp_connect_start(u64 sk, u64 now)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!is_target(pid_tgid >> 32))
        return;
    struct tcp_conn c = {.start_ts = now, .direction = TCP_OUTBOUND};
    tcp_owner_now(&c.owner, pid_tgid);
    tcp_conns.update(&sk, &c);
}

// A connection accepted by a traced listener (softirq: the owner is the listener's).
// `key` holds the new socket's local address: a listener on exactly that address first, then
// a wildcard one.
static __always_inline void tcp_accept_start(u64 sk, struct tcp_listen_key *key, u64 now)
{
    struct tcp_listener *l = tcp_listeners.lookup(key);
    if (!l) {
        __builtin_memset(key->addr, 0, sizeof(key->addr));
        l = tcp_listeners.lookup(key);
    }
    if (!l || !is_target(l->owner.pid))
        return; // not a traced listener's, or its owner is no longer traced
    struct tcp_conn c = {.owner = l->owner, .start_ts = now, .direction = TCP_INBOUND};
    tcp_conns.update(&sk, &c);
}

// A new event with the connection's part filled in; NULL (counted) when the ring buffer is full.
static __always_inline struct tcp_event *tcp_event_new(u64 sk, struct tcp_conn *c, u64 now)
{
    struct tcp_event *e = tcp_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        tcp_count(TCP_DROPS);
        return 0;
    }
    e->ts = now;
    e->sk = sk;
    e->start_ts = c->start_ts;
    e->cgroup_id = c->owner.cgroup_id;
    e->pid = c->owner.pid;
    e->tid = c->owner.tid;
    __builtin_memcpy(e->comm, c->owner.comm, sizeof(e->comm));
    e->direction = c->direction;
    e->pad = 0;
    e->pad2 = 0;
    e->cookie = c->cookie;
    __builtin_memset(e->saddr, 0, sizeof(e->saddr));
    __builtin_memset(e->daddr, 0, sizeof(e->daddr));
    return e;
}

// The tracepoint's part is filled in the probe itself: bcc declares the type of `args` just
// before the probe, so helpers above it cannot take it.
TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != SIKTE_IPPROTO_TCP)
        return 0;
    u16 family = args->family;
    if (family != SIKTE_AF_INET && family != SIKTE_AF_INET6)
        return 0;
    u64 sk = (u64)args->skaddr;
    int oldstate = args->oldstate;
    int newstate = args->newstate;
    u64 now = bpf_ktime_get_ns();

    // Listening sockets are not connections: only their owners are remembered.
    if (newstate == TCP_LISTEN || oldstate == TCP_LISTEN) {
        struct tcp_listen_key key = {.family = family, .port = args->sport};
        if (family == SIKTE_AF_INET6)
            bpf_probe_read_kernel(key.addr, 16, args->saddr_v6);
        else
            bpf_probe_read_kernel(key.addr, 4, args->saddr);
        if (newstate == TCP_LISTEN) {
            tcp_listen_start(sk, &key);
            return 0;
        }
        if (newstate == TCP_CLOSE) {
            tcp_listen_end(sk, &key);
            return 0;
        }
        tcp_accept_start(sk, &key, now);
    } else if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
        tcp_connect_start(sk, now);
    }

    struct tcp_conn *c = tcp_conns.lookup(&sk);
    if (!c)
        c = tcp_adopt(sk);
    if (!c)
        return 0;
    struct tcp_event *e = tcp_event_new(sk, c, now);
    if (e) {
        e->oldstate = oldstate;
        e->newstate = newstate;
        // The kernel sets sk_err before it closes a failed connection (tcp_done_with_error).
        e->sk_err = newstate == TCP_CLOSE ? tcp_sock_error(sk) : 0;
        e->family = family;
        e->sport = args->sport;
        e->dport = args->dport;
        if (family == SIKTE_AF_INET6) {
            bpf_probe_read_kernel(e->saddr, 16, args->saddr_v6);
            bpf_probe_read_kernel(e->daddr, 16, args->daddr_v6);
        } else {
            bpf_probe_read_kernel(e->saddr, 4, args->saddr);
            bpf_probe_read_kernel(e->daddr, 4, args->daddr);
        }
        tcp_events.ringbuf_submit(e, 0);
        tcp_count(TCP_SENT);
    }
    if (newstate == TCP_CLOSE)
        tcp_conns.delete(&sk); // the address may be reused for another socket
    return 0;
}
