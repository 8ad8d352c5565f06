//! An error as a person reads it: one line, each cause once, never a backtrace (`Display`, not
//! `Debug`, so `RUST_BACKTRACE` changes nothing).

/// The error and its causes joined with `: `, leaving out a cause whose text the line already
/// includes (an error that prints its source would otherwise say it twice).
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = anyhow::Error::new(io).context(format!(
            "cannot open /nope: {}",
            std::io::Error::from(std::io::ErrorKind::NotFound)
        ));
        assert_eq!(one_line(&err), "cannot open /nope: entity not found");
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&err), "outer: inner");
    }
}
