//! The parser, lexer and ignore matcher never panic on arbitrary input.

use berth_dockerfile::{expand_words, ignore::Matcher, parse, Lexer, NoEnv};
use proptest::prelude::*;

fn dockerfileish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("FROM a AS b\n".to_string()),
        Just("RUN <<EOF\n".to_string()),
        Just("EOF\n".to_string()),
        Just("COPY --from=b <<-'X' /d\n".to_string()),
        Just("\\\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("ONBUILD ".to_string()),
        Just("HEALTHCHECK --interval=".to_string()),
        Just("[\"".to_string()),
        Just("${a:-".to_string()),
        "[ -~\\t\\n\"'`$\\\\{}\\[\\]=<-]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parse_never_panics(text in dockerfileish()) {
        if let Ok(df) = parse(&text) {
            for i in 0..df.stages.len() {
                let _ = df.stages_needed(i, &NoEnv);
                for ins in &df.stages[i].instructions {
                    let _ = ins.kind.expand(&NoEnv, df.escape());
                }
            }
        }
    }

    #[test]
    fn lexer_never_panics(word in "[ -~é\\t$\\\\{}:#%/?+'\"`-]{0,24}", escape in prop_oneof![Just('\\'), Just('`')]) {
        let _ = expand_words(&word, &NoEnv, escape);
        let lx = Lexer { raw_quotes: true, raw_escapes: true, skip_unset_env: true, ..Lexer::new(escape) };
        let _ = lx.process_word(&word, &NoEnv);
    }

    #[test]
    fn ignore_never_panics(pat in "[!*?/\\[\\]\\\\a.^-]{0,10}", path in "[a*/.\\[\\]-]{0,10}") {
        if let Ok(m) = Matcher::new(&[pat]) {
            let _ = m.is_excluded(&path);
            let _ = m.must_walk(&path);
        }
    }
}
