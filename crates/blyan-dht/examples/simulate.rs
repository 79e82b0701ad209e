//! Runs the discrete-event simulator on a large network and prints the lookup figures.
//!
//! ```text
//! cargo run --release -p blyan-dht --features sim --example simulate -- \
//!     [--nodes 10000] [--lookups 1000] [--seed 1] [--loss 0.0] [--paths 1] \
//!     [--dead 0.1] [--churn-per-sec 2.0] [--threads 2]
//! ```
//!
//! Phases: the network grows one node every 20 ms (each joins through a random live node),
//! settles for a minute, then runs `--lookups` lookups on the static network, again after
//! killing `--dead` of the nodes (their entries stay in the tables), and again while nodes
//! leave and join at `--churn-per-sec` each. Memory per node is the growth of the resident
//! set (`VmRSS`) while the network grows, divided by the node count.
//!
//! Speed is RPCs per wall-clock second: requests the cores sent (delivered or lost),
//! nothing else. The simulator runs its two shards on `--threads` threads (default: two
//! where the machine has them); the figures other than speed are the same for one or two. At 10,000 nodes most of the time is cache and TLB misses on the tables of
//! the nodes answering; on Linux with glibc, `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` in the
//! environment lets the heap use transparent huge pages (up to 1.4x faster where the
//! kernel grants them on request). Figures: `docs/performance.md`.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use blyan_dht::sim::{Churn, LookupReport, SimConfig, Simulation};

/// Resident set size in bytes from `/proc/self/status` (Linux); 0 elsewhere.
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

struct Args {
    nodes: usize,
    lookups: usize,
    seed: u64,
    loss: f64,
    paths: usize,
    dead: f64,
    churn: f64,
    threads: Option<usize>,
}

const USAGE: &str = "usage: simulate [--nodes N] [--lookups N] [--seed N] [--loss P] [--paths N] \
[--dead FRACTION] [--churn-per-sec RATE] [--threads 1|2]";

/// Parses `--flag value` pairs; an unknown flag or a value that does not parse is an error
/// naming it.
fn parse() -> Result<Args, String> {
    let mut args = Args {
        nodes: 10_000,
        lookups: 1000,
        seed: 1,
        loss: 0.0,
        paths: 1,
        dead: 0.1,
        churn: 2.0,
        threads: None,
    };
    fn value<T: std::str::FromStr>(flag: &str, raw: &str) -> Result<T, String> {
        raw.parse()
            .map_err(|_| format!("{flag}: cannot parse {raw:?}"))
    }
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let Some(v) = raw.next() else {
            return Err(format!("{flag} takes a value"));
        };
        match flag.as_str() {
            "--nodes" => args.nodes = value(&flag, &v)?,
            "--lookups" => args.lookups = value(&flag, &v)?,
            "--seed" => args.seed = value(&flag, &v)?,
            "--loss" => args.loss = value(&flag, &v)?,
            "--paths" => args.paths = value(&flag, &v)?,
            "--dead" => args.dead = value(&flag, &v)?,
            "--churn-per-sec" => args.churn = value(&flag, &v)?,
            "--threads" => args.threads = Some(value(&flag, &v)?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    Ok(args)
}

fn print(label: &str, report: &LookupReport) {
    println!(
        "{label}: {} lookups, exact {:.2}% ({:.2} of the true 20 found on average), rounds median {} p99 {} max {}, rpcs median {} mean {:.1} p99 {}, latency median {} ms p99 {} ms",
        report.samples.len(),
        100.0 * report.success_rate(),
        report.mean_found(),
        report.rounds_quantile(0.5),
        report.rounds_quantile(0.99),
        report.rounds_quantile(1.0),
        report.rpcs_quantile(0.5),
        report.mean_rpcs(),
        report.rpcs_quantile(0.99),
        report.latency_quantile(0.5).as_millis(),
        report.latency_quantile(0.99).as_millis(),
    );
}

fn main() -> std::process::ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("simulate: {error}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut config = SimConfig {
        seed: args.seed,
        loss: args.loss,
        ..SimConfig::default()
    };
    if let Some(threads) = args.threads {
        config.threads = threads;
    }
    println!("threads: {}", config.threads);
    config.dht.disjoint_paths = args.paths;
    let heap_before = rss_bytes();
    let mut sim = Simulation::new(config);

    let wall = Instant::now();
    sim.grow(args.nodes, Duration::from_millis(20));
    sim.run_for(Duration::from_secs(60));
    let grow_secs = wall.elapsed().as_secs_f64();
    let heap = rss_bytes().saturating_sub(heap_before);
    let table_mean = (0..sim.len())
        .filter_map(|i| sim.core(i))
        .map(|c| c.table().len())
        .sum::<usize>() as f64
        / sim.len() as f64;
    println!(
        "grew {} nodes in {grow_secs:.1} s wall ({} rpcs, {:.0} rpcs/s); RSS growth {:.1} MiB = {:.1} KiB/node; mean table {table_mean:.0} entries",
        args.nodes,
        sim.rpcs(),
        sim.rpcs() as f64 / grow_secs,
        heap as f64 / (1 << 20) as f64,
        heap as f64 / 1024.0 / args.nodes as f64,
    );

    let phase = |sim: &mut Simulation, label: &str| {
        let rpcs = sim.rpcs();
        let start = Instant::now();
        let report = sim.measure_lookups(args.lookups, Duration::from_millis(50));
        let secs = start.elapsed().as_secs_f64();
        print(label, &report);
        println!(
            "  {} rpcs in {secs:.2} s wall = {:.0} rpcs/s",
            sim.rpcs() - rpcs,
            (sim.rpcs() - rpcs) as f64 / secs
        );
    };
    phase(&mut sim, "static");
    if args.dead > 0.0 {
        sim.kill_fraction(args.dead);
        phase(&mut sim, &format!("{:.0}% dead", 100.0 * args.dead));
    }
    if args.churn > 0.0 {
        sim.set_churn(Some(Churn {
            leaves_per_sec: args.churn,
            joins_per_sec: args.churn,
        }));
        sim.run_for(Duration::from_secs(120));
        phase(&mut sim, &format!("churn {}/s each way", args.churn));
        println!("  live nodes {} of {}", sim.live(), sim.len());
    }
    println!(
        "total: {} rpcs in {:.1} s wall = {:.0} rpcs/s",
        sim.rpcs(),
        wall.elapsed().as_secs_f64(),
        sim.rpcs() as f64 / wall.elapsed().as_secs_f64()
    );
    std::process::ExitCode::SUCCESS
}
