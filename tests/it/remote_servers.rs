//! The remote-storage test servers themselves (support/servers.rs, support/proxy.rs): each one
//! starts, takes a bucket or container, stores and serves an object through the proxy; the
//! proxy counts what it saw and every fault plan does what it says.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::support::azure_auth::{base64_decode, base64_encode, hmac_sha256, http_date, sha256};
use crate::support::http::{self, read_head};
use crate::support::{
    free_port, pid_alive, resolve_tool, Azurite, FaultPlan, HttpServer, Moto, Proxy,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<http::Response> {
    http::request(addr, "GET", path, &[], &[])
}

fn put(addr: SocketAddr, path: &str, body: &[u8]) -> std::io::Result<http::Response> {
    http::request(addr, "PUT", path, &[], body)
}

/// Requests to moto (or a proxy before it) as an authenticated caller.
fn s3_get(addr: SocketAddr, path: &str) -> std::io::Result<http::Response> {
    Moto::request(addr, "GET", path, &[])
}

fn s3_put(addr: SocketAddr, path: &str, body: &[u8]) -> std::io::Result<http::Response> {
    Moto::request(addr, "PUT", path, body)
}

/// Gone within 10 s (killed and reaped, not a zombie), and its port no longer answers.
fn assert_stopped(pid: i32, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "server {pid} still alive after drop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "{addr} still accepts connections after the server's drop"
    );
}

#[test]
fn signing_primitives_match_known_vectors() {
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(&sha256(&[b'a'; 1000])),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
    // RFC 4231 test case 2, and a key longer than the block.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(&hmac_sha256(&[b'k'; 100], b"message")),
        "1c28735416d320163f56f81bdbb83d651eed508d184e6b8b03662740a533293e"
    );
    let bytes: Vec<u8> = (0..7).collect();
    assert_eq!(base64_encode(&bytes), "AAECAwQFBg==");
    assert_eq!(base64_decode("AAECAwQFBg=="), bytes);
    assert_eq!(base64_decode(Azurite::KEY).len(), 64);
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(http_date(1_764_655_051), "Tue, 02 Dec 2025 05:57:31 GMT");
}

#[test]
fn a_missing_server_skips_locally_and_fails_under_ci() {
    let var = "PIVOT_TEST_NOTHING";
    assert_eq!(resolve_tool(var, "nothing", None, None), Ok(None));
    assert_eq!(
        resolve_tool(var, "nothing", Some("".into()), None),
        Ok(None)
    );
    let err = resolve_tool(var, "nothing", None, Some("true".into())).unwrap_err();
    assert!(err.contains("unset under CI"), "{err}");
    let err = resolve_tool(var, "nothing", Some("/no/such/tool".into()), None).unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(
        resolve_tool(var, "nothing", Some("/bin/sh".into()), Some("true".into())),
        Ok(Some("/bin/sh".into()))
    );
}

#[test]
fn moto_stores_and_serves_an_object_through_the_proxy() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("bucket");
    let proxy = Proxy::start(moto.addr(), FaultPlan::none());
    assert!(proxy.endpoint().starts_with("http://127.0.0.1:"));
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));

    let body = b"hello through the proxy\n".repeat(1000);
    let r = s3_put(proxy.addr(), "/bucket/dir/a.txt", &body).expect("put");
    assert_eq!(r.status, 200, "put: {}\n{}", r.text(), moto.log());
    assert_eq!(r.header("connection"), Some("close"));
    let r = s3_get(proxy.addr(), "/bucket/dir/a.txt").expect("get");
    assert_eq!(r.status, 200, "get: {}", r.text());
    assert_eq!(r.body, body);
    // Anonymous (unsigned) reads of a private object are refused: clients need credentials.
    assert_eq!(
        get(moto.addr(), "/bucket/dir/a.txt")
            .expect("anonymous")
            .status,
        403
    );
    let r = Moto::request(proxy.addr(), "HEAD", "/bucket/dir/a.txt", &[]).expect("head");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    let r = s3_get(proxy.addr(), "/bucket/dir/missing").expect("get missing");
    assert_eq!(r.status, 404);
    let r = s3_get(proxy.addr(), "/bucket?list-type=2&prefix=dir/").expect("list");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<Key>dir/a.txt</Key>"), "{}", r.text());

    assert_eq!(
        proxy.requests(),
        [
            "PUT /bucket/dir/a.txt",
            "GET /bucket/dir/a.txt",
            "HEAD /bucket/dir/a.txt",
            "GET /bucket/dir/missing",
            "GET /bucket?list-type=2&prefix=dir/",
        ]
    );
    assert_eq!(proxy.count("GET"), 3);
    assert_eq!(proxy.count("PUT"), 1);
    assert_eq!(proxy.count("DELETE"), 0);
    proxy.reset_counts();
    assert!(proxy.requests().is_empty());
    s3_get(proxy.addr(), "/bucket/dir/a.txt").expect("get");
    assert_eq!(proxy.requests(), ["GET /bucket/dir/a.txt"]);

    let (pid, addr) = (moto.pid(), moto.addr());
    drop(moto);
    assert_stopped(pid, addr);
}

#[test]
fn status_on_answers_the_chosen_requests_itself() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("bkt");
    let proxy = Proxy::start(moto.addr(), FaultPlan::status_on([1, 3], 503));
    assert_eq!(
        s3_put(proxy.addr(), "/bkt/k0", b"zero").expect("0").status,
        200
    );
    let r = s3_put(proxy.addr(), "/bkt/k1", b"one").expect("1");
    assert_eq!((r.status, r.body.len()), (503, 0));
    assert_eq!(
        s3_put(proxy.addr(), "/bkt/k2", b"two").expect("2").status,
        200
    );
    assert_eq!(s3_get(proxy.addr(), "/bkt/k0").expect("3").status, 503);
    assert_eq!(s3_get(proxy.addr(), "/bkt/k0").expect("4").body, b"zero");
    // The faulted PUT never reached moto.
    assert_eq!(s3_get(moto.addr(), "/bkt/k1").expect("direct").status, 404);
    assert_eq!(s3_get(moto.addr(), "/bkt/k2").expect("direct").body, b"two");
    assert_eq!(proxy.count("PUT"), 3);
    assert_eq!(proxy.count("GET"), 2);

    // A new plan counts from 0 again.
    proxy.set_plan(FaultPlan::status_on([0], 500));
    assert_eq!(s3_get(proxy.addr(), "/bkt/k0").expect("0").status, 500);
    assert_eq!(s3_get(proxy.addr(), "/bkt/k0").expect("1").status, 200);
    assert_eq!(proxy.requests().len(), 7);
}

#[test]
fn drop_after_closes_every_later_connection_unanswered() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("bkt");
    let proxy = Proxy::start(moto.addr(), FaultPlan::drop_after(2));
    assert_eq!(s3_put(proxy.addr(), "/bkt/k", b"v").expect("1").status, 200);
    assert_eq!(s3_get(proxy.addr(), "/bkt/k").expect("2").status, 200);
    for _ in 0..3 {
        let err = s3_get(proxy.addr(), "/bkt/k").expect_err("server gone");
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
    }
    assert_eq!(
        proxy.requests().len(),
        5,
        "dropped requests are recorded too"
    );
    assert_eq!(proxy.count("GET"), 4);
    // The server comes back with a new plan.
    proxy.set_plan(FaultPlan::none());
    assert_eq!(s3_get(proxy.addr(), "/bkt/k").expect("back").body, b"v");
}

#[test]
fn set_header_lets_an_empty_bearer_through_to_moto() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("gcs");
    assert_eq!(
        s3_put(moto.addr(), "/gcs/o", b"obj").expect("seed").status,
        200
    );
    // object_store's GCS client with `disable_oauth` sends an empty bearer; moto fails on it.
    let bearer = [("Authorization", "Bearer ")];
    let proxy = Proxy::start(moto.addr(), FaultPlan::none());
    let r = http::request(proxy.addr(), "GET", "/gcs/o", &bearer, &[]).expect("bearer");
    assert_eq!(r.status, 500, "{}", r.text());
    proxy.set_header(Moto::AUTH.0, Moto::AUTH.1);
    let r = http::request(proxy.addr(), "GET", "/gcs/o", &bearer, &[]).expect("rewritten");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"obj"[..]),
        "{}",
        r.text()
    );
    assert_eq!(proxy.count("GET"), 2);
}

#[test]
fn a_proxy_whose_upstream_is_down_closes_the_connection() {
    let upstream = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let proxy = Proxy::start(upstream, FaultPlan::none());
    let err = get(proxy.addr(), "/x").expect_err("no upstream");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err:?}");
    assert_eq!(proxy.requests(), ["GET /x"]);
}

/// A one-shot upstream that records the raw request it got and answers a keep-alive response.
fn recording_upstream() -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut out = conn.try_clone().expect("clone");
        let mut reader = BufReader::new(conn);
        let mut raw = Vec::new();
        // Up to the end of a chunked body: the terminator after the headers' blank line.
        let mut byte = [0u8; 1];
        while !(raw.windows(4).filter(|w| w == b"\r\n\r\n").count() >= 2
            && raw.ends_with(b"0\r\n\r\n"))
        {
            reader.read_exact(&mut byte).expect("read request");
            raw.push(byte[0]);
        }
        out.write_all(
            b"HTTP/1.1 201 Created\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
              Content-Length: 2\r\n\r\nok",
        )
        .expect("answer");
        raw
    });
    (addr, handle)
}

#[test]
fn the_proxy_forwards_chunked_bodies_and_forces_connection_close() {
    let (upstream, seen) = recording_upstream();
    let proxy = Proxy::start(upstream, FaultPlan::none());
    let mut client = TcpStream::connect(proxy.addr()).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
    client
        .write_all(
            b"PUT /up/load?x=1 HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .expect("write head");
    client.write_all(body).expect("write body");
    let mut reader = BufReader::new(client);
    let (status, headers) = read_head(&mut reader).expect("read").expect("a response");
    assert_eq!(status, "HTTP/1.1 201 Created");
    assert_eq!(http::header(&headers, "connection"), Some("close"));
    assert_eq!(http::header(&headers, "keep-alive"), None);
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .expect("proxy closes after the response");
    assert_eq!(rest, b"ok");

    let raw = String::from_utf8(seen.join().expect("upstream")).expect("utf-8");
    let (head, forwarded_body) = raw.split_once("\r\n\r\n").expect("head");
    assert!(head.starts_with("PUT /up/load?x=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nHost: test"), "{head}");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    assert!(!head.contains("keep-alive"), "{head}");
    assert_eq!(forwarded_body.as_bytes(), body);
    assert_eq!(proxy.requests(), ["PUT /up/load?x=1"]);
}

#[test]
fn azurite_creates_a_container_and_serves_signed_requests_through_the_proxy() {
    let Some(azurite) = Azurite::start() else {
        return;
    };
    assert!(azurite.endpoint().ends_with("/devstoreaccount1"));
    azurite.create_container("box");
    // Twice is a conflict: the first one really made it.
    let again = Azurite::signed_request(azurite.addr(), "PUT", "/box?restype=container", &[], &[])
        .expect("again");
    assert_eq!(again.status, 409, "{}", again.text());

    let proxy = Proxy::start(azurite.addr(), FaultPlan::status_on([2], 503));
    let body = b"blob bytes".repeat(500);
    let r = Azurite::signed_request(
        proxy.addr(),
        "PUT",
        "/box/dir/b.bin",
        &[("x-ms-blob-type", "BlockBlob")],
        &body,
    )
    .expect("put blob");
    assert_eq!(r.status, 201, "{}\n{}", r.text(), azurite.log());
    let r = Azurite::signed_request(proxy.addr(), "GET", "/box/dir/b.bin", &[], &[]).expect("get");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, body);
    let r = Azurite::signed_request(proxy.addr(), "GET", "/box/dir/b.bin", &[], &[]).expect("503");
    assert_eq!(r.status, 503);
    // Unsigned requests are refused: object_store must sign (or use a SAS).
    let r = get(proxy.addr(), "/devstoreaccount1/box/dir/b.bin").expect("unsigned");
    assert!(matches!(r.status, 401 | 403), "unsigned get: {}", r.status);
    assert_eq!(
        proxy.requests(),
        [
            "PUT /devstoreaccount1/box/dir/b.bin",
            "GET /devstoreaccount1/box/dir/b.bin",
            "GET /devstoreaccount1/box/dir/b.bin",
            "GET /devstoreaccount1/box/dir/b.bin",
        ]
    );

    let (pid, addr) = (azurite.pid(), azurite.addr());
    drop(azurite);
    assert_stopped(pid, addr);
}

#[test]
fn http_server_serves_a_directory_through_the_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    std::fs::write(dir.path().join("sub/f.txt"), b"served\n").expect("write");
    let server = HttpServer::start(dir.path());
    assert!(server.endpoint().starts_with("http://127.0.0.1:"));
    let proxy = Proxy::start(server.addr(), FaultPlan::status_on([1], 500));
    let r = get(proxy.addr(), "/sub/f.txt").expect("get");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"served\n"[..]),
        "{}",
        server.log()
    );
    assert_eq!(get(proxy.addr(), "/sub/f.txt").expect("500").status, 500);
    let r = http::request(proxy.addr(), "HEAD", "/sub/f.txt", &[], &[]).expect("head");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("7"));
    assert_eq!(get(proxy.addr(), "/sub/none").expect("404").status, 404);
    // Read-only: http.server has no PUT.
    assert_eq!(
        put(proxy.addr(), "/sub/new", b"x").expect("put").status,
        501
    );
    assert_eq!(proxy.count("GET"), 3);
    assert_eq!(proxy.count("HEAD"), 1);
    assert_eq!(proxy.count("PUT"), 1);

    let (pid, addr) = (server.pid(), server.addr());
    drop(server);
    assert_stopped(pid, addr);
}
