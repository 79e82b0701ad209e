//! Running a simulation's two shards on two threads.
//!
//! **Why it is safe to run them apart.** Every message takes at least the least latency,
//! `L` whole milliseconds (the lookahead): what a node sends at millisecond `t` is due at
//! `t + L` or later. So a shard may handle millisecond `t` as soon as the other shard has
//! handled every millisecond up to `t - L` and handed over what it sent then. Each shard
//! publishes how far it has got; the two may drift up to `L` apart, and one waits only
//! when it is about to get further ahead than that. A node's own timer stays within its
//! shard.
//!
//! **Why the result is the same on one thread or two.** Each shard handles its events in
//! the order of its agenda (by time, then order of scheduling), and what the other shard
//! sent at `t` joins that agenda just before millisecond `t + L` is handled (see
//! [`Shard::step`]): a moment fixed by the events themselves, not by how far either
//! thread has got. On one thread the shards take turns a window of `L` milliseconds at a
//! time, which meets the same rule, so every agenda sees the same events in the same
//! order. How the runs are cut does not matter either: batches still in transit when a
//! run ends wait in the receiving shard's inbox.
//!
//! The second thread lives as long as the simulation. Between runs it spins a little
//! (the next run usually follows within microseconds) and then sleeps on a condition
//! variable; within a run a shard that must wait for the other does the same.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::shard::{Batch, Shard};
use super::world::World;

/// Runs `shards` (all of a simulation's: one or two) from `from` to `until` (ms,
/// inclusive) on this thread, taking turns a window of `lookahead` milliseconds at a time.
pub(super) fn run_serial(
    shards: &mut [Shard],
    world: &World,
    from: u64,
    until: u64,
    lookahead: u64,
) {
    let [a, b] = shards else {
        // One shard hears from nobody: it runs straight through.
        for shard in shards {
            shard.run(world, until);
        }
        return;
    };
    let lookahead = lookahead.max(1);
    let mut start = from;
    loop {
        // Within a window neither shard needs anything the other sends in it.
        let end = start.saturating_add(lookahead - 1).min(until);
        turn(a, b, world, start, end, lookahead);
        turn(b, a, world, start, end, lookahead);
        if end >= until {
            return;
        }
        start = end + 1;
    }
}

/// Shard `me` handles milliseconds `start..=end`, handing what it sends to `other`.
fn turn(me: &mut Shard, other: &mut Shard, world: &World, start: u64, end: u64, lookahead: u64) {
    for ms in start..=end {
        me.step(world, ms, lookahead);
        if let Some(batch) = me.close_batch(ms) {
            other.receive(batch);
        }
    }
}

/// How far each shard has got, and the waiting for it: a shard about to get more than the
/// lookahead ahead of the other spins for [`SPIN`](Self::SPIN) (the other is usually a
/// few microseconds from catching up), then sleeps until woken. When the machine is busy
/// the other thread may not be running at all, and spinning would only keep it off the
/// core.
struct Progress {
    /// `next[i]`: the first millisecond shard `i` has not finished (and sent the batches
    /// of every one before).
    next: [AtomicU64; 2],
    /// Set when the other thread died or the simulation is going away; waiting gives up.
    abandoned: AtomicBool,
    /// Waiters asleep; changed under `sleep`.
    sleeping: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

impl Progress {
    /// How long a waiter spins before it sleeps.
    const SPIN: Duration = Duration::from_micros(50);

    fn new() -> Self {
        Self {
            next: [AtomicU64::new(0), AtomicU64::new(0)],
            abandoned: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    fn reached(&self, shard: usize, want: u64) -> bool {
        self.next
            .get(shard)
            .is_none_or(|next| next.load(Ordering::SeqCst) >= want)
    }

    /// Records that shard `me` finished every millisecond before `next`, and wakes a
    /// waiter.
    fn advance(&self, me: usize, next: u64) {
        if let Some(slot) = self.next.get(me) {
            slot.store(next, Ordering::SeqCst);
        }
        // SeqCst on both sides: either the waiter sees the new value before it sleeps, or
        // this sees the waiter and wakes it.
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            self.notify();
        }
    }

    fn notify(&self) {
        let guard = lock(&self.sleep);
        drop(guard);
        self.wake.notify_all();
    }

    /// Waits until shard `other` finished every millisecond before `want`; `false` if it
    /// never will (its thread died, or the simulation is going away).
    fn wait(&self, other: usize, want: u64) -> bool {
        let started = Instant::now();
        let mut spins = 0u32;
        while !self.reached(other, want) {
            if self.abandoned.load(Ordering::Acquire) {
                return false;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && started.elapsed() > Self::SPIN {
                return self.sleep_until(other, want);
            }
            std::hint::spin_loop();
        }
        true
    }

    fn sleep_until(&self, other: usize, want: u64) -> bool {
        let mut guard = lock(&self.sleep);
        self.sleeping.fetch_add(1, Ordering::SeqCst);
        let reached = loop {
            if self.reached(other, want) {
                break true;
            }
            if self.abandoned.load(Ordering::Acquire) {
                break false;
            }
            // The timeout only bounds how late a death of the other thread is noticed.
            guard = self
                .wake
                .wait_timeout(guard, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        reached
    }

    fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
        self.notify();
    }
}

/// What the worker is doing, as seen by both threads.
const IDLE: u8 = 0;
const JOB: u8 = 1;
const DONE: u8 = 2;
const STOP: u8 = 3;
const DEAD: u8 = 4;

/// A run handed to the worker: its shard, and the stretch to run.
struct Job {
    shard: Shard,
    world: Arc<World>,
    from: u64,
    until: u64,
    lookahead: u64,
}

/// What the two threads share.
struct Link {
    progress: Progress,
    /// `mail[d]`: batches for shard `d`, oldest first.
    mail: [Mutex<Vec<Batch>>; 2],
    state: AtomicU8,
    /// The job going to the worker, and its shard coming back.
    job: Mutex<Option<Job>>,
    back: Mutex<Option<Shard>>,
    /// Paired with `job`; every change of `state` happens under that lock.
    changed: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    fn set_state(&self, state: u8) {
        let guard = lock(&self.job);
        self.state.store(state, Ordering::Release);
        drop(guard);
        self.changed.notify_all();
    }

    /// Reports a job done, unless the simulation asked the worker to stop meanwhile.
    fn finish(&self) {
        let guard = lock(&self.job);
        if self.state.load(Ordering::Acquire) != STOP {
            self.state.store(DONE, Ordering::Release);
        }
        drop(guard);
        self.changed.notify_all();
    }

    /// Waits until `state` is one of `wanted`, spinning for up to `spin` first.
    fn wait_for(&self, wanted: &[u8], spin: Duration) -> u8 {
        let started = Instant::now();
        let mut rounds = 0u32;
        loop {
            let state = self.state.load(Ordering::Acquire);
            if wanted.contains(&state) {
                return state;
            }
            rounds = rounds.wrapping_add(1);
            if rounds.is_multiple_of(64) && started.elapsed() > spin {
                break;
            }
            std::hint::spin_loop();
        }
        let guard = lock(&self.job);
        let guard = self
            .changed
            .wait_while(guard, |_| {
                !wanted.contains(&self.state.load(Ordering::Acquire))
            })
            .unwrap_or_else(PoisonError::into_inner);
        let state = self.state.load(Ordering::Acquire);
        drop(guard);
        state
    }

    /// One shard's part of a parallel run: `me` is its index (0 or 1). `false` if the
    /// other shard's thread died or the simulation is going away.
    fn run_steps(
        &self,
        me: usize,
        shard: &mut Shard,
        world: &World,
        from: u64,
        until: u64,
        lookahead: u64,
    ) -> bool {
        let other = 1 - me;
        let lookahead = lookahead.max(1);
        for ms in from..=until {
            // Millisecond `ms` needs what the other sent up to `ms - lookahead`.
            if let Some(through) = ms.checked_sub(lookahead) {
                if !self.progress.wait(other, through + 1) {
                    return false;
                }
                if let Some(slot) = self.mail.get(me) {
                    let mut mail = lock(slot);
                    for batch in mail.drain(..) {
                        shard.receive(batch);
                    }
                }
            }
            shard.step(world, ms, lookahead);
            if let Some(batch) = shard.close_batch(ms)
                && let Some(slot) = self.mail.get(other)
            {
                lock(slot).push(batch);
            }
            self.progress.advance(me, ms + 1);
        }
        true
    }

    /// Moves the batches still in transit into the shards they are for.
    fn collect(&self, shards: &mut [Shard]) {
        for (slot, shard) in self.mail.iter().zip(shards) {
            for batch in lock(slot).drain(..) {
                shard.receive(batch);
            }
        }
    }
}

/// Marks the link dead if the worker thread unwinds, so the main thread stops waiting.
struct DeathNotice(Arc<Link>);

impl Drop for DeathNotice {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.progress.abandon();
            self.0.set_state(DEAD);
        }
    }
}

/// The second thread of a simulation, which runs shard 1.
pub(super) struct Worker {
    link: Arc<Link>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread; `None` if the system refuses one.
    pub(super) fn spawn() -> Option<Self> {
        let link = Arc::new(Link {
            progress: Progress::new(),
            mail: Default::default(),
            state: AtomicU8::new(IDLE),
            job: Mutex::new(None),
            back: Mutex::new(None),
            changed: Condvar::new(),
        });
        let theirs = Arc::clone(&link);
        let handle = std::thread::Builder::new()
            .name("dht-sim".into())
            .spawn(move || work(theirs))
            .ok()?;
        Some(Self {
            link,
            handle: Some(handle),
        })
    }

    /// Runs shard 0 here and shard 1 on the worker from `from` to `until` (ms, inclusive).
    /// If the worker thread panicked, its panic continues here.
    pub(super) fn run(
        &mut self,
        shards: &mut Vec<Shard>,
        world: &Arc<World>,
        from: u64,
        until: u64,
        lookahead: u64,
    ) {
        if shards.len() != 2 {
            run_serial(shards, world, from, until, lookahead);
            return;
        }
        let Some(theirs) = shards.pop() else {
            return;
        };
        // Neither shard has finished a millisecond of this run yet; the one the last run
        // ended on is handled again (with what happened in between).
        for next in &self.link.progress.next {
            next.store(from, Ordering::SeqCst);
        }
        *lock(&self.link.job) = Some(Job {
            shard: theirs,
            world: Arc::clone(world),
            from,
            until,
            lookahead,
        });
        self.link.set_state(JOB);
        let finished = match shards.first_mut() {
            Some(mine) => self.link.run_steps(0, mine, world, from, until, lookahead),
            None => true,
        };
        let state = if finished {
            self.link.wait_for(&[DONE, DEAD], Duration::from_millis(1))
        } else {
            DEAD
        };
        if state == DEAD {
            self.rethrow();
            return;
        }
        if let Some(theirs) = lock(&self.link.back).take() {
            shards.push(theirs);
        }
        self.link.collect(shards);
        self.link.set_state(IDLE);
    }

    fn rethrow(&mut self) {
        if let Some(handle) = self.handle.take()
            && let Err(panic) = handle.join()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A run cut short by a panic here leaves the worker waiting: release it.
        self.link.progress.abandon();
        self.link.set_state(STOP);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The worker thread: waits for a job, runs shard 1 through it, hands the shard back.
fn work(link: Arc<Link>) {
    let _notice = DeathNotice(Arc::clone(&link));
    loop {
        // The next run usually starts within microseconds of the last one's end.
        if link.wait_for(&[JOB, STOP], Duration::from_micros(200)) == STOP {
            return;
        }
        let Some(job) = lock(&link.job).take() else {
            continue;
        };
        let Job {
            mut shard,
            world,
            from,
            until,
            lookahead,
        } = job;
        let finished = link.run_steps(1, &mut shard, &world, from, until, lookahead);
        drop(world);
        if !finished {
            // The simulation is being dropped in the middle of a run.
            return;
        }
        *lock(&link.back) = Some(shard);
        link.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_goes_on_once_the_other_shard_gets_there() {
        let progress = Arc::new(Progress::new());
        let theirs = Arc::clone(&progress);
        let other = std::thread::spawn(move || {
            // Past the spin, so that the waiter is asleep for some of these.
            for next in 1..=20 {
                std::thread::sleep(Duration::from_micros(200));
                theirs.advance(1, next);
            }
        });
        assert!(progress.wait(1, 20));
        assert!(progress.reached(1, 20));
        other.join().expect("the advancing thread ends");
    }

    #[test]
    fn a_waiter_gives_up_when_the_other_side_is_abandoned() {
        let progress = Arc::new(Progress::new());
        let theirs = Arc::clone(&progress);
        let other = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            theirs.abandon();
        });
        assert!(!progress.wait(1, 1));
        other.join().expect("the abandoning thread ends");
    }
}
