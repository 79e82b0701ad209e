//! The operator's guide stays in step with the metric catalog.

use blyan_ops::ALL_METRICS;

/// `docs/operations.md` must name every metric the node exports, with each of its label
/// keys: operators alert on what that page lists.
#[test]
fn operations_guide_lists_every_metric() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md");
    let guide = std::fs::read_to_string(path).expect("docs/operations.md is readable");
    let mut missing = Vec::new();
    for def in ALL_METRICS {
        if !guide.contains(&format!("`{}", def.name)) {
            missing.push(def.name.to_owned());
        }
        for label in def.labels {
            if !guide.contains(label.key) {
                missing.push(format!("{} label {}", def.name, label.key));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/operations.md: {missing:?}");
}
