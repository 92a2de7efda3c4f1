//! The crate page (docs.rs) opens with the README's "Quickstart" section, word for word: the
//! crate docs in `src/lib.rs` carry a copy (rustdoc compiles its code as doc tests), and this test
//! fails when the two drift apart. Edit both together.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// From the `## Quickstart` heading to the line before the next `## ` heading.
fn quickstart_section(readme: &str) -> &str {
    let start = readme
        .find("\n## Quickstart\n")
        .expect("README.md has a `## Quickstart` section")
        + 1;
    let len = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len() - start, |i| i + 2);
    readme[start..start + len].trim_end()
}

/// The crate docs: the leading `//!` lines of `src/lib.rs`, without the `//! ` prefix.
fn crate_docs(lib: &str) -> String {
    lib.lines()
        .map_while(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_crate_page_opens_with_the_readme_quickstart() {
    let readme = read("README.md");
    let docs = crate_docs(&read("src/lib.rs"));
    let quickstart = quickstart_section(&readme);
    assert!(
        quickstart.contains("```rust"),
        "the README's quick start has lost its code:\n{quickstart}"
    );
    let Some(at) = docs.find(quickstart) else {
        panic!(
            "src/lib.rs's crate docs do not contain the README's Quickstart section verbatim; \
             copy it (each line prefixed with `//! `):\n\n{quickstart}"
        );
    };
    let before: Vec<&str> = docs[..at]
        .lines()
        .filter(|l| l.starts_with("## "))
        .collect();
    assert!(
        before.is_empty(),
        "the quick start must be the crate page's first section; it comes after {before:?}"
    );
}
