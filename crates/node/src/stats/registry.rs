//! Who is connected and to what: the vhosts, streams and clients that the SRS HTTP API lists.
//!
//! Lifetimes follow SRS where a client cannot abuse them: a stream entry lives while it has a
//! publisher or at least one client, and gets a new id when recreated; a client entry lives as
//! long as its connection, through the `ClientGuard` the connection holds. Entries are created only
//! for admitted clients (`crate::admission`). A vhost is named by the client (`?vhost=`), so unlike
//! SRS's configured vhosts, a named vhost leaves with its last stream, and at most `MAX_VHOSTS`
//! exist at once; the default vhost, once created, stays.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferrocast_media::{AudioInfo, Frame, FrameKind, VideoInfo};
use tokio_util::sync::CancellationToken;

use super::traffic::{Traffic, TrafficChain};
use crate::ids;
use crate::key::StreamKey;

/// SRS's client `type` values that Ferrocast produces, and `forward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    RtmpPlay,
    FlvPlay,
    HlsPlay,
    /// A WebRTC (WHEP) viewer, `rtc-play` as SRS lists them.
    RtcPlay,
    FmlePublish,
    /// An origin's push of a stream to a forward destination (`crate::origin_forward`). SRS does not
    /// list its forwarders; we do, so an operator sees them, under a type of our own. Like an
    /// edge's pull it is not counted in the stream's or vhost's `clients`, which pollers (the
    /// index server) read as publisher + viewers.
    Forward,
}

impl ClientKind {
    pub fn srs_name(self) -> &'static str {
        match self {
            ClientKind::RtmpPlay => "rtmp-play",
            ClientKind::FlvPlay => "flv-play",
            ClientKind::HlsPlay => "hls-play",
            ClientKind::RtcPlay => "rtc-play",
            ClientKind::FmlePublish => "fmle-publish",
            ClientKind::Forward => "forward",
        }
    }

    pub fn is_publish(self) -> bool {
        matches!(self, ClientKind::FmlePublish)
    }

    /// Whether the stream's and vhost's `clients` count it.
    fn counted(self) -> bool {
        self != ClientKind::Forward
    }
}

#[derive(Debug)]
pub struct VhostStat {
    pub id: String,
    pub name: String,
    pub traffic: Arc<Traffic>,
    pub clients: AtomicUsize,
}

#[derive(Debug)]
pub struct StreamStat {
    pub id: String,
    pub key: StreamKey,
    /// The stream name as the client that created the entry gave it (may carry `.flv`, as SRS).
    pub name: String,
    pub tc_url: String,
    pub vhost: Arc<VhostStat>,
    pub traffic: Arc<Traffic>,
    pub clients: AtomicUsize,
    pub frames: AtomicU64,
    pub media: Mutex<StreamMedia>,
    /// Whether `media.audio` is set, readable without the lock on the per-frame path.
    has_audio: AtomicBool,
}

/// The publish state and codecs of a stream.
#[derive(Debug, Default, Clone)]
pub struct StreamMedia {
    pub active: bool,
    pub publisher_cid: Option<String>,
    pub video: Option<VideoInfo>,
    pub audio: Option<AudioInfo>,
}

impl StreamStat {
    pub fn media(&self) -> StreamMedia {
        self.media.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_video(&self, info: VideoInfo) {
        self.media.lock().unwrap_or_else(|e| e.into_inner()).video = Some(info);
    }

    pub fn set_audio(&self, info: AudioInfo) {
        self.media.lock().unwrap_or_else(|e| e.into_inner()).audio = Some(info);
    }

    /// Keeps the codec description and the video frame count current for the API. Called for
    /// every frame a publisher (or an edge pull) brings in, so it only locks for headers.
    pub fn note_frame(&self, frame: &Frame) {
        match frame.kind {
            FrameKind::Video if frame.sequence_header => {
                if let Some(info) = VideoInfo::from_sequence_header(&frame.payload) {
                    self.set_video(info);
                }
            }
            FrameKind::Video => {
                self.frames.fetch_add(1, Ordering::Relaxed);
            }
            // Codecs without a sequence header (MP3) are described by their first frame.
            FrameKind::Audio if frame.sequence_header || !self.has_audio.load(Ordering::Relaxed) => {
                if let Some(info) = AudioInfo::from_audio_tag(&frame.payload) {
                    self.set_audio(info);
                    self.has_audio.store(true, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    /// Marks the stream published (or not) by `cid`; unpublishing forgets the codecs.
    fn set_publisher(&self, active: bool, cid: &str) {
        let mut media = self.media.lock().unwrap_or_else(|e| e.into_inner());
        if active {
            *media = StreamMedia { active: true, publisher_cid: Some(cid.to_string()), video: None, audio: None };
            self.has_audio.store(false, Ordering::Relaxed);
        } else if media.publisher_cid.as_deref() == Some(cid) {
            media.active = false;
            media.video = None;
            media.audio = None;
        }
    }
}

/// What a connection tells the registry about itself.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub key: StreamKey,
    /// Stream name as the client sent it, without the query.
    pub name: String,
    pub kind: ClientKind,
    pub ip: String,
    pub tc_url: String,
    pub page_url: String,
    pub swf_url: String,
}

#[derive(Debug)]
pub struct ClientStat {
    pub id: String,
    pub info: ClientInfo,
    pub started: Instant,
    pub traffic: Arc<Traffic>,
    pub stream: Arc<StreamStat>,
    /// Cancelling it disconnects the client (API kick, slow-player watchdog).
    pub kick: CancellationToken,
}

#[derive(Default)]
struct Inner {
    vhosts: BTreeMap<String, Arc<VhostStat>>,
    /// Bytes (received, sent) of vhosts no longer listed, so node totals never go back.
    retired: (u64, u64),
    streams: BTreeMap<StreamKey, Arc<StreamStat>>,
    clients: BTreeMap<String, Arc<ClientStat>>,
}

/// Most vhosts listed at once: a client naming one more is refused (the index polls the list).
pub const MAX_VHOSTS: usize = 64;

/// The node's statistics registry.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream entry for `key`, created (with its vhost, and `new_id` when given) when missing.
    fn stream_entry(
        inner: &mut Inner,
        key: &StreamKey,
        name: &str,
        tc_url: &str,
        new_id: Option<String>,
    ) -> Arc<StreamStat> {
        let vhost = inner
            .vhosts
            .entry(key.vhost.clone())
            .or_insert_with(|| {
                Arc::new(VhostStat {
                    id: ids::object_id(),
                    name: key.vhost.clone(),
                    traffic: Arc::new(Traffic::new()),
                    clients: AtomicUsize::new(0),
                })
            })
            .clone();
        inner
            .streams
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(StreamStat {
                    id: new_id.unwrap_or_else(ids::object_id),
                    key: key.clone(),
                    name: name.to_string(),
                    tc_url: tc_url.to_string(),
                    vhost,
                    traffic: Arc::new(Traffic::new()),
                    clients: AtomicUsize::new(0),
                    frames: AtomicU64::new(0),
                    media: Mutex::new(StreamMedia::default()),
                    has_audio: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Removes a stream entry nobody uses any more (no client, no publisher), if it is still
    /// this one (not recreated meanwhile).
    fn drop_stream_if_unused(inner: &mut Inner, stream: &Arc<StreamStat>) {
        if stream.clients.load(Ordering::Relaxed) == 0
            && !stream.media().active
            && inner.streams.get(&stream.key).is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            inner.streams.remove(&stream.key);
            let vhost = &stream.vhost;
            let first = StreamKey { vhost: vhost.name.clone(), app: String::new(), stream: String::new() };
            let has_streams = inner.streams.range(first..).next().is_some_and(|(k, _)| k.vhost == vhost.name);
            if vhost.name != crate::key::DEFAULT_VHOST
                && !has_streams
                && vhost.clients.load(Ordering::Relaxed) == 0
                && let Some(gone) = inner.vhosts.remove(&vhost.name)
            {
                inner.retired.0 = inner.retired.0.saturating_add(gone.traffic.recv_bytes());
                inner.retired.1 = inner.retired.1.saturating_add(gone.traffic.send_bytes());
            }
        }
    }

    /// Registers a connection; the entry goes away when the returned guard is dropped.
    pub fn add_client(self: &Arc<Self>, info: ClientInfo, kick: CancellationToken) -> ClientGuard {
        let mut inner = self.lock();
        Self::insert_client(self, &mut inner, info, kick, ids::client_id(), None)
    }

    /// The ids an admitted client will have: (a new client id, the stream's id — its current one,
    /// or the one its entry will be created with). The hooks see them before anything exists.
    pub fn reserve_ids(&self, key: &StreamKey) -> (String, String) {
        let stream = self.lock().streams.get(key).map(|s| s.id.clone());
        (ids::client_id(), stream.unwrap_or_else(ids::object_id))
    }

    /// Registers an admitted client under the ids `reserve_ids` gave, unless it names a vhost
    /// beyond `MAX_VHOSTS`.
    pub fn try_add_client(
        self: &Arc<Self>,
        info: ClientInfo,
        kick: CancellationToken,
        (id, stream_id): (String, String),
    ) -> Result<ClientGuard, String> {
        let mut inner = self.lock();
        if !inner.vhosts.contains_key(&info.key.vhost) && inner.vhosts.len() >= MAX_VHOSTS {
            return Err(format!("this node already has {MAX_VHOSTS} vhosts; vhost {:?} is refused", info.key.vhost));
        }
        Ok(Self::insert_client(self, &mut inner, info, kick, id, Some(stream_id)))
    }

    fn insert_client(
        self: &Arc<Self>,
        inner: &mut Inner,
        info: ClientInfo,
        kick: CancellationToken,
        id: String,
        stream_id: Option<String>,
    ) -> ClientGuard {
        let stream = Self::stream_entry(inner, &info.key, &info.name, &info.tc_url, stream_id);
        let vhost = stream.vhost.clone();
        let traffic = Arc::new(Traffic::new());
        let client = Arc::new(ClientStat {
            id: id.clone(),
            info,
            started: Instant::now(),
            traffic: traffic.clone(),
            stream: stream.clone(),
            kick,
        });
        if client.info.kind.counted() {
            stream.clients.fetch_add(1, Ordering::Relaxed);
            vhost.clients.fetch_add(1, Ordering::Relaxed);
        }
        if client.info.kind.is_publish() {
            stream.set_publisher(true, &id);
        }
        inner.clients.insert(id, client.clone());
        let chain = TrafficChain::new([traffic, stream.traffic.clone(), vhost.traffic.clone()]);
        ClientGuard { registry: self.clone(), client, chain }
    }

    /// An edge's upstream pull. As on SRS's edge it is not a client: the stream shows as
    /// published, with the id of the player whose request started the pull as `publish.cid`.
    pub fn begin_pull(self: &Arc<Self>, key: &StreamKey, starter_cid: &str) -> PullGuard {
        let mut inner = self.lock();
        let stream = Self::stream_entry(&mut inner, key, &key.stream, "", None);
        stream.set_publisher(true, starter_cid);
        PullGuard { registry: self.clone(), stream, cid: starter_cid.to_string() }
    }

    fn remove_client(&self, client: &ClientStat) {
        let mut inner = self.lock();
        inner.clients.remove(&client.id);
        let stream = &client.stream;
        if client.info.kind.counted() {
            stream.vhost.clients.fetch_sub(1, Ordering::Relaxed);
            stream.clients.fetch_sub(1, Ordering::Relaxed);
        }
        if client.info.kind.is_publish() {
            stream.set_publisher(false, &client.id);
        }
        Self::drop_stream_if_unused(&mut inner, stream);
    }

    /// Bytes (received, sent) of every client since the node started: the vhosts listed now and
    /// those that were.
    pub fn byte_totals(&self) -> (u64, u64) {
        let inner = self.lock();
        inner.vhosts.values().fold(inner.retired, |(r, s), v| {
            (r.saturating_add(v.traffic.recv_bytes()), s.saturating_add(v.traffic.send_bytes()))
        })
    }

    pub fn vhosts(&self) -> Vec<Arc<VhostStat>> {
        self.lock().vhosts.values().cloned().collect()
    }

    pub fn streams(&self) -> Vec<Arc<StreamStat>> {
        self.lock().streams.values().cloned().collect()
    }

    pub fn clients(&self) -> Vec<Arc<ClientStat>> {
        self.lock().clients.values().cloned().collect()
    }

    pub fn client(&self, id: &str) -> Option<Arc<ClientStat>> {
        self.lock().clients.get(id).cloned()
    }

    pub fn stream_by_id(&self, id: &str) -> Option<Arc<StreamStat>> {
        self.lock().streams.values().find(|s| s.id == id).cloned()
    }

    pub fn stream(&self, key: &StreamKey) -> Option<Arc<StreamStat>> {
        self.lock().streams.get(key).cloned()
    }

    pub fn vhost_by_id(&self, id: &str) -> Option<Arc<VhostStat>> {
        self.lock().vhosts.values().find(|v| v.id == id).cloned()
    }

    /// Records a rate sample on every counter; run once a second.
    pub fn sample(&self, now: Instant) {
        let inner = self.lock();
        inner.vhosts.values().for_each(|v| v.traffic.sample(now));
        inner.streams.values().for_each(|s| s.traffic.sample(now));
        inner.clients.values().for_each(|c| c.traffic.sample(now));
    }

    /// Kicks every client (used at shutdown for publishers).
    pub fn kick_all(&self) {
        self.lock().clients.values().for_each(|c| c.kick.cancel());
    }
}

/// A connection's registration. Dropping it removes the client.
pub struct ClientGuard {
    registry: Arc<Registry>,
    client: Arc<ClientStat>,
    chain: TrafficChain,
}

impl ClientGuard {
    pub fn id(&self) -> &str {
        &self.client.id
    }

    pub fn stat(&self) -> &Arc<ClientStat> {
        &self.client
    }

    pub fn stream(&self) -> &Arc<StreamStat> {
        &self.client.stream
    }

    pub fn traffic(&self) -> &TrafficChain {
        &self.chain
    }

    pub fn kick_token(&self) -> &CancellationToken {
        &self.client.kick
    }
}

/// An edge pull's registration. Dropping it marks the stream unpublished.
pub struct PullGuard {
    registry: Arc<Registry>,
    stream: Arc<StreamStat>,
    cid: String,
}

impl PullGuard {
    pub fn stream(&self) -> &Arc<StreamStat> {
        &self.stream
    }
}

impl Drop for PullGuard {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        self.stream.set_publisher(false, &self.cid);
        Registry::drop_stream_if_unused(&mut inner, &self.stream);
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.registry.remove_client(&self.client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: ClientKind, name: &str) -> ClientInfo {
        ClientInfo {
            key: StreamKey::new("", "live", name),
            name: name.into(),
            kind,
            ip: "127.0.0.1".into(),
            tc_url: "rtmp://127.0.0.1/live".into(),
            page_url: String::new(),
            swf_url: String::new(),
        }
    }

    #[test]
    fn stream_lives_while_publisher_or_clients() {
        let r = Registry::new();
        let publisher = r.add_client(info(ClientKind::FmlePublish, "cam1"), CancellationToken::new());
        let player = r.add_client(info(ClientKind::FlvPlay, "cam1.flv"), CancellationToken::new());
        let s = r.streams();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].clients.load(Ordering::Relaxed), 2);
        assert!(s[0].media().active);
        drop(publisher);
        let s = r.streams();
        assert_eq!(s.len(), 1, "a player keeps the entry");
        assert!(!s[0].media().active);
        assert_eq!(s[0].media().publisher_cid.as_deref().map(str::len), Some(8));
        drop(player);
        assert!(r.streams().is_empty());
        let viewer = r.add_client(info(ClientKind::FlvPlay, "cam2.flv"), CancellationToken::new());
        let pull = r.begin_pull(&StreamKey::new("", "live", "cam2"), viewer.id());
        let s = r.stream(&StreamKey::new("", "live", "cam2")).unwrap();
        assert_eq!(s.clients.load(Ordering::Relaxed), 1, "an edge pull is not a client");
        assert_eq!(s.media().publisher_cid.as_deref(), Some(viewer.id()));
        assert!(s.media().active);
        drop(pull);
        assert!(!s.media().active);
        let forward = r.add_client(info(ClientKind::Forward, "cam2"), CancellationToken::new());
        assert_eq!(s.clients.load(Ordering::Relaxed), 1, "a forward is listed but not counted");
        assert_eq!(r.clients().len(), 2);
        drop(forward);
        drop(viewer);
        assert!(r.streams().is_empty());
        assert_eq!(r.vhosts().len(), 1, "the default vhost stays");
        assert!(r.clients().is_empty());
    }

    #[test]
    fn a_named_vhost_leaves_with_its_last_stream_and_their_number_is_capped() {
        let r = Registry::new();
        let named = |v: &str| ClientInfo { key: StreamKey::new(v, "live", "s"), ..info(ClientKind::FlvPlay, "s") };
        let a =
            r.try_add_client(named("v1"), CancellationToken::new(), r.reserve_ids(&StreamKey::new("v1", "live", "s")));
        let a = a.unwrap();
        assert_eq!(r.vhosts().len(), 1);
        a.traffic().add_send(1000);
        a.traffic().add_recv(10);
        drop(a);
        assert!(r.vhosts().is_empty(), "a named vhost goes with its last stream");
        assert_eq!(r.byte_totals(), (10, 1000), "its bytes stay in the node's totals");
        let guards: Vec<_> = (0..MAX_VHOSTS)
            .map(|i| {
                let i = named(&format!("v{i}"));
                let ids = r.reserve_ids(&i.key);
                r.try_add_client(i, CancellationToken::new(), ids).unwrap()
            })
            .collect();
        let extra = named("one-too-many");
        let ids = r.reserve_ids(&extra.key);
        assert!(r.try_add_client(extra, CancellationToken::new(), ids).is_err());
        let known = named("v3");
        let ids = r.reserve_ids(&known.key);
        let same = r.try_add_client(known, CancellationToken::new(), ids).unwrap();
        assert_eq!(same.stream().id, guards[3].stream().id, "a listed vhost still takes clients");
        drop((guards, same));
        assert!(r.vhosts().is_empty());
    }

    #[test]
    fn a_recreated_stream_gets_a_new_id() {
        let r = Registry::new();
        let a = r.add_client(info(ClientKind::RtmpPlay, "x"), CancellationToken::new());
        let first = a.stream().id.clone();
        drop(a);
        let b = r.add_client(info(ClientKind::RtmpPlay, "x"), CancellationToken::new());
        assert_ne!(b.stream().id, first);
    }
}
