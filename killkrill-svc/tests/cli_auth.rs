//! `killkrill user` and `killkrill apikey` through the real binary, then a
//! server on the same data directory accepts (and, after revocation,
//! refuses) what the CLI created.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use support::{config, raw_http};

fn killkrill(args: &[&str], data: &std::path::Path, stdin: &[u8]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_killkrill"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("DB_TYPE")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin).unwrap();
    c.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_users_and_keys_work_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let add = |email: &str, role: &str, pw: &[u8]| {
        killkrill(
            &[
                "user",
                "add",
                "--email",
                email,
                "--role",
                role,
                "--tenant",
                "ops",
                "--password-stdin",
            ],
            data,
            pw,
        )
    };
    let o = add("ops@x.test", "admin", b"Tr4in-Station-2026\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("created user ops@x.test"),
        "{}",
        text(&o.stdout)
    );
    let o = add("weak@x.test", "viewer", b"short\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("at least 12"),
        "{}",
        text(&o.stderr)
    );
    let o = add("ops@x.test", "viewer", b"Tr4in-Station-2026\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("exists"), "{}", text(&o.stderr));
    let o = add("x@x.test", "root", b"Tr4in-Station-2026\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--role"));
    let o = killkrill(
        &["user", "add", "--email", "y@x.test", "--role", "viewer"],
        data,
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "--password-stdin is required");

    let o = killkrill(
        &[
            "apikey", "create", "--name", "shipper", "--scopes", "ingest", "--tenant", "ops",
        ],
        data,
        b"",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let key = text(&o.stdout).trim().to_owned();
    assert!(key.starts_with("kk_") && key.len() == 46, "{key}");
    let o = killkrill(
        &[
            "apikey",
            "create",
            "--name",
            "x",
            "--scopes",
            "ingest,bogus",
        ],
        data,
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("bogus"));

    let o = killkrill(
        &[
            "user",
            "passwd",
            "--email",
            "ops@x.test",
            "--password-stdin",
        ],
        data,
        b"New-Tr4in-Station-1\n",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));

    // A server on the same data directory: users exist, so no bootstrap.
    let h = killkrill_svc::serve::start(config(data)).await.unwrap();
    assert!(h.bootstrap.is_none());
    let addr = h.http.unwrap();
    let r = raw_http(
        addr,
        "POST",
        "/api/v1/logs",
        &[("X-API-Key", key.as_str())],
        b"{\"msg\":\"from cli key\"}",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let login = |pw: &'static str| async move {
        let b = format!("{{\"email\":\"ops@x.test\",\"password\":\"{pw}\"}}");
        raw_http(addr, "POST", "/api/v1/auth/login", &[], b.as_bytes()).await
    };
    assert_eq!(login("Tr4in-Station-2026").await.status, 401);
    let r = login("New-Tr4in-Station-1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tok = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let me = raw_http(
        addr,
        "GET",
        "/api/v1/auth/me",
        &[("Authorization", tok.as_str())],
        b"",
    )
    .await
    .json();
    assert_eq!(
        (me["tenant"].as_str(), me["role"].as_str()),
        (Some("ops"), Some("admin"))
    );

    let o = killkrill(
        &["apikey", "revoke", "--name", "shipper", "--tenant", "ops"],
        data,
        b"",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Revoked by another process: the server trusts the key it verified a
    // moment ago for at most `auth.api_key_cache_ms` (1 s by default).
    let revoked = std::time::Instant::now();
    loop {
        let r = raw_http(
            addr,
            "POST",
            "/api/v1/logs",
            &[("X-API-Key", key.as_str())],
            b"{\"msg\":\"x\"}",
        )
        .await;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            revoked.elapsed() < std::time::Duration::from_millis(1500),
            "a key revoked by the CLI still works after {:?}",
            revoked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let o = killkrill(
        &["apikey", "revoke", "--name", "shipper", "--tenant", "ops"],
        data,
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    let audit = raw_http(
        addr,
        "GET",
        "/api/v1/audit",
        &[("Authorization", tok.as_str())],
        b"",
    )
    .await
    .json();
    let actions: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "cli")
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for a in [
        "user.create",
        "user.password",
        "apikey.create",
        "apikey.revoke",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    h.shutdown().await;
}
