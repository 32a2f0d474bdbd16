//! Peer-to-peer transport for Raft messages over TCP.
//!
//! Every node sends ALL its messages to peer j over its OWN outgoing connection to j's
//! peer address; an accepted connection is only ever read. So each directed link i→j
//! is exactly one TCP connection, which the harness can route through its own proxy
//! and cut independently of j→i (replies never ride the requester's connection).
//!
//! Framing: `[len: u32 big-endian][JSON body]`. The first frame of a connection is a
//! [`Hello`] naming the sender. JSON (serde_json, already a dependency) rather than a
//! binary codec: messages stay readable in packet captures and proxies, and at the
//! node's message rates encoding is not the bottleneck (fsync is).
//!
//! The core is never blocked by a slow or unreachable peer: each peer has a bounded
//! queue, and messages are dropped when it is full (Raft retransmits on its own).
//! A lost connection is re-dialled with exponential backoff.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Largest frame accepted (a snapshot of a big state machine fits; garbage does not).
const MAX_FRAME: usize = 256 << 20;
/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// The kind of a peer frame's payload for the harness's message rules: the variant of
/// a Raft message's body (`"AppendEntries"`, `"RequestVote"`, …); `None` for the
/// greeting and anything that is not a message.
pub fn frame_kind(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Frame {
        body: serde_json::Value,
    }
    match serde_json::from_slice::<Frame>(payload).ok()?.body {
        serde_json::Value::Object(body) => body.keys().next().cloned(),
        serde_json::Value::String(kind) => Some(kind),
        _ => None,
    }
}

/// The first frame on every peer connection.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub from: u64,
}

/// A shutdown signal shared by the node's tasks (true = stop).
pub type ShutdownRx = watch::Receiver<bool>;

/// Resolves when shutdown is signalled (or the sender is gone).
pub async fn shutdown_signalled(rx: &mut ShutdownRx) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The sending half: one bounded queue and one dialling task per peer.
#[derive(Debug)]
pub struct Transport<M> {
    queues: BTreeMap<u64, mpsc::Sender<M>>,
}

impl<M: Serialize + Send + 'static> Transport<M> {
    /// Spawns one connection task per peer; they stop on `shutdown`.
    pub fn start(my_id: u64, peers: &BTreeMap<u64, String>, shutdown: ShutdownRx) -> Self {
        let mut queues = BTreeMap::new();
        for (&peer, addr) in peers {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            queues.insert(peer, tx);
            tokio::spawn(peer_sender(my_id, peer, addr.clone(), rx, shutdown.clone()));
        }
        Transport { queues }
    }

    /// Queues a message for `to`, dropping it if the peer's queue is full or unknown.
    pub fn send(&self, to: u64, msg: M) {
        if let Some(q) = self.queues.get(&to) {
            if q.try_send(msg).is_err() {
                tracing::trace!(to, "peer queue full; message dropped");
            }
        }
    }
}

fn frame<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        return;
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

async fn peer_sender<M: Serialize>(
    my_id: u64,
    peer: u64,
    addr: String,
    mut queue: mpsc::Receiver<M>,
    mut shutdown: ShutdownRx,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&addr));
        let stream = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => return,
            r = connect => r,
        };
        let stream = match stream {
            Ok(Ok(s)) => s,
            _ => {
                // Drop what queued up while the link is down: it is stale by the time
                // the link is back, and Raft resends what still matters.
                while queue.try_recv().is_ok() {}
                tokio::select! {
                    _ = shutdown_signalled(&mut shutdown) => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracing::debug!(peer, %addr, "connected to peer");
        let mut writer = BufWriter::new(stream);
        let mut buf = Vec::new();
        frame(&Hello { from: my_id }, &mut buf);
        let mut healthy = writer.write_all(&buf).await.is_ok() && writer.flush().await.is_ok();
        if healthy {
            backoff = BACKOFF_MIN;
        }
        while healthy {
            let first = tokio::select! {
                _ = shutdown_signalled(&mut shutdown) => return,
                m = queue.recv() => m,
            };
            let Some(first) = first else { return };
            buf.clear();
            frame(&first, &mut buf);
            // Batch whatever else is queued into the same write.
            while buf.len() < (1 << 20) {
                match queue.try_recv() {
                    Ok(m) => frame(&m, &mut buf),
                    Err(_) => break,
                }
            }
            healthy = writer.write_all(&buf).await.is_ok() && writer.flush().await.is_ok();
        }
        tracing::debug!(peer, %addr, "peer connection lost; reconnecting");
    }
}

async fn read_frame<T: DeserializeOwned, R: AsyncReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<T> {
    let len = reader.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    buf.resize(len, 0);
    reader.read_exact(buf).await?;
    serde_json::from_slice(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The receiving half: accepts peer connections and forwards `(from, message)`.
pub struct Inbound<M>(PhantomData<M>);

impl<M: DeserializeOwned + Send + 'static> Inbound<M> {
    /// Accepts connections on `listener` until shutdown; every decoded message goes to
    /// `out`. A connection that sends garbage is closed, the node carries on.
    pub async fn serve(
        listener: TcpListener,
        out: mpsc::Sender<(u64, M)>,
        mut shutdown: ShutdownRx,
    ) {
        loop {
            let accepted = tokio::select! {
                _ = shutdown_signalled(&mut shutdown) => return,
                a = listener.accept() => a,
            };
            let Ok((stream, remote)) = accepted else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let out = out.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut reader = BufReader::with_capacity(1 << 16, stream);
                let mut buf = Vec::new();
                let from = match read_frame::<Hello, _>(&mut reader, &mut buf).await {
                    Ok(h) => h.from,
                    Err(e) => {
                        tracing::debug!(%remote, "peer connection without hello: {e}");
                        return;
                    }
                };
                loop {
                    let msg = tokio::select! {
                        _ = shutdown_signalled(&mut shutdown) => return,
                        m = read_frame::<M, _>(&mut reader, &mut buf) => m,
                    };
                    match msg {
                        Ok(m) => {
                            if out.send((from, m)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(from, %remote, "peer connection closed: {e}");
                            return;
                        }
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_kind_names_the_raft_message_and_nothing_else() {
        use splitbrain_raft::{Message, MessageBody};
        let msg = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::RequestVoteResponse { granted: true },
        };
        let payload = serde_json::to_vec(&msg).unwrap();
        assert_eq!(frame_kind(&payload).as_deref(), Some("RequestVoteResponse"));
        let hello = serde_json::to_vec(&Hello { from: 1 }).unwrap();
        assert_eq!(frame_kind(&hello), None);
        assert_eq!(frame_kind(b"\xff garbage"), None);
    }

    #[tokio::test]
    async fn messages_flow_one_way_per_link_and_garbage_is_survived() {
        let (stop_tx, stop_rx) = watch::channel(false);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (in_tx, mut in_rx) = mpsc::channel::<(u64, String)>(16);
        tokio::spawn(Inbound::<String>::serve(listener, in_tx, stop_rx.clone()));

        // A garbage connection first: it must not take the receiver down.
        let mut junk = TcpStream::connect(&addr).await.expect("connect");
        junk.write_all(b"\xff\xff\xff\xffnonsense")
            .await
            .expect("write");

        let peers = BTreeMap::from([(2u64, addr)]);
        let transport = Transport::<String>::start(1, &peers, stop_rx);
        transport.send(2, "hello".to_string());
        transport.send(2, "world".to_string());
        transport.send(9, "unknown peer is ignored".to_string());
        let a = tokio::time::timeout(Duration::from_secs(5), in_rx.recv())
            .await
            .expect("in time");
        let b = tokio::time::timeout(Duration::from_secs(5), in_rx.recv())
            .await
            .expect("in time");
        assert_eq!(a, Some((1, "hello".to_string())));
        assert_eq!(b, Some((1, "world".to_string())));
        let _ = stop_tx.send(true);
    }
}
