//! Dockerfile parsing: parser directives (`escape`, `syntax`), comments, line continuations,
//! heredocs (`RUN <<EOF`), instructions with their `--flags` and their shell or JSON (exec)
//! form. Substitution happens later, when the builder knows the variables in scope.

use crate::BuildError;

/// Instructions the classic builder knows.
const KNOWN: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// Upper-case keyword (`RUN`).
    pub keyword: String,
    /// The instruction as written, continuations joined (what `Step N/M :` shows).
    pub original: String,
    /// `--name=value` flags before the arguments, in order.
    pub flags: Vec<(String, String)>,
    /// The arguments after the flags, unexpanded.
    pub args: String,
    /// Heredoc bodies (`<<EOF`), in order of appearance.
    pub heredocs: Vec<Heredoc>,
}

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`).
    pub name: String,
    /// The body, lines joined with `\n` and a final newline.
    pub body: String,
}

/// The arguments' form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `["a", "b"]`.
    Exec(Vec<String>),
    /// Anything else.
    Shell(String),
}

impl Instruction {
    /// The JSON (exec) form if the arguments are a JSON array of strings, else the shell form.
    pub fn form(&self) -> Form {
        let t = self.args.trim();
        if t.starts_with('[')
            && let Ok(v) = serde_json::from_str::<Vec<String>>(t)
        {
            return Form::Exec(v);
        }
        Form::Shell(t.to_string())
    }

    /// Value of a flag (`--from`).
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Rejects flags not in `allowed`, as Docker does (`unknown flag: x`).
    pub fn check_flags(&self, allowed: &[&str]) -> Result<(), BuildError> {
        for (k, _) in &self.flags {
            if !allowed.contains(&k.as_str()) {
                return Err(BuildError::Syntax(format!("Unknown flag: {k}")));
            }
        }
        Ok(())
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless the `escape` directive says `` ` ``).
    pub escape: char,
    /// Instructions in order.
    pub instructions: Vec<Instruction>,
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, BuildError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    let mut i = 0;
    // Parser directives: `# key=value` lines at the very top; anything else ends them.
    while i < lines.len() {
        let t = lines[i].trim();
        let Some(body) = t.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k.is_empty() || k.contains(char::is_whitespace) {
            break;
        }
        match k.as_str() {
            "escape" => {
                escape = match v {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(BuildError::Syntax(format!(
                            "invalid escape token '{v}' does not match ` or \\"
                        )));
                    }
                }
            }
            "syntax" | "check" => {}
            _ => break,
        }
        i += 1;
    }
    let mut instructions = Vec::new();
    while i < lines.len() {
        let start = i;
        let t = lines[i].trim_start();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let mut joined = String::new();
        let mut line = lines[i].trim_start().to_string();
        loop {
            let trimmed = line.trim_end();
            if let Some(head) = trimmed.strip_suffix(escape) {
                joined.push_str(head);
                i += 1;
                // Comment and empty lines inside a continuation are dropped.
                while i < lines.len() {
                    let n = lines[i].trim_start();
                    if n.starts_with('#') || n.trim().is_empty() {
                        i += 1;
                    } else {
                        break;
                    }
                }
                match lines.get(i) {
                    Some(l) => line = (*l).to_string(),
                    None => break,
                }
            } else {
                joined.push_str(trimmed);
                i += 1;
                break;
            }
        }
        let mut ins = instruction(start + 1, joined.trim())?;
        // Heredocs: `<<EOF`, `<<-EOF`, `<<"EOF"` take the following lines up to the delimiter.
        for name in heredoc_names(&ins.args) {
            let (strip_tabs, name) = match name.strip_prefix('-') {
                Some(n) => (true, n.to_string()),
                None => (false, name),
            };
            let mut body = String::new();
            let mut closed = false;
            while i < lines.len() {
                let l = lines[i];
                i += 1;
                let cmp = if strip_tabs {
                    l.trim_start_matches('\t')
                } else {
                    l
                };
                if cmp == name {
                    closed = true;
                    break;
                }
                body.push_str(cmp);
                body.push('\n');
            }
            if !closed {
                return Err(BuildError::Syntax(format!(
                    "dockerfile parse error on line {}: unterminated heredoc {name}",
                    ins.line
                )));
            }
            ins.heredocs.push(Heredoc { name, body });
        }
        instructions.push(ins);
    }
    if instructions.is_empty() {
        return Err(BuildError::Syntax(
            "the Dockerfile (Dockerfile) cannot be empty".into(),
        ));
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// Heredoc delimiters of an instruction's arguments (`<<EOF`, `<<-EOF`, quoted names).
fn heredoc_names(args: &str) -> Vec<String> {
    if args.trim_start().starts_with('[') {
        return Vec::new();
    }
    let mut out = Vec::new();
    for w in args.split_whitespace() {
        if let Some(rest) = w.strip_prefix("<<") {
            let (dash, rest) = match rest.strip_prefix('-') {
                Some(r) => ("-", r),
                None => ("", rest),
            };
            let name = rest.trim_matches(|c| c == '"' || c == '\'');
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push(format!("{dash}{name}"));
            }
        }
    }
    out
}

/// Parses one joined instruction line.
pub fn instruction(line: usize, text: &str) -> Result<Instruction, BuildError> {
    let (kw, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = kw.to_ascii_uppercase();
    if !KNOWN.contains(&keyword.as_str()) {
        return Err(BuildError::Syntax(format!(
            "dockerfile parse error on line {line}: unknown instruction: {kw}"
        )));
    }
    let mut rest = rest.trim_start();
    let mut flags = Vec::new();
    // ONBUILD keeps its trigger verbatim (the trigger's flags belong to it).
    if keyword != "ONBUILD" {
        while let Some(f) = rest.strip_prefix("--") {
            let end = f.find(char::is_whitespace).unwrap_or(f.len());
            let (flag, after) = f.split_at(end);
            let (k, v) = flag.split_once('=').unwrap_or((flag, "true"));
            flags.push((k.to_string(), v.to_string()));
            rest = after.trim_start();
        }
    }
    if rest.is_empty() && !matches!(keyword.as_str(), "RUN" | "CMD" | "ENTRYPOINT") {
        return Err(BuildError::Syntax(format!(
            "dockerfile parse error on line {line}: {keyword} requires at least one argument"
        )));
    }
    Ok(Instruction {
        line,
        keyword,
        original: text.to_string(),
        flags,
        args: rest.to_string(),
        heredocs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_continuations_comments() {
        let df = parse(
            "# escape=`\n# syntax=docker/dockerfile:1\nFROM busybox AS base\n# c\nRUN echo a `\n  # inner\n  b\ncopy --chown=1:2 --from=base a b\n",
        )
        .expect("parse");
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions.len(), 3);
        assert_eq!(df.instructions[1].args, "echo a   b");
        assert_eq!(df.instructions[1].line, 5);
        let c = &df.instructions[2];
        assert_eq!(c.keyword, "COPY");
        assert_eq!(c.flag("chown"), Some("1:2"));
        assert_eq!(c.flag("from"), Some("base"));
        assert_eq!(c.args, "a b");
    }

    #[test]
    fn forms_heredocs_and_errors() {
        let df =
            parse("FROM x\nCMD [\"a\", \"b\"]\nRUN <<EOF\necho hi\nEOF\nRUN x").expect("parse");
        assert_eq!(
            df.instructions[1].form(),
            Form::Exec(vec!["a".into(), "b".into()])
        );
        assert_eq!(df.instructions[2].heredocs[0].body, "echo hi\n");
        assert_eq!(df.instructions[3].keyword, "RUN");
        let err = parse("FROM x\n\nFOO bar\n").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "dockerfile parse error on line 3: unknown instruction: FOO"
        );
        assert!(parse("# only a comment\n").is_err());
    }
}
