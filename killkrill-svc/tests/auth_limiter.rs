//! The per-address login limiter over real sockets, with clients bound to
//! different loopback addresses (127.0.0.x): a full table is neither
//! cleared nor bypassed; addresses it does not track share one overflow
//! limit, tracked ones keep their own, and the overflow is counted.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};

use support::{config, metric_sum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// `POST /api/v1/auth/login` from `from`; the status.
async fn login_from(server: SocketAddr, from: Ipv4Addr, email: &str, pw: &str) -> u16 {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = sock.connect(server).await.unwrap();
    let body = serde_json::json!({ "email": email, "password": pw }).to_string();
    let req = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_limiter_table_limits_new_addresses_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth.address_max_failures = 2;
    cfg.auth.address_max_entries = 2;
    cfg.auth.max_failed_logins = 100;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let creds = support::creds(addr);
    let ip = |n: u8| Ipv4Addr::new(127, 0, 0, n);
    let wrong = |n: u8| format!("nobody{n}@x.test");

    // A user at .2 mistypes once; an attacker at .3 fills the table.
    assert_eq!(
        login_from(addr, ip(2), &wrong(2), "Wrong-Pass-1").await,
        401
    );
    assert_eq!(
        login_from(addr, ip(3), &wrong(3), "Wrong-Pass-1").await,
        401
    );
    // The attacker sprays from new addresses: not tracked, not clearing
    // the table, but counted together: two failures use up the bucket.
    assert_eq!(
        login_from(addr, ip(4), &wrong(4), "Wrong-Pass-1").await,
        401
    );
    assert_eq!(
        login_from(addr, ip(5), &wrong(5), "Wrong-Pass-1").await,
        401
    );
    for n in [6, 7] {
        assert_eq!(
            login_from(addr, ip(n), &wrong(n), "Wrong-Pass-1").await,
            429
        );
    }
    // While under attack a new address is refused even with the right
    // password...
    assert_eq!(
        login_from(addr, ip(8), &creds.admin_email, &creds.admin_password).await,
        429
    );
    // ...but the tracked user has its own count (one failure of two).
    assert_eq!(
        login_from(addr, ip(2), &creds.admin_email, &creds.admin_password).await,
        200
    );
    // That success freed its entry: a new address is tracked again.
    assert_eq!(
        login_from(addr, ip(8), &creds.admin_email, &creds.admin_password).await,
        200
    );
    // The attacker's own address is limited on its own count.
    assert_eq!(
        login_from(addr, ip(3), &wrong(3), "Wrong-Pass-1").await,
        401
    );
    assert_eq!(
        login_from(addr, ip(3), &creds.admin_email, &creds.admin_password).await,
        429
    );

    let m = support::scrape(addr).await;
    assert_eq!(
        metric_sum(&m, "killkrill_auth_login_limiter_overflow_total", &[]),
        2.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_auth_logins_total",
            &[("result", "overflow_limited")]
        ),
        3.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_auth_logins_total",
            &[("result", "address_limited")]
        ),
        1.0
    );
    h.shutdown().await;
}
