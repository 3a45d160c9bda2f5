//! End to end with the Python docker SDK (docker-py) against an in-process berth daemon.

use crate::common;

use common::{busybox, TestDaemon};

#[test]
fn docker_py_images() {
    let t = "docker_py_images";
    if !berth_testutil::require_root(t) || !berth_testutil::require_cmds(t, &["python3"]) {
        return;
    }
    let has_sdk = std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_sdk {
        assert!(
            !berth_testutil::in_ci(),
            "{t}: python docker SDK missing (pip install docker)"
        );
        eprintln!("skipped: {t}: needs the python docker SDK (pip install docker)");
        return;
    }
    let Some(archive) = busybox(t) else { return };
    let d = TestDaemon::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/images_sdk.py");
    let o = std::process::Command::new("python3")
        .arg(&script)
        .env("DOCKER_HOST", d.host())
        .env("BUSYBOX_ARCHIVE", &archive)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "docker-py script failed:\n{out}\n{err}");
    assert!(out.contains("docker-py ok"), "{out}");
}
