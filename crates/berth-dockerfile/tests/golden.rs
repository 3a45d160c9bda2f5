//! Golden tests against BuildKit's parser corpora and expansion tables.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use berth_dockerfile::{parse, parse_ast, Lexer};

fn corpus() -> PathBuf {
    berth_testutil::corpora_dir().join("buildkit")
}

fn case_dirs(sub: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(corpus().join(sub))
        .unwrap_or_else(|e| panic!("reading corpus {sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn parser_testfiles_dump_matches_result() {
    let dirs = case_dirs("parser-testfiles");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let want = fs::read_to_string(dir.join("result")).unwrap();
        match parse_ast(&text) {
            Ok(ast) if ast.dump() == want => {}
            Ok(ast) => failures.push(format!(
                "{name}: dump differs\n--- want\n{want}--- got\n{}",
                ast.dump()
            )),
            Err(e) => failures.push(format!("{name}: parse failed: {e}")),
        }
    }
    eprintln!(
        "parser-testfiles: {}/{} pass",
        dirs.len() - failures.len(),
        dirs.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn negative_testfiles_are_rejected() {
    let dirs = case_dirs("parser-testfiles-negative");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        match parse(&text) {
            Ok(_) => failures.push(format!("{name}: accepted, want an error")),
            Err(e) => eprintln!("{name}: rejected: {e}"),
        }
    }
    eprintln!(
        "parser-testfiles-negative: {}/{} rejected",
        dirs.len() - failures.len(),
        dirs.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn env_var_table() {
    let text = fs::read_to_string(corpus().join("envVarTest")).unwrap();
    let env: HashMap<String, String> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lexer = Lexer::new('\\');
    let (mut total, mut failures) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 3, "envVarTest:{}: malformed line", n + 1);
        let (platform, word, want) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        total += 1;
        match (lexer.process_word(word, &env), want) {
            (Err(_), "error") => {}
            (Ok(got), want) if got == want => {}
            (got, want) => failures.push(format!(
                "envVarTest:{}: {word:?}: want {want:?}, got {got:?}",
                n + 1
            )),
        }
    }
    eprintln!("envVarTest: {}/{total} pass", total - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn words_table() {
    let text = fs::read_to_string(corpus().join("wordsTest")).unwrap();
    let mut env: Vec<String> = Vec::new();
    let lexer = Lexer::new('\\');
    let (mut total, mut failures) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            env.push(rest.trim_start_matches(' ').to_string());
            continue;
        }
        let (word, want) = line.split_once('|').expect("wordsTest line has |");
        let word = word.trim();
        let want: Vec<String> = want
            .trim_start_matches(' ')
            .split(',')
            .map(str::to_string)
            .collect();
        total += 1;
        match lexer.process_words(word, &env) {
            Err(_) if want == ["error"] => {}
            Ok(got) if got == want => {}
            got => failures.push(format!(
                "wordsTest:{}: {word:?}: want {want:?}, got {got:?}",
                n + 1
            )),
        }
    }
    eprintln!("wordsTest: {}/{total} pass", total - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
