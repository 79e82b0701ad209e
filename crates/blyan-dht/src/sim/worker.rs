//! Running a simulation's two shards on two threads.
//!
//! **Why it is safe to run them apart.** Every message takes at least the least latency,
//! `L` whole milliseconds (the lookahead). Cut time into windows `[aL, (a+1)L)`: whatever
//! a node does in one window reaches another node no earlier than the next window. So
//! each shard handles its own nodes' events of a window without hearing from the other,
//! and the two swap what they sent each other at the window's end. A node's own timer
//! stays within its shard.
//!
//! **Why the result is the same on one thread or two.** Each shard handles its events in
//! the order of its agenda (by time, then order of scheduling), and takes the other
//! shard's events in only at window ends, after its own events of that window were
//! scheduled. On one thread the shards run one after the other in each window and swap the
//! same way, so every agenda sees the same events in the same order. Windows are aligned
//! to multiples of `L`, not to where a run stops, so how the runs are cut does not matter
//! either.
//!
//! The second thread lives as long as the simulation. Between runs it spins a little
//! (the next run usually follows within microseconds) and then sleeps on a condition
//! variable. Within a run the two threads meet at a spinning barrier at every window end.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::shard::{Event, Shard};
use super::world::World;

/// Events one shard sent the other in a window, with their due times.
type Mail = Vec<(u64, Event)>;

/// The last millisecond of the window that holds `start`, or `until` if that comes first.
pub(super) fn window_end(start: u64, lookahead: u64, until: u64) -> u64 {
    let lookahead = lookahead.max(1);
    let aligned = start - start % lookahead;
    aligned.saturating_add(lookahead - 1).min(until)
}

/// Whether a window that ends at `end` ends where the aligned window does.
fn ends_aligned(end: u64, lookahead: u64) -> bool {
    end.checked_add(1)
        .is_none_or(|next| next.is_multiple_of(lookahead.max(1)))
}

/// Runs `shards` (all of a simulation's) one after the other in each window, from `from`
/// to `until` (ms, inclusive), swapping their mail at aligned window ends.
pub(super) fn run_serial(
    shards: &mut [Shard],
    world: &World,
    from: u64,
    until: u64,
    lookahead: u64,
) {
    let mut start = from;
    loop {
        let end = window_end(start, lookahead, until);
        for shard in shards.iter_mut() {
            shard.run(world, end);
        }
        if ends_aligned(end, lookahead) {
            let mut mail: Vec<Mail> = shards.iter_mut().map(Shard::take_outbox).collect();
            // Two shards: each one's mail is for the other.
            let count = shards.len();
            for (index, shard) in shards.iter_mut().enumerate() {
                if let Some(from_other) = mail.get_mut((index + 1) % count)
                    && count > 1
                {
                    shard.deliver(from_other.drain(..));
                }
            }
        }
        if end >= until {
            return;
        }
        start = end + 1;
    }
}

/// A barrier for two threads that spins first: a window is tens of microseconds of work,
/// less than a sleep and a wake-up cost, so on an idle machine the other thread arrives
/// while this one spins. When the machine is busy the other thread may not be running at
/// all; then spinning would only keep it off the core, so after [`SPIN`](Self::SPIN) the
/// waiter sleeps on a condition variable.
struct SpinBarrier {
    arrived: AtomicUsize,
    generation: AtomicUsize,
    /// Set when the other thread died; waiting then gives up.
    abandoned: AtomicBool,
    /// Waiters asleep (changed and read under `sleep`). A count, not a flag: a waiter
    /// just woken from one generation may not have left yet when the other thread falls
    /// asleep in the next.
    sleeping: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

impl SpinBarrier {
    const PARTIES: usize = 2;
    /// How long a waiter spins before it sleeps.
    const SPIN: Duration = Duration::from_micros(50);

    fn new() -> Self {
        Self {
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            abandoned: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Waits for the other thread; `false` if it died instead.
    fn wait(&self) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == Self::PARTIES {
            self.arrived.store(0, Ordering::Relaxed);
            let guard = lock(&self.sleep);
            self.generation.fetch_add(1, Ordering::AcqRel);
            let sleeping = self.sleeping.load(Ordering::Acquire);
            drop(guard);
            if sleeping > 0 {
                self.wake.notify_all();
            }
            return true;
        }
        let started = Instant::now();
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.abandoned.load(Ordering::Acquire) {
                return false;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && started.elapsed() > Self::SPIN {
                return self.sleep_until_released(generation);
            }
            std::hint::spin_loop();
        }
        true
    }

    fn sleep_until_released(&self, generation: usize) -> bool {
        let mut guard = lock(&self.sleep);
        self.sleeping.fetch_add(1, Ordering::AcqRel);
        while self.generation.load(Ordering::Acquire) == generation {
            if self.abandoned.load(Ordering::Acquire) {
                self.sleeping.fetch_sub(1, Ordering::AcqRel);
                return false;
            }
            // The timeout only bounds how late a death of the other thread is noticed.
            guard = self
                .wake
                .wait_timeout(guard, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        self.sleeping.fetch_sub(1, Ordering::AcqRel);
        true
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
    barrier: SpinBarrier,
    /// `mail[d][p]`: events for shard `d` sent in windows of parity `p`. Two parities, so
    /// a thread that is a window ahead never writes into mail the other is still reading.
    mail: [[Mutex<Mail>; 2]; 2],
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

    /// One shard's part of a parallel run: `me` is its index (0 or 1).
    fn run_windows(
        &self,
        me: usize,
        shard: &mut Shard,
        world: &World,
        from: u64,
        until: u64,
        lookahead: u64,
    ) -> bool {
        let other = 1 - me;
        let mut start = from;
        loop {
            let end = window_end(start, lookahead, until);
            shard.run(world, end);
            if ends_aligned(end, lookahead) {
                let parity = usize::from((end / lookahead.max(1)) % 2 == 1);
                let outgoing = shard.take_outbox();
                if !outgoing.is_empty()
                    && let Some(slot) = self.mail.get(other).and_then(|m| m.get(parity))
                {
                    lock(slot).extend(outgoing);
                }
                if !self.barrier.wait() {
                    return false;
                }
                if let Some(slot) = self.mail.get(me).and_then(|m| m.get(parity)) {
                    shard.deliver(lock(slot).drain(..));
                }
            }
            if end >= until {
                return true;
            }
            start = end + 1;
        }
    }
}

/// Marks the link dead if the worker thread unwinds, so the main thread stops waiting.
struct DeathNotice(Arc<Link>);

impl Drop for DeathNotice {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.barrier.abandoned.store(true, Ordering::Release);
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
            barrier: SpinBarrier::new(),
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
        *lock(&self.link.job) = Some(Job {
            shard: theirs,
            world: Arc::clone(world),
            from,
            until,
            lookahead,
        });
        self.link.set_state(JOB);
        let finished = match shards.first_mut() {
            Some(mine) => self
                .link
                .run_windows(0, mine, world, from, until, lookahead),
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
        // A run cut short by a panic here leaves the worker at the barrier: release it.
        self.link.barrier.abandoned.store(true, Ordering::Release);
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
        let finished = link.run_windows(1, &mut shard, &world, from, until, lookahead);
        drop(world);
        if !finished {
            // The simulation is being dropped in the middle of a run.
            return;
        }
        *lock(&link.back) = Some(shard);
        link.finish();
    }
}
