//! The simulator's agenda: scheduled events handed out by due millisecond, equal times in
//! the order they were scheduled.
//!
//! A timing wheel: one queue per millisecond for the next [`WHEEL_MS`] milliseconds (every
//! message latency, request timeout and maintenance pass lands here), and a heap for the
//! rare event beyond. Scheduling and taking an event cost O(1) instead of a heap's
//! O(log n) cache misses over the tens of thousands of pending wakes of a large network.
//!
//! Order: by time, then by order of scheduling. An event for time `t` enters the heap only
//! while `t` is beyond the wheel, and the wheel reaches `t` only by moving forward, at
//! which point the heap's events for `t` move to `t`'s queue (in their order) before
//! anything else can be scheduled for `t`. So each queue holds its events in scheduling
//! order.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Milliseconds the wheel covers (16.4 s).
const WHEEL_MS: u64 = 1 << 14;

/// Events by due time in milliseconds. See the module docs.
pub(crate) struct Agenda<T> {
    /// The queue of time `t` is `ring[t % WHEEL_MS]`, for `cursor <= t < cursor + WHEEL_MS`.
    ring: Vec<VecDeque<T>>,
    /// The time being handed out; nothing earlier is left.
    cursor: u64,
    /// Events in `ring`.
    near: usize,
    /// Events at `cursor + WHEEL_MS` or later.
    far: BinaryHeap<Far<T>>,
    /// Order of scheduling, for the heap.
    seq: u64,
}

struct Far<T> {
    at: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Far<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Far<T> {}

impl<T> PartialOrd for Far<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Far<T> {
    /// Reversed: the heap's greatest is the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> Agenda<T> {
    pub(crate) fn new() -> Self {
        Self {
            ring: (0..WHEEL_MS).map(|_| VecDeque::new()).collect(),
            cursor: 0,
            near: 0,
            far: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Schedules `item` at time `at` (ms); a time already passed counts as the present.
    pub(crate) fn push(&mut self, at: u64, item: T) {
        let at = at.max(self.cursor);
        if self.within(at) {
            if let Some(queue) = self.ring.get_mut(slot(at)) {
                queue.push_back(item);
                self.near += 1;
            }
        } else {
            self.far.push(Far {
                at,
                seq: self.seq,
                item,
            });
        }
        self.seq += 1;
    }

    /// Takes the next event due at or before `until`, with its time.
    pub(crate) fn pop_until(&mut self, until: u64) -> Option<(u64, T)> {
        loop {
            if let Some(item) = self
                .ring
                .get_mut(slot(self.cursor))
                .and_then(VecDeque::pop_front)
            {
                self.near -= 1;
                return Some((self.cursor, item));
            }
            if self.cursor >= until || (self.near == 0 && self.far.is_empty()) {
                return None;
            }
            // Step through the wheel while it holds events; otherwise jump to the heap's
            // first event (or to `until` if that comes first).
            let next = if self.near > 0 {
                self.cursor + 1
            } else {
                self.far.peek().map_or(until, |f| f.at.min(until))
            };
            self.advance(next);
        }
    }

    /// Moves the present to `to` and brings the heap's events now within the wheel into it.
    fn advance(&mut self, to: u64) {
        self.cursor = to.max(self.cursor);
        while self.far.peek().is_some_and(|f| self.within(f.at)) {
            let Some(f) = self.far.pop() else {
                break;
            };
            if let Some(queue) = self.ring.get_mut(slot(f.at)) {
                queue.push_back(f.item);
                self.near += 1;
            }
        }
    }
}

impl<T> Agenda<T> {
    /// Whether time `at` (not before `cursor`) has its queue in the wheel now. Near the end
    /// of time the wheel reaches `u64::MAX` itself.
    fn within(&self, at: u64) -> bool {
        match self.cursor.checked_add(WHEEL_MS) {
            Some(horizon) => at < horizon,
            None => true,
        }
    }
}

fn slot(at: u64) -> usize {
    // Below WHEEL_MS, so it fits any usize.
    (at % WHEEL_MS) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;

    /// What the agenda must match: a heap by (time, order of scheduling).
    #[derive(Default)]
    struct Model {
        heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
        seq: u64,
        now: u64,
    }

    impl Model {
        fn push(&mut self, at: u64, item: u32) {
            self.heap.push(Reverse((at.max(self.now), self.seq, item)));
            self.seq += 1;
        }

        fn pop_until(&mut self, until: u64) -> Option<(u64, u32)> {
            let Reverse((at, _, item)) = *self.heap.peek()?;
            if at > until {
                return None;
            }
            self.heap.pop();
            self.now = at;
            Some((at, item))
        }
    }

    proptest! {
        #[test]
        fn hands_out_events_by_time_then_order_of_scheduling(
            steps in proptest::collection::vec(
                (0u64..40_000, 0usize..4, 0u64..3_000, any::<bool>()),
                1..300,
            ),
        ) {
            let mut agenda = Agenda::new();
            let mut model = Model::default();
            let mut now = 0u64;
            let mut next = 0u32;
            for (delay, burst, run, same_time) in steps {
                // Schedule a few events, some at the present, some far beyond the wheel.
                for b in 0..burst {
                    let at = if same_time { now } else { now + delay * (b as u64 + 1) };
                    agenda.push(at, next);
                    model.push(at, next);
                    next += 1;
                }
                // Run a while, scheduling an event from inside some of the handled ones.
                let until = now + run;
                loop {
                    let got = agenda.pop_until(until);
                    prop_assert_eq!(got, model.pop_until(until));
                    let Some((at, item)) = got else { break };
                    now = at;
                    if item % 3 == 0 {
                        agenda.push(at + u64::from(item % 5), next);
                        model.push(at + u64::from(item % 5), next);
                        next += 1;
                    }
                }
                now = now.max(until);
                model.now = model.now.max(until);
            }
            // Drain everything left.
            loop {
                let got = agenda.pop_until(u64::MAX);
                prop_assert_eq!(got, model.pop_until(u64::MAX));
                if got.is_none() {
                    break;
                }
            }
        }
    }

    #[test]
    fn the_far_future_and_the_end_of_time_are_reached() {
        let mut agenda = Agenda::new();
        agenda.push(u64::MAX, 3);
        agenda.push(5 * WHEEL_MS + 7, 2);
        agenda.push(5 * WHEEL_MS + 7, 1);
        agenda.push(1, 0);
        assert_eq!(agenda.pop_until(0), None);
        assert_eq!(agenda.pop_until(10), Some((1, 0)));
        assert_eq!(agenda.pop_until(5 * WHEEL_MS), None);
        assert_eq!(agenda.pop_until(u64::MAX), Some((5 * WHEEL_MS + 7, 2)));
        assert_eq!(agenda.pop_until(u64::MAX), Some((5 * WHEEL_MS + 7, 1)));
        assert_eq!(agenda.pop_until(u64::MAX), Some((u64::MAX, 3)));
        assert_eq!(agenda.pop_until(u64::MAX), None);
    }
}
