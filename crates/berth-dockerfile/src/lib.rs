//! berth-dockerfile: Dockerfile text → typed instructions, ARG/ENV expansion, `.dockerignore`.
//!
//! Pure crate (no I/O). Entry points:
//! - [`parse`] → [`Dockerfile`] (directives, meta ARGs, stages of typed [`Instruction`]s);
//! - [`parse_ast`] → BuildKit-style [`Node`]s (what the golden tests dump);
//! - [`expand_word`] / [`expand_words`] / [`Lexer`] for `$VAR` expansion;
//! - [`ignore::Matcher`] for `.dockerignore`.

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
