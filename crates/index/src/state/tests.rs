//! Node-table operations without HTTP, Redis or tasks: what a reload and a heartbeat do to the
//! table, and what they report back.

use super::*;

fn spec(text: &str) -> NodeSpec {
    text.parse().unwrap()
}

fn names(handles: &[PollerHandle]) -> Vec<&str> {
    handles.iter().map(|h| h.name.as_str()).collect()
}

fn configured(nodes: &[&str]) -> NodeTable {
    nodes.iter().enumerate().map(|(i, n)| (n.to_string(), NodeEntry::new(spec(n_spec(n).as_str()), i, None))).collect()
}

fn n_spec(name: &str) -> String {
    format!("name={name},api=http://127.0.0.1:1985")
}

#[test]
fn reload_adds_removes_and_updates_configured_nodes_only() {
    let mut table = configured(&["a", "b", "c"]);
    let order = AtomicUsize::new(3);
    let now = Instant::now();
    assert!(matches!(register_in(&mut table, spec(&n_spec("r")), &order, now, 100, true), RegisterOutcome::Added(_)));
    let stop_b = table["b"].stop.clone();
    let new = [spec(&n_spec("c")), spec("name=a,api=http://127.0.0.1:2000"), spec(&n_spec("d"))];
    let diff = reload_nodes(&mut table, &new);
    assert_eq!(names(&diff.added), ["d"], "a new configured node needs a poller");
    assert_eq!(names(&diff.removed), ["b"], "a configured node that left is removed");
    assert!(!stop_b.is_cancelled(), "the table does not stop pollers itself: the caller does");
    assert!(diff.removed[0].stop == stop_b, "the handle stops the removed node's poller");
    assert_eq!(diff.changed, 1, "a's address changed");
    assert_eq!(table["a"].spec.api, "http://127.0.0.1:2000");
    assert_eq!((table["c"].order, table["a"].order, table["d"].order), (0, 1, 2), "the new config's order");
    assert!(table.contains_key("r"), "a self-registered node is not the config's to remove");
    assert!(table["r"].registered.is_some());
    assert_eq!(diff.message(), "configuration reloaded: 1 node(s) added, 1 removed, 1 changed");
}

#[test]
fn reload_makes_a_registered_node_of_the_same_name_configured() {
    let mut table = NodeTable::new();
    let order = AtomicUsize::new(0);
    register_in(&mut table, spec(&n_spec("e1")), &order, Instant::now(), 100, true);
    let diff = reload_nodes(&mut table, &[spec(&n_spec("e1"))]);
    assert!(diff.added.is_empty() && diff.removed.is_empty(), "the node keeps its poller");
    assert!(table["e1"].registered.is_none(), "configured now: heartbeats no longer move it");
    assert!(matches!(
        register_in(&mut table, spec("name=e1,api=http://127.0.0.1:9"), &order, Instant::now(), 100, true),
        RegisterOutcome::Configured
    ));
    assert_eq!(table["e1"].spec.api, "http://127.0.0.1:1985", "the configured address wins");
}

#[test]
fn heartbeats_add_refresh_and_update_a_registered_node() {
    let mut table = configured(&["c"]);
    let order = AtomicUsize::new(1);
    let t0 = Instant::now();
    let RegisterOutcome::Added(handle) = register_in(&mut table, spec(&n_spec("r")), &order, t0, 100, true) else {
        panic!("a new name is added")
    };
    assert_eq!(handle.name, "r");
    assert!(handle.stop == table["r"].stop, "the handle is the entry's poller");
    assert_eq!(table["r"].order, 1, "registered nodes come after the configured ones");
    let t1 = t0 + Duration::from_secs(1);
    assert!(matches!(register_in(&mut table, spec(&n_spec("r")), &order, t1, 100, true), RegisterOutcome::Refreshed));
    assert_eq!(table["r"].registered, Some(t1), "a heartbeat refreshes the node");
    let moved = spec("name=r,api=http://127.0.0.1:7000");
    assert!(matches!(register_in(&mut table, moved, &order, t1, 100, true), RegisterOutcome::Updated));
    assert_eq!(table["r"].spec.api, "http://127.0.0.1:7000");
    assert!(matches!(register_in(&mut table, spec(&n_spec("c")), &order, t1, 100, true), RegisterOutcome::Configured));
    assert!(table["c"].registered.is_none());
    assert_eq!(order.load(Ordering::Relaxed), 2, "only an added node takes an order");
}

#[test]
fn silent_registered_nodes_are_forgotten_and_configured_ones_stay() {
    let mut table = configured(&["c"]);
    let order = AtomicUsize::new(1);
    let t0 = Instant::now();
    register_in(&mut table, spec(&n_spec("old")), &order, t0, 100, true);
    register_in(&mut table, spec(&n_spec("new")), &order, t0 + Duration::from_secs(5), 100, true);
    let gone = forget_silent_in(&mut table, Duration::from_secs(3), t0 + Duration::from_secs(6));
    assert_eq!(names(&gone), ["old"]);
    assert_eq!(table.keys().collect::<Vec<_>>(), ["c", "new"]);
}

#[test]
fn registered_nodes_are_capped_and_a_name_moves_only_with_the_credential() {
    let mut table = configured(&["c"]);
    let order = AtomicUsize::new(1);
    let now = Instant::now();
    assert!(matches!(register_in(&mut table, spec(&n_spec("r1")), &order, now, 2, false), RegisterOutcome::Added(_)));
    assert!(matches!(register_in(&mut table, spec(&n_spec("r2")), &order, now, 2, false), RegisterOutcome::Added(_)));
    assert!(matches!(register_in(&mut table, spec(&n_spec("r3")), &order, now, 2, false), RegisterOutcome::Full));
    assert!(!table.contains_key("r3"), "configured nodes do not count, registered ones do");
    assert!(matches!(register_in(&mut table, spec(&n_spec("r1")), &order, now, 2, false), RegisterOutcome::Refreshed));
    let elsewhere = spec("name=r1,api=http://10.9.9.9:1985");
    assert!(matches!(register_in(&mut table, elsewhere.clone(), &order, now, 2, false), RegisterOutcome::Moved));
    assert_eq!(table["r1"].spec.api, "http://127.0.0.1:1985", "the name stays where it was");
    let other_port = spec("name=r1,api=http://127.0.0.1:2985");
    assert!(matches!(register_in(&mut table, other_port, &order, now, 2, false), RegisterOutcome::Updated));
    assert!(matches!(register_in(&mut table, elsewhere, &order, now, 2, true), RegisterOutcome::Updated));
    assert_eq!(table["r1"].spec.api, "http://10.9.9.9:1985", "with the credential it moves");
}
