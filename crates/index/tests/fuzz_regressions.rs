//! Replays the fuzzing campaign's inputs for the SRS API answers the index reads (`fuzz/` at the
//! repo root, target `srs_api`): every input a fuzzer once crashed on and every seed (real SRS 7
//! answers), through the same driver, plus the counters that once froze the merge.

#[path = "../../../fuzz/drivers/inputs.rs"]
mod inputs;
#[path = "../../../fuzz/drivers/srs_api.rs"]
mod srs_api;

#[test]
fn srs_api_regressions() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    inputs::replay(&repo, "srs_api", |data| {
        srs_api::drive_srs_api(data);
    });
    // The seeds are real SRS 7 answers: the directory lists their streams besides the witness.
    for (path, data) in inputs::inputs(&repo, "srs_api").iter().filter(|(p, _)| p.to_string_lossy().contains("srs7_")) {
        assert!(srs_api::drive_srs_api(data) > 1, "{} lists no SRS stream", path.display());
    }
}

/// Counters no real node reports (the sums once overflowed and froze the directory on every
/// replica), on one record and on several the merge adds up.
#[test]
fn numbers_from_a_node_never_panic_the_merge() {
    let huge = [0, 1, u64::MAX, u64::MAX / 2 + 1, i64::MAX as u64];
    for clients in huge {
        for kbps in huge {
            for n in 1..4 {
                let record = format!(
                    r#"{{"id":"s","name":"cam","vhost":"vid-1","app":"live","clients":{clients},"kbps":{{"recv_30s":{kbps},"send_30s":{kbps}}},"publish":{{"active":true}}}}"#
                );
                let page = format!(r#"{{"code":0,"streams":[{}]}}"#, vec![record; n].join(","));
                let mut node = br#"{"code":0,"vhosts":[{"id":"vid-1","name":"__defaultVhost__"}]}"#.to_vec();
                node.push(0xFF);
                node.extend_from_slice(br#"{"code":0}"#);
                node.push(0xFF);
                node.extend_from_slice(page.as_bytes());
                let mut both = node.clone();
                both.push(0xFF);
                both.extend_from_slice(&node);
                assert_eq!(srs_api::drive_srs_api(&both), 2, "cam and the witness are listed");
            }
        }
    }
}

#[path = "../../../fuzz/drivers/dns_query.rs"]
mod dns_query;

#[test]
fn dns_query_regressions() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    inputs::replay(&repo, "dns_query", |data| {
        dns_query::drive_dns_query(data);
    });
    // The seeds are queries dig could send: each gets an answer, and the apex one has records.
    let apex = std::fs::read(repo.join("fuzz/seeds/dns_query/a_apex_ecs")).unwrap();
    assert!(dns_query::drive_dns_query(&apex).is_some_and(|n| n >= 1));
    for (path, data) in inputs::inputs(&repo, "dns_query") {
        assert!(dns_query::drive_dns_query(&data).is_some(), "{} got no answer", path.display());
    }
}
