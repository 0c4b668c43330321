//! The API document as clients meet it: `docs/openapi.json` (which
//! `tests/it/api/spec.rs` keeps equal to the served one) linted under
//! @redocly/cli's recommended rules, then a TypeScript client
//! (`xtask/openapi/client/`) type-checked against the types openapi-typescript
//! generates from it. A renamed field or a dropped parameter fails here before
//! a browser meets it. The tools are pinned by `xtask/openapi/package-lock.json`.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::{run, say, tools};

pub fn check(root: &Path) -> Result<()> {
    let dir = root.join("xtask").join("openapi");
    tools::npm_ci(&dir)?;
    say("linting docs/openapi.json and type-checking the client generated from it");
    run(Command::new("npm").args(["run", "--silent", "check"]).current_dir(&dir))
}
