//! Connection threads: one single-threaded tokio runtime per thread, each with its own epoll.
//!
//! A connection is handed to one thread when it is accepted and stays there; the threads share
//! the hub (streams, rings, parked viewers) but no scheduler. Why not tokio's work-stealing
//! runtime: with many publishers each frame arrival woke the worker that polled epoll, which
//! then woke the other (futex) to steal the second runnable task, and that one parked again
//! (futex, context switch): in S4 (50 streams × 20 viewers) about 1,200 futex calls a second
//! and ~7 % of the CPU. The wake-ups are paid by nobody here: a thread sleeps only in its own
//! epoll. This is the layout of nginx, ZLMediaKit and SRS (a poller per thread or process).
//! Balance comes from placing each new connection on the thread with the fewest; the fan-out
//! writes parked viewers from the publisher's thread, so where a viewer lives matters only
//! while it is not parked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::runtime::Handle;
use tokio::sync::watch;

/// The connection threads.
pub struct Workers {
    threads: Vec<Thread>,
    stop: watch::Sender<bool>,
    joins: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

struct Thread {
    handle: Handle,
    /// Connections placed on this thread and not yet finished.
    load: AtomicUsize,
}

impl Workers {
    /// Starts `n` threads (at least one), named `sluice-w{i}`.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let (stop, stopped) = watch::channel(false);
        let mut threads = Vec::with_capacity(n.max(1));
        let mut joins = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            threads.push(Thread {
                handle: rt.handle().clone(),
                load: AtomicUsize::new(0),
            });
            let mut stopped = stopped.clone();
            joins.push(
                std::thread::Builder::new()
                    .name(format!("sluice-w{i}"))
                    .spawn(move || {
                        rt.block_on(async move {
                            while !*stopped.borrow_and_update() {
                                if stopped.changed().await.is_err() {
                                    break;
                                }
                            }
                        });
                        // Tasks still running (connections past the shutdown grace) are dropped
                        // with the runtime.
                    })?,
            );
        }
        Ok(Workers {
            threads,
            stop,
            joins: Mutex::new(joins),
        })
    }

    /// Threads in the pool.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Never true: a pool has at least one thread.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The thread with the fewest connections, counted as having one more; [`Workers::done`]
    /// with the same index when that connection ends.
    pub fn pick(&self) -> (usize, &Handle) {
        let (i, t) = self
            .threads
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| t.load.load(Ordering::Relaxed))
            .expect("a pool has at least one thread");
        t.load.fetch_add(1, Ordering::Relaxed);
        (i, &t.handle)
    }

    /// A connection placed by [`Workers::pick`] has ended.
    pub fn done(&self, i: usize) {
        if let Some(t) = self.threads.get(i) {
            t.load.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Tasks alive on the threads (connections, fan-out drivers, hook calls).
    pub fn alive_tasks(&self) -> usize {
        self.threads
            .iter()
            .map(|t| t.handle.metrics().num_alive_tasks())
            .sum()
    }

    /// Stops the threads; their runtimes drop whatever tasks are left.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        let joins = std::mem::take(&mut *self.joins.lock().unwrap_or_else(|e| e.into_inner()));
        for j in joins {
            let _ = j.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_thread_with_the_fewest_and_run_there() {
        let w = Workers::start(2).unwrap();
        assert_eq!(w.len(), 2);
        let (a, _) = w.pick();
        let (b, _) = w.pick();
        assert_ne!(a, b, "the second connection goes to the other thread");
        // Thread `a` finishes its connection: it has the fewest again.
        w.done(a);
        let (c, h) = w.pick();
        assert_eq!(c, a);
        // Work spawned on a picked handle runs on that thread.
        let (tx, rx) = std::sync::mpsc::channel();
        h.spawn(async move {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        });
        let name = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the task ran");
        assert_eq!(name.as_deref(), Some(format!("sluice-w{c}").as_str()));
        w.stop();
        assert_eq!(w.alive_tasks(), 0);
    }
}
