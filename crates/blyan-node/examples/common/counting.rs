//! A `metrics` recorder that keeps every counter as an atomic, so an example can read
//! them: installed globally (every node of the process adds into it) or, around
//! `Endpoint::bind`, locally (that endpoint's byte counters are its own).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// Counters by `name{label=value,...}`; gauges and histograms are dropped.
#[derive(Default, Clone)]
pub(crate) struct CountingRecorder {
    counters: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
}

impl CountingRecorder {
    /// The value of the counter `name` with exactly `labels` (in the order recorded).
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let key = render(name, labels.iter().map(|(k, v)| (*k, *v)));
        self.counters
            .lock()
            .unwrap()
            .get(&key)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The sum of every counter named `name`, whatever its labels.
    pub(crate) fn sum(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .iter()
            .filter(|(key, _)| key.split('{').next() == Some(name))
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl CountingRecorder {
    /// Every non-zero counter, sorted, one per line.
    pub(crate) fn dump(&self) -> String {
        let counters = self.counters.lock().unwrap();
        let mut lines: Vec<String> = counters
            .iter()
            .map(|(k, c)| (k, c.load(Ordering::Relaxed)))
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| format!("  {k} {v}"))
            .collect();
        lines.sort();
        lines.join("\n")
    }
}

fn render<'a>(name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let labels: Vec<String> = labels.map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

impl Recorder for CountingRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let name = render(key.name(), key.labels().map(|l| (l.key(), l.value())));
        let counter = self
            .counters
            .lock()
            .unwrap()
            .entry(name)
            .or_default()
            .clone();
        Counter::from_arc(counter)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
