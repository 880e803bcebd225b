//! `crds/` must hold exactly what `certsmith crds` generates.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[test]
fn crds_directory_matches_the_generated_crds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut on_disk = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("crds/ exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        on_disk.insert(name, std::fs::read_to_string(&path).unwrap());
    }
    let generated: BTreeMap<String, String> = certsmith::crds::all()
        .iter()
        .map(|crd| {
            (
                certsmith::crds::file_name(crd),
                certsmith::crds::to_yaml(crd),
            )
        })
        .collect();
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "crds/ has other files than `certsmith crds --dir crds` writes"
    );
    for (name, yaml) in &generated {
        assert!(
            on_disk[name] == *yaml,
            "crds/{name} is out of date: run `cargo run -- crds --dir crds`"
        );
    }
}
