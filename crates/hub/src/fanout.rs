//! Direct fan-out: a viewer that has caught up with live and whose socket has room hands its
//! writing to the stream ("parks"), and whoever wakes the stream — the publisher's task, for a
//! new frame — writes the frame to it at once, without waking the viewer's task.
//!
//! Why: waking one task per viewer per frame costs a scheduler round trip, a waiter
//! re-registration under the notify lock and, in bursts, unparking a second worker thread; on
//! two cores that was a fifth of the CPU spent per delivered byte. nginx-rtmp writes to its
//! subscribers from the publisher's event handler; this is the same model, with a viewer's task
//! taking over again whenever its write would block (a slow or stalled viewer), its stream ends,
//! it is kicked, or it has input to answer.
//!
//! Parked viewers sit in groups of at most [`GROUP`]. The waker writes to the first group
//! itself and wakes one driver task for each further group, so a large audience is spread over
//! the worker threads while 20 viewers of one stream cost no wake-up at all.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::Notify;

/// Most viewers written to by one task in one fan-out.
pub const GROUP: usize = 256;

/// A parked viewer, as the fan-out sees it.
pub trait Sink: Send + Sync {
    /// New frames may be ready: write them if the socket takes them whole. Returns false when
    /// the sink leaves the fan-out: its own task has been woken to take over (or already had).
    fn deliver(&self) -> bool;
}

/// A parked viewer's place in the fan-out.
pub struct Parked {
    group: Arc<Group>,
}

impl Parked {
    /// Takes `sink` out of the fan-out (no-op when the fan-out already dropped it). Waits while
    /// its group is being written to.
    pub fn leave(self, sink: &dyn Sink) {
        let target = (sink as *const dyn Sink).cast::<()>();
        self.group
            .sinks()
            .retain(|s| Arc::as_ptr(s).cast::<()>() != target);
    }
}

/// Parked viewers written to by one task.
struct Group {
    sinks: Mutex<Vec<Arc<dyn Sink>>>,
    /// Wakes the group's driver task (`None` for the first group, which the waker serves).
    driver: Option<Arc<Notify>>,
}

impl Group {
    fn sinks(&self) -> MutexGuard<'_, Vec<Arc<dyn Sink>>> {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers to every sink, dropping those that leave.
    fn run(&self) {
        self.sinks().retain(|s| s.deliver());
    }
}

/// The parked viewers of one stream.
#[derive(Default)]
pub(crate) struct Fanout {
    groups: RwLock<Vec<Arc<Group>>>,
}

impl Fanout {
    /// Writes to the first group's viewers and wakes the drivers of the others.
    pub(crate) fn deliver(&self) {
        let groups = self.groups.read().unwrap_or_else(|e| e.into_inner());
        for g in groups.iter() {
            match &g.driver {
                Some(d) => d.notify_one(),
                None => g.run(),
            }
        }
    }

    /// Sinks parked now (for metrics; locks each group in turn).
    pub(crate) fn parked(&self) -> usize {
        let groups = self.groups.read().unwrap_or_else(|e| e.into_inner());
        groups.iter().map(|g| g.sinks().len()).sum()
    }

    /// Adds a sink to the first group with room (a new group, with its driver task, when all
    /// are full). Must be called within a tokio runtime.
    pub(crate) fn park(&self, sink: Arc<dyn Sink>) -> Parked {
        {
            let groups = self.groups.read().unwrap_or_else(|e| e.into_inner());
            for g in groups.iter() {
                let mut sinks = g.sinks();
                if sinks.len() < GROUP {
                    sinks.push(sink);
                    return Parked { group: g.clone() };
                }
            }
        }
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        let driver = (!groups.is_empty()).then(|| Arc::new(Notify::new()));
        let group = Arc::new(Group {
            sinks: Mutex::new(vec![sink]),
            driver: driver.clone(),
        });
        if let Some(notify) = driver {
            tokio::spawn(drive(Arc::downgrade(&group), notify));
        }
        groups.push(group.clone());
        Parked { group }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        // Drop the groups, then wake their drivers so they find them gone and end.
        let groups = std::mem::take(self.groups.get_mut().unwrap_or_else(|e| e.into_inner()));
        let drivers: Vec<_> = groups.iter().filter_map(|g| g.driver.clone()).collect();
        drop(groups);
        for d in drivers {
            d.notify_one();
        }
    }
}

/// A driver task: serves its group each time it is woken, until the group is gone (the stream
/// was dropped; parked viewers hold the stream, so none is left in it).
async fn drive(group: std::sync::Weak<Group>, notify: Arc<Notify>) {
    loop {
        notify.notified().await;
        match group.upgrade() {
            Some(g) => g.run(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sink that counts deliveries and leaves after `stay` of them.
    struct Counting {
        delivered: AtomicUsize,
        stay: usize,
    }

    impl Sink for Counting {
        fn deliver(&self) -> bool {
            self.delivered.fetch_add(1, Ordering::SeqCst) + 1 < self.stay
        }
    }

    fn sink(stay: usize) -> Arc<Counting> {
        Arc::new(Counting {
            delivered: AtomicUsize::new(0),
            stay,
        })
    }

    #[tokio::test]
    async fn the_waker_serves_the_first_group_and_sinks_leave_when_they_say_so() {
        let f = Fanout::default();
        let stays = sink(usize::MAX);
        let leaves = sink(2);
        let _a = f.park(stays.clone());
        let _b = f.park(leaves.clone());
        for _ in 0..3 {
            f.deliver();
        }
        assert_eq!(stays.delivered.load(Ordering::SeqCst), 3);
        assert_eq!(
            leaves.delivered.load(Ordering::SeqCst),
            2,
            "dropped after it said false"
        );
        // Leaving explicitly takes it out of the next fan-out.
        _a.leave(&*stays);
        f.deliver();
        assert_eq!(stays.delivered.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn groups_past_the_first_are_served_by_their_driver_tasks() {
        let f = Fanout::default();
        let sinks: Vec<_> = (0..GROUP + 10).map(|_| sink(usize::MAX)).collect();
        let _parked: Vec<_> = sinks.iter().map(|s| f.park(s.clone())).collect();
        assert_eq!(f.groups.read().unwrap().len(), 2);
        assert_eq!(f.parked(), GROUP + 10);
        f.deliver();
        // The first group was served inline, the second waits for its driver.
        assert_eq!(sinks[0].delivered.load(Ordering::SeqCst), 1);
        let last = &sinks[GROUP + 9];
        for _ in 0..100 {
            if last.delivered.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(last.delivered.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn drivers_end_with_the_fanout() {
        let f = Fanout::default();
        let sinks: Vec<_> = (0..GROUP + 1).map(|_| sink(usize::MAX)).collect();
        for s in &sinks {
            // Handles dropped at once: the groups are held by the fan-out alone.
            drop(f.park(s.clone()));
        }
        let notify = f.groups.read().unwrap()[1].driver.clone().unwrap();
        assert_eq!(
            Arc::strong_count(&notify),
            3,
            "group, driver task and this test"
        );
        drop(f);
        for _ in 0..100 {
            if Arc::strong_count(&notify) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(Arc::strong_count(&notify), 1, "the driver task ended");
    }
}
