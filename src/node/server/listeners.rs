//! The client and admin listeners: one task per connection that parses JSON lines
//! ([`crate::node::protocol`]) and hands each request to the driver over its channel.
//! Clock changes on the admin port apply to the shared clock directly, so they work
//! even while the driver is busy (an fsync, a stall).

use super::driver::Event;
use crate::node::clock::Clock;
use crate::node::protocol::{parse_line, AdminOp, AdminRequest, ErrorKind, Reply, Request};
use crate::node::transport::{shutdown_signalled, ShutdownRx};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Accepts connections until shutdown and hands each to `serve` (a task per
/// connection). A failed accept (out of descriptors) is retried after a pause.
async fn accept_each(
    listener: TcpListener,
    mut shutdown: ShutdownRx,
    mut serve: impl FnMut(TcpStream),
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => serve(stream),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Accepts client connections; each gets a reader (lines → driver) and a writer
/// (replies → socket) task.
pub(super) async fn serve_clients(
    listener: TcpListener,
    events: mpsc::Sender<Event>,
    shutdown: ShutdownRx,
) {
    let each = shutdown.clone();
    accept_each(listener, shutdown, |stream| {
        tokio::spawn(client_connection(stream, events.clone(), each.clone()));
    })
    .await;
}

async fn client_connection(
    stream: TcpStream,
    events: mpsc::Sender<Event>,
    mut shutdown: ShutdownRx,
) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel::<Reply>();
    let writer = tokio::spawn(async move {
        let mut out = BufWriter::new(write_half);
        while let Some(reply) = reply_rx.recv().await {
            let mut batch = reply.to_line();
            batch.push('\n');
            while let Ok(more) = reply_rx.try_recv() {
                batch.push_str(&more.to_line());
                batch.push('\n');
            }
            if out.write_all(batch.as_bytes()).await.is_err() || out.flush().await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(read_half).lines();
    loop {
        let line = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => break,
            l = lines.next_line() => l,
        };
        let Ok(Some(line)) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match parse_line::<Request>(&line) {
            Ok(req) => {
                let event = Event::Client {
                    id: req.id,
                    command: req.command,
                    reply: reply_tx.clone(),
                };
                if events.send(event).await.is_err() {
                    break;
                }
            }
            Err(bad) => {
                let _ = reply_tx.send(bad);
            }
        }
    }
    drop(reply_tx);
    // Let in-flight replies drain; the writer ends when the driver drops its senders.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

/// Accepts admin connections: status/digest/log-terms go to the driver, clock changes
/// apply to the shared clock directly (so they work even while the driver is busy).
pub(super) async fn serve_admin(
    listener: TcpListener,
    events: mpsc::Sender<Event>,
    clock: Clock,
    shutdown: ShutdownRx,
) {
    let each = shutdown.clone();
    accept_each(listener, shutdown, |stream| {
        let events = events.clone();
        let clock = clock.clone();
        let mut shutdown = each.clone();
        tokio::spawn(async move {
            let (read_half, mut write_half) = stream.into_split();
            let mut lines = BufReader::new(read_half).lines();
            loop {
                let line = tokio::select! {
                    _ = shutdown_signalled(&mut shutdown) => return,
                    l = lines.next_line() => l,
                };
                let Ok(Some(line)) = line else { return };
                if line.trim().is_empty() {
                    continue;
                }
                let reply = match parse_line::<AdminRequest>(&line) {
                    Err(bad) => bad,
                    Ok(AdminRequest {
                        id,
                        op: AdminOp::Clock { offset_ms, rate },
                    }) => match clock.set(offset_ms, rate) {
                        Ok(()) => Reply::answer(id, &clock.skew()),
                        Err(e) => Reply::error(Some(id), ErrorKind::BadRequest, e),
                    },
                    Ok(AdminRequest {
                        id,
                        op: AdminOp::ClockReset,
                    }) => {
                        clock.reset();
                        Reply::answer(id, &clock.skew())
                    }
                    Ok(AdminRequest { id, op }) => {
                        let (tx, rx) = oneshot::channel();
                        let event = Event::Admin { id, op, reply: tx };
                        if events.send(event).await.is_err() {
                            return;
                        }
                        rx.await
                            .unwrap_or_else(|_| Reply::error(Some(id), ErrorKind::ShuttingDown, ""))
                    }
                };
                let mut line = reply.to_line();
                line.push('\n');
                if write_half.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    })
    .await;
}
