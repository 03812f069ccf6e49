//! `podvisor check`: validate manifests and print a report.

use std::process::ExitCode;

use super::CheckArgs;
use super::output::print_report;
use crate::model::check::{self, CheckOptions};
use crate::model::image_map::ImageMap;

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let m = args.manifests;
    if m.filenames.is_empty() {
        eprintln!(
            "error: podvisor check needs at least one -f PATH (a file, a folder, or - for stdin)"
        );
        return Ok(ExitCode::from(2));
    }
    let image_map = match &m.image_map {
        Some(path) => match ImageMap::load(&path.to_string_lossy()) {
            Ok(map) => Some(map),
            Err(error) => {
                eprintln!("error: {}", super::output::chain(&error));
                return Ok(ExitCode::from(1));
            }
        },
        None => None,
    };
    let options = CheckOptions {
        validation: m.validate,
        image_map,
        missing_image_is_error: false,
    };
    let report = check::check(&m.filenames, &options);
    print_report(&report, true);
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
