//! Whole networks of `DhtCore`s in the discrete-event simulator: lookups against brute
//! force, values stored, found, republished and expired, all in simulated time.

use std::time::Duration;

use blyan_dht::sim::{Latency, SimConfig, Simulation};
use blyan_dht::{DhtConfig, Key, QueryResult};

fn network(nodes: usize, seed: u64, dht: DhtConfig) -> Simulation {
    let mut sim = Simulation::new(SimConfig {
        seed,
        dht,
        ..SimConfig::default()
    });
    sim.grow(nodes, Duration::from_millis(20));
    sim.run_for(Duration::from_secs(30));
    sim
}

/// 1,000 nodes that joined one by one, each through a random earlier node: lookups find
/// the true 20 closest in few rounds, and still do with 10% of the nodes dead.
#[test]
fn a_thousand_nodes_find_the_true_closest() {
    let mut sim = network(1000, 21, DhtConfig::default());
    let report = sim.measure_lookups(100, Duration::from_millis(50));
    eprintln!(
        "static 1000: exact {:.1}%, rounds median {} p99 {}, rpcs median {}",
        100.0 * report.success_rate(),
        report.rounds_quantile(0.5),
        report.rounds_quantile(0.99),
        report.rpcs_quantile(0.5)
    );
    assert_eq!(report.samples.len(), 100, "every lookup ends");
    assert!(report.success_rate() >= 0.99, "{}", report.success_rate());
    assert!(report.rounds_quantile(0.5) <= 3);
    assert!(report.rounds_quantile(0.99) <= 5);
    assert!(report.rpcs_quantile(0.5) <= 30);

    sim.kill_fraction(0.1);
    let report = sim.measure_lookups(100, Duration::from_millis(50));
    eprintln!(
        "10% dead: exact {:.1}%, rpcs median {}",
        100.0 * report.success_rate(),
        report.rpcs_quantile(0.5)
    );
    assert_eq!(report.samples.len(), 100, "every lookup ends");
    assert!(report.success_rate() >= 0.97, "{}", report.success_rate());
}

#[test]
fn a_value_put_by_one_node_is_found_by_another_and_expires_when_not_republished() {
    let mut sim = network(150, 22, DhtConfig::default());
    let key = Key::for_value(b"provider record");
    let ttl = Duration::from_secs(600);
    let put = sim.put(3, key, b"hello".to_vec(), ttl).unwrap();
    sim.run_for(Duration::from_secs(10));
    match sim.take_result(3, put) {
        Some(QueryResult::PutValue { stored, .. }) => assert!(stored >= 15, "stored {stored}"),
        other => panic!("put did not finish: {other:?}"),
    }
    let get = sim.get(120, key).unwrap();
    sim.run_for(Duration::from_secs(10));
    let publisher = sim.info(3).unwrap().peer_id();
    match sim.take_result(120, get) {
        Some(QueryResult::GetValue { values, .. }) => {
            assert_eq!(values.len(), 1);
            assert_eq!(values[0].publisher, publisher);
            assert_eq!(values[0].value, b"hello");
        }
        other => panic!("get did not finish: {other:?}"),
    }
    // Without republishing, every holder drops the value once its TTL has passed.
    let holders = |sim: &Simulation| {
        (0..sim.len())
            .filter_map(|i| sim.core(i))
            .filter(|c| !c.store().is_empty())
            .count()
    };
    assert!(holders(&sim) >= 15);
    assert!(sim.core(3).map(|c| c.table().len()).unwrap_or(0) > 0);
    assert!(sim.unpublish(3, &key));
    sim.run_for(ttl + Duration::from_secs(30));
    assert_eq!(holders(&sim), 0, "expired values are dropped");
    let get = sim.get(120, key).unwrap();
    sim.run_for(Duration::from_secs(10));
    assert!(matches!(
        sim.take_result(120, get),
        Some(QueryResult::GetValue { values, .. }) if values.is_empty()
    ));
}

#[test]
fn own_values_are_republished_before_their_ttl_ends() {
    let mut sim = network(100, 23, DhtConfig::default());
    let key = Key::for_value(b"long lived");
    // Republished every min(1 h, ttl / 2) = 60 s; holders keep it 120 s per STORE.
    let ttl = Duration::from_secs(120);
    sim.put(7, key, b"v".to_vec(), ttl).unwrap();
    let rpcs_before = sim.rpcs();
    sim.run_for(Duration::from_secs(600));
    assert!(sim.rpcs() > rpcs_before);
    let get = sim.get(50, key).unwrap();
    sim.run_for(Duration::from_secs(10));
    match sim.take_result(50, get) {
        Some(QueryResult::GetValue { values, .. }) => {
            assert_eq!(values.len(), 1, "still held five TTLs later");
            assert!(values[0].ttl > Duration::from_secs(30));
        }
        other => panic!("get did not finish: {other:?}"),
    }
}

/// Lost messages and a long latency tail: lookups still end, on one path and on three
/// disjoint ones. A lost answer leaves that node out of the result (it counts as
/// unresponsive), so exactness drops with loss; how much is measured, not hidden.
#[test]
fn lossy_slow_links_still_end_and_stay_close() {
    for paths in [1, 3] {
        let dht = DhtConfig {
            disjoint_paths: paths,
            ..DhtConfig::default()
        };
        let mut sim = Simulation::new(SimConfig {
            seed: 24,
            dht,
            latency: Latency::Exponential {
                base: Duration::from_millis(20),
                mean_extra: Duration::from_millis(80),
            },
            loss: 0.01,
            ..SimConfig::default()
        });
        sim.grow(150, Duration::from_millis(20));
        sim.run_for(Duration::from_secs(70));
        let report = sim.measure_lookups(40, Duration::from_millis(100));
        eprintln!(
            "150 nodes, 1% loss, {paths} path(s): exact {:.1}%, {:.1} of the true 20 found, rpcs median {}",
            100.0 * report.success_rate(),
            report.mean_found(),
            report.rpcs_quantile(0.5)
        );
        assert_eq!(report.samples.len(), 40, "every lookup ends");
        assert!(report.mean_found() >= 15.0, "{}", report.mean_found());
    }
}

/// The two shards of a simulation give the same run on one thread as on two: same
/// requests, same lookups with the same figures, same tables, through growth, deaths and
/// churn. (On two threads the order in which the threads reach each window varies from run
/// to run; it must not show.)
#[test]
fn one_thread_and_two_run_the_same_network() {
    use blyan_dht::sim::Churn;

    let run = |threads: usize| {
        let mut sim = Simulation::new(SimConfig {
            seed: 25,
            threads,
            ..SimConfig::default()
        });
        sim.grow(300, Duration::from_millis(20));
        sim.run_for(Duration::from_secs(20));
        let mut reports = vec![sim.measure_lookups(60, Duration::from_millis(30))];
        sim.kill_fraction(0.1);
        reports.push(sim.measure_lookups(60, Duration::from_millis(30)));
        sim.set_churn(Some(Churn {
            leaves_per_sec: 3.0,
            joins_per_sec: 3.0,
        }));
        // Runs cut at odd times: windows stay aligned to the lookahead all the same.
        for step in [7, 13, 1, 250, 3_001] {
            sim.run_for(Duration::from_millis(step));
        }
        reports.push(sim.measure_lookups(60, Duration::from_millis(30)));
        let tables: Vec<Vec<_>> = (0..sim.len())
            .map(|i| {
                sim.core(i)
                    .map(|c| c.table().iter().map(|e| e.node().peer_id()).collect())
                    .unwrap_or_default()
            })
            .collect();
        let samples: Vec<_> = reports.into_iter().map(|r| r.samples).collect();
        (sim.rpcs(), sim.len(), sim.live(), samples, tables)
    };
    let one = run(1);
    let two = run(2);
    assert!(one.0 > 10_000, "the network did work: {} requests", one.0);
    assert!(one.1 > 300, "nodes joined during churn");
    assert!(one.3.iter().all(|s| s.len() >= 50), "lookups were measured");
    assert_eq!(one.0, two.0, "requests");
    assert_eq!((one.1, one.2), (two.1, two.2), "nodes and live nodes");
    assert_eq!(one.3, two.3, "lookup samples");
    assert_eq!(one.4, two.4, "routing tables");
}
