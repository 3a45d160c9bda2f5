//! Benchmark: pull an image from a local `docker-registry` with berth-registry and with
//! `skopeo copy … dir:`, side by side. Run:
//! `cargo run --release -p berth-registry --example pull_bench [-- IMAGE.oci.tar [RUNS]]`
//! (default: the shared Debian bookworm minbase archive, 5 runs). Needs docker-registry, skopeo.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_oci::Reference;
use berth_registry::{Client, DirBlobStore, PullOptions, RegistryConfig};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let archive = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/images/debian-bookworm-minbase.oci.tar")
    });
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let _registry = Killed(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry"),
    );
    while TcpStream::connect(&addr).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let target = format!("docker://{addr}/bench/image:latest");
    let ok = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(&target)
        .status()
        .expect("skopeo");
    assert!(ok.success(), "skopeo copy into the registry failed");

    let reference = Reference::parse(&format!("{addr}/bench/image:latest")).unwrap();
    let mut berth = Vec::new();
    let mut skopeo = Vec::new();
    let mut bytes = 0;
    for i in 0..runs {
        // A fresh client per run: connection setup and the /v2/ ping are part of a pull.
        let out = dir.path().join(format!("berth-{i}"));
        let store = DirBlobStore::new(&out).unwrap();
        let client = Client::new(
            RegistryConfig::default(),
            berth_http_reqwest::ReqwestConnector::shared(),
        );
        let t = Instant::now();
        let p = client
            .pull(&reference, &store, &PullOptions::default())
            .await
            .expect("berth pull");
        berth.push(t.elapsed());
        bytes = p.fetched_bytes;
        std::fs::remove_dir_all(&out).unwrap();

        let out = dir.path().join(format!("skopeo-{i}"));
        let t = Instant::now();
        let ok = Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(&target)
            .arg(format!("dir:{}", out.display()))
            .status()
            .expect("skopeo");
        skopeo.push(t.elapsed());
        assert!(ok.success());
        std::fs::remove_dir_all(&out).unwrap();
    }
    let mb = bytes as f64 / 1e6;
    println!(
        "pull of {} ({mb:.1} MB) from a local docker-registry, median of {runs} runs",
        archive.file_name().unwrap().to_string_lossy()
    );
    println!("{:<28} {:>10} {:>10}", "tool", "seconds", "MB/s");
    for (name, v) in [
        ("berth-registry (3 parallel)", berth),
        ("skopeo copy → dir:", skopeo),
    ] {
        let m = median(v).as_secs_f64();
        println!("{name:<28} {m:>10.3} {:>10.1}", mb / m);
    }
}
