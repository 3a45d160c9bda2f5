//! Benchmark: create+start+wait of `true` in busybox through the berth shim vs `runc run` of
//! the same bundle. Prints a table. Needs root, runc, and the shared busybox image.
//!
//! `cargo run --release --example bench_run -- [iterations]`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_runtime::{build_spec, ContainerSpec, HostInfo, LogConfig, Shim, ShimConfig};

fn unpack(dest: &Path) {
    let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/images/busybox.oci.tar");
    let oci = dest.with_extension("oci");
    std::fs::create_dir_all(&oci).unwrap();
    std::fs::create_dir_all(dest).unwrap();
    let sh = |c: String| {
        assert!(
            Command::new("sh")
                .arg("-c")
                .arg(&c)
                .status()
                .unwrap()
                .success(),
            "{c}"
        )
    };
    sh(format!("tar -xf {} -C {}", img.display(), oci.display()));
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &str| oci.join("blobs").join(d.replace(':', "/"));
    let idx = read(oci.join("index.json"));
    let m = read(blob(idx["manifests"][0]["digest"].as_str().unwrap()));
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    sh(format!(
        "tar -xzf {} -C {}",
        blob(layer).display(),
        dest.display()
    ));
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    (ms(v[v.len() / 2]), mean, ms(v[v.len() - 1]))
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    unpack(&rootfs);
    let exe = std::env::current_exe().unwrap();
    let shim_exe = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("berth-runtime-shim");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = |id: &str| ContainerSpec {
        id: id.into(),
        rootfs: rootfs.clone(),
        args: vec!["true".into()],
        hostname: "bench".into(),
        ..ContainerSpec::default()
    };

    let mut berth = Vec::new();
    for i in 0..n {
        let id = format!("bench-berth-{}-{i}", std::process::id());
        let dir = tmp.path().join(&id);
        let cfg = ShimConfig {
            spec: spec(&id),
            state_root: tmp.path().join("state"),
            log: LogConfig::with_defaults(dir.join("container.log")),
            start_on_request: false,
        };
        let t = Instant::now();
        let code = rt.block_on(async {
            let (s, _) = Shim::spawn(&shim_exe, &dir, &cfg).await.unwrap();
            s.wait().await.unwrap().exit_code
        });
        berth.push(t.elapsed());
        assert_eq!(code, 0);
    }

    let mut runc = Vec::new();
    for i in 0..n {
        let id = format!("bench-runc-{}-{i}", std::process::id());
        let bundle = tmp.path().join(&id);
        std::fs::create_dir_all(&bundle).unwrap();
        build_spec(&spec(&id), &HostInfo::detect())
            .unwrap()
            .save(bundle.join("config.json"))
            .unwrap();
        let t = Instant::now();
        let st = Command::new("runc")
            .args([
                "--root",
                &tmp.path().join("runc").display().to_string(),
                "run",
                "-b",
            ])
            .arg(&bundle)
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap();
        runc.push(t.elapsed());
        assert!(st.success());
    }

    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "run --rm busybox true", "median ms", "mean ms", "max ms"
    );
    for (name, v) in [("berth shim (libcontainer)", berth), ("runc run", runc)] {
        let (med, mean, max) = stats(v);
        println!("{name:<28} {med:>10.1} {mean:>10.1} {max:>10.1}");
    }
}
