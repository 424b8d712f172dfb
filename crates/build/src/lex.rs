//! Word splitting, quote removal and variable substitution of Dockerfile arguments, as the
//! Dockerfile reference describes them: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}`
//! (and the unset-only `-`/`+` forms), single quotes literal, double quotes expanding, the
//! escape character (`\` or the `escape` directive's) escaping the next character.

use std::collections::BTreeMap;

use crate::BuildError;

/// Variables visible to substitution (ENV of the stage plus ARGs in scope).
pub type Vars = BTreeMap<String, String>;

/// Splits `input` into raw words at unquoted whitespace, keeping quotes and escapes.
pub fn split_raw(input: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = input.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
            in_word = true;
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                cur.push(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Expands variables and removes quotes of one word (no splitting).
pub fn word(input: &str, vars: &Vars, escape: char) -> Result<String, BuildError> {
    let mut out = String::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if quote == Some('\'') {
            if c == '\'' {
                quote = None;
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                // Inside double quotes only the quote, the escape itself and `$` are escaped,
                // as in the shell.
                if quote == Some('"') && !matches!(n, '"' | '$') && n != escape {
                    out.push(c);
                }
                out.push(n);
                i += 2;
            } else {
                out.push(c);
                i += 1;
            }
            continue;
        }
        match c {
            '"' if quote == Some('"') => quote = None,
            '"' | '\'' if quote.is_none() => quote = Some(c),
            '$' => {
                let (value, used) = variable(&chars[i + 1..], vars, escape)?;
                out.push_str(&value);
                i += used;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if let Some(q) = quote {
        return Err(BuildError::Syntax(format!(
            "unexpected end of statement while looking for matching {q}"
        )));
    }
    Ok(out)
}

/// Expands and splits: each raw word expanded and unquoted (a variable's value is not split).
pub fn words(input: &str, vars: &Vars, escape: char) -> Result<Vec<String>, BuildError> {
    split_raw(input, escape)
        .iter()
        .map(|w| word(w, vars, escape))
        .collect()
}

/// Parses a variable reference after `$`; returns its value and the characters consumed.
fn variable(rest: &[char], vars: &Vars, escape: char) -> Result<(String, usize), BuildError> {
    let Some(&first) = rest.first() else {
        return Ok(("$".into(), 0));
    };
    if first == '{' {
        let Some(close) = matching_brace(rest) else {
            return Err(BuildError::Syntax(
                "missing '}' in variable substitution".into(),
            ));
        };
        let inner: String = rest[1..close].iter().collect();
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_len);
        if name.is_empty() {
            return Err(BuildError::Syntax(format!(
                "bad substitution: ${{{inner}}}"
            )));
        }
        let value = vars.get(name);
        let out = if op.is_empty() {
            value.cloned().unwrap_or_default()
        } else if let Some(w) = op.strip_prefix(":-") {
            match value {
                Some(v) if !v.is_empty() => v.clone(),
                _ => word(w, vars, escape)?,
            }
        } else if let Some(w) = op.strip_prefix(":+") {
            match value {
                Some(v) if !v.is_empty() => word(w, vars, escape)?,
                _ => String::new(),
            }
        } else if let Some(w) = op.strip_prefix('-') {
            match value {
                Some(v) => v.clone(),
                None => word(w, vars, escape)?,
            }
        } else if let Some(w) = op.strip_prefix('+') {
            match value {
                Some(_) => word(w, vars, escape)?,
                None => String::new(),
            }
        } else if let Some(w) = op.strip_prefix(":?") {
            match value {
                Some(v) if !v.is_empty() => v.clone(),
                _ => {
                    return Err(BuildError::Syntax(format!(
                        "{name}: {}",
                        word(w, vars, escape)?
                    )));
                }
            }
        } else {
            return Err(BuildError::Syntax(format!(
                "unsupported modifier ({op}) in substitution"
            )));
        };
        return Ok((out, close + 1));
    }
    let len = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
        .count();
    if len == 0 {
        return Ok(("$".into(), 0));
    }
    let name: String = rest[..len].iter().collect();
    Ok((vars.get(&name).cloned().unwrap_or_default(), len))
}

fn matching_brace(rest: &[char]) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in rest.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `KEY=value KEY2="v 2"` pairs (ENV, LABEL, ARG) or the legacy `KEY value` form.
pub fn pairs(
    input: &str,
    vars: &Vars,
    escape: char,
    instruction: &str,
) -> Result<Vec<(String, String)>, BuildError> {
    let raw = split_raw(input, escape);
    if raw.is_empty() {
        return Err(BuildError::Syntax(format!(
            "{instruction} requires at least one argument"
        )));
    }
    if !raw[0].contains('=') {
        // Legacy `ENV KEY value with spaces`: everything after the first word is the value.
        let key = word(&raw[0], vars, escape)?;
        let rest = input.trim_start()[raw[0].len()..].trim();
        if rest.is_empty() {
            return Err(BuildError::Syntax(format!(
                "{instruction} must have two arguments"
            )));
        }
        return Ok(vec![(key, word(rest, vars, escape)?)]);
    }
    let mut out = Vec::new();
    for w in raw {
        let Some((k, v)) = w.split_once('=') else {
            return Err(BuildError::Syntax(format!(
                "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            )));
        };
        let key = word(k, vars, escape)?;
        if key.is_empty() {
            return Err(BuildError::Syntax(format!(
                "{instruction} names can not be blank"
            )));
        }
        out.push((key, word(v, vars, escape)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "one"), ("E", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitution_forms() {
        let v = vars();
        assert_eq!(word("$A/${A}x", &v, '\\').expect("w"), "one/onex");
        assert_eq!(word("${B:-def}", &v, '\\').expect("w"), "def");
        assert_eq!(word("${E:-def}", &v, '\\').expect("w"), "def");
        assert_eq!(word("${E-def}", &v, '\\').expect("w"), "");
        assert_eq!(word("${A:+set}${B:+no}", &v, '\\').expect("w"), "set");
        assert_eq!(word("'$A' \"$A\" \\$A", &v, '\\').expect("w"), "$A one $A");
        assert_eq!(word("`$A", &v, '`').expect("w"), "$A");
        assert!(word("${A", &v, '\\').is_err());
    }

    #[test]
    fn pairs_and_words() {
        let v = vars();
        assert_eq!(
            pairs("X=1 Y=\"a b\" Z=$A", &v, '\\', "ENV").expect("p"),
            vec![
                ("X".into(), "1".into()),
                ("Y".into(), "a b".into()),
                ("Z".into(), "one".into())
            ]
        );
        assert_eq!(
            pairs("X hello  world", &v, '\\', "ENV").expect("p"),
            vec![("X".into(), "hello  world".into())]
        );
        assert_eq!(
            words("a \"b c\" $A", &v, '\\').expect("w"),
            vec!["a", "b c", "one"]
        );
    }
}
