//! `fanout-ab`: what one frame's fan-out costs the writing thread, `writev` per viewer against
//! batched io_uring `SENDMSG` submissions — the kernel-crossing question of the join-storm
//! work, asked without the rest of a server around it.
//!
//! N loopback TCP connections; a reader runtime drains the far ends. The writer thread sends
//! one "frame" (an 11-byte header and a shared payload, two iovecs, as sluice's FLV viewers
//! get it) to every connection per round, at a fixed round rate, in one of two ways:
//! - `writev`: one non-blocking `writev` per connection (sluice's path today);
//! - `uring`: one `SENDMSG` entry per connection on registered files, all submitted with one
//!   `io_uring_enter` per ring-full, completions reaped in the same call.
//!
//! Modes alternate (A B A B …) so that a noisy neighbour hurts both alike. Reported per mode:
//! the writer thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) per send and per delivered GB, the
//! whole process's CPU over the pass (readers included: same bytes in both modes, so a
//! difference there means work moved, not saved), and the sends that found a full socket. On loopback the receiving side's TCP work runs on the
//! sender's CPU too, so both figures include it, as a server's do.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "fanout-ab", about = "writev vs io_uring fan-out cost per send")]
struct Args {
    /// Connections (viewers).
    #[arg(short = 'n', long, default_value_t = 1000)]
    conns: usize,
    /// Payload bytes per frame (300: the 180p 10 fps clip's frames; 6000: 1.2 Mbit/s at 25 fps).
    #[arg(long, default_value_t = 300)]
    frame: usize,
    /// Rounds (frames) per pass.
    #[arg(long, default_value_t = 300)]
    rounds: usize,
    /// Rounds per second.
    #[arg(long, default_value_t = 25.0)]
    rate: f64,
    /// Passes per mode, alternating.
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// io_uring submission queue size (sends per `io_uring_enter`).
    #[arg(long, default_value_t = 1024)]
    ring: u32,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    /// The whole process (writer, readers, io_uring's kernel workers if any) over the pass.
    proc_cpu: Duration,
    cpu: Duration,
    sends: u64,
    bytes: u64,
    full: u64,
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn iovecs(hdr: &[u8], payload: &[u8]) -> [libc::iovec; 2] {
    [
        libc::iovec {
            iov_base: hdr.as_ptr() as *mut _,
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: payload.as_ptr() as *mut _,
            iov_len: payload.len(),
        },
    ]
}

fn pass_writev(fds: &[i32], hdr: &[u8], payload: &[u8], args: &Args) -> Tally {
    let mut t = Tally::default();
    let iov = iovecs(hdr, payload);
    let want = (hdr.len() + payload.len()) as isize;
    let tick = Duration::from_secs_f64(1.0 / args.rate);
    let mut next = Instant::now();
    for _ in 0..args.rounds {
        let c0 = thread_cpu();
        for &fd in fds {
            // SAFETY: fd is an open socket; iov points at two live buffers.
            let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
            t.sends += 1;
            if n == want {
                t.bytes += n as u64;
            } else {
                t.full += 1;
                t.bytes += n.max(0) as u64;
            }
        }
        t.cpu += thread_cpu() - c0;
        next += tick;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    t
}

fn pass_uring(
    ring: &mut io_uring::IoUring,
    fds: &[i32],
    hdr: &[u8],
    payload: &[u8],
    args: &Args,
) -> Tally {
    use io_uring::{opcode, types};
    let mut t = Tally::default();
    let iov = iovecs(hdr, payload);
    let want = (hdr.len() + payload.len()) as i32;
    // One msghdr for all: the kernel only reads it (same iovecs for every connection).
    // SAFETY: a zeroed msghdr is valid; the fields set point at live data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut _;
    msg.msg_iovlen = 2;
    let tick = Duration::from_secs_f64(1.0 / args.rate);
    let mut next = Instant::now();
    let batch = args.ring as usize;
    for _ in 0..args.rounds {
        let c0 = thread_cpu();
        for (chunk_no, chunk) in fds.chunks(batch).enumerate() {
            {
                let mut sq = ring.submission();
                for (k, _) in chunk.iter().enumerate() {
                    let idx = (chunk_no * batch + k) as u32;
                    let e = opcode::SendMsg::new(types::Fixed(idx), &msg)
                        .flags(libc::MSG_DONTWAIT as u32)
                        .build()
                        .user_data(u64::from(idx));
                    // SAFETY: `msg` and the iovecs outlive the submission (reaped below).
                    unsafe { sq.push(&e).expect("ring has room for a chunk") };
                }
            }
            ring.submit_and_wait(chunk.len()).expect("io_uring_enter");
            for cqe in ring.completion() {
                t.sends += 1;
                let r = cqe.result();
                if r == want {
                    t.bytes += r as u64;
                } else {
                    t.full += 1;
                    t.bytes += r.max(0) as u64;
                }
            }
        }
        t.cpu += thread_cpu() - c0;
        next += tick;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    t
}

fn main() {
    let args = Args::parse();
    sluice_bench::raise_fd_limit();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut clients = Vec::with_capacity(args.conns);
    let mut servers = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        clients.push(TcpStream::connect(addr).expect("connect"));
        let (s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        s.set_nonblocking(true).expect("nonblocking");
        servers.push(s);
    }
    // Readers: one thread per 5,000 connections, each draining its share with blocking reads
    // over a poll set.
    let per = 5000;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    while !clients.is_empty() {
        let mine: Vec<TcpStream> = clients.drain(..per.min(clients.len())).collect();
        let stop = stop.clone();
        readers.push(std::thread::spawn(move || drain(mine, &stop)));
    }
    let fds: Vec<i32> = servers.iter().map(|s| s.as_raw_fd()).collect();
    let mut ring = io_uring::IoUring::new(args.ring.next_power_of_two()).expect("io_uring setup");
    ring.submitter()
        .register_files(&fds)
        .expect("register files");
    let hdr = [9u8; 11];
    let payload = vec![0x5au8; args.frame];
    let mut a = Tally::default();
    let mut b = Tally::default();
    for p in 0..args.passes {
        let p0 = process_cpu();
        let mut x = pass_writev(&fds, &hdr, &payload, &args);
        let p1 = process_cpu();
        let mut y = pass_uring(&mut ring, &fds, &hdr, &payload, &args);
        let p2 = process_cpu();
        x.proc_cpu = p1 - p0;
        y.proc_cpu = p2 - p1;
        eprintln!(
            "pass {p}: writev {:.2} µs/send, io_uring {:.2} µs/send",
            us_per(&x),
            us_per(&y)
        );
        for (acc, t) in [(&mut a, x), (&mut b, y)] {
            acc.cpu += t.cpu;
            acc.proc_cpu += t.proc_cpu;
            acc.sends += t.sends;
            acc.bytes += t.bytes;
            acc.full += t.full;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(servers);
    for r in readers {
        let _ = r.join();
    }
    println!(
        "{} connections, {}-byte frames (+11-byte header), {} rounds at {}/s, {} passes each",
        args.conns, args.frame, args.rounds, args.rate, args.passes
    );
    for (name, t) in [("writev", a), ("io_uring", b)] {
        println!(
            "{name:9} writer CPU {:.3} s | {:.2} µs per send | {:.2} CPU-s per GB | process CPU {:.3} s ({:.2} µs per send) | sends {} | found full {}",
            t.cpu.as_secs_f64(),
            us_per(&t),
            t.cpu.as_secs_f64() / (t.bytes.max(1) as f64 / 1e9),
            t.proc_cpu.as_secs_f64(),
            t.proc_cpu.as_secs_f64() * 1e6 / t.sends.max(1) as f64,
            t.sends,
            t.full
        );
    }
    println!(
        "io_uring / writev: writer CPU per send {:.3}, process CPU {:.3}",
        us_per(&b) / us_per(&a),
        b.proc_cpu.as_secs_f64() / a.proc_cpu.as_secs_f64().max(1e-9)
    );
}

fn us_per(t: &Tally) -> f64 {
    t.cpu.as_secs_f64() * 1e6 / t.sends.max(1) as f64
}

/// Reads and discards everything on `socks` until `stop` (and the peers close).
fn drain(socks: Vec<TcpStream>, stop: &std::sync::atomic::AtomicBool) {
    let mut pfds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut socks = socks;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: pfds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 100) };
        if n <= 0 {
            continue;
        }
        for (p, s) in pfds.iter_mut().zip(socks.iter_mut()) {
            if p.revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                if let Ok(0) = s.read(&mut buf) {
                    p.fd = -1;
                }
            }
            p.revents = 0;
        }
    }
}
