//! The multi-stage model: [`parse`] → [`Dockerfile`] with meta ARGs and [`Stage`]s, stage lookup,
//! `--target` selection, ARG scoping and inter-stage dependencies for parallel builds.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::instructions::{ArgDecl, Instruction, InstructionKind};
use crate::parser::{parse_ast, Directives};
use crate::shell::{EnvGetter, Layered, Lexer};

/// Build args BuildKit defines automatically in the global scope (the builder supplies values).
pub const AUTO_PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// ARGs declared before the first FROM: usable in FROM lines (and as defaults for ARGs
    /// redeclared inside a stage).
    pub meta_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
    /// Non-fatal findings as `(line, message)`.
    pub warnings: Vec<(usize, String)>,
}

/// One build stage: `FROM base [AS name]` and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position in the Dockerfile, 0-based (what `COPY --from=0` means).
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// The base as written (unexpanded; may use meta ARGs).
    pub base: String,
    /// `--platform=` as written (unexpanded).
    pub platform: Option<String>,
    /// Instructions after FROM (FROM itself excluded).
    pub instructions: Vec<Instruction>,
    /// 1-based line of the FROM.
    pub line: usize,
}

/// What a stage needs before it can build.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependency {
    /// Another stage of this Dockerfile, by index.
    Stage(usize),
    /// An image reference (expanded), e.g. `FROM alpine` or `COPY --from=nginx:1`.
    Image(String),
}

/// Parse Dockerfile text into stages of typed instructions.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let ast = parse_ast(text)?;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.nodes {
        let ins = Instruction::from_node(node)?;
        match (&ins.kind, stages.last_mut()) {
            (
                InstructionKind::From {
                    image,
                    name,
                    platform,
                },
                _,
            ) => {
                if let Some(n) = name {
                    if stages.iter().any(|s| s.name.as_ref() == Some(n)) {
                        return Err(Error::syntax(
                            ins.line,
                            format!("duplicate stage name {n:?}: stage names must be unique"),
                        ));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: name.clone(),
                    base: image.clone(),
                    platform: platform.clone(),
                    instructions: Vec::new(),
                    line: ins.line,
                });
            }
            (InstructionKind::Arg(decls), None) => meta_args.extend(decls.iter().cloned()),
            (_, None) => {
                return Err(Error::syntax(
                    ins.line,
                    format!(
                        "no build stage in current context: {} must come after a FROM",
                        ins.kind.name()
                    ),
                ))
            }
            (_, Some(stage)) => stage.instructions.push(ins),
        }
    }
    if stages.is_empty() {
        let line = ast.nodes.last().map_or(1, |n| n.end_line);
        return Err(Error::syntax(
            line,
            "no FROM instruction: a Dockerfile needs at least one stage",
        ));
    }
    Ok(Dockerfile {
        directives: ast.directives,
        meta_args,
        stages,
        warnings: ast.warnings,
    })
}

impl Dockerfile {
    /// The escape character in effect.
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// A stage by name (case-insensitive) or by decimal index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }

    /// The stage `--target` selects; the last stage when no target is given.
    pub fn target(&self, target: Option<&str>) -> Result<&Stage> {
        match target {
            None => Ok(self.stages.last().expect("parse guarantees one stage")),
            Some(t) => self.stage(t).ok_or_else(|| Error::StageNotFound {
                name: t.to_string(),
            }),
        }
    }

    /// Values of the meta ARGs: each build arg overrides the default; defaults are expanded
    /// with the meta ARGs before them. ARGs with neither value are left out. As in BuildKit,
    /// the automatic platform args ([`AUTO_PLATFORM_ARGS`]) are in scope for FROM lines without
    /// being declared when the builder passes them in `build_args`.
    pub fn meta_arg_values(&self, build_args: &impl EnvGetter) -> Result<Vec<(String, String)>> {
        let lx = Lexer::new(self.escape());
        let mut out: Vec<(String, String)> = AUTO_PLATFORM_ARGS
            .iter()
            .filter_map(|k| {
                build_args
                    .get_env(k)
                    .map(|v| (k.to_string(), v.to_string()))
            })
            .collect();
        for decl in &self.meta_args {
            let name = lx.process_word(&decl.name, &out)?;
            let value = match (build_args.get_env(&name), &decl.default) {
                (Some(v), _) => Some(v.to_string()),
                (None, Some(d)) => Some(lx.process_word(d, &out)?),
                (None, None) => None,
            };
            if let Some(v) = value {
                out.push((name, v));
            }
        }
        Ok(out)
    }

    /// The effective ARG values inside stage `index` after all its ARG lines: a build arg wins,
    /// then the ARG's own default (expanded with earlier ARGs/ENVs of the stage), then the
    /// value of a meta ARG of the same name. Meta ARGs not redeclared are not visible. ENV
    /// values override ARGs of the same name when expanding defaults.
    pub fn stage_args(
        &self,
        index: usize,
        build_args: &impl EnvGetter,
    ) -> Result<Vec<(String, String)>> {
        let stage = self.stage_at(index)?;
        let meta = self.meta_arg_values(build_args)?;
        let lx = Lexer::new(self.escape());
        let mut env: Vec<(String, String)> = Vec::new();
        let mut args: Vec<(String, String)> = Vec::new();
        for ins in &stage.instructions {
            match &ins.kind {
                InstructionKind::Arg(decls) => {
                    for d in decls {
                        let scope = Layered(&env, &args);
                        let name = lx.process_word(&d.name, &scope)?;
                        let value = match (build_args.get_env(&name), &d.default) {
                            (Some(v), _) => Some(v.to_string()),
                            (None, Some(def)) => Some(lx.process_word(def, &scope)?),
                            (None, None) => meta.as_slice().get_env(&name).map(str::to_string),
                        };
                        if let Some(v) = value {
                            args.retain(|(k, _)| *k != name);
                            args.push((name, v));
                        }
                    }
                }
                InstructionKind::Env(kvs) => {
                    for kv in kvs {
                        let scope = Layered(&env, &args);
                        let k = lx.process_word(&kv.key, &scope)?;
                        let v = lx.process_word(&kv.value, &scope)?;
                        env.push((k, v));
                    }
                }
                _ => {}
            }
        }
        Ok(args)
    }

    fn stage_at(&self, index: usize) -> Result<&Stage> {
        self.stages.get(index).ok_or_else(|| Error::StageNotFound {
            name: index.to_string(),
        })
    }

    /// What stage `index`'s FROM refers to: an earlier stage (by name) or an image, with meta
    /// ARGs expanded.
    pub fn base_of(&self, index: usize, build_args: &impl EnvGetter) -> Result<Dependency> {
        let stage = self.stage_at(index)?;
        let meta = self.meta_arg_values(build_args)?;
        let base = Lexer::new(self.escape()).process_word(&stage.base, &meta)?;
        if base.is_empty() {
            return Err(Error::syntax(
                stage.line,
                format!(
                    "base name ({}) should not be blank: set the build arg it uses",
                    stage.base
                ),
            ));
        }
        let lower = base.to_lowercase();
        Ok(self.stages[..index]
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map_or(Dependency::Image(base), |s| Dependency::Stage(s.index)))
    }

    /// Stage `index`'s `--platform` with meta ARGs (and automatic platform args) expanded.
    pub fn platform_of(&self, index: usize, build_args: &impl EnvGetter) -> Result<Option<String>> {
        let stage = self.stage_at(index)?;
        let meta = self.meta_arg_values(build_args)?;
        let lx = Lexer::new(self.escape());
        stage
            .platform
            .as_ref()
            .map(|p| lx.process_word(p, &meta))
            .transpose()
    }

    /// Direct dependencies of stage `index`: its base, `COPY --from=`, `RUN --mount=from=`.
    /// Sorted and deduplicated.
    pub fn dependencies(
        &self,
        index: usize,
        build_args: &impl EnvGetter,
    ) -> Result<Vec<Dependency>> {
        let stage = self.stage_at(index)?;
        let mut deps = vec![self.base_of(index, build_args)?];
        let mut env = self.meta_arg_values(build_args)?;
        env.extend(self.stage_args(index, build_args)?);
        let lx = Lexer::new(self.escape());
        let mut refs = Vec::new();
        for ins in &stage.instructions {
            match &ins.kind {
                InstructionKind::Copy(c) => refs.extend(c.from.iter().map(|f| (ins.line, f))),
                InstructionKind::Run(r) => refs.extend(
                    r.mounts
                        .iter()
                        .filter_map(|m| m.from.as_ref())
                        .map(|f| (ins.line, f)),
                ),
                _ => {}
            }
        }
        for (line, from) in refs {
            let from = lx.process_word(from, &env)?;
            let lower = from.to_lowercase();
            let dep = if let Some(s) = self
                .stages
                .iter()
                .find(|s| s.name.as_deref() == Some(lower.as_str()))
            {
                Dependency::Stage(s.index)
            } else if let Ok(i) = from.parse::<usize>() {
                if i >= self.stages.len() {
                    return Err(Error::syntax(
                        line,
                        format!(
                            "invalid stage index {i}: the Dockerfile has {} stages",
                            self.stages.len()
                        ),
                    ));
                }
                Dependency::Stage(i)
            } else {
                Dependency::Image(from)
            };
            if dep == Dependency::Stage(index) {
                return Err(Error::syntax(
                    line,
                    format!("circular dependency: stage {index} refers to itself"),
                ));
            }
            deps.push(dep);
        }
        deps.sort();
        deps.dedup();
        Ok(deps)
    }

    /// Every stage needed to build `target` (itself included), dependencies before dependents.
    /// Stages not listed need not be built; stages whose dependencies are all built can run in
    /// parallel.
    pub fn stages_needed(&self, target: usize, build_args: &impl EnvGetter) -> Result<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        fn visit(
            df: &Dockerfile,
            i: usize,
            args: &dyn Fn(usize) -> Result<Vec<Dependency>>,
            marks: &mut HashMap<usize, Mark>,
            order: &mut Vec<usize>,
        ) -> Result<()> {
            match marks.get(&i) {
                Some(Mark::Done) => return Ok(()),
                Some(Mark::Visiting) => {
                    return Err(Error::syntax(
                        df.stages[i].line,
                        format!("circular dependency detected on stage {i}"),
                    ))
                }
                None => {}
            }
            marks.insert(i, Mark::Visiting);
            for d in args(i)? {
                if let Dependency::Stage(j) = d {
                    visit(df, j, args, marks, order)?;
                }
            }
            marks.insert(i, Mark::Done);
            order.push(i);
            Ok(())
        }
        self.stage_at(target)?;
        let deps = |i: usize| self.dependencies(i, build_args);
        let mut marks = HashMap::new();
        let mut order = Vec::new();
        visit(self, target, &deps, &mut marks, &mut order)?;
        Ok(order)
    }
}
