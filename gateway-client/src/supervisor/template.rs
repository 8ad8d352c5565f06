//! The worker command: a template run with `sh -c`, its placeholders replaced by values quoted
//! for where they stand.
//!
//! A placeholder is one of [`PLACEHOLDERS`] in braces (`{task}`); anything else in braces (such
//! as `${HOME}` or `{a,b}`) is left alone. The template is scanned like the shell would, so a
//! value is quoted for its context: bare or in single quotes outside quotes, backslash-escaped
//! inside double quotes, and with `'\''` splices inside single quotes. Whatever a value holds
//! (spaces, quotes, `$`, backticks), the command sees exactly that value as text.

/// The placeholders a command template may use, with what they stand for.
pub const PLACEHOLDERS: [(&str, &str); 6] = [
    ("task", "the task id (t_...)"),
    ("profile", "the profile the grant runs as"),
    ("board", "the task's board slug"),
    ("run", "the run id of this attempt (r_...)"),
    ("workspace", "the working directory prepared for the task"),
    ("epoch", "the claim's fencing epoch"),
];

/// Where in a shell word a placeholder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Plain,
    Single,
    Double,
}

fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c)
}

/// Quotes `value` as one shell word (outside any quotes).
pub fn quote(value: &str) -> String {
    if !value.is_empty() && value.chars().all(is_safe) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

fn quote_in(context: Context, value: &str) -> String {
    match context {
        Context::Plain => quote(value),
        Context::Single => value.replace('\'', r"'\''"),
        Context::Double => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
    }
}

/// Replaces every known placeholder in `template` with `value(name)`, quoted for its context.
/// A name for which `value` returns `None` is left as it is.
pub fn render<'a>(template: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut context = Context::Plain;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        let len = c.len_utf8();
        match (context, c) {
            (Context::Plain | Context::Double, '\\') => {
                // An escaped character is copied with its backslash, whatever it is.
                let next = rest[len..].chars().next().map_or(0, char::len_utf8);
                out.push_str(&rest[..len + next]);
                rest = &rest[len + next..];
                continue;
            }
            (Context::Plain, '\'') => context = Context::Single,
            (Context::Plain, '"') => context = Context::Double,
            (Context::Single, '\'') | (Context::Double, '"') => context = Context::Plain,
            (_, '{') => {
                let name = rest[1..].split_once('}').map(|(name, _)| name);
                if let Some(name) = name.filter(|n| PLACEHOLDERS.iter().any(|(p, _)| p == n))
                    && let Some(v) = value(name)
                {
                    out.push_str(&quote_in(context, v));
                    rest = &rest[name.len() + 2..];
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        rest = &rest[len..];
    }
    out
}

/// Names of the placeholders `template` uses, for logs and checks.
pub fn used(template: &str) -> Vec<&'static str> {
    PLACEHOLDERS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| template.contains(&format!("{{{name}}}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = "it's a \"$HOME\" `id` \\ dir {task}\n$(x)";

    fn values(name: &str) -> Option<&'static str> {
        match name {
            "task" => Some("t_0123456789abcdef"),
            "profile" => Some("coder"),
            "workspace" => Some(NASTY),
            "epoch" => Some("7"),
            _ => None,
        }
    }

    /// What `sh` prints for `printf '%s|' <words>`.
    fn shell(template: &str) -> String {
        let script = render(template, values);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn quoting_outside_quotes() {
        assert_eq!(quote("t_01ab"), "t_01ab");
        assert_eq!(quote("/tmp/a-b.c"), "/tmp/a-b.c");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn safe_values_go_in_bare() {
        assert_eq!(
            render(
                r#"hermes -p {profile} -q "work kanban task {task}""#,
                values
            ),
            r#"hermes -p coder -q "work kanban task t_0123456789abcdef""#
        );
        assert_eq!(render("run {epoch}{epoch}", values), "run 77");
    }

    #[test]
    fn unknown_names_and_other_braces_stay() {
        assert_eq!(
            render("echo ${HOME} {a,b} {nope} {run} {task", values),
            "echo ${HOME} {a,b} {nope} {run} {task"
        );
        assert_eq!(used("x {task} {run} {x}"), ["task", "run"]);
    }

    #[test]
    fn escapes_are_copied_and_do_not_open_quotes() {
        assert_eq!(
            render(r"echo \' {task}", values),
            r"echo \' t_0123456789abcdef"
        );
        assert_eq!(render(r#"echo "a\"{epoch}""#, values), r#"echo "a\"7""#);
    }

    #[test]
    fn every_context_yields_the_exact_value_in_sh() {
        assert_eq!(shell("printf '%s|' {workspace}"), format!("{NASTY}|"));
        assert_eq!(
            shell(r#"printf '%s|' "in {workspace} dq""#),
            format!("in {NASTY} dq|")
        );
        assert_eq!(
            shell("printf '%s|' 'in {workspace} sq'"),
            format!("in {NASTY} sq|")
        );
        assert_eq!(
            shell("printf '%s|' x{workspace}y {task}"),
            format!("x{NASTY}y|t_0123456789abcdef|")
        );
    }
}
