//! A real Prometheus (the Debian package) scraping a real
//! `prometheus-node-exporter` and remote-writing to `killkrill serve`: the
//! node exporter's series arrive, parsed, with their labels, at the metric
//! sink. Skipped, with the reason printed, when either program is missing.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use killkrill_svc::serve::StartOptions;
use support::{Recording, config};

/// Kills the child when dropped (the test may fail half-way).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn found(program: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "skipped: {program} is not installed (Debian: apt-get install prometheus prometheus-node-exporter)"
        );
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_writes_node_exporter_series() {
    if !found("prometheus") || !found("prometheus-node-exporter") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Recording::default());
    let h = support::start_with(
        config(&dir.path().join("data")),
        StartOptions {
            store: None,
            metric_sink: Some(sink.clone()),
            queue: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let node_port = free_port();
    let _node = Running(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node_port}']\nremote_write:\n  - url: http://{}/api/v1/write\n    authorization:\n      credentials: {}\n    queue_config:\n      batch_send_deadline: 1s\n",
            h.http.unwrap(),
            support::api_key(h.http.unwrap())
        ),
    )
    .unwrap();
    let _prom = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let instance = format!("127.0.0.1:{node_port}");
    let start = Instant::now();
    let (cpu, up) = loop {
        {
            let v = sink.0.lock().unwrap();
            let cpu = v
                .iter()
                .find(|s| s.name == "node_cpu_seconds_total")
                .cloned();
            let up = v
                .iter()
                .find(|s| s.name == "up" && s.labels.get("job") == Some("node"))
                .cloned();
            if let (Some(cpu), Some(up)) = (cpu, up) {
                break (cpu, up);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "node exporter series did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(cpu.labels.get("job"), Some("node"));
    assert_eq!(cpu.labels.get("instance"), Some(instance.as_str()));
    assert!(
        cpu.labels.get("cpu").is_some() && cpu.labels.get("mode").is_some(),
        "{cpu:?}"
    );
    assert!(cpu.value >= 0.0 && cpu.timestamp.is_some());
    assert_eq!(cpu.tenant.as_ref().map(|t| t.as_str()), Some("default"));
    assert_eq!(
        (up.value, up.labels.get("instance")),
        (1.0, Some(instance.as_str()))
    );
    h.shutdown().await;
}
