//! `berth-runtime-shim shim --state-dir DIR --id ID`: the shim without the rest of `berth`,
//! used as `RuntimeConfig::shim_binary` by this crate's integration tests.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("shim") {
        eprintln!("usage: berth-runtime-shim shim --state-dir DIR --id ID");
        return ExitCode::from(2);
    }
    let code = berth_runtime::shim_main(&args[2..]);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
