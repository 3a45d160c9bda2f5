//! `berth ui`: ask the daemon for a one-time dashboard login link, print it, and open it in
//! a browser when this session has one (a display and `xdg-open`).

use berth_client::Client;
use serde_json::Value;

use crate::cli::UiArgs;

pub async fn ui(c: &Client, a: UiArgs) -> anyhow::Result<()> {
    let r: Value = c.post_json("/berth/ui/login", None::<&()>).await?;
    let url = r["Url"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the daemon answered no login link: {r}"))?;
    let mins = r["ExpiresIn"].as_u64().unwrap_or(300) / 60;
    if !a.no_browser && has_browser() && open(url) {
        println!("opened the dashboard in your browser (the link works once, for {mins} min):");
    } else {
        println!("open this link in a browser on this host (it works once, for {mins} min):");
    }
    println!("{url}");
    Ok(())
}

/// A graphical session with `xdg-open` on PATH.
fn has_browser() -> bool {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("xdg-open").is_file()));
    display && on_path
}

/// Start `xdg-open url` in the background; did it start?
fn open(url: &str) -> bool {
    std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}
