//! Taking the proxy's listening socket over from a running switchyard (`run --upgrade`). The old
//! process, sent SIGQUIT, connects to `shutdown.upgrade_sock` and sends its listening sockets with
//! their names: pingora's upgrade protocol, the names space-separated in the message and the
//! sockets in one `SCM_RIGHTS` control message, in the same order. pingora sends them (the
//! listener puts its socket in pingora's table under its address); this side receives them itself,
//! so that the socket arrives as a descriptor it owns and every worker thread can accept on a copy.

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// Sockets one message may carry (pingora's limit).
const MAX_SOCKETS: usize = 32;
/// The names' part of the message (pingora's limit).
const MAX_NAMES_BYTES: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("cannot listen on {path} for the sockets: {source}")]
    Listen { path: String, source: io::Error },
    #[error("no process sent its sockets to {path} within {waited:?} (send the old one SIGQUIT once this one waits)")]
    NothingSent { path: String, waited: Duration },
    #[error("cannot read the sockets sent to {path}: {source}")]
    Receive { path: String, source: io::Error },
    #[error("the sockets sent were not named as pingora names them ({names} names for {sockets} sockets)")]
    Garbled { names: usize, sockets: usize },
    #[error("the old process sent no socket for {addr} (it sent: {sent})")]
    NotSent { addr: String, sent: String },
    #[error("the socket sent for {addr} is not a TCP listener on it")]
    WrongSocket { addr: String },
}

/// Waits up to `wait` for the old process to send its sockets to `path`, and returns the one
/// listening on `addr`; the others are closed. Blocking: it runs before the data plane starts.
pub fn receive(path: &Path, addr: SocketAddr, wait: Duration) -> Result<TcpListener, HandoverError> {
    let shown = path.display().to_string();
    let listen_error = |source| HandoverError::Listen { path: shown.clone(), source };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(listen_error(e)),
        _ => {}
    }
    let listener = UnixListener::bind(path).map_err(listen_error)?;
    // Only this user may hand sockets over: whoever connects decides what this process serves.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let received = accept_within(&listener, wait, &shown).and_then(|conn| {
        conn.set_read_timeout(Some(wait)).map_err(|source| HandoverError::Receive { path: shown.clone(), source })?;
        read_sockets(&conn).map_err(|source| HandoverError::Receive { path: shown.clone(), source })
    });
    let _ = std::fs::remove_file(path);
    let (names, sockets) = received?;
    if names.len() != sockets.len() {
        return Err(HandoverError::Garbled { names: names.len(), sockets: sockets.len() });
    }
    let key = addr.to_string();
    let sent = names.join(", ");
    let Some(socket) = names.into_iter().zip(sockets).find_map(|(name, socket)| (name == key).then_some(socket)) else {
        return Err(HandoverError::NotSent { addr: key, sent });
    };
    let listener = TcpListener::from(socket);
    if listener.local_addr().ok() != Some(addr) || listener.set_nonblocking(true).is_err() {
        return Err(HandoverError::WrongSocket { addr: key });
    }
    Ok(listener)
}

fn accept_within(
    listener: &UnixListener,
    wait: Duration,
    path: &str,
) -> Result<std::os::unix::net::UnixStream, HandoverError> {
    let deadline = Instant::now() + wait;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false)
                    .map_err(|source| HandoverError::Receive { path: path.to_string(), source })?;
                return Ok(conn);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(HandoverError::NothingSent { path: path.to_string(), waited: wait })
            }
            Err(source) => return Err(HandoverError::Receive { path: path.to_string(), source }),
        }
    }
}

/// One message: the names, and the sockets as descriptors this process owns (closed on exec).
fn read_sockets(conn: &std::os::unix::net::UnixStream) -> io::Result<(Vec<String>, Vec<std::os::fd::OwnedFd>)> {
    let mut names = [0u8; MAX_NAMES_BYTES];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let message =
        rustix::net::recvmsg(conn, &mut [IoSliceMut::new(&mut names)], &mut control, RecvFlags::CMSG_CLOEXEC)?;
    let mut sockets = Vec::new();
    for part in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = part {
            sockets.extend(fds);
        }
    }
    let names = std::str::from_utf8(&names[..message.bytes.min(MAX_NAMES_BYTES)])
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the names are not UTF-8"))?;
    Ok((names.split_ascii_whitespace().map(String::from).collect(), sockets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::server::Fds;
    use std::os::fd::AsRawFd;

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("switchyard-handover-{}-{name}.sock", std::process::id()))
    }

    /// Wire-compatible with pingora's sender, as an old process runs it: the socket named for the
    /// address arrives, still listening (a connection made before the handover is accepted from
    /// it), and the other one sent is not taken.
    #[test]
    fn the_socket_pingora_sends_for_the_address_is_received_listening() {
        let path = scratch("sent");
        let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = proxy.local_addr().unwrap();
        let waiting = std::net::TcpStream::connect(addr).unwrap();
        let sender = {
            let path = path.clone();
            let mut fds = Fds::new();
            fds.add(other.local_addr().unwrap().to_string(), other.as_raw_fd());
            fds.add(addr.to_string(), proxy.as_raw_fd());
            std::thread::spawn(move || {
                // The receiver binds first; pingora's sender retries until it can connect.
                fds.send_to_sock(path.to_str().unwrap()).unwrap();
            })
        };
        let received = receive(&path, addr, Duration::from_secs(10)).unwrap();
        sender.join().unwrap();
        assert_eq!(received.local_addr().unwrap(), addr);
        drop(proxy);
        received.set_nonblocking(false).unwrap();
        let (accepted, peer) = received.accept().unwrap();
        assert_eq!(peer, waiting.local_addr().unwrap());
        drop(accepted);
        assert!(!path.exists(), "the upgrade socket is removed");
    }

    #[test]
    fn nothing_sent_within_the_wait_is_a_clear_error() {
        let path = scratch("nothing");
        let err = receive(&path, "127.0.0.1:9".parse().unwrap(), Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, HandoverError::NothingSent { .. }), "{err}");
        assert!(err.to_string().contains("SIGQUIT"), "{err}");
    }

    #[test]
    fn no_socket_for_the_address_names_what_was_sent() {
        let path = scratch("other");
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let name = other.local_addr().unwrap().to_string();
        let sender = {
            let (path, name) = (path.clone(), name.clone());
            let mut fds = Fds::new();
            fds.add(name, other.as_raw_fd());
            std::thread::spawn(move || fds.send_to_sock(path.to_str().unwrap()).unwrap())
        };
        let err = receive(&path, "127.0.0.1:9".parse().unwrap(), Duration::from_secs(10)).unwrap_err();
        sender.join().unwrap();
        assert!(matches!(&err, HandoverError::NotSent { sent, .. } if *sent == name), "{err}");
    }
}
