//! A TCP proxy in front of a test server that counts requests and injects faults
//! deterministically. Each client connection carries exactly one request: the proxy reads it
//! (headers, then the body by Content-Length or up to the chunked terminator), records
//! `METHOD PATH`, asks its [`FaultPlan`] what to do, and either answers a status itself, closes
//! the connection without a word, or forwards the request with `Connection: close` and pipes the
//! response back (its `Connection` header rewritten to `close`, so clients never pool the
//! connection) until the upstream closes, then closes the client's connection.

use std::collections::BTreeSet;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::http::{content_length, header, is_chunked, read_chunked_raw, read_head};

/// What the proxy does to each request. Request indexes count every request the proxy has read
/// since the plan was set ([`Proxy::start`] or [`Proxy::set_plan`]), from 0, faulted ones too.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultPlan {
    status_on: BTreeSet<usize>,
    status: u16,
    drop_after: Option<usize>,
}

impl FaultPlan {
    /// Forward everything.
    pub(crate) fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Answer `status` (e.g. 503 or 500) with an empty body, instead of forwarding, to the
    /// requests with these indexes.
    pub(crate) fn status_on(indexes: impl IntoIterator<Item = usize>, status: u16) -> FaultPlan {
        FaultPlan {
            status_on: indexes.into_iter().collect(),
            status,
            drop_after: None,
        }
    }

    /// Forward `k` requests; after that the server is gone: every further request is read,
    /// recorded, and its connection closed without a response.
    pub(crate) fn drop_after(k: usize) -> FaultPlan {
        FaultPlan {
            drop_after: Some(k),
            ..FaultPlan::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Forward,
    Status(u16),
    Drop,
}

#[derive(Debug, Default)]
struct State {
    plan: FaultPlan,
    /// Requests read since the plan was set (the fault index of the next one).
    since_plan: usize,
    /// Requests forwarded since the plan was set.
    forwarded: usize,
    log: Vec<String>,
    /// Headers set on every forwarded request, in place of the client's.
    set_headers: Vec<(String, String)>,
}

impl State {
    fn decide(&mut self, line: String) -> Action {
        let index = self.since_plan;
        self.since_plan += 1;
        self.log.push(line);
        if self.plan.status_on.contains(&index) {
            Action::Status(self.plan.status)
        } else if self.plan.drop_after.is_some_and(|k| self.forwarded >= k) {
            Action::Drop
        } else {
            self.forwarded += 1;
            Action::Forward
        }
    }
}

/// A running proxy; stops accepting on drop (connections in flight finish by themselves).
pub(crate) struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on a free 127.0.0.1 port in front of `upstream`.
    pub(crate) fn start(upstream: SocketAddr, plan: FaultPlan) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State {
            plan,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || {
                        // A client that went away mid-request is no failure of the proxy's.
                        let _ = serve(conn, upstream, &state);
                    });
                }
            })
        };
        Proxy {
            addr,
            state,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `METHOD PATH` (path with its query) of every request read since the last
    /// [`Proxy::reset_counts`], faulted ones included, in the order they were read.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// How many of [`Proxy::requests`] have this method.
    pub(crate) fn count(&self, method: &str) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|l| l.split(' ').next() == Some(method))
            .count()
    }

    /// Clears the request log (not the fault plan's indexes: see [`Proxy::set_plan`]).
    pub(crate) fn reset_counts(&self) {
        self.lock().log.clear();
    }

    /// A new plan, whose request indexes and forwarded count start again from 0.
    pub(crate) fn set_plan(&self, plan: FaultPlan) {
        let mut state = self.lock();
        state.plan = plan;
        state.since_plan = 0;
        state.forwarded = 0;
    }

    /// Sets `name: value` on every request forwarded from now on, replacing the client's
    /// header of that name. E.g. `proxy.set_header(Moto::AUTH.0, Moto::AUTH.1)` in front of moto
    /// lets object_store's GCS client (whose XML API moto speaks) through with its empty
    /// `Authorization: Bearer ` (service-account JSON with `disable_oauth`), which moto rejects.
    pub(crate) fn set_header(&self, name: &str, value: &str) {
        let mut state = self.lock();
        state
            .set_headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        state.set_headers.push((name.to_owned(), value.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(client: TcpStream, upstream: SocketAddr, state: &Mutex<State>) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    client.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut client_out = client.try_clone()?;
    let mut reader = BufReader::new(client);
    let Some((request_line, headers)) = read_head(&mut reader)? else {
        return Ok(()); // Connected and left (the proxy's own wake-up, or a probe).
    };
    let expect_continue =
        header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expect_continue {
        client_out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut body = Vec::new();
    if is_chunked(&headers) {
        read_chunked_raw(&mut reader, |_| {}, Some(&mut body))?;
    } else if let Some(len) = content_length(&headers)? {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    let mut parts = request_line.split(' ');
    let line = format!(
        "{} {}",
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    );
    let (action, set_headers) = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        (state.decide(line), state.set_headers.clone())
    };
    match action {
        Action::Drop => {
            let _ = client_out.shutdown(Shutdown::Both);
            Ok(())
        }
        Action::Status(status) => {
            let reply = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            client_out.write_all(reply.as_bytes())?;
            client_out.flush()?;
            let _ = client_out.shutdown(Shutdown::Both);
            Ok(())
        }
        Action::Forward => {
            let mut head = format!("{request_line}\r\n");
            for (k, v) in &headers {
                if is_hop_by_hop(k)
                    || (expect_continue && k.eq_ignore_ascii_case("expect"))
                    || set_headers.iter().any(|(s, _)| s.eq_ignore_ascii_case(k))
                {
                    continue;
                }
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            for (k, v) in &set_headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("Connection: close\r\n\r\n");
            let up = TcpStream::connect_timeout(&upstream, Duration::from_secs(5));
            let Ok(mut up) = up else {
                // The upstream is down: the client sees a closed connection, as with no proxy.
                let _ = client_out.shutdown(Shutdown::Both);
                return Ok(());
            };
            up.set_read_timeout(Some(Duration::from_secs(120)))?;
            up.write_all(head.as_bytes())?;
            up.write_all(&body)?;
            up.flush()?;
            pipe_response(up, &mut client_out)?;
            let _ = client_out.shutdown(Shutdown::Both);
            Ok(())
        }
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "proxy-connection"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// The response head with `Connection: close` in place of any connection header, then every
/// further byte as it comes, until the upstream closes. 1xx interim responses are passed through.
fn pipe_response(up: TcpStream, client: &mut TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(up);
    loop {
        let Some((status_line, headers)) = read_head(&mut reader)? else {
            return Ok(());
        };
        let interim = status_line
            .split(' ')
            .nth(1)
            .is_some_and(|s| s.starts_with('1'));
        let mut head = format!("{status_line}\r\n");
        for (k, v) in &headers {
            if !is_hop_by_hop(k) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if !interim {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        client.write_all(head.as_bytes())?;
        if !interim {
            break;
        }
    }
    io::copy(&mut reader, client)?;
    client.flush()
}
