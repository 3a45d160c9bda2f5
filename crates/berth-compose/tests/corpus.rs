//! Each case under `tests/corpus/` is loaded as `berth compose config --format json` loads it
//! and compared with what Compose v2 printed for it (`expected.json`, or `error.txt` for a
//! project Compose refuses), recorded by `tests/corpus/regen.sh` with the real binary. Where
//! berth words an error differently on purpose, `berth-error.txt` holds berth's text.

use std::path::{Path, PathBuf};

use berth_compose::{load, LoadOptions};

fn case_options(dir: &Path) -> LoadOptions {
    let args = std::fs::read_to_string(dir.join("args")).unwrap_or_default();
    let mut profiles = Vec::new();
    let mut words = args.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "--profile" => profiles.push(words.next().expect("--profile NAME").to_string()),
            other => panic!("{}: unsupported argument {other}", dir.display()),
        }
    }
    LoadOptions {
        profiles,
        // What regen.sh gives Compose: an empty environment but HOME and PATH.
        environment: [
            ("HOME".to_string(), "/nonexistent".to_string()),
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
        ]
        .into(),
        cwd: dir.to_path_buf(),
        ..LoadOptions::default()
    }
}

#[test]
fn config_matches_compose_v2() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "the corpus lost cases: {cases:?}");
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let placeholder = |s: String| s.replace(&dir.to_string_lossy().into_owned(), "$DIR");
        let got = load(&case_options(dir));
        let expected_error = std::fs::read_to_string(dir.join("berth-error.txt"))
            .or_else(|_| std::fs::read_to_string(dir.join("error.txt")))
            .ok();
        match (got, expected_error) {
            (Ok(p), None) => {
                let want: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(dir.join("expected.json"))
                        .unwrap_or_else(|e| panic!("{name}: expected.json: {e}")),
                )
                .unwrap();
                let got: serde_json::Value = serde_json::from_str(&placeholder(
                    serde_json::to_string(&berth_compose::project::for_output(&p.model)).unwrap(),
                ))
                .unwrap();
                if got != want {
                    failures.push(format!(
                        "{name}: config differs\n--- compose v2\n{}\n--- berth\n{}",
                        serde_json::to_string_pretty(&want).unwrap(),
                        serde_json::to_string_pretty(&got).unwrap()
                    ));
                }
            }
            (Err(e), Some(want)) => {
                let got = placeholder(e.to_string());
                if got.trim() != want.trim() {
                    failures.push(format!("{name}: error {got:?}, Compose v2 says {want:?}"));
                }
            }
            (Ok(_), Some(want)) => {
                failures.push(format!("{name}: loaded, Compose v2 refuses: {want}"))
            }
            (Err(e), None) => failures.push(format!("{name}: refused ({e}), Compose v2 loads it")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
