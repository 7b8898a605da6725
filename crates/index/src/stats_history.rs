//! The last 15 minutes of load, for the dashboard's charts (`GET /api/v1/stats/history`): every
//! [`EVERY`] the viewers and outgoing bitrate of each node and of the streams with the most
//! viewers, as the directory shows them. Kept in memory only (a restarted index starts a new 15
//! minutes; Prometheus keeps the long history), and bounded: [`KEEP`] samples of at most
//! [`MAX_NODES`] nodes and [`MAX_STREAMS`] streams each, those with the most viewers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::directory::Directory;

/// How often a sample is taken.
pub const EVERY: Duration = Duration::from_secs(10);
/// Samples kept: 15 minutes.
pub const KEEP: usize = 90;
pub const MAX_NODES: usize = 200;
pub const MAX_STREAMS: usize = 20;

/// One point of one series: viewers and outgoing kbps.
type Point = (u64, u64);
/// A stream by (app, stream name).
type StreamName = (Box<str>, Box<str>);
/// A series' columns: viewers and kbps at each sample's time.
type Columns = (Vec<Option<u64>>, Vec<Option<u64>>);

struct Sample {
    at_ms: u64,
    /// Node name → its point.
    nodes: Vec<(Arc<str>, Point)>,
    /// (app, stream) → its point, for the streams with most viewers.
    streams: Vec<(StreamName, Point)>,
}

#[derive(Default)]
pub struct StatsHistory {
    samples: Mutex<VecDeque<Arc<Sample>>>,
}

/// The `n` items with the largest `viewers`, in no particular order.
fn top<T>(mut items: Vec<(T, Point)>, n: usize) -> Vec<(T, Point)> {
    if items.len() > n {
        items.select_nth_unstable_by(n - 1, |a, b| b.1.0.cmp(&a.1.0));
        items.truncate(n);
    }
    items
}

impl StatsHistory {
    /// Takes a sample of `dir` at `now_ms`, forgetting the oldest past [`KEEP`].
    pub fn record(&self, dir: &Directory, now_ms: u64) {
        let nodes = dir.nodes.iter().map(|n| (Arc::from(n.spec.name.as_str()), (n.viewers, n.kbps_out))).collect();
        let streams = dir
            .streams
            .values()
            .filter(|s| &*s.vhost == crate::directory::DEFAULT_VHOST)
            .map(|s| ((s.app.clone(), s.stream.clone()), (s.viewers, s.kbps_out)))
            .collect();
        let sample =
            Arc::new(Sample { at_ms: now_ms, nodes: top(nodes, MAX_NODES), streams: top(streams, MAX_STREAMS) });
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back(sample);
        while samples.len() > KEEP {
            samples.pop_front();
        }
    }

    /// The samples as columns, ready to chart: `times` (ms), and for each node and each stream
    /// `may_see(app, stream)` allows, its `viewers` and `kbps` at those times (`null` where it was
    /// not in the sample).
    pub fn series(&self, may_see: impl Fn(&str, &str) -> bool) -> Value {
        let samples: Vec<Arc<Sample>> =
            self.samples.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        let n = samples.len();
        let mut nodes: BTreeMap<&str, Columns> = BTreeMap::new();
        let mut streams: BTreeMap<String, Columns> = BTreeMap::new();
        for (i, s) in samples.iter().enumerate() {
            for (name, (viewers, kbps)) in &s.nodes {
                let e = nodes.entry(name).or_insert_with(|| (vec![None; n], vec![None; n]));
                (e.0[i], e.1[i]) = (Some(*viewers), Some(*kbps));
            }
            for ((app, stream), (viewers, kbps)) in &s.streams {
                if !may_see(app, stream) {
                    continue;
                }
                let e = streams.entry(format!("{app}/{stream}")).or_insert_with(|| (vec![None; n], vec![None; n]));
                (e.0[i], e.1[i]) = (Some(*viewers), Some(*kbps));
            }
        }
        let columns =
            |(viewers, kbps): &(Vec<Option<u64>>, Vec<Option<u64>>)| json!({ "viewers": viewers, "kbps": kbps });
        json!({
            "code": 0,
            "interval_ms": EVERY.as_millis() as u64,
            "times": samples.iter().map(|s| s.at_ms).collect::<Vec<_>>(),
            "nodes": nodes.iter().map(|(k, v)| (k.to_string(), columns(v))).collect::<serde_json::Map<_, _>>(),
            "streams": streams.iter().map(|(k, v)| (k.clone(), columns(v))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streams_with_most_viewers_are_kept() {
        let items: Vec<(u32, Point)> = (0..100).map(|i| (i, (u64::from(i), 0))).collect();
        let mut kept: Vec<u32> = top(items, 3).into_iter().map(|(i, _)| i).collect();
        kept.sort();
        assert_eq!(kept, [97, 98, 99]);
    }
}
