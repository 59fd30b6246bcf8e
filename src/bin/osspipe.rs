//! The `osspipe` command line tool.

fn main() {
    eprintln!("osspipe: the command line is not built yet");
    std::process::exit(2);
}
