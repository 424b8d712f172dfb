//! Dockerfile instructions given as `--change` to `docker import` and `docker commit`
//! (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `USER`, `VOLUME`, `WORKDIR`,
//! `STOPSIGNAL`, `ONBUILD`), applied to an image's container defaults.

use std::collections::BTreeMap;

use berth_image::ContainerDefaults;

use crate::error::{EngineError, Result};

/// A JSON array (`["a","b"]`) or shell form (`a b` → `/bin/sh -c "a b"`).
fn command(arg: &str) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(arg.trim()) {
        return v;
    }
    vec!["/bin/sh".into(), "-c".into(), arg.trim().into()]
}

/// A JSON array or whitespace separated words.
fn words(arg: &str) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(arg.trim()) {
        return v;
    }
    arg.split_whitespace().map(String::from).collect()
}

/// `KEY=value KEY2="v 2"` or the legacy `KEY value` form.
fn pairs(arg: &str) -> Vec<(String, String)> {
    let arg = arg.trim();
    if !arg.contains('=') {
        if let Some((k, v)) = arg.split_once(char::is_whitespace) {
            return vec![(k.to_string(), v.trim().to_string())];
        }
        return vec![(arg.to_string(), String::new())];
    }
    let mut out = Vec::new();
    let mut chars = arg.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            let mut quote: Option<char> = None;
            while let Some(&c) = chars.peek() {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => value.push(c),
                    None if c == '"' || c == '\'' => quote = Some(c),
                    None if c.is_whitespace() => break,
                    None if c == '\\' => {
                        chars.next();
                        if let Some(&n) = chars.peek() {
                            value.push(n);
                        }
                    }
                    None => value.push(c),
                }
                chars.next();
            }
        }
        out.push((key, value));
    }
    out
}

/// Applies each change to `defaults`.
pub fn apply(defaults: &mut ContainerDefaults, changes: &[String]) -> Result<()> {
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (word, arg) = change
            .split_once(char::is_whitespace)
            .unwrap_or((change, ""));
        match word.to_ascii_uppercase().as_str() {
            "CMD" => defaults.cmd = Some(command(arg)),
            "ENTRYPOINT" => defaults.entrypoint = Some(command(arg)),
            "ENV" => {
                let env = defaults.env.get_or_insert_with(Vec::new);
                for (k, v) in pairs(arg) {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let labels = defaults.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs(arg) {
                    labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = defaults.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in words(arg) {
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, serde_json::json!({}));
                }
            }
            "VOLUME" => {
                let vols = defaults.volumes.get_or_insert_with(BTreeMap::new);
                for v in words(arg) {
                    vols.insert(v, serde_json::json!({}));
                }
            }
            "USER" => defaults.user = Some(arg.trim().to_string()),
            "WORKDIR" => defaults.working_dir = Some(arg.trim().to_string()),
            "STOPSIGNAL" => defaults.stop_signal = Some(arg.trim().to_string()),
            "ONBUILD" => {
                let v = defaults
                    .extra
                    .entry("OnBuild".into())
                    .or_insert_with(|| serde_json::json!([]));
                if let Some(a) = v.as_array_mut() {
                    a.push(serde_json::Value::String(arg.trim().to_string()));
                }
            }
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "{} is not a valid change command",
                    other.to_ascii_lowercase()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_dockerfile_changes() {
        let mut d = ContainerDefaults::default();
        apply(
            &mut d,
            &[
                r#"CMD ["/bin/sh","-c","echo hi"]"#.into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV A=3".into(),
                "WORKDIR /srv".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL k=v".into(),
                "ENTRYPOINT echo x".into(),
            ],
        )
        .expect("apply");
        assert_eq!(
            d.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(d.env, Some(vec!["B=two words".into(), "A=3".into()]));
        assert_eq!(d.working_dir.as_deref(), Some("/srv"));
        assert!(
            d.exposed_ports
                .as_ref()
                .is_some_and(|p| p.contains_key("80/tcp"))
        );
        assert_eq!(
            d.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo x".into()])
        );
        assert!(apply(&mut d, &["FROM x".into()]).is_err());
    }
}
