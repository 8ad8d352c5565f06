//! The `completions SHELL` and `man` subcommands every binary has: generated from the binary's
//! own clap definition, so they never drift from its flags.

use std::io::Write;

use clap_complete::Shell;

/// What to generate.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Docs {
    /// Print a shell completion script, e.g. `completions bash > /etc/bash_completion.d/NAME`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff), e.g. `man > NAME.1`, then `man ./NAME.1`.
    Man,
}

/// Writes what `docs` asks for about `command` (the binary's full clap command) to `out`.
pub fn generate(
    docs: &Docs,
    mut command: clap::Command,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let name = command.get_name().to_owned();
    // Rendered in memory first: clap_complete panics on a failed write (a closed pipe).
    let mut text = Vec::new();
    match docs {
        Docs::Completions { shell } => {
            clap_complete::generate(*shell, &mut command, name, &mut text);
        }
        Docs::Man => clap_mangen::Man::new(command).render(&mut text)?,
    }
    match out.write_all(&text) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
