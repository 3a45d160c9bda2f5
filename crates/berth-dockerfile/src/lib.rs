//! berth-dockerfile: Dockerfile text → typed instructions, ARG/ENV expansion, `.dockerignore`.
//!
//! Pure crate (no I/O). Entry points:
//! - [`parse`] → [`Dockerfile`] (directives, meta ARGs, stages of typed [`Instruction`]s);
//! - [`parse_ast`] → BuildKit-style [`Node`]s (what the golden tests dump);
//! - [`expand_word`] / [`expand_words`] / [`Lexer`] for `$VAR` expansion;
//! - [`ignore::Matcher`] for `.dockerignore`.
//!
//! ```
//! use std::collections::HashMap;
//! use berth_dockerfile::{parse, Dependency, InstructionKind, Layered};
//!
//! let df = parse("ARG TAG=3.19\nFROM alpine:$TAG AS build\nRUN make\n\
//!                 FROM scratch\nCOPY --from=build /out /\n").unwrap();
//! let build_args: HashMap<String, String> = HashMap::new();
//! let target = df.target(None).unwrap();                        // last stage
//! assert_eq!(df.stages_needed(target.index, &build_args).unwrap(), [0, 1]);
//! assert_eq!(df.base_of(0, &build_args).unwrap(), Dependency::Image("alpine:3.19".into()));
//! // While dispatching, expand each instruction with ENV over ARG values:
//! let env = vec![("DEST".to_string(), "/srv".to_string())];
//! let args = df.stage_args(1, &build_args).unwrap();
//! let copy = &df.stages[1].instructions[0];
//! let InstructionKind::Copy(c) = copy.kind.expand(&Layered(&env, &args), df.escape()).unwrap()
//! else { unreachable!() };
//! assert_eq!(c.from.as_deref(), Some("build"));
//! assert_eq!(copy.line, 5);
//! ```

pub mod error;
pub mod ignore;
pub mod instructions;
pub mod mount;
pub mod parser;
pub mod shell;
pub mod stages;

pub use error::{Error, ErrorKind, Result};
pub use instructions::{
    parse_instruction, ArgDecl, Command, CopyArgs, Healthcheck, HealthcheckOptions, Instruction,
    InstructionKind, KeyValue, Mount, MountType, Run,
};
pub use parser::{parse_ast, Ast, Directives, Heredoc, Node};
pub use shell::{expand_word, expand_words, EnvGetter, Layered, Lexer, NoEnv};
pub use stages::{parse, Dependency, Dockerfile, Stage, AUTO_PLATFORM_ARGS};
