#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn no_secret_reaches_debug_output() {
    let secrets = [
        "smtp-pw-0123",
        "jwt-secret-of-at-least-32-bytes-xyz",
        "totp-sealing-key",
        "oidc-client-secret",
        "redis-pw",
        "license-server-pw",
        "ABCD-EFGH-IJKL-MNOP",
    ];
    let mut c = ServeConfig::default();
    c.smtp.username = Some("mailer".into());
    c.smtp.password = Some(secrets[0].into());
    c.auth.jwt_secret = Some(secrets[1].into());
    c.auth.secret_key = Some(secrets[2].into());
    c.oidc.client_secret = Some(secrets[3].into());
    c.queue.redis.url = Some(format!("redis://:{}@redis:6379", secrets[4]));
    c.license.server_url = Some(format!("https://u:{}@lic.example", secrets[5]));
    c.license.key = Some(format!("PENG-{}-QRST", secrets[6]));
    let shown = format!("{c:?} {c:#?}");
    for s in secrets {
        assert!(!shown.contains(s), "{s} in {shown}");
    }
    // What is not secret is still there.
    for s in ["mailer", "redis:6379", "lic.example", "-QRST", "<redacted>"] {
        assert!(shown.contains(s), "{s} not in {shown}");
    }
}

fn load(
    file: Option<&str>,
    env: &[(&str, &str)],
    flags: &[(&str, &str)],
) -> Result<ServeConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = file.map(|text| {
        let p = dir.path().join("killkrill.toml");
        std::fs::write(&p, text).unwrap();
        p
    });
    ServeConfig::load(&Layers {
        file,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        flags: flags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned(), k.replace('_', "-")))
            .collect(),
        defaults: Vec::new(),
    })
}

#[test]
fn no_configuration_at_all_is_valid() {
    let c = load(None, &[], &[]).unwrap();
    assert_eq!(c.to_toml(), ServeConfig::default().to_toml());
    assert!(c.transforms.is_empty());
    assert_eq!(c.http.to_string(), "127.0.0.1:8080");
    assert!(!c.tls_enabled());
}

#[test]
fn flags_beat_env_beat_file() {
    let file = "http = \"127.0.0.1:1000\"\nsyslog_udp = \"127.0.0.1:1001\"\nsyslog_tcp = \"127.0.0.1:1002\"\n[syslog]\nmax_connections = 7\n";
    let env = [
        ("KILLKRILL_SYSLOG_UDP", "127.0.0.1:2001"),
        ("KILLKRILL_SYSLOG_TCP", "127.0.0.1:2002"),
        ("KILLKRILL_SYSLOG__IDLE_TIMEOUT_SECS", "9"),
        ("PATH", "/bin"),
        ("KILLKRILL_TEST_POSTGRES_URL", "postgres://x"),
    ];
    let c = load(Some(file), &env, &[("syslog_tcp", "")]).unwrap();
    assert_eq!(c.http.to_string(), "127.0.0.1:1000");
    assert_eq!(c.syslog_udp.to_string(), "127.0.0.1:2001");
    assert_eq!(c.syslog_tcp, ListenAddr::OFF);
    assert_eq!(c.syslog.max_connections, 7);
    assert_eq!(c.syslog.idle_timeout_secs, 9);
}

#[test]
fn queue_kinds_default_and_redis_url() {
    let c = load(None, &[], &[]).unwrap();
    assert_eq!(c.queue.kind, QueueKind::Sqlite);
    let killkrill_store::queue::QueueConfig::Sqlite(s) = c.queue.to_store(Path::new("/d")) else {
        panic!("not sqlite")
    };
    assert_eq!(s.path, Path::new("/d/queue.db"));
    let c = load(
        Some("[queue]\nkind = \"memory\"\nmax_events = 7\n[syslog]\nbatch_max_events = 7\n"),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!((c.queue.kind, c.queue.max_events), (QueueKind::Memory, 7));
    let c = load(
        None,
        &[
            ("KILLKRILL_QUEUE__KIND", "redis"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.queue.redis.url.as_deref(), Some("redis://127.0.0.1:1"));
    // The config's own key wins over REDIS_URL; a command's defaults
    // lose to everything.
    let mut layers = Layers {
        env: vec![
            ("KILLKRILL_QUEUE__REDIS__URL".into(), "redis://a".into()),
            ("REDIS_URL".into(), "redis://b".into()),
        ],
        defaults: vec![("queue.kind".into(), "redis".into())],
        ..Layers::default()
    };
    let c = ServeConfig::load(&layers).unwrap();
    assert_eq!(
        (c.queue.kind, c.queue.redis.url.as_deref()),
        (QueueKind::Redis, Some("redis://a"))
    );
    layers.flags = vec![("queue.kind".into(), "memory".into(), "queue".into())];
    assert_eq!(
        ServeConfig::load(&layers).unwrap().queue.kind,
        QueueKind::Memory
    );
}

#[test]
fn errors_name_the_key_and_the_layer() {
    type Case<'a> = (
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a str,
    );
    let cases: &[Case<'_>] = &[
        (
            None,
            &[],
            &[("http", "nope")],
            "http (from --http): invalid address \"nope\"",
        ),
        (
            None,
            &[("KILLKRILL_SYSLOG__MAX_CONNECTIONS", "-1")],
            &[],
            "syslog.max_connections (from KILLKRILL_SYSLOG__MAX_CONNECTIONS): invalid value",
        ),
        (
            None,
            &[("KILLKRILL_NOPE", "1")],
            &[],
            "unknown field `nope`",
        ),
        (
            Some("[queue]\nmax_events = 0\n"),
            &[],
            &[],
            "queue.max_events (from ",
        ),
        (
            None,
            &[("KILLKRILL_WORKERS__GROUP_MAX_BYTES", "1000")],
            &[],
            "workers.group_max_bytes (from KILLKRILL_WORKERS__GROUP_MAX_BYTES): 1000 is out of range: 1048576 to 1073741824",
        ),
        (
            Some("[syslog]\nbogus = 1\n"),
            &[],
            &[],
            "unknown field `bogus`",
        ),
        (Some("http = ["), &[], &[], "not valid TOML"),
        (
            None,
            &[("KILLKRILL_QUEUE__BATCH_FORMAT_VERSION", "3")],
            &[],
            "queue.batch_format_version (from KILLKRILL_QUEUE__BATCH_FORMAT_VERSION): 3 is not a batch format",
        ),
        (
            Some("[http_ingest]\nmax_body_bytes = 33554432\n"),
            &[],
            &[],
            "http_ingest.max_body_bytes (from ",
        ),
        (
            Some("[http_ingest]\nmax_body_bytes = 33554432\nmax_output_bytes = 268435457\n"),
            &[],
            &[],
            "http_ingest.max_output_bytes (from ",
        ),
        (
            Some("[[transforms]]\ntype = \"filter\"\nregex = \"(\"\n"),
            &[],
            &[],
            "transforms[0].regex",
        ),
        (
            Some("[[transforms]]\ntype = \"nope\"\n"),
            &[],
            &[],
            "transforms[0]",
        ),
        (
            Some("[rollups.aggregate]\nresolutions = [\"1m\", \"0s\"]\n"),
            &[],
            &[],
            "rollups.aggregate.resolutions[1]",
        ),
        (
            Some("[rollups]\nbogus = 1\n"),
            &[],
            &[],
            "unknown field `bogus`",
        ),
        (
            None,
            &[],
            &[("syslog_tls", "127.0.0.1:6514")],
            "syslog_tls (from --syslog-tls): a TLS listener needs tls.cert",
        ),
        (
            None,
            &[],
            &[("tls.cert", "/nonexistent/cert.pem")],
            "tls.key: missing",
        ),
        (
            None,
            &[],
            &[("http", "127.0.0.1:5514")],
            "syslog_tcp: 127.0.0.1:5514 is also used by http",
        ),
        (
            Some("[auth]\nmode = \"disabled\"\n"),
            &[("RELEASE_MODE", "true")],
            &[],
            "auth.mode (from ",
        ),
        (Some("[auth]\nmode = \"off\"\n"), &[], &[], "auth.mode"),
        (
            None,
            &[("JWT_SECRET", "short")],
            &[],
            "JWT_SECRET: must be at least 32 bytes",
        ),
        (
            Some("[queue]\nkind = \"kafka\"\n"),
            &[],
            &[],
            "queue.kind (from ",
        ),
        (
            None,
            &[("KILLKRILL_QUEUE__KIND", "redis")],
            &[],
            "queue.redis.url: missing",
        ),
        (
            None,
            &[
                ("KILLKRILL_QUEUE__KIND", "redis"),
                ("REDIS_URL", "http://x"),
            ],
            &[],
            "queue.redis.url (from REDIS_URL): must start with redis://",
        ),
        (
            Some(
                "[queue]\nkind = \"redis\"\n[queue.redis]\nurl = \"redis://x\"\nstream = \"a b\"\n",
            ),
            &[],
            &[],
            "queue.redis.stream (from ",
        ),
        (
            None,
            &[("KILLKRILL_QUEUE__VISIBILITY_TIMEOUT_MS", "0")],
            &[],
            "queue.visibility_timeout_ms (from KILLKRILL_QUEUE__VISIBILITY_TIMEOUT_MS): must be greater than 0",
        ),
        (
            Some("[query]\nmax_tails_per_tenant = 0\n"),
            &[],
            &[],
            "query.max_tails_per_tenant (from ",
        ),
        (
            Some("[query]\ntail_grace_secs = 0\n"),
            &[],
            &[],
            "query.tail_grace_secs (from ",
        ),
        (
            Some("[query]\ntail_late_window_records = 0\n"),
            &[],
            &[],
            "query.tail_late_window_records (from ",
        ),
        (
            Some("[query]\ntail_late_window_records = 1000001\n"),
            &[],
            &[],
            "is above 1000000",
        ),
        (
            None,
            &[("KILLKRILL_QUEUE__SQLITE__INLINE_MAX_BYTES", "16777217")],
            &[],
            "queue.sqlite.inline_max_bytes (from KILLKRILL_QUEUE__SQLITE__INLINE_MAX_BYTES): 16777217 is over the limit of 16777216",
        ),
        (
            Some("[queue.sqlite]\nsynchronous = \"sometimes\"\n"),
            &[],
            &[],
            "queue.sqlite.synchronous (from ",
        ),
    ];
    for (file, env, flags, want) in cases {
        let e = load(*file, env, flags).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} should contain {want:?}");
    }
}

#[test]
fn check_config_output_hides_the_redis_password() {
    let c = load(
        Some("[queue]\nkind = \"redis\"\n[queue.redis]\nurl = \"redis://:hunter2@cache:6379/0\"\n"),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(
        c.queue.redis.url.as_deref(),
        Some("redis://:hunter2@cache:6379/0")
    );
    let shown = c.to_toml();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("cache:6379"), "{shown}");
}

#[test]
fn batch_format_version_reaches_the_queue_settings() {
    let sqlite = |c: &ServeConfig| match c.queue.to_store(Path::new("/d")) {
        killkrill_store::queue::QueueConfig::Sqlite(s) => s.batch_format_version,
        _ => panic!("not sqlite"),
    };
    assert_eq!(sqlite(&load(None, &[], &[]).unwrap()), 2);
    let c = load(None, &[("KILLKRILL_QUEUE__BATCH_FORMAT_VERSION", "1")], &[]).unwrap();
    assert_eq!(sqlite(&c), 1);
    // ...and the options the queue is opened with (serve once dropped it).
    match c.queue.to_store(Path::new("/d")) {
        killkrill_store::queue::QueueConfig::Sqlite(s) => {
            assert_eq!(s.options().batch_format_version, 1)
        }
        _ => panic!("not sqlite"),
    }
    let c = load(
        Some("[queue]\nkind = \"redis\"\nbatch_format_version = 1\n"),
        &[("REDIS_URL", "redis://127.0.0.1:1")],
        &[],
    )
    .unwrap();
    match c.queue.to_store(Path::new("/d")) {
        killkrill_store::queue::QueueConfig::Redis(r) => {
            assert_eq!(r.batch_format_version, 1);
            assert_eq!(r.options().batch_format_version, 1);
        }
        _ => panic!("not redis"),
    }
}

#[test]
fn inline_max_bytes_reaches_the_sqlite_queue_options() {
    let inline = |c: &ServeConfig| match c.queue.to_store(Path::new("/d")) {
        killkrill_store::queue::QueueConfig::Sqlite(s) => {
            (s.inline_max_bytes, s.options().inline_max_bytes)
        }
        _ => panic!("not sqlite"),
    };
    assert_eq!(inline(&load(None, &[], &[]).unwrap()), (4_000, 4_000));
    let c = load(
        None,
        &[("KILLKRILL_QUEUE__SQLITE__INLINE_MAX_BYTES", "65536")],
        &[],
    )
    .unwrap();
    assert_eq!(inline(&c), (65_536, 65_536));
    let c = load(Some("[queue.sqlite]\ninline_max_bytes = 0\n"), &[], &[]).unwrap();
    assert_eq!(inline(&c), (0, 0));
}

#[test]
fn hot_cache_bytes_reaches_the_sqlite_queue_options() {
    let hot = |c: &ServeConfig| match c.queue.to_store(Path::new("/d")) {
        killkrill_store::queue::QueueConfig::Sqlite(s) => {
            (s.hot_cache_bytes, s.options().hot_cache_bytes)
        }
        _ => panic!("not sqlite"),
    };
    assert_eq!(hot(&load(None, &[], &[]).unwrap()), (64 << 20, 64 << 20));
    let c = load(
        None,
        &[("KILLKRILL_QUEUE__SQLITE__HOT_CACHE_BYTES", "1000")],
        &[],
    )
    .unwrap();
    assert_eq!(hot(&c), (1_000, 1_000));
    let c = load(Some("[queue.sqlite]\nhot_cache_bytes = 0\n"), &[], &[]).unwrap();
    assert_eq!(hot(&c), (0, 0));
}

#[test]
fn a_queue_bound_under_the_workers_groups_is_warned_of() {
    let warnings = |env: &[(&str, &str)]| load(None, env, &[]).unwrap().warnings();
    assert_eq!(warnings(&[]), Vec::<String>::new(), "the defaults");
    let w = warnings(&[("KILLKRILL_QUEUE__MAX_EVENTS", "999999")]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("queue.max_events (999999) is under twice"),
        "{w:?}"
    );
    // Twice the groups is enough; so are smaller groups or no workers.
    assert!(warnings(&[("KILLKRILL_QUEUE__MAX_EVENTS", "1000000")]).is_empty());
    assert!(
        warnings(&[
            ("KILLKRILL_QUEUE__MAX_EVENTS", "4000"),
            ("KILLKRILL_WORKERS__GROUP_MAX_EVENTS", "1000"),
        ])
        .is_empty()
    );
    assert!(
        warnings(&[
            ("KILLKRILL_QUEUE__MAX_EVENTS", "4000"),
            ("KILLKRILL_WORKERS__COUNT", "0"),
        ])
        .is_empty()
    );
    // The Redis queue is bounded by its stream length, not by events.
    assert!(
        warnings(&[
            ("KILLKRILL_QUEUE__MAX_EVENTS", "4000"),
            ("KILLKRILL_QUEUE__KIND", "redis"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
        ])
        .is_empty()
    );
}
